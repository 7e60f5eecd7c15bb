r"""The Poisson-binomial law of a count of independent hits in log space (numpy float64): the numeric twin of
``gradgap.theory.poisson_binomial``.

:math:`N=\sum_t B_t`, :math:`B_t\sim\mathrm{Bernoulli}(p_t)`; every probability is carried as a logarithm
(``logaddexp`` in the recursions), so tails far below float64's smallest number stay finite.

Source: reconstruction §1 (product policy), DERIVED.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gradgap.numerics.logspace import logsumexp

__all__ = ["log_tails"]

Array = NDArray[np.float64]


def log_tails(log_p: Array, log_eps: Array, m: int) -> tuple[float, float, Array]:
    r"""Log-space Poisson-binomial DP: :math:`\log\Pr(N\ge m)`, :math:`\log\Pr(N<m)` and
    :math:`\log(p_tD_t)`, :math:`D_t=\Pr(N_{-t}=m-1)` (leave-one-out) from prefix and suffix tables (width m),
    given :math:`\log p_t` and :math:`\log(1-p_t)`.

    >>> lj, l1, _ = log_tails(np.log([0.5, 0.5]), np.log([0.5, 0.5]), 1)
    >>> round(float(np.exp(lj)), 12), round(float(np.exp(l1)), 12)
    (0.75, 0.25)
    """
    T = log_p.size
    with np.errstate(invalid="ignore"):
        F = np.full((T + 1, m + 1), -np.inf)  # counts 0..m-1 over positions < t, last column: >= m
        F[0, 0] = 0.0
        for t in range(T):
            prev, cur = F[t], F[t + 1]
            cur[0] = prev[0] + log_eps[t]
            cur[1:m] = np.logaddexp(prev[1:m] + log_eps[t], prev[: m - 1] + log_p[t])
            cur[m] = np.logaddexp(prev[m], prev[m - 1] + log_p[t])
        S = np.full((T + 1, m), -np.inf)  # counts 0..m-1 over positions >= t
        S[T, 0] = 0.0
        for t in range(T - 1, -1, -1):
            nxt, cur = S[t + 1], S[t]
            cur[0] = nxt[0] + log_eps[t]
            cur[1:] = np.logaddexp(nxt[1:] + log_eps[t], nxt[:-1] + log_p[t])
        log_d = logsumexp(F[:T, :m] + S[1:, ::-1], axis=1)
    return min(0.0, float(F[T, m])), min(0.0, float(logsumexp(F[T, :m]))), log_p + np.asarray(log_d)
