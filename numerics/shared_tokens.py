r"""Shared-parameter log-linear token policy, numeric twin (numpy / torch float64) of ``theory/shared_tokens.py``.

=====================================  ==========================  ==========================================
paper                                  here                        structured form
=====================================  ==========================  ==========================================
:math:`J = p^T`                        :func:`success_rate`        :math:`e^{T\log p}`
:math:`\ell=\log\frac{J}{1-J}`         :func:`log_odds`            :math:`T\log p-\log(1-p)-\log\sum_{k<T}p^k`
:math:`s(o)`                           :func:`score`               :math:`\sum_t\phi(o_t) - T\mu`
:math:`\mathbb E_+[s]`                 :func:`conditional_score`   :math:`T(\mu_C-\mu) = T(1-p)(\mu_C-\mu_{\bar C})`
:math:`g`                              :func:`gradient_gap`        :math:`\frac{T(1-p)}{1-p^T}(\mu_C-\mu_{\bar C})`
:math:`\nabla J`                       :func:`grad_success_rate`   :math:`J(1-J)\,g`
:math:`\nabla^2\ell`                   :func:`hessian_log_odds`    (enumerate, autograd, fd)
:math:`\Delta\mu=\langle w,g\rangle`   :func:`alignment`
=====================================  ==========================  ==========================================

:math:`\pi(v)\propto e^{z_v}`, :math:`z_v=\theta^\top\phi(v)+b_v`, :math:`p=\pi(C)`, :math:`\mu=\mathbb E_\pi[\phi]`,
:math:`\mu_C`, :math:`\mu_{\bar C}` the means of :math:`\phi` under :math:`\pi` restricted to :math:`C`, :math:`\bar C`.
Both :math:`\log p=-\mathrm{softplus}(\operatorname{lse} z_{\bar C}-\operatorname{lse} z_C)` and
:math:`\log(1-p)` come from logs, and :math:`\frac{T(1-p)}{1-p^T}=T/\sum_{k<T}p^k` stays finite as :math:`p\to1`.

Example (one feature, :math:`\phi=(0,1)`, token 1 correct, T=2, at :math:`\theta=0`: :math:`p=1/2`):

>>> ex = SharedTokens(theta=(0.0,), features=((0.0,), (1.0,)), correct=frozenset({1}), T=2)
>>> success_rate(ex), reward(ex, (1, 0)), score(ex, (1, 1)).tolist(), conditional_score(ex, True).tolist()
(0.25, 0, [1.0], [1.0])
>>> [round(x, 12) for x in gradient_gap(ex).tolist()], grad_success_rate(ex).tolist(), expected_score(ex).tolist()
([1.333333333333], [0.25], [0.0])
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gradgap.numerics import _routes
from gradgap.numerics._routes import FD_STEP, Family, Structured
from gradgap.numerics.logspace import log_geometric_sum, logsumexp, softplus
from gradgap.numerics.montecarlo import Estimate
from gradgap.theory.instances import SharedTokens

__all__ = [*_routes.PUBLIC_NAMES]

Array = NDArray[np.float64]


def _mask(inst: SharedTokens) -> NDArray[np.bool_]:
    return _routes.correct_mask(inst.V, inst.correct)


def _phi(inst: SharedTokens) -> Array:
    return np.asarray(inst.features, dtype=np.float64)


def _relative(inst: SharedTokens) -> Array:
    r"""The logit differences :math:`z_v-z_r=(\phi(v)-\phi(r))^\top\theta+(b_v-b_r)`, :math:`r` the largest
    logit, formed from the feature and bias differences before the parameter multiplies them."""
    phi, theta = _phi(inst), np.asarray(inst.theta, dtype=np.float64)
    bias = np.asarray(inst.biases, dtype=np.float64)
    ref = int(np.argmax(phi @ theta + bias))
    return (phi - phi[ref]) @ theta + (bias - bias[ref])


def _z(inst: SharedTokens, delta: Array) -> Array:
    return _relative(inst) + _phi(inst) @ np.asarray(delta, dtype=np.float64)


def _log_p_q(inst: SharedTokens, z: Array) -> tuple[float, float, float, float]:
    """``lse z_C``, ``lse z_notC``, ``log p``, ``log(1-p)``."""
    mask = _mask(inst)
    lse_c, lse_n = float(logsumexp(z[mask])), float(logsumexp(z[~mask]))
    return lse_c, lse_n, -float(softplus(lse_n - lse_c)), -float(softplus(lse_c - lse_n))


def _log_parts(inst: SharedTokens, delta: Array) -> tuple[float, float]:
    _, _, log_p, log_q = _log_p_q(inst, _z(inst, delta))
    return inst.T * log_p, log_q + log_geometric_sum(log_p, inst.T)


def _structured(inst: SharedTokens, delta: Array) -> Structured:
    z, phi, mask = _z(inst, delta), _phi(inst), _mask(inst)
    lse_c, lse_n, log_p, log_q = _log_p_q(inst, z)
    mu_c = np.exp(z[mask] - lse_c) @ phi[mask]
    mu_n = np.exp(z[~mask] - lse_n) @ phi[~mask]
    delta = mu_c - mu_n
    T = inst.T
    log_geo = log_geometric_sum(log_p, T)
    log_j, log_1mj = T * log_p, log_q + log_geo
    gap = np.exp(np.log(T) - log_geo) * delta
    plus = np.exp(np.log(T) + log_q) * delta
    minus = -np.exp(log_j) * gap
    return Structured(log_j, log_1mj, plus, minus, gap)


def _torch_log_parts(inst: SharedTokens, delta: Any) -> tuple[Any, Any]:
    import torch

    z = torch.as_tensor(_relative(inst)) + torch.as_tensor(_phi(inst)) @ delta
    mask = torch.as_tensor(_mask(inst))
    lse_c, lse_n = torch.logsumexp(z[mask], 0), torch.logsumexp(z[~mask], 0)
    zero = torch.zeros((), dtype=torch.float64)
    log_p = -torch.logaddexp(zero, lse_n - lse_c)
    log_q = -torch.logaddexp(zero, lse_c - lse_n)
    k = torch.arange(inst.T, dtype=torch.float64)
    return inst.T * log_p, log_q + torch.logsumexp(k * log_p, 0)


def _torch_log_prob(inst: SharedTokens, delta: Any, response: NDArray[np.int64]) -> Any:
    import torch

    z = torch.as_tensor(_relative(inst)) + torch.as_tensor(_phi(inst)) @ delta
    return torch.log_softmax(z, 0)[torch.as_tensor(response)].sum()


def _log_pi(inst: SharedTokens) -> Array:
    z = _relative(inst)
    return z - logsumexp(z)


def _log_probs(inst: SharedTokens, R: NDArray[np.int64]) -> Array:
    return _log_pi(inst)[R].sum(axis=1)


def _rewards(inst: SharedTokens, R: NDArray[np.int64]) -> NDArray[np.int64]:
    return _mask(inst)[R].all(axis=1).astype(np.int64)


def _scores(inst: SharedTokens, R: NDArray[np.int64]) -> Array:
    phi = _phi(inst)
    mu = np.exp(_log_pi(inst)) @ phi
    return phi[R].sum(axis=1) - inst.T * mu


def _sample(inst: SharedTokens, n: int, rng: np.random.Generator) -> NDArray[np.int64]:
    return _routes.sample_rows(np.tile(_log_pi(inst), (inst.T, 1)), n, rng)


FAMILY = Family(
    name="shared_tokens", structured=_structured, log_parts=_log_parts, torch_log_parts=_torch_log_parts,
    torch_log_prob=_torch_log_prob, response_shape=lambda inst: (inst.T, inst.V), log_probs=_log_probs,
    rewards=_rewards, scores=_scores, sample=_sample,
    table_cost=lambda inst, method: float(inst.V * inst.d + (inst.T if method in ("autograd", "fd") else 1)),
)


# ------------------------------------------------------------------------------------------ quantities
# Each quantity runs the route named by ``method`` (one body per route, in :mod:`gradgap.numerics._routes`).


def success_rate(inst: SharedTokens, *, method: str = "structured", n: int | None = None,
                 seed: Any = None) -> float | Estimate:
    r"""Success rate :math:`J=\Pr_{o\sim\pi_\theta}[r(o)=1]`; structured: :math:`e^{T\log p}`.
    ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn with ``seed``.

    Source: reconstruction §1 (:math:`J_q`), QUOTED-2nd.
    """
    return _routes.success_rate(FAMILY, inst, method, n, seed)


def log_odds(inst: SharedTokens, *, method: str = "structured") -> float:
    r"""Log-odds :math:`\ell=\log\frac{J}{1-J}=\log J-\log(1-J)`, each term computed as a logarithm;
    structured: :math:`T\log p-\log(1-p)-\log\sum_{k<T}p^k`.

    Source: reconstruction §2.1 item 2 and §4.1 (potential), QUOTED (reviews).
    """
    return _routes.log_odds(FAMILY, inst, method)


def gradient_gap(inst: SharedTokens, *, method: str = "structured", n: int | None = None, seed: Any = None,
                 h: float = FD_STEP) -> Array | Estimate:
    r"""Gradient Gap :math:`g=\mathbb E_+[s]-\mathbb E_-[s]`; structured:
    :math:`\frac{T(1-p)}{1-p^T}(\mu_C-\mu_{\bar C})`.
    ``fd``: central differences of :math:`\ell`. ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from
    ``n`` responses drawn with ``seed``.

    Source: reconstruction §2.1 (boxed definition), DERIVED.
    """
    return _routes.gradient_gap(FAMILY, inst, method, n, seed, h)


def grad_log_odds(inst: SharedTokens, *, method: str = "structured", n: int | None = None, seed: Any = None,
                  h: float = FD_STEP) -> Array | Estimate:
    r"""Gradient of the log-odds :math:`\nabla\ell`, equal to :math:`g` (the routes of :func:`gradient_gap`).
    ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn with ``seed``.

    Source: reconstruction §2.1 item 2, DERIVED.
    """
    return _routes.gradient_gap(FAMILY, inst, method, n, seed, h, quantity="grad_log_odds")


def grad_success_rate(inst: SharedTokens, *, method: str = "structured", n: int | None = None, seed: Any = None,
                      h: float = FD_STEP) -> Array | Estimate:
    r"""Policy gradient :math:`\nabla J=J(1-J)\,g`, structured as :math:`e^{\log J+\log(1-J)}\,g`.
    ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn with ``seed``.

    Source: reconstruction §2.1 (:math:`\nabla J=\mathrm{Var}(r)\,g`), QUOTED-2nd.
    """
    return _routes.grad_success_rate(FAMILY, inst, method, n, seed, h)


def conditional_score(inst: SharedTokens, success: bool, *, method: str = "structured", n: int | None = None,
                      seed: Any = None, h: float = FD_STEP) -> Array | Estimate:
    r"""Conditional mean score :math:`\mathbb E_\pm[s]=\mathbb E_\pi[s(o)\mid r(o)=\pm]` (``success=True``:
    :math:`+`); structured: :math:`\mathbb E_+[s]=T(1-p)(\mu_C-\mu_{\bar C})`, :math:`\mathbb
    E_-[s]=-\frac{J}{1-J}\mathbb E_+[s]`; ``fd``/``autograd``: :math:`\nabla\log J`,
    :math:`\nabla\log(1-J)`. ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn
    with ``seed``.

    Source: reconstruction §2.1 (conditional laws), DERIVED.
    """
    return _routes.conditional_score(FAMILY, inst, success, method, n, seed, h)


def expected_score(inst: SharedTokens, *, method: str = "structured", n: int | None = None,
                   seed: Any = None) -> Array | Estimate:
    r"""Mean score :math:`\mathbb E_\pi[s]=J\,\mathbb E_+[s]+(1-J)\,\mathbb E_-[s]` (zero). ``mc``: an
    :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn with ``seed``.

    Source: reconstruction §2.1 (proof), DERIVED.
    """
    return _routes.expected_score(FAMILY, inst, method, n, seed)


def hessian_log_odds(inst: SharedTokens, *, method: str = "autograd", h: float = FD_STEP) -> Array:
    r"""Hessian :math:`\nabla^2\ell=\mathrm{Cov}_+(s)-\mathrm{Cov}_-(s)` (:math:`\nabla^2\log\pi(o)` does not
    depend on :math:`o` in this log-linear family); routes enumerate, autograd (default), fd.

    Source: reconstruction §4.1 (second-order form), DERIVED.
    """
    return _routes.hessian_log_odds(FAMILY, inst, method, h)


def alignment(inst: SharedTokens, w: ArrayLike, *, method: str = "structured", n: int | None = None, seed: Any = None,
              h: float = FD_STEP) -> float | Estimate:
    r"""Alignment :math:`\Delta\mu=\langle w,g\rangle` (``fd``: central difference of :math:`\ell` along
    :math:`w`). ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn with ``seed``.

    Source: reconstruction §2.2, INFERRED.
    """
    return _routes.alignment(FAMILY, inst, w, method, n, seed, h)


def score(inst: SharedTokens, response: ArrayLike, *, method: str = "structured") -> Array:
    r"""Score :math:`s(o)=\nabla_\theta\log\pi_\theta(o)` of one response; structured: :math:`\sum_t\phi(o_t)-T\mu`
    (``structured`` or ``autograd``).

    Source: reconstruction §1 (score), QUOTED.
    """
    return _routes.score(FAMILY, inst, response, method)


def reward(inst: SharedTokens, response: ArrayLike) -> int:
    r"""Binary reward :math:`r(o)\in\{0,1\}` of one response (a tuple of token indices): :math:`\mathbb 1[\forall
    t: o_t\in C]`.

    Source: reconstruction §1 (binary verifiable reward), INFERRED.
    """
    return int(rewards(inst, [response])[0])


def rewards(inst: SharedTokens, responses: ArrayLike) -> NDArray[np.int64]:
    r"""Vectorised :func:`reward` over an ``(N, L)`` array of responses: :math:`(r(o_i))_{i\le N}`.

    Source: reconstruction §1, INFERRED.
    """
    return _rewards(inst, _routes.as_responses(inst, FAMILY, responses))


def sample_responses(inst: SharedTokens, n: int, rng: np.random.Generator) -> NDArray[np.int64]:
    r"""``n`` responses :math:`o\sim\pi_\theta` drawn with ``rng``, as an ``(n, L)`` int array."""
    return FAMILY.sample(inst, n, rng)
