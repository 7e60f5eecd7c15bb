r"""Tabular token-sequence policy, numeric twin (numpy / torch float64) of ``theory/tokens.py``.

==============================  ==========================  ================================================
paper                           here                        structured form
==============================  ==========================  ================================================
:math:`J`                       :func:`success_rate`        exact match: :math:`\prod_t p_t`; at least m: DP
:math:`\ell=\log\frac{J}{1-J}`  :func:`log_odds`            :math:`\log J - \log(1-J)`, both from logs
:math:`s(o)`                    :func:`score`               row t: :math:`e_{o_t} - \pi_t`
:math:`\mathbb E_\pm[s]`        :func:`conditional_score`   row t: :math:`\pm\frac{p_tD_t}{J_\pm}\,s_t(o^\star)`
:math:`g`                       :func:`gradient_gap`        row t: :math:`\frac{p_tD_t}{J(1-J)}\,s_t(o^\star)`
:math:`\nabla J`                :func:`grad_success_rate`   :math:`J(1-J)\,g`
:math:`\nabla^2\ell`            :func:`hessian_log_odds`    (enumerate, autograd, fd)
:math:`\Delta\mu`               :func:`alignment`           :math:`\langle w, g\rangle`
==============================  ==========================  ================================================

Notation: :math:`J_+=J`, :math:`J_-=1-J`,
:math:`p_t=\pi_t(o^\star_t)`, :math:`\varepsilon_t = 1-p_t`, :math:`N=\sum_t\mathbb 1[o_t=o^\star_t]`
(Poisson-binomial), success :math:`N\ge m`, :math:`D_t=\Pr(N_{-t}=m-1)` (leave-one-out). Conditioning on
success only reweights the target token at position t, which gives the row forms above
(DERIVED: :math:`\mathbb E_+[s_t] = \frac{p_t(A_t - J)}{J}\ldots` with :math:`A_t-B_t=D_t`). For exact match
:math:`p_tD_t = J`, so :math:`g = s(o^\star)/(1-J)` (reconstruction §2.1 item 4). Every factor is carried as a
logarithm; :math:`\log(1-J)` for exact match is the telescoping sum
:math:`1-\prod_t p_t = \sum_t \varepsilon_t\prod_{u<t}p_u` (no cancellation even when :math:`J` rounds to 1).

:func:`gap_arrays` is the array-level evaluator (no instance, any size): it exponentiates every logit once,
in cache-sized row blocks, and writes :math:`g` into one ``T x V`` output buffer.

Example (T=2, V=2, even logits, exact match of (0, 0)):

>>> ex = TokenSequence(logits=((0.0, 0.0), (0.0, 0.0)), target=(0, 0))
>>> success_rate(ex), rewards(ex, [(0, 0), (1, 0)]).tolist(), score(ex, (0, 1)).tolist()
(0.25, [1, 0], [0.5, -0.5, -0.5, 0.5])
>>> [round(x, 12) for x in gradient_gap(ex).tolist()], grad_success_rate(ex).tolist()
([0.666666666667, -0.666666666667, 0.666666666667, -0.666666666667], [0.125, -0.125, 0.125, -0.125])
>>> round(log_odds(ex), 12) == round(float(np.log(1 / 3)), 12), sample_responses(ex, 3, np.random.default_rng(0)).shape
(True, (3, 2))
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gradgap.numerics import _routes
from gradgap.numerics._routes import FD_STEP, Family, Structured
from gradgap.numerics.logspace import logsumexp, softplus
from gradgap.numerics.montecarlo import Estimate
from gradgap.numerics.poisson_binomial import log_tails
from gradgap.theory.instances import GradgapValueError, TokenSequence

__all__ = [*_routes.PUBLIC_NAMES, "TokenGap", "gap_arrays"]

Array = NDArray[np.float64]
#: entries per row block of the exponentiation pass (2 MiB of float64: stays in cache)
_BLOCK_ENTRIES = 1 << 18
#: a row whose off-target mass (relative to its max) falls below this is recomputed exactly
_TINY = 1e-290
#: largest log-scale applied to an exponentiated block before the direct recomputation is used
_MAX_LOG_SCALE = 600.0
#: an unshifted row block is kept when every row sum lies in [_SAFE_LOW, _SAFE_HIGH]
_SAFE_LOW, _SAFE_HIGH = float(np.exp(-50.0)), 1e300


class RowStats(NamedTuple):
    r"""Per-row log-space summaries: :math:`\operatorname{lse}(\theta_t) = \text{shift}_t + \text{log\_norm}_t`,
    :math:`\log p_t`, :math:`\log\varepsilon_t`."""

    shift: Array
    log_norm: Array
    log_p: Array
    log_eps: Array


class TokenGap(NamedTuple):
    r""":math:`\log J`, :math:`\log(1-J)` and the Gradient Gap as a ``T x V`` array."""

    log_j: float
    log_1mj: float
    gap: Array


def _block_rows(V: int) -> int:
    return max(1, _BLOCK_ENTRIES // V)


def _exp_pass(X: Array, target: NDArray[np.int64], out: Array) -> RowStats:
    r"""Write :math:`-\pi_{tv}` into ``out`` (target entries zeroed) and return the row stats.

    Each row block is exponentiated, summed and normalised while it is in cache, so the pass reads the logits
    once and writes ``out`` once. A block is first exponentiated unshifted; only if some row sum leaves
    :math:`[e^{-50}, 10^{300}]` (overflow, or underflow that the later scaling could expose) is it redone with
    the row max subtracted.
    """
    T, V = X.shape
    shift = np.zeros(T)
    other = np.empty(T)
    d = np.empty(T)
    B = _block_rows(V)
    local = np.arange(min(B, T))
    for a in range(0, T, B):
        b = min(T, a + B)
        Xb, Gb, rows, tgt = X[a:b], out[a:b], local[: b - a], target[a:b]
        d[a:b] = Xb[rows, tgt]
        with np.errstate(over="ignore"):
            np.exp(Xb, out=Gb)
            Gb[rows, tgt] = 0.0
            np.sum(Gb, axis=1, out=other[a:b])
            total = other[a:b] + np.exp(d[a:b])
        if not np.all((total >= _SAFE_LOW) & (total <= _SAFE_HIGH)):  # shift by the row max and redo
            np.max(Xb, axis=1, out=shift[a:b])
            np.subtract(Xb, shift[a:b, None], out=Gb)
            np.exp(Gb, out=Gb)
            d[a:b] -= shift[a:b]
            Gb[rows, tgt] = 0.0
            np.sum(Gb, axis=1, out=other[a:b])
            total = other[a:b] + np.exp(d[a:b])
        np.multiply(Gb, (-1.0 / total)[:, None], out=Gb)
    with np.errstate(divide="ignore"):
        log_other = np.log(other)
    for t in np.flatnonzero(other < _TINY):  # off-target mass lost to underflow: recompute the row exactly
        log_other[t] = float(logsumexp(np.delete(X[t], target[t]))) - shift[t]
    b_odds = log_other - d  # log-odds of "not the target" at position t
    return RowStats(shift, d + softplus(b_odds), -softplus(b_odds), -softplus(-b_odds))


def _scale_pass(X: Array, target: NDArray[np.int64], G: Array, stats: RowStats, log_coef: Array) -> None:
    r"""Overwrite ``G`` (:math:`-\pi`, from :func:`_exp_pass`) with rows :math:`c_t\,(e_{o^\star_t}-\pi_t)`,
    :math:`c_t=e^{\text{log\_coef}_t}`; the multiplication is skipped where :math:`c_t` is exactly 1 in float64."""
    T, V = X.shape
    B = _block_rows(V)
    if np.max(log_coef) <= _MAX_LOG_SCALE:
        coef = np.exp(log_coef)
        if np.any(coef != 1.0):
            for a in range(0, T, B):
                b = min(T, a + B)
                np.multiply(G[a:b], coef[a:b, None], out=G[a:b])
    else:  # extreme regime (1 - J below e^-600): exponentiate again with the row's own scale
        c = stats.shift + stats.log_norm - log_coef
        with np.errstate(over="ignore"):
            for a in range(0, T, B):
                b = min(T, a + B)
                np.subtract(X[a:b], c[a:b, None], out=G[a:b])
                np.exp(G[a:b], out=G[a:b])
                np.negative(G[a:b], out=G[a:b])
    G[np.arange(T), target] = np.exp(log_coef + stats.log_eps)


def _coefficients(stats: RowStats, m: int) -> tuple[float, float, Array]:
    r""":math:`\log J`, :math:`\log(1-J)`, :math:`\log(p_tD_t)`; exact match (m = T) in O(T) by telescoping."""
    T = stats.log_p.size
    if m < T:
        return log_tails(stats.log_p, stats.log_eps, m)
    prefix = np.concatenate(([0.0], np.cumsum(stats.log_p)[:-1]))
    log_j = float(np.sum(stats.log_p))
    log_1mj = min(0.0, float(logsumexp(stats.log_eps + prefix)))  # the telescoping sum may round above 1
    return log_j, log_1mj, np.full(T, log_j)


def _as_arrays(logits: ArrayLike, target: ArrayLike) -> tuple[Array, NDArray[np.int64]]:
    X = np.asarray(logits, dtype=np.float64)
    tgt = np.asarray(target, dtype=np.int64)
    if X.ndim != 2 or X.shape[1] < 2 or tgt.shape != (X.shape[0],):
        raise GradgapValueError(f"logits shape {X.shape}, target shape {tgt.shape}: need (T, V>=2) and (T,)",
                                field="logits", value=X.shape)
    if tgt.size and (tgt.min() < 0 or tgt.max() >= X.shape[1]):
        raise GradgapValueError(f"target: tokens must lie in 0..{X.shape[1] - 1}", field="target", value=target)
    return X, tgt


def gap_arrays(logits: ArrayLike, target: ArrayLike, *, min_correct: int | None = None,
               out: Array | None = None) -> TokenGap:
    r"""Structured :math:`\log J`, :math:`\log(1-J)` and :math:`g` (``T x V``) straight from arrays.

    .. math:: g_{t\cdot} = \frac{p_tD_t}{J(1-J)}\,\big(e_{o^\star_t}-\pi_t\big),\qquad
              \text{exact match: } g = \frac{s(o^\star)}{1-J}.

    Cost: one exponentiation of every logit (in row blocks that stay in cache) and one scaling pass;
    memory: the output ``T x V`` buffer (``out``, which must not alias ``logits``) plus O(T) (O(Tm) for
    ``min_correct``).

    Source: reconstruction §2.1 items 3-4 (token decomposition, unique correct response), DERIVED.

    >>> r = gap_arrays([[0.0, 0.0]], [0]); (round(float(np.exp(r.log_j)), 12), r.gap.tolist())
    (0.5, [[1.0, -1.0]])
    """
    X, tgt = _as_arrays(logits, target)
    T = X.shape[0]
    m = T if min_correct is None else int(min_correct)
    if not 1 <= m <= T:
        raise GradgapValueError(f"min_correct={min_correct!r}: must lie in 1..T={T}", field="min_correct",
                                value=min_correct)
    if out is None:
        out = np.empty_like(X)
    elif out.shape != X.shape or out.dtype != np.float64 or np.shares_memory(out, X):
        raise GradgapValueError("out: must be a separate float64 array shaped like logits", field="out",
                                value=getattr(out, "shape", out))
    stats = _exp_pass(X, tgt, out)
    log_j, log_1mj, log_pd = _coefficients(stats, m)
    _scale_pass(X, tgt, out, stats, log_pd - log_j - log_1mj)
    return TokenGap(log_j, log_1mj, out)


# ------------------------------------------------------------------------------------ family primitives


def _relative(inst: TokenSequence) -> Array:
    r"""The logit differences :math:`\theta_{tv}-\max_u\theta_{tu}` per row, formed before anything is added."""
    X = np.asarray(inst.logits, dtype=np.float64)
    return X - np.max(X, axis=1, keepdims=True)


def _X(inst: TokenSequence, delta: Array) -> Array:
    return _relative(inst) + np.asarray(delta, dtype=np.float64).reshape(inst.T, inst.V)


def _structured(inst: TokenSequence, delta: Array) -> Structured:
    X, tgt = _X(inst, delta), np.asarray(inst.target, dtype=np.int64)
    E = np.empty_like(X)
    stats = _exp_pass(X, tgt, E)
    log_j, log_1mj, log_pd = _coefficients(stats, inst.m)
    outs = []
    for log_coef, sign in ((log_pd - log_j, 1.0), (log_pd - log_1mj, -1.0), (log_pd - log_j - log_1mj, 1.0)):
        G = E.copy()
        _scale_pass(X, tgt, G, stats, log_coef)
        outs.append(sign * G.reshape(-1))
    return Structured(log_j, log_1mj, outs[0], outs[1], outs[2])


def _log_parts(inst: TokenSequence, delta: Array) -> tuple[float, float]:
    X, tgt = _X(inst, delta), np.asarray(inst.target, dtype=np.int64)
    log_j, log_1mj, _ = _coefficients(_exp_pass(X, tgt, np.empty_like(X)), inst.m)
    return log_j, log_1mj


def _torch_count_dp(log_hit: Any, log_miss: Any, cap: int) -> tuple[Any, Any]:
    r"""Forward DP over independent hits: :math:`\log\Pr(c<\text{cap})`, :math:`\log\Pr(c\ge\text{cap})`
    (counts >= cap absorbed into one state; only reachable states are stored, so no :math:`-\infty`)."""
    import torch

    F = log_hit.new_zeros(1)
    for t in range(log_hit.shape[0]):
        stay, move = F + log_miss[t], F + log_hit[t]
        if F.shape[0] < cap + 1:
            F = torch.cat([stay[:1], torch.logaddexp(stay[1:], move[:-1]), move[-1:]])
        else:
            F = torch.cat([stay[:1], torch.logaddexp(stay[1:cap], move[: cap - 1]),
                           torch.logaddexp(F[cap:], move[cap - 1 : cap])])
    below = torch.logsumexp(F[:cap], 0)
    return below, F[cap] if F.shape[0] == cap + 1 else torch.tensor(-np.inf, dtype=torch.float64)


def _torch_log_parts(inst: TokenSequence, delta: Any) -> tuple[Any, Any]:
    import torch

    X = torch.as_tensor(_relative(inst)) + delta.reshape(inst.T, inst.V)
    onehot = torch.zeros(inst.T, inst.V, dtype=torch.bool)
    onehot[torch.arange(inst.T), torch.as_tensor(inst.target)] = True
    lse = torch.logsumexp(X, 1)
    log_hit = X[onehot] - lse
    log_miss = torch.logsumexp(X.masked_fill(onehot, -torch.inf), 1) - lse
    T, m = inst.T, inst.m
    if m <= T - m + 1:
        below, above = _torch_count_dp(log_hit, log_miss, m)
        return above, below
    below, above = _torch_count_dp(log_miss, log_hit, T - m + 1)
    return below, above


def _torch_log_prob(inst: TokenSequence, delta: Any, response: NDArray[np.int64]) -> Any:
    import torch

    logpi = torch.log_softmax(torch.as_tensor(_relative(inst)) + delta.reshape(inst.T, inst.V), 1)
    return logpi[torch.arange(inst.T), torch.as_tensor(response)].sum()


def _log_pi(inst: TokenSequence) -> Array:
    X = _relative(inst)
    return X - logsumexp(X, axis=1)[:, None]


def _log_probs(inst: TokenSequence, R: NDArray[np.int64]) -> Array:
    return _log_pi(inst)[np.arange(inst.T), R].sum(axis=1)


def _rewards(inst: TokenSequence, R: NDArray[np.int64]) -> NDArray[np.int64]:
    return ((R == np.asarray(inst.target)).sum(axis=1) >= inst.m).astype(np.int64)


def _scores(inst: TokenSequence, R: NDArray[np.int64]) -> Array:
    pi = np.exp(_log_pi(inst))
    N = R.shape[0]
    S = np.broadcast_to(-pi, (N, inst.T, inst.V)).copy()
    S[np.arange(N)[:, None], np.arange(inst.T)[None, :], R] += 1.0
    return S.reshape(N, inst.T * inst.V)


FAMILY = Family(
    name="tokens", structured=_structured, log_parts=_log_parts, torch_log_parts=_torch_log_parts,
    torch_log_prob=_torch_log_prob, response_shape=lambda inst: (inst.T, inst.V), log_probs=_log_probs,
    rewards=_rewards, scores=_scores, sample=lambda inst, n, rng: _routes.sample_rows(_log_pi(inst), n, rng),
    table_cost=lambda inst, method: float(inst.T * inst.V + inst.T * min(inst.m, inst.T - inst.m + 1)),
)


# ------------------------------------------------------------------------------------------ quantities
# Each quantity runs the route named by ``method`` (one body per route, in :mod:`gradgap.numerics._routes`).


def success_rate(inst: TokenSequence, *, method: str = "structured", n: int | None = None,
                 seed: Any = None) -> float | Estimate:
    r"""Success rate :math:`J=\Pr_{o\sim\pi_\theta}[r(o)=1]`; structured: exact match :math:`\prod_t p_t`, at
    least m: a Poisson-binomial tail.
    ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn with ``seed``.

    Source: reconstruction §1 (:math:`J_q`), QUOTED-2nd.
    """
    return _routes.success_rate(FAMILY, inst, method, n, seed)


def log_odds(inst: TokenSequence, *, method: str = "structured") -> float:
    r"""Log-odds :math:`\ell=\log\frac{J}{1-J}=\log J-\log(1-J)`, each term computed as a logarithm;
    structured: :math:`\log J-\log(1-J)`, both from logs.

    Source: reconstruction §2.1 item 2 and §4.1 (potential), QUOTED (reviews).
    """
    return _routes.log_odds(FAMILY, inst, method)


def gradient_gap(inst: TokenSequence, *, method: str = "structured", n: int | None = None, seed: Any = None,
                 h: float = FD_STEP) -> Array | Estimate:
    r"""Gradient Gap :math:`g=\mathbb E_+[s]-\mathbb E_-[s]`; structured: row t:
    :math:`\frac{p_tD_t}{J(1-J)}\,s_t(o^\star)`.
    ``fd``: central differences of :math:`\ell`. ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from
    ``n`` responses drawn with ``seed``.

    Source: reconstruction §2.1 (boxed definition), DERIVED.
    """
    return _routes.gradient_gap(FAMILY, inst, method, n, seed, h)


def grad_log_odds(inst: TokenSequence, *, method: str = "structured", n: int | None = None, seed: Any = None,
                  h: float = FD_STEP) -> Array | Estimate:
    r"""Gradient of the log-odds :math:`\nabla\ell`, equal to :math:`g` (the routes of :func:`gradient_gap`).
    ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn with ``seed``.

    Source: reconstruction §2.1 item 2, DERIVED.
    """
    return _routes.gradient_gap(FAMILY, inst, method, n, seed, h, quantity="grad_log_odds")


def grad_success_rate(inst: TokenSequence, *, method: str = "structured", n: int | None = None, seed: Any = None,
                      h: float = FD_STEP) -> Array | Estimate:
    r"""Policy gradient :math:`\nabla J=J(1-J)\,g`, structured as :math:`e^{\log J+\log(1-J)}\,g`.
    ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn with ``seed``.

    Source: reconstruction §2.1 (:math:`\nabla J=\mathrm{Var}(r)\,g`), QUOTED-2nd.
    """
    return _routes.grad_success_rate(FAMILY, inst, method, n, seed, h)


def conditional_score(inst: TokenSequence, success: bool, *, method: str = "structured", n: int | None = None,
                      seed: Any = None, h: float = FD_STEP) -> Array | Estimate:
    r"""Conditional mean score :math:`\mathbb E_\pm[s]=\mathbb E_\pi[s(o)\mid r(o)=\pm]` (``success=True``:
    :math:`+`); structured: row t: :math:`\pm\frac{p_tD_t}{J_\pm}\,s_t(o^\star)`; ``fd``/``autograd``:
    :math:`\nabla\log J`,
    :math:`\nabla\log(1-J)`. ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn
    with ``seed``.

    Source: reconstruction §2.1 (conditional laws), DERIVED.
    """
    return _routes.conditional_score(FAMILY, inst, success, method, n, seed, h)


def expected_score(inst: TokenSequence, *, method: str = "structured", n: int | None = None,
                   seed: Any = None) -> Array | Estimate:
    r"""Mean score :math:`\mathbb E_\pi[s]=J\,\mathbb E_+[s]+(1-J)\,\mathbb E_-[s]` (zero). ``mc``: an
    :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn with ``seed``.

    Source: reconstruction §2.1 (proof), DERIVED.
    """
    return _routes.expected_score(FAMILY, inst, method, n, seed)


def hessian_log_odds(inst: TokenSequence, *, method: str = "autograd", h: float = FD_STEP) -> Array:
    r"""Hessian :math:`\nabla^2\ell=\mathrm{Cov}_+(s)-\mathrm{Cov}_-(s)` (:math:`\nabla^2\log\pi(o)` does not
    depend on :math:`o` in this log-linear family); routes enumerate, autograd (default), fd.

    Source: reconstruction §4.1 (second-order form), DERIVED.
    """
    return _routes.hessian_log_odds(FAMILY, inst, method, h)


def alignment(inst: TokenSequence, w: ArrayLike, *, method: str = "structured", n: int | None = None, seed: Any = None,
              h: float = FD_STEP) -> float | Estimate:
    r"""Alignment :math:`\Delta\mu=\langle w,g\rangle` (``fd``: central difference of :math:`\ell` along
    :math:`w`). ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn with ``seed``.

    Source: reconstruction §2.2, INFERRED.
    """
    return _routes.alignment(FAMILY, inst, w, method, n, seed, h)


def score(inst: TokenSequence, response: ArrayLike, *, method: str = "structured") -> Array:
    r"""Score :math:`s(o)=\nabla_\theta\log\pi_\theta(o)` of one response; structured: row t: :math:`e_{o_t}-\pi_t`
    (``structured`` or ``autograd``).

    Source: reconstruction §1 (score), QUOTED.
    """
    return _routes.score(FAMILY, inst, response, method)


def reward(inst: TokenSequence, response: ArrayLike) -> int:
    r"""Binary reward :math:`r(o)\in\{0,1\}` of one response (a tuple of token indices): :math:`\mathbb
    1[\#\{t:o_t=o^\star_t\}\ge m]`.

    Source: reconstruction §1 (binary verifiable reward), INFERRED.
    """
    return int(rewards(inst, [response])[0])


def rewards(inst: TokenSequence, responses: ArrayLike) -> NDArray[np.int64]:
    r"""Vectorised :func:`reward` over an ``(N, L)`` array of responses: :math:`(r(o_i))_{i\le N}`.

    Source: reconstruction §1, INFERRED.
    """
    return _rewards(inst, _routes.as_responses(inst, FAMILY, responses))


def sample_responses(inst: TokenSequence, n: int, rng: np.random.Generator) -> NDArray[np.int64]:
    r"""``n`` responses :math:`o\sim\pi_\theta` drawn with ``rng``, as an ``(n, L)`` int array."""
    return FAMILY.sample(inst, n, rng)
