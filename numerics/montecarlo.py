r"""Monte-Carlo estimates: a mean with its standard error, and the Welch-type Gradient Gap estimator.

The Gradient Gap is estimated from sampled responses as the mean score of the successes minus the mean
score of the failures,

.. math:: \hat g = \bar s_+ - \bar s_-,\qquad
          \widehat{\mathrm{se}}_i = \sqrt{\frac{\hat\sigma^2_{+,i}}{n_+} + \frac{\hat\sigma^2_{-,i}}{n_-}}
          \quad\text{(Welch, per coordinate)}.

Moments are accumulated batch by batch (Chan's pairwise update), so an estimate never needs all scores
in memory at once. A tolerance is never a literal: it is :math:`z_{1-\alpha/2}\,\widehat{\mathrm{se}}`
(:func:`confidence_interval`).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gradgap.theory.instances import GradgapValueError

__all__ = ["Estimate", "Moments", "confidence_interval", "difference_estimate", "mean_estimate", "z_critical"]


@final
@dataclass(frozen=True)
class Estimate:
    r"""A Monte-Carlo estimate: ``mean`` :math:`\pm` ``stderr`` from ``n`` sampled responses.

    ``mean`` and ``stderr`` are floats or arrays of the same shape (one standard error per coordinate).

    >>> Estimate(mean=0.5, stderr=0.1, n=100).n
    100
    """

    mean: float | NDArray[np.float64]
    stderr: float | NDArray[np.float64]
    n: int


@dataclass
class Moments:
    r"""Running count, mean and sum of squared deviations of vectors (Chan et al.'s batch update).

    .. math:: M_2 \leftarrow M_2^a + M_2^b + \delta^2\,\frac{n_a n_b}{n_a+n_b},\quad \delta=\bar x_b-\bar x_a.

    >>> m = Moments.empty(1); m.add(np.array([[1.0], [3.0]])); (m.count, float(m.mean[0]), float(m.variance[0]))
    (2, 2.0, 2.0)
    """

    count: int
    mean: NDArray[np.float64]
    m2: NDArray[np.float64]

    @classmethod
    def empty(cls, dim: int) -> Moments:
        return cls(0, np.zeros(dim), np.zeros(dim))

    def add(self, batch: NDArray[np.float64]) -> None:
        """Fold a batch of rows ``(k, dim)`` into the moments."""
        k = batch.shape[0]
        if k == 0:
            return
        b_mean = batch.mean(axis=0)
        b_m2 = ((batch - b_mean) ** 2).sum(axis=0)
        n = self.count + k
        delta = b_mean - self.mean
        self.mean = self.mean + delta * (k / n)
        self.m2 = self.m2 + b_m2 + delta**2 * (self.count * k / n)
        self.count = n

    @property
    def variance(self) -> NDArray[np.float64]:
        """Unbiased sample variance per coordinate (``nan`` below 2 samples)."""
        return self.m2 / (self.count - 1) if self.count > 1 else np.full_like(self.mean, np.nan)


def mean_estimate(moments: Moments, n: int | None = None) -> Estimate:
    r"""Sample mean with standard error :math:`\hat\sigma/\sqrt{k}` per coordinate.

    >>> m = Moments.empty(1); m.add(np.array([[0.0], [2.0]])); mean_estimate(m).stderr
    array([1.])
    """
    if moments.count < 2:
        raise GradgapValueError(f"n={moments.count}: a mean estimate needs at least 2 samples; increase n",
                                field="n", value=moments.count)
    return Estimate(mean=moments.mean.copy(), stderr=np.sqrt(moments.variance / moments.count),
                    n=moments.count if n is None else n)


def difference_estimate(success: Moments, failure: Moments, n: int) -> Estimate:
    r"""Welch-type difference of means :math:`\bar x_+ - \bar x_-` with per-coordinate standard error.

    .. math:: \widehat{\mathrm{se}} = \sqrt{\hat\sigma_+^2/n_+ + \hat\sigma_-^2/n_-}.

    Source: reconstruction §2.1 (:math:`g = \mathbb E_+[s]-\mathbb E_-[s]`), DERIVED.

    >>> a = Moments.empty(1); a.add(np.array([[1.0], [1.0]]))
    >>> b = Moments.empty(1); b.add(np.array([[0.0], [0.0]]))
    >>> difference_estimate(a, b, n=4).mean
    array([1.])
    """
    if success.count < 2 or failure.count < 2:
        raise GradgapValueError(
            f"n={n}: the sample has {success.count} successes and {failure.count} failures; "
            "the Gradient Gap estimate needs at least 2 of each (J is near 0 or 1): increase n",
            field="n", value=n)
    se = np.sqrt(success.variance / success.count + failure.variance / failure.count)
    return Estimate(mean=success.mean - failure.mean, stderr=se, n=n)


def z_critical(alpha: float, m: int = 1) -> float:
    r"""Two-sided normal quantile :math:`z_{1-\alpha/(2m)}` (Bonferroni over ``m`` coordinates).

    >>> round(z_critical(0.05), 4)
    1.96
    """
    if not 0.0 < alpha < 1.0:
        raise GradgapValueError(f"alpha={alpha!r}: must lie in (0, 1)", field="alpha", value=alpha)
    return NormalDist().inv_cdf(1.0 - alpha / (2 * m))


def confidence_interval(est: Estimate, alpha: float, *, bonferroni: bool = True
                        ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Normal confidence interval :math:`\hat\mu \pm z\,\widehat{\mathrm{se}}`, simultaneous over the
    coordinates when ``bonferroni`` (level :math:`\alpha/m` each).

    >>> lo, hi = confidence_interval(Estimate(0.0, 1.0, 10), 0.05); round(float(hi), 2)
    1.96
    """
    mean: ArrayLike = np.asarray(est.mean, dtype=np.float64)
    se = np.asarray(est.stderr, dtype=np.float64)
    z = z_critical(alpha, int(np.size(mean)) if bonferroni else 1)
    return mean - z * se, mean + z * se
