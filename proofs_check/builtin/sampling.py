r"""Built-in claim on the Monte-Carlo route: its standard errors are the true ones.

=================================  ======================================================================
id                                 statement / evidence
=================================  ======================================================================
``mc-standard-errors``             the ``mc`` estimates of :math:`J`, :math:`\nabla J` and :math:`g` carry the
                                   standard error of their estimator and cover the exact value
=================================  ======================================================================

Every claim that accepts a sampled value does so within a multiple of its reported standard error, so a standard
error that is too large makes those claims pass anything. Here the exact standard errors come from enumerating
the responses (:func:`gradgap.numerics.algorithms.finite_policy`: probabilities, scores, rewards), not from the
sampler:

.. math::  \mathrm{se}(\hat J)=\sqrt{J(1-J)/n},\qquad
           \mathrm{se}(\widehat{\nabla J})_i=\sqrt{(\mathbb E[r\,s_i^2]-(\partial_iJ)^2)/n},\qquad
           \mathrm{se}(\hat g)_i\approx\sqrt{\frac{\mathrm{Var}_+(s_i)}{nJ}+\frac{\mathrm{Var}_-(s_i)}{n(1-J)}}

(the last with the expected numbers of successes and failures). Each reported standard error must be within
:data:`~gradgap.proofs_check.tolerances.MC_STDERR_RTOL` of the exact one, and each estimate within
:math:`z_{1-\alpha/2m}` exact standard errors of the exact value (:data:`~gradgap.proofs_check.tolerances.MC_ALPHA`,
Bonferroni over the :math:`m` coordinates). The numerics' own simultaneous interval
(:func:`gradgap.numerics.montecarlo.confidence_interval`) must be the estimate :math:`\mp z_{1-\alpha/2m}` times
its reported standard error. Sampled, so TESTED.

Source: reconstruction §2.1 (the quantities); the Welch form of the Gradient Gap's error (DERIVED).
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any, Final

import numpy as np

from gradgap.numerics import algorithms as na
from gradgap.numerics import montecarlo as mc
from gradgap.proofs_check import families
from gradgap.proofs_check.claims import Claim, Evidence, Profile, Status, Strength, mutant_claim, named_check
from gradgap.proofs_check.tolerances import MC_ALPHA, MC_STDERR_RTOL
from gradgap.theory.instances import Instance, SharedTokens, SoftmaxBandit, TokenSequence

__all__ = ["INSTANCES", "SAMPLES", "claims"]

#: responses drawn per estimate
SAMPLES: Final[int] = 4000
#: one instance per family, J away from 0 and 1 (so every coordinate's error is resolved at n = SAMPLES)
INSTANCES: Final[tuple[Instance, ...]] = (
    SoftmaxBandit((0.3, -0.2, 0.9), frozenset({0})),
    TokenSequence(((0.2, -0.1), (0.4, 0.0)), (0, 1)),
    SharedTokens((0.2, -0.3), ((0.0, 1.0), (1.0, 0.0), (1.0, 1.0)), frozenset({0}), T=2),
)


def exact_errors(inst: Instance, n: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per quantity: (exact value, exact standard error of its ``mc`` estimate from ``n`` responses)."""
    pol = na.finite_policy(inst)
    p, S, r = pol.probs, pol.scores, pol.rewards.astype(float)
    J = float(p @ r)
    grad = (p * r) @ S
    e2 = (p * r) @ (S * S)
    plus = (p * r) @ S / J
    minus = (p * (1 - r)) @ S / (1 - J)
    var_plus = (p * r) @ (S * S) / J - plus**2
    var_minus = (p * (1 - r)) @ (S * S) / (1 - J) - minus**2
    return {
        "success_rate": (np.array([J]), np.array([np.sqrt(J * (1 - J) / n)])),
        "grad_success_rate": (grad, np.sqrt(np.maximum(e2 - grad**2, 0.0) / n)),
        "gradient_gap": (plus - minus, np.sqrt(np.maximum(var_plus, 0) / (n * J)
                                               + np.maximum(var_minus, 0) / (n * (1 - J)))),
    }


def _check(scale: float) -> Any:
    """The check, with the exact standard errors multiplied by ``scale`` (1: the claim; else a mutant)."""

    def run(profile: Profile) -> Evidence:
        ratios: list[float] = []
        for inst in INSTANCES:
            mod = families.numerics_module(inst)
            for name, (value, se) in exact_errors(inst, SAMPLES).items():
                resolved = se > 1e-9
                z = NormalDist().inv_cdf(1 - MC_ALPHA / (2 * max(1, int(resolved.sum()))))
                for seed in profile.seeds:
                    est = getattr(mod, name)(inst, method="mc", n=SAMPLES, seed=seed)
                    mean = np.asarray(est.mean, dtype=float).reshape(-1)
                    got = np.asarray(est.stderr, dtype=float).reshape(-1)
                    ratio = got[resolved] / (scale * se[resolved])
                    ratios.extend(ratio.tolist())
                    where = {"instance": repr(inst), "quantity": name, "seed": seed}
                    # written so that a NaN (a negative variance, say) fails: comparisons with NaN are False
                    if not (np.all(np.isfinite(got)) and np.all(np.abs(ratio - 1) <= MC_STDERR_RTOL)):
                        return Evidence.fails(Strength.TESTED, {**where, "stderr": got.tolist(),
                                                                "exact_stderr": (scale * se).tolist()},
                                              detail=f"{name}: reported standard error off the exact one "
                                                     f"(ratio {ratio[np.argmax(np.abs(ratio - 1))]:.3g})")
                    # the numerics' simultaneous interval must be mean -/+ z_{1-alpha/2m} reported se (m: all
                    # coordinates), z from the normal quantile here
                    lo, hi = mc.confidence_interval(est, MC_ALPHA)
                    z_all = NormalDist().inv_cdf(1 - MC_ALPHA / (2 * mean.size))
                    half, slack = z_all * got, 1e-12 * (np.abs(mean) + z_all * got)  # slack: rounding of mean +- half
                    if not (np.all(np.abs(np.reshape(hi, -1) - mean - half) <= slack)
                            and np.all(np.abs(mean - np.reshape(lo, -1) - half) <= slack)):
                        return Evidence.fails(Strength.TESTED, {**where, "interval": [np.reshape(lo, -1).tolist(),
                                                                                      np.reshape(hi, -1).tolist()],
                                                                "estimate": mean.tolist(), "half_width": half.tolist()},
                                              detail=f"{name}: confidence_interval is not the estimate -/+ "
                                                     f"{z_all:.3f} standard errors")
                    if not (np.all(np.isfinite(mean))
                            and np.all(np.abs(mean - value)[resolved] <= z * scale * se[resolved])):
                        return Evidence.fails(Strength.TESTED, {**where, "estimate": mean.tolist(),
                                                                "exact": value.tolist(), "z": z},
                                              detail=f"{name}: the estimate misses the exact value by more than "
                                                     f"{z:.2f} standard errors")
        return Evidence.checked(Status.HOLDS, len(INSTANCES), "fixed instances",
                                {"estimates": len(ratios), "samples": SAMPLES, "seeds": list(profile.seeds),
                                 "stderr_ratio_range": [round(min(ratios), 4), round(max(ratios), 4)]},
                                detail=f"reported/exact standard error in [{min(ratios):.3f}, {max(ratios):.3f}]")

    return run


def claims() -> list[Claim]:
    """The built-in claims of this module."""
    return [Claim(
        id="mc-standard-errors",
        title="Monte-Carlo estimates carry their exact standard errors",
        family="all",
        statement=(r"For $n$ sampled responses the \texttt{mc} estimates of $J$, $\nabla J$ and $g$ report the "
                   r"standard error of their estimator (within 15\,\%) and lie within $z_{1-\alpha/2m}$ of it."),
        source="reconstruction §2.1 (quantities); Welch standard error DERIVED",
        checks=(named_check("exact-standard-errors", _check(1.0)),),
        mutants=lambda: [mutant_claim("mc-standard-errors", "stderr_x2",
                                      named_check("exact-standard-errors", _check(2.0)))],
    )]
