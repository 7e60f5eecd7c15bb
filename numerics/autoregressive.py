r"""Tabular autoregressive policy, numeric twin (numpy / torch float64) of ``theory/autoregressive.py``.

==============================  ==========================  ================================================
paper                           here                        structured form (dynamic programme on prefixes)
==============================  ==========================  ================================================
:math:`J`                       :func:`success_rate`        :math:`S(\varnothing)=\sum_v\pi_\varnothing(v)S(v)`
:math:`\ell=\log\frac{J}{1-J}`  :func:`log_odds`            :math:`\log S(\varnothing)-\log F(\varnothing)`
:math:`s(o)`                    :func:`score`               row :math:`o_{<t}`: :math:`e_{o_t}-\pi_{o_{<t}}`, t < L(o)
:math:`\mathbb E_\pm[s]`        :func:`conditional_score`   row u: :math:`\pm P(u)\pi_u(v)D_u(v)/J_\pm`
:math:`g`                       :func:`gradient_gap`        row u: :math:`P(u)\pi_u(v)D_u(v)/(J(1-J))`
:math:`\nabla J`                :func:`grad_success_rate`   :math:`J(1-J)\,g`
:math:`\nabla^2\ell`            :func:`hessian_log_odds`    (enumerate, autograd, fd)
:math:`\Delta\mu`               :func:`alignment`           :math:`\langle w, g\rangle`
==============================  ==========================  ================================================

Notation: a node u is a prefix; :math:`\pi_u` the softmax of its row; :math:`P(u)` the probability of reaching
it; :math:`S(u)`, :math:`F(u)=1-S(u)` the success and failure probabilities of the completions of u (leaves:
the reward of the ended response); :math:`D_u(v)=S(uv)-S(u)=F(u)-F(uv)`. Then
:math:`\mathbb E[r\,s]_{u,v}=P(u)\pi_u(v)D_u(v)` (DERIVED: sum the scores of the responses through u), hence the
rows above. Everything is carried in log space: :math:`\log S`, :math:`\log F` by the backward recursion,
:math:`\log P` forward, and :math:`D_u(v)` as the difference :math:`(1-\pi_u(v))S(uv)-\sum_{w\ne v}\pi_u(w)S(uw)`
of two log-space sums (on the failure side when :math:`S(u)>F(u)`), so neither :math:`J\to0` nor :math:`J\to1`
cancels. Rows whose prefix holds ``eos`` emit ``eos`` with probability 1 (the response has ended).

Example (T=2, V=2, even logits, exact match of (1, 0)):

>>> ex = Autoregressive(logits=(((0.0, 0.0),), ((0.0, 0.0), (0.0, 0.0))), target=(1, 0))
>>> success_rate(ex), rewards(ex, [(1, 0), (1, 1)]).tolist()
(0.25, [1, 0])
>>> [round(x, 12) for x in gradient_gap(ex).tolist()]
[-0.666666666667, 0.666666666667, 0.0, 0.0, 0.666666666667, -0.666666666667]
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gradgap.numerics import _routes
from gradgap.numerics._routes import FD_STEP, Family, Structured
from gradgap.numerics.logspace import log1mexp, logsumexp
from gradgap.numerics.montecarlo import Estimate
from gradgap.theory.instances import Autoregressive

__all__ = [*_routes.PUBLIC_NAMES, "ResponseTable", "response_table"]

Array = NDArray[np.float64]


class _Tree(NamedTuple):
    """Structure-only tables of the prefix tree (cached per structure)."""

    offsets: tuple[int, ...]  # first row of each level t
    ended_rows: NDArray[np.bool_]  # rows whose prefix holds eos
    leaf_reward: NDArray[np.bool_]  # reward of each leaf (a length-T tuple, ended at its first eos)


def _ended_lengths(R: NDArray[np.int64], eos: int | None) -> NDArray[np.int64]:
    T = R.shape[1]
    if eos is None:
        return np.full(R.shape[0], T, dtype=np.int64)
    hit = R == eos
    first = np.argmax(hit, axis=1)
    return np.where(hit.any(axis=1), first + 1, T).astype(np.int64)


def _rewards_of(R: NDArray[np.int64], target: tuple[int, ...], m: int | None, eos: int | None
                ) -> NDArray[np.int64]:
    L = _ended_lengths(R, eos)
    tgt = np.asarray(target, dtype=np.int64)
    pos = np.arange(R.shape[1])[None, :]
    match = R == tgt[None, :]
    if m is None:
        Lstar = int(_ended_lengths(tgt[None, :], eos)[0])
        ok = (L == Lstar) & np.all(match | (pos >= Lstar), axis=1)
        return ok.astype(np.int64)
    return ((match & (pos < L[:, None])).sum(axis=1) >= m).astype(np.int64)


@lru_cache(maxsize=64)
def _tree(T: int, V: int, target: tuple[int, ...], m: int | None, eos: int | None) -> _Tree:
    offsets = tuple(sum(V**s for s in range(t)) for t in range(T + 1))
    ended = np.zeros(offsets[T], dtype=bool)
    if eos is not None:
        for t in range(1, T):
            codes = np.arange(V**t)
            digits = np.stack([(codes // V ** (t - 1 - s)) % V for s in range(t)], axis=1)
            ended[offsets[t]: offsets[t + 1]] = (digits == eos).any(axis=1)
    leaves = np.arange(V**T)
    R = np.stack([(leaves // V ** (T - 1 - s)) % V for s in range(T)], axis=1).astype(np.int64)
    return _Tree(offsets, ended, _rewards_of(R, target, m, eos).astype(bool))


def _tree_of(inst: Autoregressive) -> _Tree:
    return _tree(inst.T, inst.V, inst.target, inst.min_correct, inst.eos)


def _relative(inst: Autoregressive) -> Array:
    r"""The rows of logit differences :math:`\theta_{u,v}-\max_w\theta_{u,w}`, formed before anything is added."""
    X = np.asarray(inst.theta, dtype=np.float64).reshape(inst.n_rows, inst.V)
    return X - np.max(X, axis=1, keepdims=True)


def _log_pi_rows(inst: Autoregressive, delta: Array) -> Array:
    r""":math:`\log\pi_u(v)` per row at :math:`\theta+\delta`; ended rows put all mass on ``eos``."""
    X = _relative(inst) + np.asarray(delta, dtype=np.float64).reshape(inst.n_rows, inst.V)
    lp = X - logsumexp(X, axis=1)[:, None]
    ended = _tree_of(inst).ended_rows
    if ended.any():
        lp[ended] = -np.inf
        lp[ended, inst.eos] = 0.0
    return lp


def _lse_excluding(Y: Array) -> Array:
    r""":math:`\log\sum_{w\ne v}e^{Y_{\cdot w}}` for every v:
    :math:`\operatorname{lse}+\log(1-e^{Y_v-\operatorname{lse}})` off the row maximum (accurate there,
    :math:`e^{Y_v-\operatorname{lse}}\le1/2`), recomputed at the maximum."""
    lse = logsumexp(Y, axis=1)[:, None]
    with np.errstate(invalid="ignore"):
        out = lse + log1mexp(np.minimum(Y - lse, 0.0))
    out = np.where(np.isfinite(lse), out, -np.inf)
    rows = np.arange(Y.shape[0])
    top = np.argmax(Y, axis=1)
    masked = Y.copy()
    masked[rows, top] = -np.inf
    out[rows, top] = logsumexp(masked, axis=1)
    return out


def _signed_log_difference(log_a: Array, log_b: Array) -> tuple[Array, Array]:
    r""":math:`\log|e^a-e^b|` and its sign, without forming :math:`e^a` or :math:`e^b`."""
    hi, lo = np.maximum(log_a, log_b), np.minimum(log_a, log_b)
    with np.errstate(invalid="ignore", divide="ignore"):
        mag = hi + log1mexp(np.minimum(lo - hi, 0.0))
    mag = np.where(np.isfinite(hi), np.where(lo == hi, -np.inf, mag), -np.inf)
    return mag, np.where(log_a >= log_b, 1.0, -1.0)


def _backward(inst: Autoregressive, lp: Array) -> tuple[list[Array], list[Array]]:
    r""":math:`\log S` and :math:`\log F` of every node, level by level (level T: the leaves' rewards)."""
    tree = _tree_of(inst)
    T, V = inst.T, inst.V
    logS, logF = [np.empty(0)] * (T + 1), [np.empty(0)] * (T + 1)
    logS[T] = np.where(tree.leaf_reward, 0.0, -np.inf)
    logF[T] = np.where(tree.leaf_reward, -np.inf, 0.0)
    for t in range(T - 1, -1, -1):
        lpt = lp[tree.offsets[t]: tree.offsets[t + 1]]
        logS[t] = logsumexp(lpt + logS[t + 1].reshape(V**t, V), axis=1).reshape(-1)
        logF[t] = logsumexp(lpt + logF[t + 1].reshape(V**t, V), axis=1).reshape(-1)
    return logS, logF


def _structured(inst: Autoregressive, delta: Array) -> Structured:
    tree = _tree_of(inst)
    T, V = inst.T, inst.V
    lp = _log_pi_rows(inst, delta)
    logS, logF = _backward(inst, lp)
    log_j, log_1mj = float(logS[0][0]), float(logF[0][0])
    log_c = np.empty_like(lp)
    sign = np.empty_like(lp)
    logP = np.zeros(1)
    for t in range(T):
        a, b = tree.offsets[t], tree.offsets[t + 1]
        lpt = lp[a:b]
        with np.errstate(invalid="ignore"):
            log_rest = _lse_excluding(lpt)  # log(1 - pi_u(v))
        mags, signs = [], []
        for child, flip in ((logS[t + 1].reshape(V**t, V), 1.0), (logF[t + 1].reshape(V**t, V), -1.0)):
            mag, sg = _signed_log_difference(log_rest + child, _lse_excluding(lpt + child))
            mags.append(mag)
            signs.append(flip * sg)
        use_s = (logS[t] <= logF[t])[:, None]
        mag = np.where(use_s, mags[0], mags[1])
        log_c[a:b] = logP[:, None] + lpt + mag
        sign[a:b] = np.where(use_s, signs[0], signs[1])
        logP = (logP[:, None] + lpt).reshape(-1)
    log_c[tree.ended_rows] = -np.inf
    with np.errstate(invalid="ignore"):
        plus = (sign * np.exp(log_c - log_j)).reshape(-1)
        minus = (-sign * np.exp(log_c - log_1mj)).reshape(-1)
        gap = (sign * np.exp(log_c - log_j - log_1mj)).reshape(-1)
    return Structured(log_j, log_1mj, plus, minus, gap)


def _log_parts(inst: Autoregressive, delta: Array) -> tuple[float, float]:
    logS, logF = _backward(inst, _log_pi_rows(inst, delta))
    return float(logS[0][0]), float(logF[0][0])


@lru_cache(maxsize=64)
def _canonical(T: int, V: int, target: tuple[int, ...], m: int | None, eos: int | None
               ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_], NDArray[np.bool_]]:
    """Every response of positive probability: its rows and tokens per position, the live positions, rewards."""
    leaves = np.arange(V**T)
    R = np.stack([(leaves // V ** (T - 1 - s)) % V for s in range(T)], axis=1).astype(np.int64)
    L = _ended_lengths(R, eos)
    live = np.arange(T)[None, :] < L[:, None]
    keep = np.all(live | (R == (-1 if eos is None else eos)), axis=1)
    R, live = R[keep], live[keep]
    rows = _rows(R, V)
    return rows, R, live, _rewards_of(R, target, m, eos).astype(bool)


def _rows(R: NDArray[np.int64], V: int) -> NDArray[np.int64]:
    """The row of each position of each response: level offset plus the prefix as a base-V number."""
    N, T = R.shape
    rows = np.empty((N, T), dtype=np.int64)
    code = np.zeros(N, dtype=np.int64)
    offset = 0
    for t in range(T):
        rows[:, t] = offset + code
        code = code * V + R[:, t]
        offset += V**t
    return rows


def _torch_log_pi(inst: Autoregressive, delta: Any) -> Any:
    import torch

    X = torch.as_tensor(_relative(inst)) + delta.reshape(inst.n_rows, inst.V)
    return torch.log_softmax(X, 1)


def _torch_log_parts(inst: Autoregressive, delta: Any) -> tuple[Any, Any]:
    r""":math:`\log J`, :math:`\log(1-J)` by enumerating the responses of positive probability in torch (never
    the prefix recursion)."""
    import torch

    rows, R, live, success = _canonical(inst.T, inst.V, inst.target, inst.min_correct, inst.eos)
    logpi = _torch_log_pi(inst, delta)
    picked = logpi[torch.as_tensor(rows), torch.as_tensor(R)]
    logp = torch.where(torch.as_tensor(live), picked, torch.zeros((), dtype=torch.float64)).sum(1)
    ok = torch.as_tensor(success)
    return torch.logsumexp(logp[ok], 0), torch.logsumexp(logp[~ok], 0)


def _torch_log_prob(inst: Autoregressive, delta: Any, response: NDArray[np.int64]) -> Any:
    import torch

    R = np.asarray(response, dtype=np.int64)[None, :]
    L = int(_ended_lengths(R, inst.eos)[0])
    rows = _rows(R, inst.V)[0, :L]
    return _torch_log_pi(inst, delta)[torch.as_tensor(rows), torch.as_tensor(R[0, :L])].sum()


def _live(inst: Autoregressive, R: NDArray[np.int64]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Positions before the end, and whether each response is padded with ``eos`` after it (probability > 0)."""
    L = _ended_lengths(R, inst.eos)
    live = np.arange(R.shape[1])[None, :] < L[:, None]
    pad = -1 if inst.eos is None else inst.eos
    return live, np.all(live | (R == pad), axis=1)


def _log_probs(inst: Autoregressive, R: NDArray[np.int64]) -> Array:
    lp = _log_pi_rows(inst, np.zeros(len(inst.theta)))
    live, canonical = _live(inst, R)
    picked = np.where(live, lp[_rows(R, inst.V), R], 0.0).sum(axis=1)
    return np.where(canonical, picked, -np.inf)


def _rewards(inst: Autoregressive, R: NDArray[np.int64]) -> NDArray[np.int64]:
    return _rewards_of(R, inst.target, inst.min_correct, inst.eos)


def _scores(inst: Autoregressive, R: NDArray[np.int64]) -> Array:
    V = inst.V
    pi = np.exp(_log_pi_rows(inst, np.zeros(len(inst.theta))))
    live, _ = _live(inst, R)
    rows = _rows(R, V)
    N = R.shape[0]
    S = np.zeros((N, inst.n_rows, V))
    idx = np.arange(N)
    for t in range(inst.T):
        on = live[:, t]
        S[idx[on], rows[on, t]] -= pi[rows[on, t]]
        S[idx[on], rows[on, t], R[on, t]] += 1.0
    return S.reshape(N, inst.n_rows * V)


def _log_prob_hessians(inst: Autoregressive, R: NDArray[np.int64]) -> Array:
    r""":math:`\nabla^2\log\pi(o)=-\sum_{t<L(o)}\big(\mathrm{diag}\,\pi_u-\pi_u\pi_u^\top\big)` on row
    :math:`u=o_{<t}`: it depends on the response (the rows it passes), unlike the fixed-position families."""
    V, n = inst.V, len(inst.theta)
    pi = np.exp(_log_pi_rows(inst, np.zeros(n)))
    live, _ = _live(inst, R)
    rows = _rows(R, V)
    H = np.zeros((R.shape[0], n, n))
    for i in range(R.shape[0]):
        for t in np.flatnonzero(live[i]):
            u = rows[i, t]
            p = pi[u]
            H[i, u * V:(u + 1) * V, u * V:(u + 1) * V] -= np.diag(p) - np.outer(p, p)
    return H


def _sample(inst: Autoregressive, n: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """``n`` responses drawn token by token (inverse CDF); after ``eos`` the response is padded with ``eos``."""
    V = inst.V
    pi = np.exp(_log_pi_rows(inst, np.zeros(len(inst.theta))))
    out = np.empty((n, inst.T), dtype=np.int64)
    code = np.zeros(n, dtype=np.int64)
    offset = 0
    for t in range(inst.T):
        cdf = np.cumsum(pi[offset + code], axis=1)
        u = rng.random(n) * cdf[:, -1]
        out[:, t] = np.minimum((cdf <= u[:, None]).sum(axis=1), V - 1)
        code = code * V + out[:, t]
        offset += V**t
    return out


class ResponseTable(NamedTuple):
    r"""Every response of positive probability (eos-padded rows of ``responses``) with :math:`\pi(o)`, the score
    :math:`s(o)`, the reward and the length :math:`L(o)` (tokens, the eos included)."""

    responses: NDArray[np.int64]
    probs: Array
    scores: Array
    rewards: NDArray[np.int64]
    lengths: NDArray[np.int64]


def response_table(inst: Autoregressive) -> ResponseTable:
    r"""The enumerated response space of ``inst`` (small instances: :math:`O(V^T)` rows).

    >>> tab = response_table(Autoregressive(logits=(((0.0, 0.0),), ((0.0, 0.0), (0.0, 0.0))), target=(0, 1), eos=1))
    >>> tab.responses.tolist(), tab.probs.tolist(), tab.lengths.tolist()
    ([[0, 0], [0, 1], [1, 1]], [0.25, 0.25, 0.5], [2, 2, 1])
    """
    _, R, _, _ = _canonical(inst.T, inst.V, inst.target, inst.min_correct, inst.eos)
    return ResponseTable(R, np.exp(_log_probs(inst, R)), _scores(inst, R), _rewards(inst, R),
                         _ended_lengths(R, inst.eos))


def _table_cost(inst: Any, method: str) -> float:
    """Work of one evaluation: the prefix tree (four entries per parameter), or every response under autograd."""
    n = len(inst.theta)
    return float(inst.V**inst.T * inst.T + n) if method == "autograd" else float(4 * n)


FAMILY = Family(
    name="autoregressive", structured=_structured, log_parts=_log_parts, torch_log_parts=_torch_log_parts,
    torch_log_prob=_torch_log_prob, response_shape=lambda inst: (inst.T, inst.V), log_probs=_log_probs,
    rewards=_rewards, scores=_scores, sample=_sample, log_prob_hessians=_log_prob_hessians,
    table_cost=_table_cost,
)


# ------------------------------------------------------------------------------------------ quantities
# Each quantity runs the route named by ``method`` (one body per route, in :mod:`gradgap.numerics._routes`).


def success_rate(inst: Autoregressive, *, method: str = "structured", n: int | None = None,
                 seed: Any = None) -> float | Estimate:
    r"""Success rate :math:`J=\Pr_{o\sim\pi_\theta}[r(o)=1]`; structured: the backward recursion
    :math:`S(u)=\sum_v\pi_u(v)S(uv)` at the root. ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate`.

    Source: reconstruction §1 (:math:`J_q`), QUOTED-2nd.
    """
    return _routes.success_rate(FAMILY, inst, method, n, seed)


def log_odds(inst: Autoregressive, *, method: str = "structured") -> float:
    r"""Log-odds :math:`\ell=\log S(\varnothing)-\log F(\varnothing)`, both recursions in log space.

    Source: reconstruction §2.1 item 2 and §4.1 (potential), QUOTED (reviews).
    """
    return _routes.log_odds(FAMILY, inst, method)


def gradient_gap(inst: Autoregressive, *, method: str = "structured", n: int | None = None, seed: Any = None,
                 h: float = FD_STEP) -> Array | Estimate:
    r"""Gradient Gap :math:`g=\mathbb E_+[s]-\mathbb E_-[s]`; structured: row u:
    :math:`P(u)\pi_u(v)D_u(v)/(J(1-J))`. ``fd``: central differences of :math:`\ell`; ``mc``: an Estimate.

    Source: reconstruction §2.1 (boxed definition), DERIVED.
    """
    return _routes.gradient_gap(FAMILY, inst, method, n, seed, h)


def grad_log_odds(inst: Autoregressive, *, method: str = "structured", n: int | None = None, seed: Any = None,
                  h: float = FD_STEP) -> Array | Estimate:
    r"""Gradient of the log-odds :math:`\nabla\ell`, equal to :math:`g` (the routes of :func:`gradient_gap`).

    Source: reconstruction §2.1 item 2, DERIVED.
    """
    return _routes.gradient_gap(FAMILY, inst, method, n, seed, h, quantity="grad_log_odds")


def grad_success_rate(inst: Autoregressive, *, method: str = "structured", n: int | None = None,
                      seed: Any = None, h: float = FD_STEP) -> Array | Estimate:
    r"""Policy gradient :math:`\nabla J=J(1-J)\,g`, structured as :math:`e^{\log J+\log(1-J)}\,g`.

    Source: reconstruction §2.1 (:math:`\nabla J=\mathrm{Var}(r)\,g`), QUOTED-2nd.
    """
    return _routes.grad_success_rate(FAMILY, inst, method, n, seed, h)


def conditional_score(inst: Autoregressive, success: bool, *, method: str = "structured", n: int | None = None,
                      seed: Any = None, h: float = FD_STEP) -> Array | Estimate:
    r"""Conditional mean score :math:`\mathbb E_\pm[s]` (``success=True``: :math:`+`); structured: row u:
    :math:`\pm P(u)\pi_u(v)D_u(v)/J_\pm`; ``fd``/``autograd``: :math:`\nabla\log J`, :math:`\nabla\log(1-J)`.

    Source: reconstruction §2.1 (conditional laws), DERIVED.
    """
    return _routes.conditional_score(FAMILY, inst, success, method, n, seed, h)


def expected_score(inst: Autoregressive, *, method: str = "structured", n: int | None = None,
                   seed: Any = None) -> Array | Estimate:
    r"""Mean score :math:`\mathbb E_\pi[s]=J\,\mathbb E_+[s]+(1-J)\,\mathbb E_-[s]` (zero).

    Source: reconstruction §2.1 (proof), DERIVED.
    """
    return _routes.expected_score(FAMILY, inst, method, n, seed)


def hessian_log_odds(inst: Autoregressive, *, method: str = "autograd", h: float = FD_STEP) -> Array:
    r"""Hessian :math:`\nabla^2\ell=\mathrm{Cov}_+(s)-\mathrm{Cov}_-(s)+\mathbb E_+[\nabla^2\log\pi]-
    \mathbb E_-[\nabla^2\log\pi]` (here :math:`\nabla^2\log\pi(o)` depends on o); routes enumerate, autograd, fd.

    Source: reconstruction §4.1 (second-order form), DERIVED.
    """
    return _routes.hessian_log_odds(FAMILY, inst, method, h)


def alignment(inst: Autoregressive, w: ArrayLike, *, method: str = "structured", n: int | None = None,
              seed: Any = None, h: float = FD_STEP) -> float | Estimate:
    r"""Alignment :math:`\Delta\mu=\langle w,g\rangle` (``fd``: central difference of :math:`\ell` along w).

    Source: reconstruction §2.2, INFERRED.
    """
    return _routes.alignment(FAMILY, inst, w, method, n, seed, h)


def score(inst: Autoregressive, response: ArrayLike, *, method: str = "structured") -> Array:
    r"""Score :math:`s(o)=\nabla_\theta\log\pi_\theta(o)`; row :math:`(t,o_{<t})`: :math:`e_{o_t}-\pi`, t < L(o).

    Source: reconstruction §1 (score), QUOTED.
    """
    return _routes.score(FAMILY, inst, response, method)


def reward(inst: Autoregressive, response: ArrayLike) -> int:
    r"""Binary reward :math:`r(o)` of one response (length-T tuple; ended at its first ``eos``).

    Source: reconstruction §1 (binary verifiable reward), INFERRED.
    """
    return int(rewards(inst, [response])[0])


def rewards(inst: Autoregressive, responses: ArrayLike) -> NDArray[np.int64]:
    r"""Vectorised :func:`reward` over an ``(N, T)`` array of responses.

    Source: reconstruction §1, INFERRED.
    """
    return _rewards(inst, _routes.as_responses(inst, FAMILY, responses))


def sample_responses(inst: Autoregressive, n: int, rng: np.random.Generator) -> NDArray[np.int64]:
    r"""``n`` responses :math:`o\sim\pi_\theta` drawn with ``rng``, as an ``(n, T)`` int array (eos-padded)."""
    return FAMILY.sample(inst, n, rng)
