r"""Log-space helpers shared by the numeric families (numpy float64).

Every probability the families need is carried as a logarithm, so that logits up to :math:`\pm 10^3`
give finite, accurate results even when :math:`J` rounds to 0 or 1 in float64.

==========================  ==============================================================
helper                      formula
==========================  ==============================================================
:func:`logsumexp`           :math:`\log\sum_i e^{x_i}`
:func:`log1mexp`            :math:`\log(1-e^{x})`, :math:`x\le 0`
:func:`softplus`            :math:`\log(1+e^{x})`
:func:`log_odds_from_log_j` :math:`\ell = \log J - \log(1-J)` from :math:`\log J` alone
:func:`log_geometric_sum`   :math:`\log\sum_{k=0}^{T-1} p^k` from :math:`\log p`
==========================  ==============================================================
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "log1mexp",
    "log_geometric_sum",
    "log_odds_from_log_j",
    "logsumexp",
    "softplus",
]

#: below this, :math:`\log(1-e^x)` is computed as ``log(-expm1(x))``; above as ``log1p(-exp(x))``
_LOG_HALF = -np.log(2.0)


def logsumexp(x: ArrayLike, axis: int | None = None) -> NDArray[np.float64] | float:
    r"""Stable :math:`\log\sum_i e^{x_i}` (max-shifted); an empty sum or all :math:`-\infty` gives :math:`-\infty`.

    .. math:: \operatorname{lse}(x) = m + \log\sum_i e^{x_i - m},\quad m = \max_i x_i.

    Source: reconstruction §2.1 (softmax normalisation), DERIVED.

    >>> logsumexp([1000.0, 1000.0]) == 1000.0 + float(np.log(2.0))
    True
    """
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        return -np.inf if axis is None else np.full(np.delete(a.shape, axis), -np.inf)
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    out = np.squeeze(out, axis=axis) if axis is not None else out.reshape(())
    return float(out) if out.ndim == 0 else out


def log1mexp(x: ArrayLike) -> NDArray[np.float64] | float:
    r"""Stable :math:`\log(1-e^{x})` for :math:`x \le 0` (Mächler's two branches).

    .. math:: \log(1-e^x) = \begin{cases}\log(-\operatorname{expm1}(x)) & x > -\log 2\\
              \operatorname{log1p}(-e^x) & x \le -\log 2\end{cases}

    Source: reconstruction §2.1 (:math:`1-J` from :math:`\log J`), DERIVED.

    >>> float(log1mexp(-1e-20)) == float(np.log(1e-20))
    True
    """
    a = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(a > _LOG_HALF, np.log(-np.expm1(a)), np.log1p(-np.exp(np.minimum(a, _LOG_HALF))))
    return float(out) if out.ndim == 0 else out


def softplus(x: ArrayLike) -> NDArray[np.float64] | float:
    r"""Stable :math:`\log(1+e^{x})`; :math:`-\mathrm{softplus}(b)` is :math:`\log\sigma(-b)`.

    .. math:: \mathrm{softplus}(x) = \max(x, 0) + \operatorname{log1p}(e^{-|x|}).

    Source: reconstruction §2.1, DERIVED.

    >>> float(softplus(-800.0)) == 0.0, float(softplus(800.0))
    (True, 800.0)
    """
    a = np.asarray(x, dtype=np.float64)
    out = np.maximum(a, 0.0) + np.log1p(np.exp(-np.abs(a)))
    return float(out) if out.ndim == 0 else out


def log_odds_from_log_j(log_j: float) -> float:
    r"""The log-odds :math:`\ell = \log\frac{J}{1-J}` from :math:`\log J` alone.

    .. math:: \ell = \log J - \log(1 - e^{\log J}).

    Accurate unless :math:`\log J` itself has rounded to 0 (then use a direct :math:`\log(1-J)`).

    Source: reconstruction §2.1, form 2 (log-odds), DERIVED.

    >>> log_odds_from_log_j(float(np.log(0.5)))
    0.0
    """
    return float(log_j - log1mexp(log_j))


def log_geometric_sum(log_p: float, T: int) -> float:
    r""":math:`\log\sum_{k=0}^{T-1} p^k = \log\frac{1-p^T}{1-p}` from :math:`\log p \le 0`, stable as :math:`p\to 1`.

    For :math:`|T\log p| < 10^{-8}` the first-order form :math:`\log T + \frac{T-1}{2}\log p` is used
    (error :math:`O((T\log p)^2)`); otherwise the ratio of two :func:`log1mexp`.

    Source: reconstruction §2.1, shared-parameter family (:math:`J = p^T`), DERIVED.

    >>> round(log_geometric_sum(float(np.log(0.5)), 2), 12) == round(float(np.log(1.5)), 12)
    True
    """
    if abs(T * log_p) < 1e-8:  # also T = 1 (log 1 + 0 = 0) and p = 1
        return float(np.log(T) + 0.5 * (T - 1) * log_p)
    return float(log1mexp(T * log_p) - log1mexp(log_p))
