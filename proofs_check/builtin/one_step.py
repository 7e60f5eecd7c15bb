r"""Built-in claims on the one-step log-odds inequality (reconstruction §4.1, the key lemma of Theorem 1).

.. math::  \ell(\theta+\eta w)-\ell(\theta)\ \ge\ \eta\langle w,g\rangle-\eta^2C\qquad(\|w\|=1,\ \eta\ge0).

=====================================  =====================================================================
id                                     constant :math:`C`
=====================================  =====================================================================
``one-step-paper-<family>``            :math:`L_o+8G_o^2` (the paper's, QUOTED-2nd)
``one-step-derived-<family>``          :math:`L_o+G_o^2/2` (reconstruction §4.1, DERIVED)
``one-step-loglinear-<family>``        :math:`G_o^2/8` (DERIVED here, sharp for softmax with two or more
                                       wrong arms and for exact-match tokens with T <= 2)
``one-step-half-sharp-<family>``       :math:`G_o^2/16`, expect **fails** (the sharp constant cannot be halved)
``sharpest-constant-values``           :math:`C^\star=\tfrac12\sup_\theta\lambda_{\max}(-\nabla^2\ell)\le G_o^2/8`,
                                       the values found per structure
=====================================  =====================================================================

Why :math:`G_o^2/8` (DERIVED): for a log-linear policy :math:`\pi(o)\propto e^{\langle\theta,\phi(o)\rangle}` (all
three families) the normaliser cancels in :math:`\ell=\mathrm{LSE}_S\langle\theta,\phi\rangle-
\mathrm{LSE}_F\langle\theta,\phi\rangle`, so :math:`\nabla^2\ell=\mathrm{Cov}_{\pi^+}(\phi)-\mathrm{Cov}_{\pi^-}
(\phi)\succeq-\mathrm{Cov}_{\pi^-}(\phi)`; by Popoviciu :math:`\mathrm{Var}_{\pi^-}\langle w,\phi\rangle\le
\mathrm{diam}(\phi)^2/4\le G_o^2/4`; Taylor with integral remainder gives
:math:`\Delta\ell\ge\eta\langle w,g\rangle-\tfrac{\eta^2}2\sup\lambda_{\max}(-\nabla^2\ell)`, and this
constant is the best possible (:math:`\eta\to0`). The paper's constant is at least :math:`64\times` it.

Checks: the generic Hypothesis search of :mod:`gradgap.proofs_check.search` (TESTED; random unit directions, eta in
[0, 10]) plus *pinned* near-extremal configurations (like Hypothesis' ``@example``), evaluated at 50 digits
by the same machinery: the random search alone does not find the extremal configurations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Final, Literal

import numpy as np

from gradgap.numerics import algorithms as na
from gradgap.proofs_check import expressions, families
from gradgap.proofs_check.claims import Claim, Evidence, Profile, Relation, Status, Strength, mutant_claim, named_check
from gradgap.proofs_check.search import Case, evaluate_case, instance_dict, search_relation
from gradgap.proofs_check.tolerances import EXACT, HESSIAN_ROUTES, SHARP_RATIO
from gradgap.theory.instances import ContextualBandit, Instance, SharedTokens, SoftmaxBandit, TokenSequence

__all__ = ["PINS", "claims", "pinned_check", "relation_with_pins"]

_LHS: Final[str] = "ell_next - ell"
_FAMILIES: Final[tuple[str, ...]] = families.LOG_LINEAR_FAMILIES
_ETA_FRACTIONS: Final[tuple[float, ...]] = (0.001, 0.01, 0.05, 0.1)  # eta = 10 u: 0.01, 0.1, 0.5, 1

#: near-extremal configurations per family: (instance, raw direction)
PINS: Final[dict[str, tuple[tuple[Instance, tuple[float, ...]], ...]]] = {
    "softmax": (
        (SoftmaxBandit((0.0, 0.0, 0.0), frozenset({0})), (0.0, 1.0, -1.0)),  # Var_- = 1/2 along e1 - e2
        (SoftmaxBandit((0.0, 0.0, 0.0), frozenset({0})), (1.0, -0.5, -0.5)),  # along g
        (SoftmaxBandit((0.0, 0.0, 0.0), frozenset({0})), (0.01, 1.0, -1.0)),  # small positive alignment
    ),
    "tokens": (
        (TokenSequence(((4.0, 0.0), (4.0, 0.0)), target=(0, 0)), (1.0, -1.0, -1.0, 1.0)),  # -> lambda = 1
        (TokenSequence(((0.0, 0.0, 0.0),), target=(0,)), (0.0, 1.0, -1.0)),
        (TokenSequence(((0.0, 0.0), (0.0, 0.0)), target=(0, 0)), (1.0, -1.0, 1.0, -1.0)),  # along g
        (TokenSequence(((4.0, 0.0), (4.0, 0.0)), target=(0, 0)), (1.01, -1.0, -1.0, 1.0)),
    ),
    "shared_tokens": (
        (SharedTokens((0.0, 0.0, 0.0), ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)), frozenset({0}), T=1),
         (0.0, 1.0, -1.0)),
        (SharedTokens((0.0, 0.0, 0.0), ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)), frozenset({0}), T=1),
         (1.0, -0.5, -0.5)),
        (SharedTokens((0.0, 0.0, 0.0), ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)), frozenset({0}), T=1),
         (0.01, 1.0, -1.0)),
    ),
    "contextual": (  # one prompt with one-hot features is the softmax bandit; a second prompt shares theta
        (ContextualBandit((0.0, 0.0, 0.0), (((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),),
                          (frozenset({0}),)), (0.0, 1.0, -1.0)),
        (ContextualBandit((0.0, 0.0, 0.0), (((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),),
                          (frozenset({0}),)), (1.0, -0.5, -0.5)),
        (ContextualBandit((0.0, 0.0, 0.0), (((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),),
                          (frozenset({0}),)), (0.01, 1.0, -1.0)),  # small positive alignment (as for softmax)
        (ContextualBandit((0.0, 0.0, 0.0), (((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
                                            ((0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))),
                          (frozenset({0}), frozenset({0}))), (0.0, 1.0, -1.0)),
    ),
}


def pinned_check(relation: Relation, pins: Sequence[tuple[Instance, tuple[float, ...]]],
                 fractions: Sequence[float] = _ETA_FRACTIONS) -> Callable[[Profile], Evidence]:
    r"""Evaluate ``relation`` at pinned (instance, direction, eta fraction) points at 50 digits with
    :func:`gradgap.proofs_check.search.evaluate_case`: FAILS at the first point where the hypotheses hold and
    the relation is violated there; HOLDS otherwise. Fixed points: ``CHECKED`` on that many, never ``TESTED``."""

    def run(profile: Profile) -> Evidence:
        checked = 0
        worst: float = math.inf
        for inst, raw in pins:
            if type(inst) is not families.family(relation.family).instance_type:
                continue
            for u in fractions:
                res = evaluate_case(relation, Case(inst, tuple(raw), u))
                if not res.get("given_hold"):
                    continue
                checked += 1
                if res["mp_margin"] is not None:
                    worst = min(worst, float(res["mp_margin"]))
                if res["violated"]:
                    return Evidence.checked(Status.FAILS, checked, "pinned points", {"pins": checked}, {
                        "family": relation.family, "instance": instance_dict(inst), "raw_w": list(raw),
                        "eta_fraction": u, "relation": relation.claim, "margin": str(res["mp_margin"])[:24],
                        "digits": 50}, detail="pinned near-extremal point violates the relation at 50 digits")
        return Evidence.checked(Status.HOLDS, checked, "pinned points", {"pins": checked, "pins_min_margin": worst},
                                detail=f"{checked} pinned near-extremal points hold at 50 digits")

    return run


#: share of the profile's Hypothesis examples each search of this module uses (the pins carry the extremes)
SEARCH_SHARE: Final[float] = 0.5


def _search(relation: Relation) -> Callable[[Profile], Evidence]:
    def run(profile: Profile) -> Evidence:
        return search_relation(relation, replace(profile, examples=max(10, int(profile.examples * SEARCH_SHARE))))

    return run


def relation_with_pins(cid: str, relation: Relation, *, title: str, statement: str, source: str,
                       expect: Literal["holds", "fails"] = "holds",
                       mutant_texts: Sequence[tuple[str, str]] | None = None,
                       mutants: Callable[[], list[Claim]] | None = None,
                       pin_fractions: Sequence[float] = _ETA_FRACTIONS) -> Claim:
    """A relation claim checked by the pinned points and (when expected to hold) the generic search;
    ``mutant_texts`` (kind, relation text) are its wrong variants, each run with the same checks; ``mutants``
    (a callable returning wrong variant claims) replaces them. ``pin_fractions`` are the step fractions of the
    pinned points (eta = lo + u (hi - lo) with hi narrowed by the hypotheses)."""

    expressions.parse_relation(relation.claim)
    for hyp in relation.given:
        expressions.parse_relation(hyp)
    pins = PINS[relation.family]

    def make(i: str, rel: Relation, exp: Literal["holds", "fails"], mts: Callable[[], list[Claim]]) -> Claim:
        checks: tuple[Any, ...] = (named_check("pinned-points", pinned_check(rel, pins, pin_fractions)),)
        if exp == "holds":
            checks = (*checks, named_check("hypothesis-search", _search(rel)))
        return Claim(id=i, title=title, family=rel.family,
                     statement=statement, source=source,
                     checks=checks, expect=exp, relation=rel, mutants=mts)

    def text_mutants() -> list[Claim]:
        out = []
        for kind, text in mutant_texts or ():
            rel = Relation(claim=text, family=relation.family, sizes=relation.sizes,
                           direction=relation.direction, ranges=relation.ranges, given=relation.given)
            out.append(make(f"{cid}~{kind}", rel, "holds", lambda: []))
        return out

    return make(cid, relation, expect, mutants if mutants is not None else text_mutants)


def _one_step(C: str) -> str:
    return f"{_LHS} >= eta*Delta_mu - eta**2*{C}"


def _mutants_for(C: str, *, sharp: bool) -> list[tuple[str, str]]:
    out = [("flip", f"{_LHS} <= eta*Delta_mu - eta**2*{C}"),
           ("drop_curvature_term", f"{_LHS} >= eta*Delta_mu"),
           ("double_linear_term", f"{_LHS} >= 2*eta*Delta_mu - eta**2*{C}"),
           ("C_half_of_sharp", _one_step("G_o**2/16"))]
    if sharp:
        out.append(("exponent_eta**3", f"{_LHS} >= eta*Delta_mu - eta**3*{C}"))
    return out


_PAPER: Final[str] = "(L_o + 8*G_o**2)"
_DERIVED: Final[str] = "(L_o + G_o**2/2)"
_LOGLIN: Final[str] = "G_o**2/8"


def _family_id(family: str) -> str:
    return family.replace("_", "-")


def _sharpest_structures() -> list[tuple[str, Callable[[np.ndarray], Instance], int, float, float]]:
    """(label, theta -> instance, n, G_o**2/8, value known to be approached or -1)."""
    ident = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    return [
        ("softmax K=3 C={0}", lambda x: SoftmaxBandit(tuple(x), frozenset({0})), 3, 0.25, 0.25),
        ("softmax K=4 C={0,1}", lambda x: SoftmaxBandit(tuple(x), frozenset({0, 1})), 4, 0.25, 0.25),
        ("softmax K=3 C={0,1}", lambda x: SoftmaxBandit(tuple(x), frozenset({0, 1})), 3, 0.25, 0.0),
        ("tokens T=2 V=2 exact", lambda x: TokenSequence((tuple(x[:2]), tuple(x[2:])), (0, 0)), 4, 0.5, 0.5),
        ("tokens T=2 V=2 m=1", lambda x: TokenSequence((tuple(x[:2]), tuple(x[2:])), (0, 0), 1), 4, 0.5, 0.0),
        ("tokens T=3 V=2 exact", lambda x: TokenSequence((tuple(x[:2]), tuple(x[2:4]), tuple(x[4:])), (0, 0, 0)),
         6, 0.75, 0.5),
        ("shared T=1 one-hot V=3 C={0}", lambda x: SharedTokens(tuple(x), ident, frozenset({0}), T=1), 3, 0.25,
         0.25),
        ("shared T=2 phi=(0,1,2) C={1}", lambda x: SharedTokens(tuple(x), ((0.0,), (1.0,), (2.0,)), frozenset({1}),
                                                                T=2), 1, 2.0, -1.0),
    ]


#: bound on the parameters of the local polish of a sharpest-constant search, and its evaluation budget
_POLISH_BOUND: Final[float] = 60.0
_POLISH_EVALUATIONS: Final[int] = 2000


def _half_lambda_max(make: Callable[[np.ndarray], Instance], theta: np.ndarray) -> float:
    r""":math:`\tfrac12\lambda_{\max}(-\nabla^2\ell)` at ``make(theta)``, from the covariance form of the Hessian."""
    H = na.log_odds_hessian(na.finite_policy(make(theta)))
    return 0.5 * float(np.linalg.eigvalsh(-H)[-1])


def _polish(make: Callable[[np.ndarray], Instance], value: float, x: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Bounded Nelder-Mead from the random search's best point on :math:`\tfrac12\lambda_{\max}(-\nabla^2\ell)`
    (parameters within :math:`\pm60`): suprema approached only as some logits diverge (a position becoming
    deterministic) are then reached to ~1e-15 instead of ~1e-3, so the approach ratio measures the claim, not
    the random walk. Returns the better of the two points."""
    from scipy.optimize import minimize

    def negative(theta: np.ndarray) -> float:
        return -_half_lambda_max(make, np.clip(theta, -_POLISH_BOUND, _POLISH_BOUND))

    bounds = [(-_POLISH_BOUND, _POLISH_BOUND)] * len(x)
    res = minimize(negative, np.clip(x, -_POLISH_BOUND, _POLISH_BOUND), method="Nelder-Mead", bounds=bounds,
                   options={"maxfev": _POLISH_EVALUATIONS, "xatol": 1e-10, "fatol": 1e-14, "adaptive": True})
    if -float(res.fun) > value:
        return -float(res.fun), np.clip(np.asarray(res.x, dtype=float), -_POLISH_BOUND, _POLISH_BOUND)
    return value, x


def _approach_failure(value: float, known: float, bound: float) -> str | None:
    r"""Why the value found misses the value stated as approached (``None`` when it does not): the supremum
    :math:`C^\star_{\rm known}` must be reached to ``SHARP_RATIO`` (:math:`C^\star_{\rm found}/C^\star_{\rm known}
    \ge0.999`; a known 0 within :math:`(1-0.999)\,G_o^2/8`) and never exceeded beyond rounding (then the stated
    value is not the supremum). ``known < 0``: no value is stated.

    >>> _approach_failure(0.2499, 0.25, 0.25) is None, _approach_failure(0.125, 0.25, 0.25)
    (True, 'approach ratio 0.5 < 0.999 of the stated supremum 0.25')
    """
    if known < 0:
        return None
    if value > known * (1 + EXACT[0]) + EXACT[1]:
        return f"found {value:.6g} above the stated supremum {known:.6g}"
    if known > 0 and value < SHARP_RATIO * known:
        return f"approach ratio {value / known:.6g} < {SHARP_RATIO} of the stated supremum {known:.6g}"
    if known == 0 and value < -(1 - SHARP_RATIO) * bound:
        return f"found {value:.6g}, not within {(1 - SHARP_RATIO) * bound:.3g} of the stated supremum 0"
    return None


def _sharpest_check(bound_factor: float, structures: Sequence[tuple[str, Callable[[np.ndarray], Instance], int,
                                                                   float, float]] | None = None
                    ) -> Callable[[Profile], Evidence]:
    r"""Search :math:`\tfrac12\sup\lambda_{\max}(-\nabla^2\ell)` per structure; FAILS if it exceeds
    ``bound_factor * G_o**2/8``, or if it misses the value stated as approached (:func:`_approach_failure`: the
    sharpness the claim states); cross-checks the exact Hessian :math:`\mathrm{Cov}_+-\mathrm{Cov}_-` against the
    family's own numeric Hessian (autograd) at the maximiser. ``structures`` defaults to
    :func:`_sharpest_structures`."""

    def run(profile: Profile) -> Evidence:
        figures: dict[str, Any] = {}
        restarts = 20 if profile.name == "quick" else 40
        iters = 300 if profile.name != "thorough" else 2000
        for label, make, n, bound, known in (structures or _sharpest_structures()):
            found, at = na.sharpest_constant_search(make, n, restarts=restarts, iters=iters, seed=0)
            recomputed = _half_lambda_max(make, np.asarray(at, dtype=float))
            if abs(found - recomputed) > EXACT[1] + EXACT[0] * abs(recomputed):
                return Evidence.error(f"{label}: the search reports {found:.6g} at its best point, where "
                                      f"(1/2) lambda_max(-Hess ell) is {recomputed:.6g}", figures)
            value, x = _polish(make, found, np.asarray(at, dtype=float))
            inst = make(x)
            H_num = np.asarray(families.numerics_module(inst).hessian_log_odds(inst, method="autograd"))
            H_cov = na.log_odds_hessian(na.finite_policy(inst))
            hess_err = float(np.max(np.abs(H_num - H_cov)))
            figures[label] = {"C_star_found": round(value, 6), "G_o^2/8": bound, "approached": known,
                              "approach_ratio": round(value / known, 6) if known > 0 else None,
                              "hessian_route_error": hess_err}
            if hess_err > HESSIAN_ROUTES:
                return Evidence.error(f"{label}: Cov formula and autograd Hessian differ by {hess_err:.2e}", figures)
            if value > bound_factor * bound * (1 + EXACT[0]):
                return Evidence.fails(Strength.TESTED, {"structure": label, "theta": [float(t) for t in x],
                                                        "C_star_found": value, "bound": bound_factor * bound},
                                      figures, detail="the sharpest constant exceeds the bound")
            missed = _approach_failure(value, known, bound)
            if missed is not None:
                return Evidence.fails(Strength.TESTED, {"structure": label, "theta": [float(t) for t in x],
                                                        "C_star_found": value, "approached": known}, figures,
                                      detail=f"{label}: {missed}")
        return Evidence.holds(Strength.TESTED, figures,
                              detail="random-restart search of (1/2) sup lambda_max(-Hess ell) per structure; "
                                     f"every stated supremum approached to {SHARP_RATIO}")

    return run


def claims() -> list[Claim]:
    """The built-in claims of this module."""
    out: list[Claim] = []
    src_paper = "reconstruction §4.1 (constant QUOTED-2nd; lemma DERIVED)"
    for fam in _FAMILIES:
        fid = _family_id(fam)
        rel = Relation(claim=_one_step(_PAPER), family=fam, direction="random")
        out.append(relation_with_pins(
            f"one-step-paper-{fid}", rel, title=f"one-step inequality, paper's constant ({fam})",
            statement=(r"$\ell(\theta+\eta w)-\ell(\theta)\ge\eta\langle w,g\rangle-\eta^2(L_o+8G_o^2)$ for unit "
                       r"$w$, $\eta\in[0,10]$"),
            source=src_paper, mutant_texts=_mutants_for(_PAPER, sharp=False)))
        rel = Relation(claim=_one_step(_DERIVED), family=fam, direction="random")
        out.append(relation_with_pins(
            f"one-step-derived-{fid}", rel, title=f"one-step inequality, C = L_o + G_o^2/2 ({fam})",
            statement=(r"$\ell(\theta+\eta w)-\ell(\theta)\ge\eta\langle w,g\rangle-\eta^2(L_o+G_o^2/2)$ for unit "
                       r"$w$, $\eta\in[0,10]$"),
            source="reconstruction §4.1 (DERIVED)", mutant_texts=_mutants_for(_DERIVED, sharp=False)))
        rel = Relation(claim=_one_step(_LOGLIN), family=fam, direction="random")
        out.append(relation_with_pins(
            f"one-step-loglinear-{fid}", rel, title=f"one-step inequality, C = G_o^2/8 ({fam})",
            statement=(r"$\ell(\theta+\eta w)-\ell(\theta)\ge\eta\langle w,g\rangle-\eta^2G_o^2/8$ for unit $w$, "
                       r"$\eta\ge0$ (log-linear policies; sharp for softmax with $|\bar C|\ge2$ and exact-match "
                       r"tokens with $T\le2$)"),
            source="DERIVED here (log-linear Hessian + Popoviciu), reconstruction §4.1",
            mutant_texts=_mutants_for(_LOGLIN, sharp=True)))
        rel = Relation(claim=_one_step("G_o**2/16"), family=fam, direction="random")
        out.append(relation_with_pins(
            f"one-step-half-sharp-{fid}", rel, title=f"one-step inequality with half the sharp constant ({fam})",
            statement=(r"Claimed (and refuted): $\ell(\theta+\eta w)-\ell(\theta)\ge\eta\langle w,g\rangle-"
                       r"\eta^2G_o^2/16$"),
            source="DERIVED here", expect="fails"))
    out.append(Claim(
        id="sharpest-constant-values",
        title="sharpest one-step constant per structure",
        family="all",
        statement=(r"$C^\star=\tfrac12\sup_\theta\lambda_{\max}(-\nabla^2\ell(\theta))\le G_o^2/8$; the search "
                   r"approaches the bound for softmax with $\ge2$ wrong arms and exact-match tokens with $T=2$."),
        source="DERIVED here; reconstruction §4.1 (second-order form)",
        checks=(named_check("search", _sharpest_check(1.0)),),
        mutants=lambda: [mutant_claim("sharpest-constant-values", "bound_G_o**2/16",
                                      named_check("search", _sharpest_check(0.5)))],
    ))
    return out
