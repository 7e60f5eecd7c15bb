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
from gradgap.numerics import _routes
from gradgap.numerics._routes import Family, Structured
from gradgap.numerics.logspace import log_geometric_sum, logsumexp, softplus
from gradgap.theory.instances import SharedTokens
from numpy.typing import NDArray

__all__ = [*_routes.PUBLIC_NAMES]

Array = NDArray[np.float64]


def _mask(inst: SharedTokens) -> NDArray[np.bool_]:
    return _routes.correct_mask(inst.V, inst.correct)


def _phi(inst: SharedTokens) -> Array:
    return np.asarray(inst.features, dtype=np.float64)


def _z(inst: SharedTokens, theta: Array) -> Array:
    return _phi(inst) @ np.asarray(theta, dtype=np.float64) + np.asarray(inst.biases, dtype=np.float64)


def _log_p_q(inst: SharedTokens, z: Array) -> tuple[float, float, float, float]:
    """``lse z_C``, ``lse z_notC``, ``log p``, ``log(1-p)``."""
    mask = _mask(inst)
    lse_c, lse_n = float(logsumexp(z[mask])), float(logsumexp(z[~mask]))
    return lse_c, lse_n, -float(softplus(lse_n - lse_c)), -float(softplus(lse_c - lse_n))


def _log_parts(inst: SharedTokens, theta: Array) -> tuple[float, float]:
    _, _, log_p, log_q = _log_p_q(inst, _z(inst, theta))
    return inst.T * log_p, log_q + log_geometric_sum(log_p, inst.T)


def _structured(inst: SharedTokens, theta: Array) -> Structured:
    z, phi, mask = _z(inst, theta), _phi(inst), _mask(inst)
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


def _torch_log_parts(inst: SharedTokens, theta: Any) -> tuple[Any, Any]:
    import torch

    phi = torch.as_tensor(_phi(inst))
    z = phi @ theta + torch.as_tensor(inst.biases, dtype=torch.float64)
    mask = torch.as_tensor(_mask(inst))
    lse_c, lse_n = torch.logsumexp(z[mask], 0), torch.logsumexp(z[~mask], 0)
    zero = torch.zeros((), dtype=torch.float64)
    log_p = -torch.logaddexp(zero, lse_n - lse_c)
    log_q = -torch.logaddexp(zero, lse_c - lse_n)
    k = torch.arange(inst.T, dtype=torch.float64)
    return inst.T * log_p, log_q + torch.logsumexp(k * log_p, 0)


def _torch_log_prob(inst: SharedTokens, theta: Any, response: NDArray[np.int64]) -> Any:
    import torch

    z = torch.as_tensor(_phi(inst)) @ theta + torch.as_tensor(inst.biases, dtype=torch.float64)
    return torch.log_softmax(z, 0)[torch.as_tensor(response)].sum()


def _log_pi(inst: SharedTokens) -> Array:
    z = _z(inst, np.asarray(inst.theta))
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
)

(alignment, conditional_score, expected_score, grad_log_odds, grad_success_rate, gradient_gap, hessian_log_odds,
 log_odds, reward, rewards, sample_responses, score, success_rate) = _routes.public_functions(FAMILY, __name__)
