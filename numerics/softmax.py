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
``autograd``, ``fd``, ``mc`` (see :mod:`numerics._routes`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from numerics import _routes
from numerics._routes import FD_STEP, Family, Structured
from numerics.logspace import logsumexp
from numerics.montecarlo import Estimate
from theory.instances import SoftmaxBandit

__all__ = [
    "alignment",
    "conditional_score",
    "expected_score",
    "grad_log_odds",
    "grad_success_rate",
    "gradient_gap",
    "hessian_log_odds",
    "log_odds",
    "reward",
    "rewards",
    "sample_responses",
    "score",
    "success_rate",
]

Array = NDArray[np.float64]


def _mask(inst: SoftmaxBandit) -> NDArray[np.bool_]:
    mask = np.zeros(inst.K, dtype=bool)
    mask[sorted(inst.correct)] = True
    return mask


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
    name="softmax",
    theta=lambda inst: np.asarray(inst.logits, dtype=np.float64),
    structured=_structured,
    log_parts=_log_parts,
    torch_log_parts=_torch_log_parts,
    torch_log_prob=_torch_log_prob,
    response_shape=lambda inst: (1, inst.K),
    log_probs=_log_probs,
    rewards=_rewards,
    scores=_scores,
    sample=_sample,
    structured_hessian=_structured_hessian,
)

_EX = SoftmaxBandit(logits=(0.0, 0.0), correct=frozenset({0}))


def success_rate(inst: SoftmaxBandit, *, method: str = "structured", n: int | None = None,
                 seed: Any = None) -> float | Estimate:
    r"""Success rate :math:`J = \sum_{a\in C}\pi_\theta(a) = e^{L_C - L}` (:math:`L_S` = logsumexp over S).

    Source: reconstruction §1 (:math:`J_q`), QUOTED-2nd; softmax form §2.1 item 5, DERIVED.

    >>> success_rate(_EX)
    0.5
    """
    return _routes.success_rate(FAMILY, inst, method, n, seed)


def reward(inst: SoftmaxBandit, response: ArrayLike) -> int:
    r"""Reward :math:`r(a) = \mathbb 1[a\in C]` of one response ``(a,)``.

    Source: reconstruction §1, INFERRED.

    >>> reward(_EX, (0,))
    1
    """
    return int(rewards(inst, [response])[0])


def rewards(inst: SoftmaxBandit, responses: ArrayLike) -> NDArray[np.int64]:
    r"""Vectorised :func:`reward` over an ``(N, 1)`` array of responses.

    >>> rewards(_EX, [(0,), (1,)]).tolist()
    [1, 0]
    """
    return _rewards(inst, _routes.as_responses(inst, FAMILY, responses))


def score(inst: SoftmaxBandit, response: ArrayLike, *, method: str = "structured") -> Array:
    r"""Score :math:`s(a) = \nabla_\theta\log\pi_\theta(a) = e_a - \pi_\theta`.

    Source: reconstruction §1 (score), QUOTED.

    >>> score(_EX, (0,)).tolist()
    [0.5, -0.5]
    """
    return _routes.score(FAMILY, inst, response, method)


def conditional_score(inst: SoftmaxBandit, success: bool, *, method: str = "structured", n: int | None = None,
                      seed: Any = None, h: float = FD_STEP) -> Array | Estimate:
    r"""Conditional mean score :math:`\mathbb E_\pm[s] = q_\pm - \pi`, :math:`q_+=\mathrm{softmax}(\theta_C)`,
    :math:`q_-=\mathrm{softmax}(\theta_{\bar C})`; ``fd``/``autograd``: :math:`\nabla\log J`, :math:`\nabla\log(1-J)`.

    Source: reconstruction §2.1 item 5, DERIVED.

    >>> conditional_score(_EX, True).tolist()
    [0.5, -0.5]
    """
    return _routes.conditional_score(FAMILY, inst, success, method, n, seed, h)


def expected_score(inst: SoftmaxBandit, *, method: str = "structured", n: int | None = None,
                   seed: Any = None) -> Array | Estimate:
    r"""Mean score :math:`\mathbb E_\pi[s] = J\,\mathbb E_+[s] + (1-J)\,\mathbb E_-[s]` (zero).

    Source: reconstruction §2.1 (proof), DERIVED.

    >>> expected_score(_EX).tolist()
    [0.0, 0.0]
    """
    return _routes.expected_score(FAMILY, inst, method, n, seed)


def gradient_gap(inst: SoftmaxBandit, *, method: str = "structured", n: int | None = None, seed: Any = None,
                 h: float = FD_STEP) -> Array | Estimate:
    r"""Gradient Gap :math:`g = \mathbb E_+[s] - \mathbb E_-[s] = q_+ - q_-`.

    Source: reconstruction §2.1 (boxed definition) and item 5, DERIVED.

    >>> gradient_gap(SoftmaxBandit(logits=(1000.0, -1000.0, 0.0), correct=frozenset({0}))).tolist() == [1, 0, -1]
    True
    """
    return _routes.gradient_gap(FAMILY, inst, method, n, seed, h)


def grad_log_odds(inst: SoftmaxBandit, *, method: str = "structured", n: int | None = None, seed: Any = None,
                  h: float = FD_STEP) -> Array | Estimate:
    r"""Gradient of the log-odds :math:`\nabla\ell`, equal to :math:`g` (same routes as :func:`gradient_gap`).

    Source: reconstruction §2.1 item 2, DERIVED.

    >>> grad_log_odds(_EX).tolist()
    [1.0, -1.0]
    """
    return _routes.gradient_gap(FAMILY, inst, method, n, seed, h, quantity="grad_log_odds")


def grad_success_rate(inst: SoftmaxBandit, *, method: str = "structured", n: int | None = None,
                      seed: Any = None, h: float = FD_STEP) -> Array | Estimate:
    r"""Policy gradient :math:`\nabla J = J(1-J)\,g`, with :math:`J(1-J)=e^{\log J+\log(1-J)}`.

    Source: reconstruction §2.1 (:math:`\nabla J=\mathrm{Var}(r)\,g`), QUOTED-2nd.

    >>> grad_success_rate(_EX).tolist()
    [0.25, -0.25]
    """
    return _routes.grad_success_rate(FAMILY, inst, method, n, seed, h)


def log_odds(inst: SoftmaxBandit, *, method: str = "structured") -> float:
    r"""Log-odds :math:`\ell = \log\frac{J}{1-J} = L_C - L_{\bar C}` (logsumexp over the correct / wrong arms).

    Source: reconstruction §2.1 item 2 and §4.1 (potential), QUOTED (reviews).

    >>> log_odds(SoftmaxBandit(logits=(1000.0, -1000.0, 0.0), correct=frozenset({0})))
    1000.0
    """
    return _routes.log_odds(FAMILY, inst, method)


def hessian_log_odds(inst: SoftmaxBandit, *, method: str = "structured", h: float = FD_STEP) -> Array:
    r"""Hessian :math:`\nabla^2\ell = \mathrm{Cov}_+(s)-\mathrm{Cov}_-(s)
    = \mathrm{diag}\,q_+ - q_+q_+^\top - \mathrm{diag}\,q_- + q_-q_-^\top`.

    Source: reconstruction §4.1 (second-order form), DERIVED.

    >>> hessian_log_odds(_EX).tolist()
    [[0.0, 0.0], [0.0, 0.0]]
    """
    return _routes.hessian_log_odds(FAMILY, inst, method, h)


def alignment(inst: SoftmaxBandit, w: ArrayLike, *, method: str = "structured", n: int | None = None,
              seed: Any = None, h: float = FD_STEP) -> float | Estimate:
    r"""Alignment :math:`\Delta\mu = \langle w, g\rangle` (``fd``: central difference of :math:`\ell` along :math:`w`).

    Source: reconstruction §2.2, INFERRED.

    >>> alignment(_EX, (1.0, 0.0))
    1.0
    """
    return _routes.alignment(FAMILY, inst, w, method, n, seed, h)


def sample_responses(inst: SoftmaxBandit, n: int, rng: np.random.Generator) -> NDArray[np.int64]:
    r"""``n`` responses :math:`a\sim\pi_\theta` as an ``(n, 1)`` int array.

    >>> sample_responses(_EX, 3, np.random.default_rng(0)).shape
    (3, 1)
    """
    return _sample(inst, n, rng)
