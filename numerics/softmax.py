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
from numpy.typing import ArrayLike, NDArray

from gradgap.numerics import _routes
from gradgap.numerics._routes import FD_STEP, Family, Structured
from gradgap.numerics.logspace import logsumexp
from gradgap.numerics.montecarlo import Estimate
from gradgap.theory.instances import SoftmaxBandit

__all__ = [*_routes.PUBLIC_NAMES]

Array = NDArray[np.float64]


def _mask(inst: SoftmaxBandit) -> NDArray[np.bool_]:
    return _routes.correct_mask(inst.K, inst.correct)


def _relative(inst: SoftmaxBandit) -> Array:
    r"""The logit differences :math:`\theta_a-\max_b\theta_b`, formed before anything is added to them."""
    theta = np.asarray(inst.logits, dtype=np.float64)
    return theta - np.max(theta)


def _conditional_laws(inst: SoftmaxBandit, delta: Array) -> tuple[float, float, float, Array, Array, Array]:
    """``lse(theta)``, ``lse(theta_C)``, ``lse(theta_notC)``, ``pi``, ``q_plus``, ``q_minus`` at the relative
    logits displaced by ``delta``."""
    theta = _relative(inst) + delta
    mask = _mask(inst)
    lse_all = float(logsumexp(theta))
    lse_c = float(logsumexp(theta[mask]))
    lse_n = float(logsumexp(theta[~mask]))
    pi = np.exp(theta - lse_all)
    q_plus, q_minus = np.zeros_like(pi), np.zeros_like(pi)
    q_plus[mask] = np.exp(theta[mask] - lse_c)
    q_minus[~mask] = np.exp(theta[~mask] - lse_n)
    return lse_all, lse_c, lse_n, pi, q_plus, q_minus


def _log_parts(inst: SoftmaxBandit, delta: Array) -> tuple[float, float]:
    theta = _relative(inst) + delta
    mask = _mask(inst)
    lse_all = float(logsumexp(theta))
    return float(logsumexp(theta[mask])) - lse_all, float(logsumexp(theta[~mask])) - lse_all


def _structured(inst: SoftmaxBandit, delta: Array) -> Structured:
    lse_all, lse_c, lse_n, pi, q_plus, q_minus = _conditional_laws(inst, delta)
    return Structured(lse_c - lse_all, lse_n - lse_all, q_plus - pi, q_minus - pi, q_plus - q_minus)


def _structured_hessian(inst: SoftmaxBandit) -> Array:
    _, _, _, _, qp, qm = _conditional_laws(inst, np.zeros(inst.K))
    return np.diag(qp) - np.outer(qp, qp) - np.diag(qm) + np.outer(qm, qm)


def _torch_log_parts(inst: SoftmaxBandit, delta: Any) -> tuple[Any, Any]:
    import torch

    theta = torch.as_tensor(_relative(inst)) + delta
    mask = torch.as_tensor(_mask(inst))
    lse_all = torch.logsumexp(theta, 0)
    return torch.logsumexp(theta[mask], 0) - lse_all, torch.logsumexp(theta[~mask], 0) - lse_all


def _torch_log_prob(inst: SoftmaxBandit, delta: Any, response: NDArray[np.int64]) -> Any:
    import torch

    theta = torch.as_tensor(_relative(inst)) + delta
    return theta[int(response[0])] - torch.logsumexp(theta, 0)


def _log_pi(inst: SoftmaxBandit) -> Array:
    theta = _relative(inst)
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
    table_cost=lambda inst, method: float(inst.K),
)


# ------------------------------------------------------------------------------------------ quantities
# Each quantity runs the route named by ``method`` (one body per route, in :mod:`gradgap.numerics._routes`).


def success_rate(inst: SoftmaxBandit, *, method: str = "structured", n: int | None = None,
                 seed: Any = None) -> float | Estimate:
    r"""Success rate :math:`J=\Pr_{o\sim\pi_\theta}[r(o)=1]`; structured: :math:`e^{L_C-L}`.
    ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn with ``seed``.

    Source: reconstruction §1 (:math:`J_q`), QUOTED-2nd.
    """
    return _routes.success_rate(FAMILY, inst, method, n, seed)


def log_odds(inst: SoftmaxBandit, *, method: str = "structured") -> float:
    r"""Log-odds :math:`\ell=\log\frac{J}{1-J}=\log J-\log(1-J)`, each term computed as a logarithm;
    structured: :math:`L_C-L_{\bar C}`.

    Source: reconstruction §2.1 item 2 and §4.1 (potential), QUOTED (reviews).
    """
    return _routes.log_odds(FAMILY, inst, method)


def gradient_gap(inst: SoftmaxBandit, *, method: str = "structured", n: int | None = None, seed: Any = None,
                 h: float = FD_STEP) -> Array | Estimate:
    r"""Gradient Gap :math:`g=\mathbb E_+[s]-\mathbb E_-[s]`; structured: :math:`q_+-q_-`.
    ``fd``: central differences of :math:`\ell`. ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from
    ``n`` responses drawn with ``seed``.

    Source: reconstruction §2.1 (boxed definition), DERIVED.
    """
    return _routes.gradient_gap(FAMILY, inst, method, n, seed, h)


def grad_log_odds(inst: SoftmaxBandit, *, method: str = "structured", n: int | None = None, seed: Any = None,
                  h: float = FD_STEP) -> Array | Estimate:
    r"""Gradient of the log-odds :math:`\nabla\ell`, equal to :math:`g` (the routes of :func:`gradient_gap`).
    ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn with ``seed``.

    Source: reconstruction §2.1 item 2, DERIVED.
    """
    return _routes.gradient_gap(FAMILY, inst, method, n, seed, h, quantity="grad_log_odds")


def grad_success_rate(inst: SoftmaxBandit, *, method: str = "structured", n: int | None = None, seed: Any = None,
                      h: float = FD_STEP) -> Array | Estimate:
    r"""Policy gradient :math:`\nabla J=J(1-J)\,g`, structured as :math:`e^{\log J+\log(1-J)}\,g`.
    ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn with ``seed``.

    Source: reconstruction §2.1 (:math:`\nabla J=\mathrm{Var}(r)\,g`), QUOTED-2nd.
    """
    return _routes.grad_success_rate(FAMILY, inst, method, n, seed, h)


def conditional_score(inst: SoftmaxBandit, success: bool, *, method: str = "structured", n: int | None = None,
                      seed: Any = None, h: float = FD_STEP) -> Array | Estimate:
    r"""Conditional mean score :math:`\mathbb E_\pm[s]=\mathbb E_\pi[s(o)\mid r(o)=\pm]` (``success=True``:
    :math:`+`); structured: :math:`q_\pm-\pi`; ``fd``/``autograd``: :math:`\nabla\log J`,
    :math:`\nabla\log(1-J)`. ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn
    with ``seed``.

    Source: reconstruction §2.1 (conditional laws), DERIVED.
    """
    return _routes.conditional_score(FAMILY, inst, success, method, n, seed, h)


def expected_score(inst: SoftmaxBandit, *, method: str = "structured", n: int | None = None,
                   seed: Any = None) -> Array | Estimate:
    r"""Mean score :math:`\mathbb E_\pi[s]=J\,\mathbb E_+[s]+(1-J)\,\mathbb E_-[s]` (zero). ``mc``: an
    :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn with ``seed``.

    Source: reconstruction §2.1 (proof), DERIVED.
    """
    return _routes.expected_score(FAMILY, inst, method, n, seed)


def hessian_log_odds(inst: SoftmaxBandit, *, method: str = "structured", h: float = FD_STEP) -> Array:
    r"""Hessian :math:`\nabla^2\ell=\mathrm{Cov}_+(s)-\mathrm{Cov}_-(s)` (:math:`\nabla^2\log\pi(o)` does not
    depend on :math:`o` in this log-linear family); structured: :math:`Q(q_+)-Q(q_-)`.

    Source: reconstruction §4.1 (second-order form), DERIVED.
    """
    return _routes.hessian_log_odds(FAMILY, inst, method, h)


def alignment(inst: SoftmaxBandit, w: ArrayLike, *, method: str = "structured", n: int | None = None, seed: Any = None,
              h: float = FD_STEP) -> float | Estimate:
    r"""Alignment :math:`\Delta\mu=\langle w,g\rangle` (``fd``: central difference of :math:`\ell` along
    :math:`w`). ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` responses drawn with ``seed``.

    Source: reconstruction §2.2, INFERRED.
    """
    return _routes.alignment(FAMILY, inst, w, method, n, seed, h)


def score(inst: SoftmaxBandit, response: ArrayLike, *, method: str = "structured") -> Array:
    r"""Score :math:`s(o)=\nabla_\theta\log\pi_\theta(o)` of one response; structured: :math:`e_a-\pi`
    (``structured`` or ``autograd``).

    Source: reconstruction §1 (score), QUOTED.
    """
    return _routes.score(FAMILY, inst, response, method)


def reward(inst: SoftmaxBandit, response: ArrayLike) -> int:
    r"""Binary reward :math:`r(o)\in\{0,1\}` of one response (a tuple of token indices): :math:`\mathbb 1[a\in C]`.

    Source: reconstruction §1 (binary verifiable reward), INFERRED.
    """
    return int(rewards(inst, [response])[0])


def rewards(inst: SoftmaxBandit, responses: ArrayLike) -> NDArray[np.int64]:
    r"""Vectorised :func:`reward` over an ``(N, L)`` array of responses: :math:`(r(o_i))_{i\le N}`.

    Source: reconstruction §1, INFERRED.
    """
    return _rewards(inst, _routes.as_responses(inst, FAMILY, responses))


def sample_responses(inst: SoftmaxBandit, n: int, rng: np.random.Generator) -> NDArray[np.int64]:
    r"""``n`` responses :math:`o\sim\pi_\theta` drawn with ``rng``, as an ``(n, L)`` int array."""
    return FAMILY.sample(inst, n, rng)
