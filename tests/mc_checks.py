r"""Two-sided Monte-Carlo checks with the test's own standard error.

An estimator returns ``Estimate(mean, stderr, n)``. Testing its mean against the exact value with *its own*
``stderr`` trusts the thing under test: an estimator whose standard error is ten times too large passes every
such z-test. :func:`assert_estimator` therefore draws :math:`R` independent estimates (seeds
``seed, seed+1, ...``) and computes, per coordinate, the spread the test sees,

.. math::  s^2=\frac1{R-1}\sum_{r=1}^R(\hat m_r-\bar m)^2,

and checks two things, each at false-alarm rate :data:`MC_ALPHA` (Bonferroni over the coordinates):

* **coverage** (is the mean right?): :math:`|\bar m-m|\le t_{1-\alpha/(2k),R-1}\,s/\sqrt R` — a t-test with
  the test's standard error, not the estimator's;
* **scale** (is the reported error right?): with :math:`\bar\sigma` the mean reported ``stderr``,
  :math:`(R-1)s^2/\bar\sigma^2` lies between the :math:`\alpha/(2k)` and :math:`1-\alpha/(2k)` quantiles of
  :math:`\chi^2_{R-1}` — two-sided, so a standard error 10x too large (or too small) fails.

A coordinate whose reported error is 0 or at rounding level (a parameter no sample moves) must be exact in every
replicate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from gradgap.proofs_check.tolerances import EXACT, MC_ALPHA

#: independent estimates per check: with 39 degrees of freedom and alpha = 1e-4 the chi-square bounds put the
#: spread s within [0.55, 1.51] of the true standard error (k = 6 coordinates), so a factor 2 either way fails
REPLICATES = 40


def replicate(estimate: Callable[[int], Any], seed: int, replicates: int = REPLICATES) -> tuple[np.ndarray, np.ndarray]:
    """``replicates`` independent estimates (seeds ``seed + r``): their means and reported standard errors,
    each of shape ``(replicates, k)``."""
    means, errors = [], []
    for r in range(replicates):
        est = estimate(seed + r)
        means.append(np.atleast_1d(np.asarray(est.mean, dtype=np.float64)))
        errors.append(np.atleast_1d(np.asarray(est.stderr, dtype=np.float64)))
    return np.asarray(means), np.asarray(errors)


def coverage_and_scale(means: np.ndarray, errors: np.ndarray, exact: Any, alpha: float = MC_ALPHA) -> list[str]:
    """The failures of the coverage and scale tests (see the module docstring); empty when both pass."""
    exact = np.atleast_1d(np.asarray(exact, dtype=np.float64))
    R = means.shape[0]
    rtol, atol = EXACT
    bad: list[str] = []
    # a coordinate whose reported error is at rounding level (no sample moves it beyond the exact tolerance)
    # must be exact in every replicate: a stronger test than the chi-square one, which rounding noise defeats
    fixed = np.all(errors <= atol + rtol * np.abs(exact), axis=0)
    for i in np.nonzero(fixed)[0]:
        if not np.all(np.abs(means[:, i] - exact[i]) <= atol + rtol * abs(exact[i])):
            bad.append(f"coordinate {i}: stderr at rounding level but mean {means[:, i].tolist()} != {exact[i]}")
    live = ~fixed
    m = max(1, int(live.sum()))
    if not live.any():
        return bad
    s = means[:, live].std(axis=0, ddof=1)
    mean = means[:, live].mean(axis=0)
    sigma = errors[:, live].mean(axis=0)
    t = stats.t.ppf(1 - alpha / (2 * m), R - 1)
    off = np.abs(mean - exact[live]) > t * s / np.sqrt(R) + atol
    if off.any():
        bad.append(f"coverage: |mean - exact| = {np.abs(mean - exact[live])[off]} > t*s/sqrt(R) = "
                   f"{(t * s / np.sqrt(R))[off]} (own s = {s[off]})")
    lo, hi = stats.chi2.ppf([alpha / (2 * m), 1 - alpha / (2 * m)], R - 1)
    q = (R - 1) * s**2 / sigma**2
    wrong = (q < lo) | (q > hi)
    if wrong.any():
        bad.append(f"scale: reported stderr {sigma[wrong]} vs the spread of {R} estimates {s[wrong]} "
                   f"(ratio {(sigma / s)[wrong]}; chi2 bounds on (R-1)s^2/sigma^2: [{lo:.3g}, {hi:.3g}])")
    return bad


def assert_estimator(name: str, estimate: Callable[[int], Any], exact: Any, seed: int,
                     replicates: int = REPLICATES) -> None:
    """Coverage and scale of ``estimate(seed)`` against ``exact`` with the test's own standard error."""
    means, errors = replicate(estimate, seed, replicates)
    bad = coverage_and_scale(means, errors, exact)
    assert not bad, f"{name}: " + "; ".join(bad)
