r"""Why aligned fixed steps cannot collapse J to 0 in log-linear contextual bandits (docs/no_collapse.md).

=====================================  =====================================================================
id                                     statement / evidence
=====================================  =====================================================================
``aligned-potential-inequality``       :math:`\langle\theta,g\rangle\le B(\theta)=\sum_x\omega_x(\ell_x+\log|W_x|)`
                                       (Hypothesis search, targeted at the margin, 50-digit re-check with the
                                       theory: TESTED), attained for P = 1 with one correct action at tied
                                       wrong logits (50 digits)
``aligned-no-collapse``                along :math:`\theta_{k+1}=\theta_k+\eta g(\theta_k)`:
                                       :math:`\|\theta_K\|^2\le\|\theta_0\|^2+\sum_{k<K}(2\eta B_k+\eta^2G_o^2)`
                                       at every K, so :math:`J_k\not\to0` (SIMULATED on fixed-step runs)
=====================================  =====================================================================

The argument: :math:`\|\theta_{k+1}\|^2-\|\theta_k\|^2=2\eta\langle\theta_k,g_k\rangle+\eta^2\|g_k\|^2\le
2\eta B_k+\eta^2G_o^2` (the inequality and :math:`\|g\|\le\sum_x\omega_x\|g_x\|\le G_o`). If :math:`J_k\to0`
then every :math:`\ell_{x,k}\to-\infty` and :math:`\sum_x\omega_{x,k}\ge1-J_k/\min_x\rho_x\to1`, so
:math:`B_k\to-\infty` and the squared norm would eventually fall below 0. For one prompt the run average of the
log-odds is bounded below: :math:`\frac1K\sum_{k<K}\ell_k\ge-\log|W|-\eta G_o^2/2-\|\theta_0\|^2/(2\eta K)`.
Large steps do drive J very low (features (0, 1, 2), C = {1}: :math:`\theta\mapsto\theta-\eta\tanh\theta`, a
2-cycle at :math:`J\approx e^{-\eta/2}`), but they cannot drive it to 0: a witness of the paper's collapse
(:math:`J_k\downarrow0`, reconstruction §4.2) needs a family outside this class (unbounded features, or
parameters that are not a linear map to logits). Each claim has a mutant that must fail: the constant
:math:`0.9\log|W_x|` (refuted at the attaining point) and the chain without :math:`\eta^2G_o^2`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import mpmath
import numpy as np
import sympy as sp
from hypothesis import example, given, target

from gradgap.numerics import contextual as nc
from gradgap.proofs_check.claims import Claim, Evidence, Profile, Status, Strength, mutant_claim, named_check
from gradgap.proofs_check.families import instance_strategy
from gradgap.proofs_check.search import hypothesis_settings, instance_dict
from gradgap.theory import contextual as tc
from gradgap.theory.instances import ContextualBandit

__all__ = ["ATTAINING", "claims"]

_SOURCE: Final[str] = ("reconstruction §4.2 (collapse above the threshold, QUOTED-2nd; construction UNKNOWN): "
                       "an impossibility for log-linear contextual bandits, DERIVED here")
_SIZES: Final[dict[str, tuple[int, int]]] = {"P": (1, 3), "A": (2, 4), "d": (1, 3)}
#: P = 1, one correct action, the wrong logits tied at theta = 0: the potential inequality is an equality
ATTAINING: Final[tuple[ContextualBandit, ...]] = (
    ContextualBandit((0.0,), (((1.0,), (0.0,)),), (frozenset({0}),)),
    ContextualBandit((0.0, 0.0), (((1.0, 0.0), (0.0, 1.0), (1.0, 1.0)),), (frozenset({0}),)),
    ContextualBandit((0.0, 0.0), (((1.0, 0.0), (0.0, 1.0), (0.0, 0.0), (1.0, 1.0)),), (frozenset({2}),)),
)
#: relative floor of the 50-digit re-check (an exact equality evaluates to about 1e-50 times the terms)
_FLOOR: Final[float] = 1e-40
#: fixed-step runs of the trajectory check: steps and step sizes (large, where J falls far)
_STEPS: Final[int] = 60
_ETAS: Final[tuple[float, ...]] = (1.0, 3.0, 10.0, 30.0, 100.0)


def _numeric_parts(inst: ContextualBandit) -> tuple[float, float, float, np.ndarray] | None:
    r"""(:math:`\langle\theta,g\rangle`, :math:`\sum_x\omega_x\ell_x`, :math:`\sum_x\omega_x\log|W_x|`, g) from the
    numerics (per-prompt log-odds and weights from log-sum-exps, the structured joint Gradient Gap); ``None``
    where a per-prompt log-odds or weight is not finite in float64 (J or 1 - J not resolved)."""
    omega = nc.prompt_gap_weights(inst)
    ell = nc.per_prompt_log_odds(inst)
    if not (np.all(np.isfinite(omega)) and np.all(np.isfinite(ell))):
        return None
    log_W = np.log([inst.A - len(c) for c in inst.correct])
    g = np.asarray(nc.gradient_gap(inst), dtype=float)
    return float(np.dot(inst.theta, g)), float(omega @ ell), float(omega @ log_W), g


def _theory_margin(inst: ContextualBandit, w_scale: float) -> mpmath.mpf:
    r""":math:`B-\langle\theta,g\rangle` from the theory's closed forms at 50 digits, with the constant
    :math:`\log|W_x|` scaled by ``w_scale`` (1 in the claim)."""
    bound = tc.potential_bound(inst)
    if w_scale != 1.0:
        shift = sp.Add(*(omega * sp.log(inst.A - len(c))
                         for omega, c in zip(tc.potential_weights(inst), inst.correct, strict=True)))
        bound = bound - (1 - sp.nsimplify(w_scale)) * shift
    theta = sp.Matrix([sp.Rational(x) for x in inst.theta])  # exact binary values (a Float product would round)
    dot = (theta.T * tc.gradient_gap(inst))[0]
    with mpmath.workdps(50):
        return mpmath.mpf(str(sp.N(bound - dot, 50)))


def _potential_search(w_scale: float) -> Callable[[Profile], Evidence]:
    """Hypothesis search of the potential inequality (constant ``w_scale * log|W_x|``), targeted at the numeric
    margin; a float candidate is re-checked with the theory at 50 digits before it is reported."""

    def run(profile: Profile) -> Evidence:
        seen: set[ContextualBandit] = set()
        bad: list[dict[str, Any]] = []
        worst = [np.inf]

        def body(inst: ContextualBandit) -> None:
            parts = _numeric_parts(inst)
            if parts is None:
                return
            seen.add(inst)
            dot, ell, log_w, _ = parts
            margin = ell + w_scale * log_w - dot
            scale = 1.0 + abs(ell) + abs(dot)
            target(-margin / scale, label="violation")
            worst[0] = min(worst[0], margin / scale)
            if not margin >= 1e-9 * scale:  # a candidate (a NaN margin too): re-checked at 50 digits
                exact = _theory_margin(inst, w_scale)
                if exact < -_FLOOR * scale:  # below the 50-digit evaluation's floor: a true violation
                    bad.append({"instance": instance_dict(inst), "margin_50_digits": mpmath.nstr(exact, 20)})
                    raise AssertionError("refuted")

        test = given(instance_strategy("contextual", _SIZES, profile.size_cap))(body)
        for inst in ATTAINING:  # the equality cases, and a near-deterministic point
            test = example(inst)(test)
        test = example(ContextualBandit((9.0, -7.0), (((1.0, 0.0), (0.0, 1.0), (1.0, 1.0)),
                                                      ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0))),
                                        (frozenset({0}), frozenset({1, 2}))))(test)
        try:
            hypothesis_settings(profile)(test)()
        except (AssertionError, ExceptionGroup):
            if not bad:
                raise
        figures = {"smallest_relative_margin": float(worst[0]), "sizes": dict(_SIZES)}
        if bad:
            return Evidence.fails(Strength.TESTED, bad[0], figures, detail="violated at 50 digits")
        return Evidence.sampled(len(seen), profile, figures, what="distinct instances",
                                detail=f"<theta, g> <= B on {len(seen)} distinct instances")

    return run


def _attained(profile: Profile) -> Evidence:
    """The bound is sharp: B - <theta, g> = 0 at 50 digits on the attaining configurations."""
    margins = [_theory_margin(inst, 1.0) for inst in ATTAINING]
    figures = {"attaining": len(ATTAINING), "largest_abs_margin": float(max(abs(m) for m in margins))}
    if any(abs(m) > _FLOOR for m in margins):
        i = next(i for i, m in enumerate(margins) if abs(m) > _FLOOR)
        return Evidence.fails(Strength.CHECKED, {"instance": instance_dict(ATTAINING[i]),
                                                 "margin_50_digits": mpmath.nstr(margins[i], 20)}, figures,
                              detail="not attained: the bound is not sharp where the derivation says it is")
    return Evidence.checked(Status.HOLDS, len(ATTAINING), "attaining configurations (50 digits)", figures,
                            detail="equality at P = 1, |C| = 1, tied wrong logits")


def _run_instances(profile: Profile) -> list[ContextualBandit]:
    """The 1-D worked example (features 0, 1, 2; C = {1}) and random two-feature instances."""
    rng = np.random.default_rng(20261203)
    out = [ContextualBandit((0.3,), (((0.0,), (1.0,), (2.0,)),), (frozenset({1}),))]
    while len(out) < (12 if profile.name == "quick" else 30 if profile.name == "ci" else 120):
        P, A = int(rng.integers(1, 4)), int(rng.integers(2, 5))
        feats = tuple(tuple(tuple(float(v) for v in rng.integers(-3, 4, 2)) for _ in range(A)) for _ in range(P))
        if any(len(set(rows)) == 1 for rows in feats):
            continue
        correct = tuple(frozenset({int(rng.integers(0, A))}) for _ in range(P))
        out.append(ContextualBandit(tuple(float(v) for v in rng.uniform(-1, 1, 2)), feats, correct))
    return out


def _trajectories(with_square: bool) -> Callable[[Profile], Evidence]:
    r"""Fixed-step runs :math:`\theta_{k+1}=\theta_k+\eta g(\theta_k)` (numerics): at every K the chain
    :math:`\|\theta_K\|^2\le\|\theta_0\|^2+\sum_{k<K}(2\eta B_k+c\,\eta^2G_o^2)` with c = 1 (the claim) or 0 (the
    mutant); :math:`G_o` from the theory's constants, :math:`B_k` from the numerics."""

    def run(profile: Profile) -> Evidence:
        runs, lowest, tightest = 0, 0.0, np.inf
        for inst in _run_instances(profile):
            G_o = float(sp.N(tc.constants(inst).G_o.value, 30))
            for eta in _ETAS:
                theta = np.asarray(inst.theta, dtype=float)
                budget = float(theta @ theta)
                for k in range(_STEPS):
                    cur = inst.with_theta(tuple(float(x) for x in theta))
                    parts = _numeric_parts(cur)
                    if parts is None:
                        break
                    _, ell, log_w, g = parts
                    lowest = min(lowest, float(np.log(nc.success_rate(cur))))
                    budget += 2 * eta * (ell + log_w) + (eta * G_o) ** 2 * with_square
                    theta = theta + eta * g
                    slack = budget - float(theta @ theta)
                    tightest = min(tightest, slack / (1.0 + budget))
                    if not slack >= -1e-9 * (1.0 + abs(budget)):  # NaN fails
                        return Evidence.fails(Strength.SIMULATED,
                                              {"instance": instance_dict(inst), "eta": eta, "step": k + 1,
                                               "norm_sq": float(theta @ theta), "budget": budget},
                                              {"runs": runs}, detail="the norm exceeds the chain's budget")
                runs += 1
        return Evidence.holds(Strength.SIMULATED,
                              {"runs": runs, "steps": _STEPS, "etas": list(_ETAS), "lowest_log_J": lowest,
                               "tightest_relative_slack": float(tightest)},
                              detail=f"the chain holds on {runs} runs (lowest log J reached {lowest:.1f})")

    return run


def claims() -> list[Claim]:
    """The no-collapse claims."""
    return [
        Claim(
            id="aligned-potential-inequality",
            title="Aligned steps: <theta, g> <= sum_x omega_x (l_x + log|W_x|), attained",
            family="contextual",
            statement=(r"\langle\theta,g\rangle\le\sum_x\omega_x\,(\ell_x+\log|W_x|),\quad"
                       r"\omega_x=\rho_xJ_x(1-J_x)/(J(1-J))"),
            source=_SOURCE,
            checks=(named_check("search", _potential_search(1.0)), named_check("attained", _attained)),
            mutants=lambda: [mutant_claim("aligned-potential-inequality", "log_W_x0.9",
                                          named_check("search", _potential_search(0.9)), family="contextual")],
        ),
        Claim(
            id="aligned-no-collapse",
            title="Aligned fixed steps cannot drive J to 0 (norm budget along the run)",
            family="contextual",
            statement=(r"\theta_{k+1}=\theta_k+\eta g(\theta_k):\ \|\theta_K\|^2\le\|\theta_0\|^2+\sum_{k<K}"
                       r"(2\eta B_k+\eta^2G_o^2)\ \forall K\ \Rightarrow\ J_k\not\to0"),
            source=_SOURCE,
            checks=(named_check("runs", _trajectories(True)),),
            mutants=lambda: [mutant_claim("aligned-no-collapse", "without_eta2_G2",
                                          named_check("runs", _trajectories(False)), family="contextual")],
        ),
    ]
