r"""K-armed softmax bandit, numeric twin (numpy / torch float64) of ``theory/softmax.py``.

==============================  ==========================  ============================================
paper                           here                        structured form
==============================  ==========================  ============================================
:math:`J = \sum_{a\in C}\pi_a`  :func:`success_rate`        :math:`e^{L_C - L}`
:math:`\ell=\log\frac{J}{1-J}`  :func:`log_odds`            :math:`L_C - L_{\bar C}`
:math:`s(a)`                    :func:`score`               :math:`e_a - \pi`
:math:`\mathbb E_\pm[s]`        :func:`conditional_score`   :math:`q_\pm - \pi`
:math:`g`                       :func:`gradient_gap`        :math:`q_+ - q_-`
:math:`\nabla J`                :func:`grad_success_rate`   :math:`J(1-J)\,g`
:math:`\nabla^2\ell`            :func:`hessian_log_odds`    :math:`Q(q_+) - Q(q_-)`
:math:`\Delta\mu`               :func:`alignment`           :math:`\langle w, g\rangle`
==============================  ==========================  ============================================

:math:`L_S = \log\sum_{a\in S}e^{\theta_a}` (logsumexp; :math:`L` over all arms);
:math:`q_+ = \mathrm{softmax}(\theta_C)` and :math:`q_- = \mathrm{softmax}(\theta_{\bar C})`, scattered into
:math:`\mathbb R^K`; :math:`Q(q)=\mathrm{diag}\,q-qq^\top`.
Every quantity takes a keyword-only ``method`` from ``enumerate``, ``structured`` (default),
``autograd``, ``fd``, ``mc`` (see :mod:`gradgap.numerics._routes`).

Example (two even arms, arm 0 correct; then the logits :math:`(1000,-1000,0)`, exact in float64):

>>> ex = SoftmaxBandit(logits=(0.0, 0.0), correct=frozenset({0}))
>>> success_rate(ex), reward(ex, (0,)), score(ex, (0,)).tolist(), conditional_score(ex, True).tolist()
(0.5, 1, [0.5, -0.5], [0.5, -0.5])
>>> gradient_gap(ex).tolist(), grad_success_rate(ex).tolist(), hessian_log_odds(ex).tolist()
([1.0, -1.0], [0.25, -0.25], [[0.0, 0.0], [0.0, 0.0]])
>>> extreme = SoftmaxBandit(logits=(1000.0, -1000.0, 0.0), correct=frozenset({0}))
>>> log_odds(extreme), gradient_gap(extreme).tolist()
(1000.0, [1.0, 0.0, -1.0])
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gradgap.numerics import _routes
from gradgap.numerics._routes import Family, Structured
from gradgap.numerics.logspace import logsumexp
from gradgap.theory.instances import SoftmaxBandit
from numpy.typing import NDArray

__all__ = [*_routes.PUBLIC_NAMES]

Array = NDArray[np.float64]


def _mask(inst: SoftmaxBandit) -> NDArray[np.bool_]:
    return _routes.correct_mask(inst.K, inst.correct)


def _conditional_laws(inst: SoftmaxBandit, theta: Array) -> tuple[float, float, float, Array, Array, Array]:
    """``lse(theta)``, ``lse(theta_C)``, ``lse(theta_notC)``, ``pi``, ``q_plus``, ``q_minus``."""
    mask = _mask(inst)
    lse_all = float(logsumexp(theta))
    lse_c = float(logsumexp(theta[mask]))
    lse_n = float(logsumexp(theta[~mask]))
    pi = np.exp(theta - lse_all)
    q_plus, q_minus = np.zeros_like(pi), np.zeros_like(pi)
    q_plus[mask] = np.exp(theta[mask] - lse_c)
    q_minus[~mask] = np.exp(theta[~mask] - lse_n)
    return lse_all, lse_c, lse_n, pi, q_plus, q_minus


def _log_parts(inst: SoftmaxBandit, theta: Array) -> tuple[float, float]:
    mask = _mask(inst)
    lse_all = float(logsumexp(theta))
    return float(logsumexp(theta[mask])) - lse_all, float(logsumexp(theta[~mask])) - lse_all


def _structured(inst: SoftmaxBandit, theta: Array) -> Structured:
    lse_all, lse_c, lse_n, pi, q_plus, q_minus = _conditional_laws(inst, theta)
    return Structured(lse_c - lse_all, lse_n - lse_all, q_plus - pi, q_minus - pi, q_plus - q_minus)


def _structured_hessian(inst: SoftmaxBandit) -> Array:
    _, _, _, _, qp, qm = _conditional_laws(inst, np.asarray(inst.logits, dtype=np.float64))
    return np.diag(qp) - np.outer(qp, qp) - np.diag(qm) + np.outer(qm, qm)


def _torch_log_parts(inst: SoftmaxBandit, theta: Any) -> tuple[Any, Any]:
    import torch

    mask = torch.as_tensor(_mask(inst))
    lse_all = torch.logsumexp(theta, 0)
    return torch.logsumexp(theta[mask], 0) - lse_all, torch.logsumexp(theta[~mask], 0) - lse_all


def _torch_log_prob(inst: SoftmaxBandit, theta: Any, response: NDArray[np.int64]) -> Any:
    import torch

    return theta[int(response[0])] - torch.logsumexp(theta, 0)


def _log_pi(inst: SoftmaxBandit) -> Array:
    theta = np.asarray(inst.logits, dtype=np.float64)
    return theta - logsumexp(theta)


def _log_probs(inst: SoftmaxBandit, R: NDArray[np.int64]) -> Array:
    return _log_pi(inst)[R[:, 0]]


def _rewards(inst: SoftmaxBandit, R: NDArray[np.int64]) -> NDArray[np.int64]:
    return _mask(inst)[R[:, 0]].astype(np.int64)


def _scores(inst: SoftmaxBandit, R: NDArray[np.int64]) -> Array:
    pi = np.exp(_log_pi(inst))
    S = -np.tile(pi, (R.shape[0], 1))
    S[np.arange(R.shape[0]), R[:, 0]] += 1.0
    return S


def _sample(inst: SoftmaxBandit, n: int, rng: np.random.Generator) -> NDArray[np.int64]:
    return _routes.sample_rows(_log_pi(inst)[None, :], n, rng)


FAMILY = Family(
    name="softmax", structured=_structured, log_parts=_log_parts, torch_log_parts=_torch_log_parts,
    torch_log_prob=_torch_log_prob, response_shape=lambda inst: (1, inst.K), log_probs=_log_probs,
    rewards=_rewards, scores=_scores, sample=_sample, structured_hessian=_structured_hessian,
)

(alignment, conditional_score, expected_score, grad_log_odds, grad_success_rate, gradient_gap, hessian_log_odds,
 log_odds, reward, rewards, sample_responses, score, success_rate) = _routes.public_functions(FAMILY, __name__)
