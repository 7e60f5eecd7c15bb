r"""Built-in claims established with rigorous ball arithmetic (Arb, ``gradgap.theory.intervals``): CERTIFIED.

=====================================  =====================================================================
id                                     statement / evidence
=====================================  =====================================================================
``one-step-derived-softmax-box``       :math:`\Delta\ell\ge\eta\langle w,g\rangle-\eta^2(L_o+G_o^2/2)` for the
                                       3-armed bandit (arm 0 correct) on :math:`\theta\in[-4,4]^3`, unit w,
                                       :math:`\eta\in[0,10]` (CERTIFIED on that box, with its subdivision)
``theorem1-step-below-eta-star``       Theorem 1's step is below the exact one-step threshold,
                                       :math:`\eta_{\rm thm}\le\eta^\star`, on the pinned instances of the
                                       threshold-ratio experiment, contextual bandits included
                                       (CERTIFIED: Arb enclosures of :math:`\eta^\star`)
=====================================  =====================================================================

Each has a mutant that must fail: the one-step constant below the sharp :math:`G_o^2/8` (refuted at a
50-digit point), and a step 10^4 times Theorem 1's (refuted by a certified upper end of :math:`\eta^\star`).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Final

from gradgap.proofs_check.claims import Claim, Evidence, Profile, Status, Strength, mutant_claim, named_check
from gradgap.theory.instances import ContextualBandit, Instance, SharedTokens, SoftmaxBandit, TokenSequence

__all__ = ["PINNED_THRESHOLD_CASES", "claims"]

_BOX: Final[tuple[Fraction, Fraction]] = (Fraction(4), Fraction(10))  # theta bound, eta_max
_SOURCE: Final[str] = "§4.1 (one-step inequality and Theorem 1's step, QUOTED-2nd; constants DERIVED)"

#: (instance, direction) pairs with a finite threshold: a random direction with Delta mu > 0 per family
PINNED_THRESHOLD_CASES: Final[tuple[tuple[Instance, tuple[float, ...]], ...]] = (
    (SoftmaxBandit((0.3, -0.2, 0.1), frozenset({0})), (0.0, 1.0, -1.000001)),
    (SoftmaxBandit((1.0, 0.5, -0.5, 0.0), frozenset({0})), (0.5, 1.0, -1.0, 0.25)),
    (TokenSequence(((0.0, 0.0, 0.0), (0.5, 0.0, -0.5)), target=(0, 0)), (0.2, 1.0, -1.0, 0.5, 0.0, 0.0)),
    (SharedTokens((0.2,), ((0.0,), (1.0,), (2.0,)), frozenset({1}), T=4), (-1.0,)),
    (SharedTokens((0.0, 0.0), ((1.0, 0.0), (0.0, 1.0), (-1.0, -1.0)), frozenset({0}), T=3), (0.2, 1.0)),
    # at least 2 of 3 positions correct: the Poisson-binomial polynomial route
    (TokenSequence(((0.0, 0.5, 0.0), (0.2, 0.0, -0.3), (0.0, 0.0, 0.1)), target=(0, 0, 0), min_correct=2),
     (0.2, 1.0, -1.0, 0.5, 0.0, 0.0, 0.0, 1.0, -1.0)),
    # contextual: prompts compete for theta along w (J first rises, then falls below its start)
    (ContextualBandit((2.5, -2.75), (((2.0, -1.0), (1.0, -2.0)), ((-1.0, 2.0), (0.0, 0.0)), ((-1.0, -2.0), (0.0, 1.0))),
                      (frozenset({0}), frozenset({1}), frozenset({0}))), (0.25, 0.5)),
    (ContextualBandit((-0.3, -0.07), (((-2.0, 0.0), (-2.0, 1.0)), ((1.0, -2.0), (-2.0, -2.0))),
                      (frozenset({0}), frozenset({1})), weights=(4.0, 2.0)), (-1.0, 0.25)),
)


def _box_check(C: Fraction) -> Any:
    def run(profile: Profile) -> Evidence:
        from gradgap.theory import intervals

        cert = intervals.certify_softmax3_one_step(C, *_BOX)
        figs = {"C": float(C), "scope": cert.scope, "boxes": cert.boxes}
        if cert.certified:
            return Evidence.holds(Strength.CERTIFIED, figs, f"CERTIFIED on {cert.scope} ({cert.boxes} Arb boxes)")
        # not certified: look for a true violation at 50 digits (x = 0, w along e1 - e2, small eta)
        margin = _softmax3_margin(C, eta=Fraction(1, 100))
        if margin < 0:
            return Evidence.checked(Status.FAILS, 1, "point (50 digits)", figs,
                                    {"theta": [0, 0, 0], "w": "(0, 1, -1)/sqrt(2)", "eta": 0.01,
                                     "margin": str(margin)[:24], "digits": 50},
                                    "the inequality is violated at a 50-digit point")
        return Evidence.undecided(f"not certified: {cert.reason}", figs)

    return run


def _softmax3_margin(C: Fraction, eta: Fraction) -> Any:
    r""":math:`\Delta\ell-\eta\langle w,g\rangle+\eta^2C` at :math:`\theta=0`, :math:`w=(0,1,-1)/\sqrt2`, from
    :math:`\ell=\theta_0-\log(e^{\theta_1}+e^{\theta_2})` directly at 50 digits (no reduction)."""
    import mpmath

    mpmath.mp.dps = 50
    r = 1 / mpmath.sqrt(2)
    e = mpmath.mpf(eta.numerator) / eta.denominator

    def ell(t1: Any, t2: Any) -> Any:
        return -mpmath.log(mpmath.exp(t1) + mpmath.exp(t2))

    g_dot_w = r * (-mpmath.mpf(1) / 2) + (-r) * (-mpmath.mpf(1) / 2)  # g = (1, -1/2, -1/2) at theta = 0
    return ell(e * r, -e * r) - ell(0, 0) - e * g_dot_w + e * e * mpmath.mpf(C.numerator) / C.denominator


def _eta_star_check(factor: float) -> Any:
    r"""For each pinned case, Arb's enclosure :math:`[lo, hi]\ni\eta^\star` along the unit direction against
    ``factor`` times Theorem 1's step: HOLDS (CERTIFIED) when every certified lo is above it, FAILS (CERTIFIED)
    at the first certified hi below it; cases whose enclosure is not certified count as undecided."""

    def run(profile: Profile) -> Evidence:
        from gradgap.theory import one_step_threshold as ost

        ratios, boxes, skipped = [], 0, 0
        for inst, raw in PINNED_THRESHOLD_CASES:
            big = max(abs(Fraction(x)) for x in raw)
            w = tuple(Fraction(x) / big for x in raw)
            star = ost.eta_star(inst, w)
            eta_thm, norm = ost.eta_theorem(inst, w)
            step = factor * eta_thm
            if not star.certified or star.hi == float("inf"):
                skipped += 1
                continue
            boxes += star.boxes
            lo, hi = star.lo * norm, star.hi * norm
            if hi < step:
                return Evidence.fails(Strength.CERTIFIED, {"instance": repr(inst), "w": [str(x) for x in w],
                                                           "eta_star_interval": [lo, hi], "step": step},
                                      {"boxes": boxes}, "a certified eta* lies below the step")
            if not lo > step:
                skipped += 1
                continue
            ratios.append(lo / eta_thm if eta_thm > 0 else float("inf"))
        figs = {"instances": len(ratios), "undecided": skipped, "boxes": boxes,
                "min_ratio": min(ratios) if ratios else None,
                "scope": f"{len(ratios)} pinned instances (Arb enclosures of eta*)"}
        if skipped or not ratios:
            return Evidence.undecided(f"{skipped} of {len(PINNED_THRESHOLD_CASES)} enclosures not certified", figs)
        return Evidence.holds(Strength.CERTIFIED, figs,
                              f"CERTIFIED on {len(ratios)} pinned instances: eta* >= {min(ratios):.3g} eta_thm")

    return run


#: edge cases of the threshold routes for the numeric-twin comparison, one per branch of the theory's routes:
#: J falls at once (eta* = 0) and J rises for ever (eta* = infinity) on the polynomial route; J constant along a
#: w that moves the logits unequally (the polynomial is identically 0); w = 0 (the constant route); a direction
#: with a 17-digit entry (its slopes' common denominator is 2^52: the ball route), falling at once and rising
#: for ever; two tokens positions of different logits (a product of two line types: a finite crossing at 0.4)
_EDGE_THRESHOLD_CASES: Final[tuple[tuple[Instance, tuple[float, ...]], ...]] = (
    (SoftmaxBandit((0.3, -0.2, 0.1), frozenset({0})), (-1.0, 1.0, 0.0)),
    (SoftmaxBandit((0.3, -0.2, 0.1), frozenset({0, 1})), (0.0, 1.0, -1.0)),
    (SharedTokens((0.2,), ((0.0,), (1.0,), (2.0,)), frozenset({1}), T=4), (1.0,)),
    (SoftmaxBandit((0.0, 0.0, 0.0, 0.0), frozenset({0, 1})), (1.0, -1.0, 1.0, -1.0)),
    (SoftmaxBandit((0.3, -0.2, 0.1), frozenset({0})), (0.0, 0.0, 0.0)),
    (SoftmaxBandit((0.3, -0.2, 0.1), frozenset({0})), (-1.0, 0.3141592653589793, 0.7)),
    (SoftmaxBandit((0.3, -0.2, 0.1), frozenset({0})), (1.0, -0.3141592653589793, -0.7)),
    (TokenSequence(((0.0, 0.5), (0.3, 0.0)), (0, 0)), (1.0, -1.0, -1.0, 1.0)),
)


def _numeric_twin(profile: Profile) -> Evidence:
    r"""The numerics' own :math:`\eta^\star` (``gradgap.numerics.one_step_threshold.eta_star``: a float64 scan of
    :math:`\log J` along the line, bisected with mpmath; no intervals) against the Arb enclosure on every pinned
    case: it must lie in :math:`[lo, hi]` (or within :math:`10^{-9}` relative of the enclosure's midpoint, the
    twin's own bisection width). A disagreement is an ``ERROR`` (one side is wrong; the gate goes red).
    ``CHECKED`` on the pinned instances with product rewards and :data:`_EDGE_THRESHOLD_CASES`."""
    import math

    from gradgap.numerics import one_step_threshold as twin
    from gradgap.theory import one_step_threshold as ost

    # the twin's simulator has product rewards only: at-least-m rewards are certified by the theory alone
    cases = tuple((inst, raw) for inst, raw in (*PINNED_THRESHOLD_CASES, *_EDGE_THRESHOLD_CASES)
                  if getattr(inst, "min_correct", None) is None)
    for inst, raw in cases:
        big = max(abs(Fraction(x)) for x in raw) or Fraction(1)  # w = 0 is kept as it is
        w = tuple(Fraction(x) / big for x in raw)
        star, num = ost.eta_star(inst, w), twin.eta_star(inst, [float(x) for x in w])
        inside = star.lo <= num.value <= star.hi or math.isclose(num.value, star.value, rel_tol=1e-9)
        if not (math.isfinite(num.value) == math.isfinite(star.value) and (math.isinf(star.value) or inside)):
            return Evidence.error(f"eta* of the numerics ({num.value!r}) outside the Arb enclosure "
                                  f"[{star.lo!r}, {star.hi!r}] at {inst!r}, w={[str(x) for x in w]}")
    return Evidence.checked(Status.HOLDS, len(cases), "pinned instances",
                            {"twin_points": len(cases)},
                            detail="the numerics' eta* lies in every Arb enclosure (eta* = 0 and infinity included)")


def _theorem_step_formula(profile: Profile) -> Evidence:
    r"""Theorem 1's step as the theory module computes it (``eta_theorem``, the step the certified comparison
    uses) against the statement's formula :math:`[\Delta\mu]_+/(2(L_o+8G_o^2))` evaluated here: the constant
    from the claim text :data:`~gradgap.proofs_check.builtin.theorem1.PAPER_CONSTANT`, :math:`\Delta\mu` from the
    numerics' structured Gradient Gap, :math:`L_o, G_o` from the family's constants (checked by the
    ``constant-*`` claims). TESTED (float64, within :data:`~gradgap.proofs_check.tolerances.EXACT`)."""
    import numpy as np

    from gradgap.proofs_check import expressions, families
    from gradgap.proofs_check.builtin.theorem1 import PAPER_CONSTANT
    from gradgap.proofs_check.tolerances import EXACT, close
    from gradgap.theory import one_step_threshold as ost

    constant = expressions.parse_expression(PAPER_CONSTANT)
    for inst, raw in PINNED_THRESHOLD_CASES:
        big = max(abs(Fraction(x)) for x in raw)
        w = tuple(Fraction(x) / big for x in raw)
        eta_thm, norm = ost.eta_theorem(inst, w)
        u = np.array([float(x) for x in w])
        want_norm = float(np.linalg.norm(u))
        gap = np.asarray(families.numerics_module(inst).gradient_gap(inst, method="structured"), dtype=float)
        dmu = float(np.dot(u / want_norm, gap.reshape(-1)))
        consts = families.theory_module(inst).constants(inst)
        C = float(expressions.evaluate(constant, {"L_o": float(consts.L_o.value), "G_o": float(consts.G_o.value)}))
        want = max(dmu, 0.0) / (2.0 * C)
        if not (close(eta_thm, want, EXACT) and close(norm, want_norm, EXACT)):
            return Evidence.fails(Strength.TESTED, {"instance": repr(inst), "w": [str(x) for x in w],
                                                    "eta_theorem": eta_thm, "formula": want, "norm": norm},
                                  detail="eta_theorem differs from [Delta mu]_+/(2(L_o+8G_o^2))")
    return Evidence.checked(Status.HOLDS, len(PINNED_THRESHOLD_CASES), "pinned instances",
                            {"formula_points": len(PINNED_THRESHOLD_CASES)},
                            detail="eta_theorem = [Delta mu]_+/(2(L_o+8G_o^2)) on the pinned instances")


def claims() -> list[Claim]:
    """The built-in claims of this module."""
    derived = Fraction(3, 2)  # L_o + G_o^2/2 with L_o = 1/2, G_o = sqrt(2) (softmax)
    return [
        Claim(
            id="one-step-derived-softmax-box",
            title="one-step inequality, derived constant, certified on a box (softmax K = 3)",
            family="softmax",
            statement=(r"For $K=3$, arm 0 correct, $\theta\in[-4,4]^3$, $\|w\|=1$, $0\le\eta\le10$: "
                       r"$\ell(\theta+\eta w)-\ell(\theta)\ge\eta\langle w,g\rangle-\eta^2(L_o+G_o^2/2)$."),
            source=_SOURCE,
            checks=(named_check("arb-box", _box_check(derived)),),
            mutants=lambda: [mutant_claim("one-step-derived-softmax-box", "C_below_sharp",
                                          named_check("arb-box", _box_check(Fraction(1, 5))), family="softmax")],
        ),
        Claim(
            id="theorem1-step-below-eta-star",
            title="Theorem 1's step is below the exact one-step threshold (pinned instances)",
            family="all",
            statement=(r"$[\Delta\mu]_+/(2(L_o+8G_o^2))\le\eta^\star(\theta,w)$ along the unit direction $w$ on the "
                       r"pinned instances of the threshold-ratio experiment."),
            source=_SOURCE,
            checks=(named_check("arb-eta-star", _eta_star_check(1.0)),
                    named_check("eta-theorem-formula", _theorem_step_formula),
                    named_check("eta-star-numeric-twin", _numeric_twin)),
            mutants=lambda: [mutant_claim("theorem1-step-below-eta-star", "step_x1e4",
                                          named_check("arb-eta-star", _eta_star_check(1e4)))],
        ),
    ]
