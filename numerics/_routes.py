r"""The family-independent routes of the numeric twins: enumeration, autograd, finite differences, Monte Carlo.

A family module (``softmax``, ``tokens``, ``shared_tokens``) describes itself by a :class:`Family` of small
primitives (its structured closed forms, a torch formula for :math:`\log J` and :math:`\log(1-J)`, how to
enumerate, score and sample responses); the functions here hold the one body per route of every quantity of
docs/DESIGN.md, and each family module's public ``def`` calls them with its primitives. A route a quantity lacks
raises ``NotImplementedError`` naming both.

Routes (style rule 3):

- ``enumerate``: every response :math:`o`, weights :math:`\pi(o)/J` and :math:`\pi(o)/(1-J)` in log space;
- ``structured``: the family's closed product / dynamic-programming forms;
- ``autograd``: torch float64 gradients of :math:`\log J`, :math:`\log(1-J)` and :math:`\ell` (never the gap formula);
- ``fd``: central differences of the structured :math:`\log J`, :math:`\log(1-J)` (step ``h``, default ``1e-5``);
- ``mc``: sampled responses, :class:`~gradgap.numerics.montecarlo.Estimate` with Welch standard errors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gradgap.numerics.logspace import logsumexp
from gradgap.numerics.montecarlo import Estimate, Moments, difference_estimate, mean_estimate
from gradgap.theory.instances import METHODS, GradgapTypeError, GradgapValueError

__all__ = [
    "FD_STEP",
    "MAX_RESPONSES",
    "MC_SAMPLES",
    "METHODS",
    "PUBLIC_NAMES",
    "Family",
    "Structured",
    "alignment",
    "as_responses",
    "conditional_score",
    "expected_score",
    "grad_success_rate",
    "gradient_gap",
    "hessian_log_odds",
    "log_odds",
    "score",
    "success_rate",
    "zero",
]

#: the public names every numeric family module defines, sorted
PUBLIC_NAMES: tuple[str, ...] = (
    "alignment", "conditional_score", "expected_score", "grad_log_odds", "grad_success_rate", "gradient_gap",
    "hessian_log_odds", "log_odds", "reward", "rewards", "sample_responses", "score", "success_rate")

#: enumeration refuses response spaces larger than this
MAX_RESPONSES = 1_000_000
#: default step of central finite differences (``proofs_check.tolerances.FD_STEP`` is this value)
FD_STEP = 1e-5
#: default number of Monte-Carlo responses
MC_SAMPLES = 10_000
#: scores are handled in batches of at most this many entries (responses x parameters)
_BATCH_ENTRIES = 1 << 21

Array = NDArray[np.float64]


class Structured(NamedTuple):
    r"""Closed-form parts at one parameter: :math:`\log J`, :math:`\log(1-J)`, :math:`\mathbb E_\pm[s]`, :math:`g`."""

    log_j: float
    log_1mj: float
    plus: Array
    minus: Array
    gap: Array


@dataclass(frozen=True)
class Family:
    r"""The primitives of one family; every callable takes the instance first.

    ``structured``, ``log_parts``, ``torch_log_parts`` and ``torch_log_prob`` take a displacement :math:`\delta`
    of the flat parameter and evaluate at :math:`	heta+\delta`: each forms the per-position logit *differences*
    of the instance first (relative to the largest logit of the position) and adds :math:`\delta` to those,
    so no magnitude of :math:`	heta` swamps a difference (logits :math:`(10^{16}, 10^{16})` give
    :math:`J=1/2`). The routes differentiate in :math:`\delta` at :math:`\delta=0`."""

    name: str
    structured: Callable[[Any, Array], Structured]
    log_parts: Callable[[Any, Array], tuple[float, float]]
    torch_log_parts: Callable[[Any, Any], tuple[Any, Any]]
    torch_log_prob: Callable[[Any, Any, NDArray[np.int64]], Any]
    response_shape: Callable[[Any], tuple[int, int]]
    #: the work (float64 entries) of one ``structured`` or ``autograd`` evaluation, given the method: the
    #: parameters and the per-position tables (``fd`` is :math:`2n+1` such evaluations; ``enumerate`` and ``mc``
    #: are costed from ``response_shape``)
    table_cost: Callable[[Any, str], float]
    log_probs: Callable[[Any, NDArray[np.int64]], Array]
    rewards: Callable[[Any, NDArray[np.int64]], NDArray[np.int64]]
    scores: Callable[[Any, NDArray[np.int64]], Array]
    sample: Callable[[Any, int, np.random.Generator], NDArray[np.int64]]
    structured_hessian: Callable[[Any], Array] | None = None
    #: ``(N, n, n)`` Hessians of :math:`\log\pi(o)` for a family where they depend on the response (the
    #: autoregressive one); ``None``: the same for every response (the log-linear fixed-position families)
    log_prob_hessians: Callable[[Any, NDArray[np.int64]], Array] | None = None

    @staticmethod
    def theta(inst: Any) -> Array:
        """The flat parameter vector ``inst.theta`` (docs/DESIGN.md layout) as float64."""
        return np.asarray(inst.theta, dtype=np.float64)


# ----------------------------------------------------------------------------------------------- helpers


def check_method(quantity: str, method: str, supported: Sequence[str]) -> None:
    """Raise ``NotImplementedError`` naming quantity and method when the pair has no route."""
    if method not in METHODS:
        raise GradgapValueError(f"method={method!r}: unknown; choose one of {', '.join(METHODS)}",
                                field="method", value=method)
    if method not in supported:
        raise NotImplementedError(f"{quantity} has no method={method!r} route; available: {', '.join(supported)}")


def _check_mc_args(method: str, n: int | None, seed: Any) -> None:
    if method != "mc" and (n is not None or seed is not None):
        raise GradgapValueError(f"method={method!r}: n and seed apply only to method='mc'", field="method",
                                value=method)
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 4):
        raise GradgapValueError(f"n={n!r}: must be an integer >= 4", field="n", value=n)


def as_responses(inst: Any, fam: Family, responses: ArrayLike) -> NDArray[np.int64]:
    """Responses as an ``(N, L)`` int array, validated against the family's response shape."""
    L, A = fam.response_shape(inst)
    try:
        arr = np.asarray(responses)
    except ValueError as exc:
        raise GradgapValueError(f"responses={responses!r}: ragged ({exc})", field="responses",
                                value=responses) from None
    if arr.ndim == 1:
        arr = arr.reshape(1, -1) if arr.size == L else arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != L:
        raise GradgapValueError(f"responses shape {arr.shape}: each response needs {L} token(s)",
                                field="responses", value=responses)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise GradgapTypeError("responses: entries must be integers", field="responses", value=responses)
    if arr.size and (arr.min() < 0 or arr.max() >= A):
        raise GradgapValueError(f"responses: tokens must lie in 0..{A - 1}", field="responses", value=responses)
    return arr.astype(np.int64)


def correct_mask(size: int, correct: frozenset[int]) -> NDArray[np.bool_]:
    r"""The indicator :math:`(\mathbb 1[v\in C])_{v<\text{size}}` of the correct arms / tokens.

    >>> correct_mask(3, frozenset({0, 2})).tolist()
    [True, False, True]
    """
    mask = np.zeros(size, dtype=bool)
    mask[sorted(correct)] = True
    return mask


def sample_rows(log_probs: Array, n: int, rng: np.random.Generator) -> NDArray[np.int64]:
    r"""``n`` independent draws per row of a table of log-probabilities ``(L, A)``: an ``(n, L)`` array
    (inverse CDF; a zero-probability token is never drawn)."""
    L, A = log_probs.shape
    out = np.empty((n, L), dtype=np.int64)
    for row in range(L):
        cdf = np.cumsum(np.exp(log_probs[row] - log_probs[row].max()))
        u = rng.random(n) * cdf[-1]
        out[:, row] = np.minimum(np.searchsorted(cdf, u, side="right"), A - 1)
    return out


def _batches(total: int, width: int) -> list[tuple[int, int]]:
    step = max(1, _BATCH_ENTRIES // max(1, width))
    return [(a, min(total, a + step)) for a in range(0, total, step)]


def _n_params(fam: Family, inst: Any) -> int:
    return int(fam.theta(inst).size)


def zero(fam: Family, inst: Any) -> Array:
    """The zero displacement :math:`\\delta=0` (the primitives evaluate at :math:`\theta+\\delta`)."""
    return np.zeros(_n_params(fam, inst))


# ---------------------------------------------------------------------------------------------- enumerate


class Enumerated(NamedTuple):
    log_j: float
    log_1mj: float
    plus: Array
    minus: Array
    hessian: Array | None


def enumerate_parts(fam: Family, inst: Any, *, second_moments: bool = False) -> Enumerated:
    r"""Exact enumeration of the response space in log space.

    .. math:: \log J = \operatorname{lse}_{r(o)=1}\log\pi(o),\quad
              \mathbb E_+[s] = \sum_{r(o)=1} e^{\log\pi(o)-\log J}\,s(o)

    and likewise for failures; with ``second_moments`` also :math:`\nabla^2\ell=\mathrm{Cov}_+(s)-\mathrm{Cov}_-(s)`
    (valid because :math:`\nabla^2\log\pi(o)` does not depend on :math:`o` in the log-linear families; a family
    with ``log_prob_hessians`` adds :math:`\mathbb E_+[\nabla^2\log\pi]-\mathbb E_-[\nabla^2\log\pi]`).
    """
    L, A = fam.response_shape(inst)
    total = A**L
    if total > MAX_RESPONSES:
        raise GradgapValueError(
            f"responses={A}^{L}={total}: too many to enumerate (limit {MAX_RESPONSES}); use method='structured'",
            field="responses", value=total)
    n = _n_params(fam, inst)
    logp = np.empty(total)
    success = np.empty(total, dtype=bool)
    for a, b in _batches(total, L):
        R = np.stack(np.unravel_index(np.arange(a, b), (A,) * L), axis=1).astype(np.int64)
        logp[a:b] = fam.log_probs(inst, R)
        success[a:b] = fam.rewards(inst, R).astype(bool)
    log_j = float(logsumexp(logp[success]))
    log_1mj = float(logsumexp(logp[~success]))
    w = np.exp(logp - np.where(success, log_j, log_1mj))
    plus, minus = np.zeros(n), np.zeros(n)
    p2, m2 = (np.zeros((n, n)), np.zeros((n, n))) if second_moments else (None, None)
    for a, b in _batches(total, n):
        R = np.stack(np.unravel_index(np.arange(a, b), (A,) * L), axis=1).astype(np.int64)
        S = fam.scores(inst, R)
        wb, sb = w[a:b], success[a:b]
        plus += wb[sb] @ S[sb]
        minus += wb[~sb] @ S[~sb]
        if p2 is not None and m2 is not None:
            p2 += (S[sb].T * wb[sb]) @ S[sb]
            m2 += (S[~sb].T * wb[~sb]) @ S[~sb]
            if fam.log_prob_hessians is not None:
                for c, d in _batches(len(R), n * n):  # rows of this batch, n^2 at a time
                    H, wc, sc = fam.log_prob_hessians(inst, R[c:d]), wb[c:d], sb[c:d]
                    p2 += np.einsum("i,ijk->jk", wc[sc], H[sc])
                    m2 += np.einsum("i,ijk->jk", wc[~sc], H[~sc])
    hessian = None
    if p2 is not None and m2 is not None:
        hessian = (p2 - np.outer(plus, plus)) - (m2 - np.outer(minus, minus))
    return Enumerated(log_j, log_1mj, plus, minus, hessian)


# ----------------------------------------------------------------------------------------------- autograd


def _torch_delta(fam: Family, inst: Any) -> Any:
    import torch

    return torch.zeros(_n_params(fam, inst), dtype=torch.float64, requires_grad=True)


def autograd_value_and_grad(fam: Family, inst: Any, fn: Callable[[Any, Any], Any]) -> tuple[float, Array]:
    r"""Value and torch-autograd gradient of ``fn(log J, log(1-J))`` at the instance's parameter."""
    import torch

    theta = _torch_delta(fam, inst)
    log_j, log_1mj = fam.torch_log_parts(inst, theta)
    value = fn(log_j, log_1mj)
    (grad,) = torch.autograd.grad(value, theta)
    return float(value.detach()), grad.detach().numpy().copy()


def autograd_hessian_log_odds(fam: Family, inst: Any) -> Array:
    r"""Torch Hessian of :math:`\ell(\theta) = \log J - \log(1-J)`."""
    import torch
    from torch.autograd.functional import hessian

    def ell(theta: Any) -> Any:
        log_j, log_1mj = fam.torch_log_parts(inst, theta)
        return log_j - log_1mj

    theta = torch.zeros(_n_params(fam, inst), dtype=torch.float64)
    return hessian(ell, theta).detach().numpy().copy()


def autograd_score(fam: Family, inst: Any, response: NDArray[np.int64]) -> Array:
    r"""Torch gradient of :math:`\log\pi_\theta(o)`."""
    import torch

    theta = _torch_delta(fam, inst)
    (grad,) = torch.autograd.grad(fam.torch_log_prob(inst, theta, response), theta)
    return grad.detach().numpy().copy()


# ----------------------------------------------------------------------------------------------------- fd


def fd_gradient(f: Callable[[Array], float], theta: Array, h: float) -> Array:
    r"""Central differences :math:`(f(\theta+he_i)-f(\theta-he_i))/2h` per coordinate."""
    out = np.empty(theta.size)
    for i in range(theta.size):
        e = np.zeros(theta.size)
        e[i] = h
        out[i] = (f(theta + e) - f(theta - e)) / (2 * h)
    return out


def fd_jacobian(f: Callable[[Array], Array], theta: Array, h: float) -> Array:
    r"""Central-difference Jacobian of a vector function, columns :math:`(f(\theta+he_i)-f(\theta-he_i))/2h`."""
    cols = []
    for i in range(theta.size):
        e = np.zeros(theta.size)
        e[i] = h
        cols.append((f(theta + e) - f(theta - e)) / (2 * h))
    return np.stack(cols, axis=1)


def _check_h(h: float) -> float:
    if isinstance(h, bool) or not isinstance(h, int | float) or not 0 < h < 1:
        raise GradgapValueError(f"h={h!r}: finite-difference step must lie in (0, 1)", field="h", value=h)
    return float(h)


# ----------------------------------------------------------------------------------------------------- mc


def _mc_sample(fam: Family, inst: Any, n: int | None, seed: Any) -> tuple[NDArray[np.int64], NDArray[np.bool_], int]:
    n = MC_SAMPLES if n is None else n
    rng = np.random.default_rng(seed)
    R = fam.sample(inst, n, rng)
    return R, fam.rewards(inst, R).astype(bool), n


def _mc_moments(fam: Family, inst: Any, R: NDArray[np.int64], success: NDArray[np.bool_],
                transform: Callable[[Array, NDArray[np.bool_]], Array] | None = None
                ) -> tuple[Moments, Moments, Moments]:
    """Moments of (transformed) scores over successes, failures and all responses."""
    n_out = None
    mom: list[Moments] = []
    for a, b in _batches(len(R), _n_params(fam, inst)):
        S = fam.scores(inst, R[a:b])
        if transform is not None:
            S = transform(S, success[a:b])
        if n_out is None:
            n_out = S.shape[1]
            mom = [Moments.empty(n_out) for _ in range(3)]
        mom[0].add(S[success[a:b]])
        mom[1].add(S[~success[a:b]])
        mom[2].add(S)
    return mom[0], mom[1], mom[2]


# ------------------------------------------------------------------------------------------ the quantities


def _exp_log_j(lj: Any, l1: Any) -> Any:
    return lj.exp()


def _ell(lj: Any, l1: Any) -> Any:
    return lj - l1


def _log_j(lj: Any, l1: Any) -> Any:
    return lj


def _log_1mj(lj: Any, l1: Any) -> Any:
    return l1


def success_rate(fam: Family, inst: Any, method: str, n: int | None = None, seed: Any = None) -> float | Estimate:
    check_method("success_rate", method, ("enumerate", "structured", "autograd", "mc"))
    _check_mc_args(method, n, seed)
    if method == "structured":
        return float(np.exp(fam.log_parts(inst, zero(fam, inst))[0]))
    if method == "enumerate":
        return float(np.exp(enumerate_parts(fam, inst).log_j))
    if method == "autograd":
        return autograd_value_and_grad(fam, inst, _exp_log_j)[0]
    _, success, n = _mc_sample(fam, inst, n, seed)
    mom = Moments.empty(1)
    mom.add(success.astype(np.float64)[:, None])
    est = mean_estimate(mom, n)
    return Estimate(float(est.mean[0]), float(est.stderr[0]), n)


def log_odds(fam: Family, inst: Any, method: str) -> float:
    check_method("log_odds", method, ("enumerate", "structured", "autograd"))
    if method == "structured":
        lj, l1 = fam.log_parts(inst, zero(fam, inst))
    elif method == "enumerate":
        parts = enumerate_parts(fam, inst)
        lj, l1 = parts.log_j, parts.log_1mj
    else:
        return autograd_value_and_grad(fam, inst, _ell)[0]
    return float(lj - l1)


def gradient_gap(fam: Family, inst: Any, method: str, n: int | None = None, seed: Any = None,
                 h: float = FD_STEP, quantity: str = "gradient_gap") -> Array | Estimate:
    check_method(quantity, method, METHODS)
    _check_mc_args(method, n, seed)
    if method == "structured":
        return fam.structured(inst, zero(fam, inst)).gap
    if method == "enumerate":
        parts = enumerate_parts(fam, inst)
        return parts.plus - parts.minus
    if method == "autograd":
        return autograd_value_and_grad(fam, inst, _ell)[1]
    if method == "fd":
        h = _check_h(h)
        return fd_gradient(lambda th: float(np.subtract(*fam.log_parts(inst, th))), zero(fam, inst), h)
    R, success, n = _mc_sample(fam, inst, n, seed)
    plus, minus, _ = _mc_moments(fam, inst, R, success)
    return difference_estimate(plus, minus, n)


def grad_success_rate(fam: Family, inst: Any, method: str, n: int | None = None, seed: Any = None,
                      h: float = FD_STEP) -> Array | Estimate:
    check_method("grad_success_rate", method, METHODS)
    _check_mc_args(method, n, seed)
    if method == "structured":
        parts = fam.structured(inst, zero(fam, inst))
        return np.exp(parts.log_j + parts.log_1mj) * parts.gap
    if method == "enumerate":
        parts = enumerate_parts(fam, inst)
        return np.exp(parts.log_j) * parts.plus
    if method == "autograd":
        return autograd_value_and_grad(fam, inst, _exp_log_j)[1]
    if method == "fd":
        h = _check_h(h)
        return fd_gradient(lambda th: float(np.exp(fam.log_parts(inst, th)[0])), zero(fam, inst), h)
    R, success, n = _mc_sample(fam, inst, n, seed)
    _, _, allm = _mc_moments(fam, inst, R, success, lambda S, r: S * r[:, None])
    return mean_estimate(allm, n)


def conditional_score(fam: Family, inst: Any, success: bool, method: str, n: int | None = None,
                      seed: Any = None, h: float = FD_STEP) -> Array | Estimate:
    check_method("conditional_score", method, METHODS)
    _check_mc_args(method, n, seed)
    if not isinstance(success, bool | np.bool_):
        raise GradgapTypeError(f"success={success!r}: must be True or False", field="success", value=success)
    if method == "structured":
        parts = fam.structured(inst, zero(fam, inst))
        return parts.plus if success else parts.minus
    if method == "enumerate":
        ep = enumerate_parts(fam, inst)
        return ep.plus if success else ep.minus
    if method == "autograd":
        return autograd_value_and_grad(fam, inst, _log_j if success else _log_1mj)[1]
    if method == "fd":
        h = _check_h(h)
        k = 0 if success else 1
        return fd_gradient(lambda th: float(fam.log_parts(inst, th)[k]), zero(fam, inst), h)
    R, ok, n = _mc_sample(fam, inst, n, seed)
    plus, minus, _ = _mc_moments(fam, inst, R, ok)
    return mean_estimate(plus if success else minus, n)


def expected_score(fam: Family, inst: Any, method: str, n: int | None = None, seed: Any = None) -> Array | Estimate:
    check_method("expected_score", method, ("enumerate", "structured", "autograd", "mc"))
    _check_mc_args(method, n, seed)
    if method == "structured":
        parts = fam.structured(inst, zero(fam, inst))
        return np.exp(parts.log_j) * parts.plus + np.exp(parts.log_1mj) * parts.minus
    if method == "enumerate":
        ep = enumerate_parts(fam, inst)
        return np.exp(ep.log_j) * ep.plus + np.exp(ep.log_1mj) * ep.minus
    if method == "autograd":
        lj, gp = autograd_value_and_grad(fam, inst, _log_j)
        l1, gm = autograd_value_and_grad(fam, inst, _log_1mj)
        return np.exp(lj) * gp + np.exp(l1) * gm
    R, success, n = _mc_sample(fam, inst, n, seed)
    _, _, allm = _mc_moments(fam, inst, R, success)
    return mean_estimate(allm, n)


def hessian_log_odds(fam: Family, inst: Any, method: str, h: float = FD_STEP) -> Array:
    supported = ("enumerate", "autograd", "fd") + (("structured",) if fam.structured_hessian else ())
    check_method("hessian_log_odds", method, supported)
    if method == "structured" and fam.structured_hessian is not None:
        return fam.structured_hessian(inst)
    if method == "enumerate":
        hess = enumerate_parts(fam, inst, second_moments=True).hessian
        assert hess is not None
        return hess
    if method == "autograd":
        return autograd_hessian_log_odds(fam, inst)
    h = _check_h(h)
    jac = fd_jacobian(lambda th: fam.structured(inst, th).gap, zero(fam, inst), h)
    return 0.5 * (jac + jac.T)


def _direction(fam: Family, inst: Any, w: ArrayLike) -> Array:
    n = _n_params(fam, inst)
    try:
        arr = np.asarray(w, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise GradgapTypeError(f"w={w!r}: must be a vector of numbers", field="w", value=w) from None
    if arr.size != n or not np.all(np.isfinite(arr)):
        raise GradgapValueError(f"w: must be {n} finite numbers, got {arr.size}", field="w", value=w)
    return arr


def alignment(fam: Family, inst: Any, w: ArrayLike, method: str, n: int | None = None, seed: Any = None,
              h: float = FD_STEP) -> float | Estimate:
    check_method("alignment", method, METHODS)
    _check_mc_args(method, n, seed)
    direction = _direction(fam, inst, w)
    if method in ("structured", "enumerate", "autograd"):
        return float(direction @ gradient_gap(fam, inst, method))
    if method == "fd":
        h = _check_h(h)
        theta = zero(fam, inst)

        def ell(th: Array) -> float:
            return float(np.subtract(*fam.log_parts(inst, th)))

        return (ell(theta + h * direction) - ell(theta - h * direction)) / (2 * h)
    R, success, n = _mc_sample(fam, inst, n, seed)
    plus, minus, _ = _mc_moments(fam, inst, R, success, lambda S, r: (S @ direction)[:, None])
    est = difference_estimate(plus, minus, n)
    return Estimate(float(est.mean[0]), float(est.stderr[0]), n)


def score(fam: Family, inst: Any, response: ArrayLike, method: str) -> Array:
    check_method("score", method, ("structured", "autograd"))
    R = as_responses(inst, fam, response)
    if R.shape[0] != 1:
        raise GradgapValueError("response: give exactly one response", field="response", value=response)
    if method == "structured":
        return fam.scores(inst, R)[0]
    return autograd_score(fam, inst, R[0])
