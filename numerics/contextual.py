r"""Contextual log-linear bandit, numeric twin (numpy / torch float64) of ``theory/contextual.py``.

==================  ================================  ==================================================
paper               here                              structured form
==================  ================================  ==================================================
:math:`J_x`         :func:`per_prompt_success_rate`   :math:`\sigma(\operatorname{lse}z_C-\operatorname{lse}z_{\bar C})`
:math:`J`           :func:`success_rate`              :math:`\exp\operatorname{lse}_x(\log\rho_x+\log J_x)`
:math:`g_x`         :func:`per_prompt_gradient_gap`   :math:`\mu_{x,C}-\mu_{x,\bar C}`
:math:`\mathbb E_+`  :func:`conditional_score`         :math:`\sum_x\rho_xJ_x(1-J_x)g_x/J`
:math:`g`           :func:`gradient_gap`              :math:`\sum_x\rho_xJ_x(1-J_x)g_x/(J(1-J))`
:math:`\nabla J`    :func:`grad_success_rate`         :math:`J(1-J)\,g`
:math:`\nabla^2\ell` :func:`hessian_log_odds`          (enumerate, autograd, fd)
:math:`\bar w`      :func:`expected_group_update`     per prompt, groups enumerated
==================  ================================  ==================================================

A response is the pair ``(x, a)`` (an ``(N, 2)`` array); ``response_shape`` is ``(2, max(P, A))`` and the
pairs outside ``P x A`` carry probability 0, so the generic enumeration of ``numerics._routes`` sees exactly the
``P*A`` pairs. :math:`z_x=\Phi_x\theta` is formed from feature differences to the largest logit of each prompt.

Example (two prompts, one feature, at :math:`\theta=0`):

>>> ex = ContextualBandit(theta=(0.0,), features=(((1.0,), (0.0,)), ((0.0,), (1.0,))),
...                       correct=(frozenset({0}), frozenset({1})))
>>> success_rate(ex), per_prompt_success_rate(ex).tolist()
(0.5, [0.5, 0.5])
>>> [round(float(x), 12) for x in gradient_gap(ex)]
[1.0]
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gradgap.numerics import _routes
from gradgap.numerics import algorithms as group_algorithms
from gradgap.numerics._routes import FD_STEP, Family, Structured
from gradgap.numerics.logspace import logsumexp, softplus
from gradgap.numerics.montecarlo import Estimate
from gradgap.theory.instances import ContextualBandit, GradgapValueError

__all__ = [*_routes.PUBLIC_NAMES, "angle_degrees", "expected_group_update", "group_gain",
           "length_success_rate", "length_update", "simulate_lengths",
           "per_prompt_gradient_gap", "per_prompt_log_odds", "per_prompt_success_rate", "prompt_gap_weights",
           "prompt_policy", "rule_update", "simulate"]

Array = NDArray[np.float64]


def _phi(inst: ContextualBandit) -> Array:
    """Features ``(P, A, d)``."""
    return np.asarray(inst.features, dtype=np.float64)


def _masks(inst: ContextualBandit) -> NDArray[np.bool_]:
    """Correct masks ``(P, A)``."""
    return np.stack([_routes.correct_mask(inst.A, c) for c in inst.correct])


def _log_rho(inst: ContextualBandit) -> Array:
    return np.log(np.asarray(inst.prompt_weights, dtype=np.float64))


def _relative(inst: ContextualBandit) -> Array:
    r"""Per prompt, :math:`z_x(a)-z_x(r_x)=(\phi(x,a)-\phi(x,r_x))^\top\theta`, :math:`r_x` the largest logit."""
    phi, theta = _phi(inst), np.asarray(inst.theta, dtype=np.float64)
    ref = np.argmax(phi @ theta, axis=1)
    diffs = phi - phi[np.arange(inst.P), ref][:, None, :]
    return diffs @ theta


def _z(inst: ContextualBandit, delta: Array) -> Array:
    return _relative(inst) + _phi(inst) @ np.asarray(delta, dtype=np.float64)


def _prompt_logs(inst: ContextualBandit, z: Array) -> tuple[Array, Array, Array, Array]:
    """Per prompt ``lse z_C``, ``lse z_notC``, ``log J_x``, ``log(1-J_x)``."""
    masks = _masks(inst)
    lse_c = np.array([float(logsumexp(z[x][masks[x]])) for x in range(inst.P)])
    lse_n = np.array([float(logsumexp(z[x][~masks[x]])) for x in range(inst.P)])
    return lse_c, lse_n, -softplus(lse_n - lse_c), -softplus(lse_c - lse_n)


def _log_parts(inst: ContextualBandit, delta: Array) -> tuple[float, float]:
    _, _, log_p, log_q = _prompt_logs(inst, _z(inst, delta))
    rho = _log_rho(inst)
    return float(logsumexp(rho + log_p)), float(logsumexp(rho + log_q))


def _prompt_gaps(inst: ContextualBandit, z: Array, lse_c: Array, lse_n: Array) -> Array:
    phi, masks = _phi(inst), _masks(inst)
    out = np.empty((inst.P, inst.d))
    for x in range(inst.P):
        mu_c = np.exp(z[x][masks[x]] - lse_c[x]) @ phi[x][masks[x]]
        mu_n = np.exp(z[x][~masks[x]] - lse_n[x]) @ phi[x][~masks[x]]
        out[x] = mu_c - mu_n
    return out


def _structured(inst: ContextualBandit, delta: Array) -> Structured:
    z = _z(inst, delta)
    lse_c, lse_n, log_p, log_q = _prompt_logs(inst, z)
    rho = _log_rho(inst)
    log_j, log_1mj = float(logsumexp(rho + log_p)), float(logsumexp(rho + log_q))
    gaps = _prompt_gaps(inst, z, lse_c, lse_n)
    log_var = rho + log_p + log_q  # log rho_x J_x (1 - J_x)
    plus = np.exp(log_var - log_j) @ gaps
    minus = -np.exp(log_var - log_1mj) @ gaps
    return Structured(log_j, log_1mj, plus, minus, plus - minus)


def _torch_z(inst: ContextualBandit, delta: Any) -> Any:
    import torch

    return torch.as_tensor(_relative(inst)) + torch.as_tensor(_phi(inst)) @ delta


def _torch_log_parts(inst: ContextualBandit, delta: Any) -> tuple[Any, Any]:
    import torch

    z = _torch_z(inst, delta)
    masks = torch.as_tensor(_masks(inst))
    log_pi = torch.log_softmax(z, dim=1)
    neg = torch.tensor(-torch.inf, dtype=torch.float64)
    log_p = torch.logsumexp(torch.where(masks, log_pi, neg), dim=1)
    log_q = torch.logsumexp(torch.where(masks, neg, log_pi), dim=1)
    rho = torch.as_tensor(_log_rho(inst))
    return torch.logsumexp(rho + log_p, 0), torch.logsumexp(rho + log_q, 0)


def _torch_log_prob(inst: ContextualBandit, delta: Any, response: NDArray[np.int64]) -> Any:
    import torch

    x, a = int(response[0]), int(response[1])
    return torch.log_softmax(_torch_z(inst, delta)[x], 0)[a]


def _log_pi(inst: ContextualBandit) -> Array:
    z = _relative(inst)
    return z - np.asarray(logsumexp(z, axis=1)).reshape(-1, 1)


def _valid(inst: ContextualBandit, R: NDArray[np.int64]) -> NDArray[np.bool_]:
    return (R[:, 0] < inst.P) & (R[:, 1] < inst.A)


def _clipped(inst: ContextualBandit, R: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    return np.minimum(R[:, 0], inst.P - 1), np.minimum(R[:, 1], inst.A - 1)


def _log_probs(inst: ContextualBandit, R: NDArray[np.int64]) -> Array:
    x, a = _clipped(inst, R)
    out = _log_rho(inst)[x] + _log_pi(inst)[x, a]
    return np.where(_valid(inst, R), out, -np.inf)


def _rewards(inst: ContextualBandit, R: NDArray[np.int64]) -> NDArray[np.int64]:
    x, a = _clipped(inst, R)
    return (_masks(inst)[x, a] & _valid(inst, R)).astype(np.int64)


def _scores(inst: ContextualBandit, R: NDArray[np.int64]) -> Array:
    phi = _phi(inst)
    pi = np.exp(_log_pi(inst))
    mu = np.einsum("xa,xad->xd", pi, phi)
    x, a = _clipped(inst, R)
    return np.where(_valid(inst, R)[:, None], phi[x, a] - mu[x], 0.0)


def _sample(inst: ContextualBandit, n: int, rng: np.random.Generator) -> NDArray[np.int64]:
    x = _routes.sample_rows(_log_rho(inst)[None, :], n, rng)[:, 0]
    table = _routes.sample_rows(_log_pi(inst), n, rng)  # one candidate action per prompt and draw
    return np.stack([x, table[np.arange(n), x]], axis=1)


FAMILY = Family(
    name="contextual", structured=_structured, log_parts=_log_parts, torch_log_parts=_torch_log_parts,
    torch_log_prob=_torch_log_prob, response_shape=lambda inst: (2, max(inst.P, inst.A)), log_probs=_log_probs,
    rewards=_rewards, scores=_scores, sample=_sample,
    table_cost=lambda inst, method: float(inst.P * inst.A * inst.d),
)


def _pairs(inst: ContextualBandit, responses: ArrayLike) -> NDArray[np.int64]:
    R = _routes.as_responses(inst, FAMILY, responses)
    if R.size and not np.all(_valid(inst, R)):
        raise GradgapValueError(f"responses: pairs (x, a) need x in 0..{inst.P - 1} and a in 0..{inst.A - 1}",
                                field="responses", value=responses)
    return R


# ------------------------------------------------------------------------------------------ quantities


def success_rate(inst: ContextualBandit, *, method: str = "structured", n: int | None = None,
                 seed: Any = None) -> float | Estimate:
    r"""Success rate :math:`J=\sum_x\rho_xJ_x`; structured: :math:`e^{\operatorname{lse}_x(\log\rho_x+\log J_x)}`.
    ``mc``: an :class:`~gradgap.numerics.montecarlo.Estimate` from ``n`` pairs drawn with ``seed``.

    Source: reconstruction §1 (:math:`J_q`), QUOTED-2nd; §5 (contextual bandits), INFERRED.
    """
    return _routes.success_rate(FAMILY, inst, method, n, seed)


def log_odds(inst: ContextualBandit, *, method: str = "structured") -> float:
    r"""Log-odds :math:`\ell=\log J-\log(1-J)`, each a log-sum-exp over prompts.

    Source: reconstruction §2.1 item 2 and §4.1 (potential), QUOTED (reviews).
    """
    return _routes.log_odds(FAMILY, inst, method)


def gradient_gap(inst: ContextualBandit, *, method: str = "structured", n: int | None = None, seed: Any = None,
                 h: float = FD_STEP) -> Array | Estimate:
    r"""Joint Gradient Gap :math:`g=\mathbb E[s\mid r=1]-\mathbb E[s\mid r=0]` over pairs; structured:
    :math:`\sum_x\rho_xJ_x(1-J_x)g_x(\frac1J+\frac1{1-J})`. ``fd``: central differences of :math:`\ell`.

    Source: reconstruction §2.1 (boxed definition), DERIVED.
    """
    return _routes.gradient_gap(FAMILY, inst, method, n, seed, h)


def grad_log_odds(inst: ContextualBandit, *, method: str = "structured", n: int | None = None, seed: Any = None,
                  h: float = FD_STEP) -> Array | Estimate:
    r"""Gradient of the log-odds :math:`\nabla\ell`, equal to :math:`g` (the routes of :func:`gradient_gap`).

    Source: reconstruction §2.1 item 2, DERIVED.
    """
    return _routes.gradient_gap(FAMILY, inst, method, n, seed, h, quantity="grad_log_odds")


def grad_success_rate(inst: ContextualBandit, *, method: str = "structured", n: int | None = None, seed: Any = None,
                      h: float = FD_STEP) -> Array | Estimate:
    r"""Policy gradient :math:`\nabla J=J(1-J)\,g`, structured as :math:`e^{\log J+\log(1-J)}g`.

    Source: reconstruction §2.1 (:math:`\nabla J=\mathrm{Var}(r)\,g`), QUOTED-2nd.
    """
    return _routes.grad_success_rate(FAMILY, inst, method, n, seed, h)


def conditional_score(inst: ContextualBandit, success: bool, *, method: str = "structured", n: int | None = None,
                      seed: Any = None, h: float = FD_STEP) -> Array | Estimate:
    r"""Conditional mean score over pairs :math:`\mathbb E[s\mid r=\pm]` (``success=True``: :math:`+`).

    Source: reconstruction §2.1 (conditional laws), DERIVED.
    """
    return _routes.conditional_score(FAMILY, inst, success, method, n, seed, h)


def expected_score(inst: ContextualBandit, *, method: str = "structured", n: int | None = None,
                   seed: Any = None) -> Array | Estimate:
    r"""Mean score :math:`\mathbb E_\pi[s]` over pairs (zero).

    Source: reconstruction §2.1 (proof), DERIVED.
    """
    return _routes.expected_score(FAMILY, inst, method, n, seed)


def hessian_log_odds(inst: ContextualBandit, *, method: str = "autograd", h: float = FD_STEP) -> Array:
    r"""Hessian :math:`\nabla^2\ell`. ``enumerate``: :math:`\mathrm{Cov}_+(s)-\mathrm{Cov}_-(s)+\mathbb
    E_+[\nabla^2\log\pi]-\mathbb E_-[\nabla^2\log\pi]`, with
    :math:`\nabla^2\log\pi(a\mid x)=-\mathrm{Cov}_{\pi_x}(\phi_x)` (it depends on the
    prompt, unlike the one-prompt families); autograd (default), fd.

    Source: reconstruction §4.1 (second-order form), DERIVED.
    """
    if method != "enumerate":
        return _routes.hessian_log_odds(FAMILY, inst, method, h)
    parts = _routes.enumerate_parts(FAMILY, inst, second_moments=True)
    assert parts.hessian is not None
    phi, log_pi = _phi(inst), _log_pi(inst)
    _, _, log_p, log_q = _prompt_logs(inst, _relative(inst))
    rho = _log_rho(inst)
    correction = np.zeros((inst.d, inst.d))
    for x in range(inst.P):
        pi = np.exp(log_pi[x])
        centred = phi[x] - pi @ phi[x]
        cov = (centred.T * pi) @ centred
        weight = np.exp(rho[x] + log_p[x] - parts.log_j) - np.exp(rho[x] + log_q[x] - parts.log_1mj)
        correction -= weight * cov
    return parts.hessian + correction


def alignment(inst: ContextualBandit, w: ArrayLike, *, method: str = "structured", n: int | None = None,
              seed: Any = None, h: float = FD_STEP) -> float | Estimate:
    r"""Alignment :math:`\Delta\mu=\langle w,g\rangle` with the joint gap.

    Source: reconstruction §2.2, INFERRED.
    """
    return _routes.alignment(FAMILY, inst, w, method, n, seed, h)


def score(inst: ContextualBandit, response: ArrayLike, *, method: str = "structured") -> Array:
    r"""Score :math:`s(x,a)=\phi(x,a)-\mathbb E_{\pi_x}\phi_x` of one pair (``structured`` or ``autograd``).

    Source: reconstruction §1 (score), QUOTED.
    """
    _pairs(inst, response)
    return _routes.score(FAMILY, inst, response, method)


def reward(inst: ContextualBandit, response: ArrayLike) -> int:
    r"""Binary reward :math:`r(x,a)=\mathbb 1[a\in C_x]` of one pair.

    Source: reconstruction §1 (binary verifiable reward), INFERRED.
    """
    return int(rewards(inst, [response])[0])


def rewards(inst: ContextualBandit, responses: ArrayLike) -> NDArray[np.int64]:
    r"""Vectorised :func:`reward` over an ``(N, 2)`` array of pairs.

    Source: reconstruction §1, INFERRED.
    """
    return _rewards(inst, _pairs(inst, responses))


def sample_responses(inst: ContextualBandit, n: int, rng: np.random.Generator) -> NDArray[np.int64]:
    r"""``n`` pairs :math:`x\sim\rho`, :math:`a\sim\pi_\theta(\cdot\mid x)` drawn with ``rng``, ``(n, 2)``."""
    return FAMILY.sample(inst, n, rng)


def per_prompt_success_rate(inst: ContextualBandit) -> Array:
    r""":math:`(J_x)_{x<P}`, each :math:`e^{-\mathrm{softplus}(\operatorname{lse}z_{\bar C}-\operatorname{lse}z_C)}`.

    Source: reconstruction §5 (contextual bandits), INFERRED.
    """
    return np.exp(_prompt_logs(inst, _relative(inst))[2])


def per_prompt_log_odds(inst: ContextualBandit) -> Array:
    r""":math:`(\ell_x)_{x<P}`, :math:`\ell_x=\log\frac{J_x}{1-J_x}=\operatorname{lse}z_C-\operatorname{lse}z_{\bar C}`
    (no rounding of :math:`1-J_x` near 1).

    Source: reconstruction §2.1 item 2 applied to each prompt, DERIVED.
    """
    lse_c, lse_n, _, _ = _prompt_logs(inst, _relative(inst))
    return lse_c - lse_n


def prompt_gap_weights(inst: ContextualBandit) -> Array:
    r""":math:`(\omega_x)_{x<P}`, :math:`\omega_x=\rho_xJ_x(1-J_x)/(J(1-J))` (:math:`g=\sum_x\omega_xg_x`), in log
    space: each factor from its own log-sum-exp.

    Source: reconstruction §2.1 applied to prompts, DERIVED.
    """
    _, _, log_p, log_q = _prompt_logs(inst, _relative(inst))
    rho = _log_rho(inst)
    return np.exp(rho + log_p + log_q - float(logsumexp(rho + log_p)) - float(logsumexp(rho + log_q)))


def per_prompt_gradient_gap(inst: ContextualBandit) -> Array:
    r""":math:`(g_x)_{x<P}`, shape ``(P, d)``: :math:`g_x=\mu_{x,C}-\mu_{x,\bar C}` (one-prompt gap).

    Source: reconstruction §2.1 applied to each prompt, DERIVED.
    """
    z = _relative(inst)
    lse_c, lse_n, _, _ = _prompt_logs(inst, z)
    return _prompt_gaps(inst, z, lse_c, lse_n)


def prompt_policy(inst: ContextualBandit, x: int) -> group_algorithms.FinitePolicy:
    r"""The one-prompt policy of prompt ``x`` as a :class:`~gradgap.numerics.algorithms.FinitePolicy`: actions,
    :math:`\pi(a\mid x)`, scores :math:`\phi(x,a)-\bar\phi_x`, rewards, lengths 1."""
    R = np.stack([np.full(inst.A, x), np.arange(inst.A)], axis=1).astype(np.int64)
    probs = np.exp(_log_pi(inst)[x])
    return group_algorithms.FinitePolicy(probs, _scores(inst, R), _rewards(inst, R), np.ones(inst.A, dtype=np.int64))


def expected_group_update(inst: ContextualBandit, algorithm: str, G: int, *, eps: float = 0.0) -> Array:
    r"""Expected update with one group of G per prompt, :math:`\sum_x\rho_x\mathbb E[w_x]`, each
    :math:`\mathbb E[w_x]` by enumerating all :math:`A^G` ordered groups of prompt x (no gain formula).

    Source: reconstruction §4.4 (one prompt), extended to prompts, DERIVED.
    """
    rho = np.asarray(inst.prompt_weights)
    out = np.zeros(inst.d)
    for x in range(inst.P):
        upd = group_algorithms.expected_update(prompt_policy(inst, x), algorithm, G, method="enumerate", eps=eps)
        out += rho[x] * np.asarray(upd, dtype=float)
    return out


def angle_degrees(inst: ContextualBandit, algorithm: str, G: int) -> float:
    r"""Angle in degrees between the expected group update and :math:`\nabla J` (enumerated updates)."""
    return group_algorithms.angle_degrees(expected_group_update(inst, algorithm, G),
                                          np.asarray(grad_success_rate(inst, method="autograd")))


# ------------------------------------------------------------------------------------------ dynamics across prompts

#: update rules of :func:`simulate`: the joint Gradient Gap, or one group of G per prompt for an algorithm
CONTEXTUAL_RULES: tuple[str, ...] = ("gap", *group_algorithms.ADVANTAGES)


@functools.lru_cache(maxsize=64)
def _advantage_table(algorithm: str, G: int) -> tuple[tuple[float, float], ...]:
    """``(a_1(k), a_0(k))`` for k = 0..G successes, read off the group advantages of a group with k successes."""
    out = []
    for k in range(G + 1):
        adv = group_algorithms.group_advantages(algorithm, np.array([1] * k + [0] * (G - k)))
        out.append((float(adv[0]) if k > 0 else 0.0, float(adv[-1]) if k < G else 0.0))
    return tuple(out)


def group_gain(J: float, algorithm: str, G: int) -> float:
    r"""The finite-G gain :math:`\gamma(J,G)=\frac1G\sum_k\binom Gk J^k(1-J)^{G-k}[k(1-J)a_1(k)-(G-k)Ja_0(k)]`, the
    advantages :math:`a_1(k), a_0(k)` read off :func:`~gradgap.numerics.algorithms.group_advantages` on a group
    with k successes (T = 1, so every aggregation is the sequence-level one).

    >>> round(group_gain(0.5, "dr_grpo", 2), 12)
    0.125
    """
    total = 0.0
    for k, (a1, a0) in enumerate(_advantage_table(algorithm, G)):
        total += math.comb(G, k) * J**k * (1 - J) ** (G - k) * (k * (1 - J) * a1 - (G - k) * J * a0)
    return total / G


def rule_update(inst: ContextualBandit, rule: str, G: int = 8) -> Array:
    r"""The expected update of ``rule``: ``gap`` the joint Gradient Gap :math:`g` (aligned: :math:`\Delta\mu=\|g\|^2`);
    an algorithm: :math:`\sum_x\rho_x\gamma(J_x,G)g_x` (structured per-prompt quantities, :func:`group_gain`)."""
    if rule == "gap":
        return np.asarray(gradient_gap(inst))
    if rule not in CONTEXTUAL_RULES:
        raise GradgapValueError(f"rule={rule!r}: choose one of {', '.join(CONTEXTUAL_RULES)}", field="rule",
                                value=rule)
    J_x, g_x = per_prompt_success_rate(inst), per_prompt_gradient_gap(inst)
    gains = np.array([group_gain(float(j), rule, G) for j in J_x])
    return (np.asarray(inst.prompt_weights) * gains) @ g_x


def simulate(inst: ContextualBandit, etas: ArrayLike, *, rule: str = "gap", G: int = 8, steps: int = 200,
             optimizer: str = "sgd") -> dict[str, Array]:
    r"""Fixed-step trajectories :math:`\theta_{k+1}=\theta_k+\eta\,u_k` from ``inst.theta``, one per step size:
    ``sgd`` :math:`u_k=` :func:`rule_update`; ``adam`` the Adam direction of those updates (:math:`\beta=(0.9,
    0.999)`, :math:`\epsilon=10^{-8}`). Returns ``J`` and ``log_J`` ``(steps+1, len(etas))`` and the final ``theta``.
    """
    etas = np.atleast_1d(np.asarray(etas, dtype=float))
    out_J = np.empty((steps + 1, etas.size))
    out_log = np.empty((steps + 1, etas.size))
    final = np.empty((etas.size, inst.d))
    for j, eta in enumerate(etas):
        theta = np.asarray(inst.theta, dtype=float)
        m, v = np.zeros(inst.d), np.zeros(inst.d)
        for k in range(steps + 1):
            cur = inst.with_theta(tuple(float(x) for x in theta))
            log_j, _ = _log_parts(cur, np.zeros(inst.d))
            out_log[k, j], out_J[k, j] = log_j, math.exp(log_j)
            if k == steps:
                break
            u = rule_update(cur, rule, G)
            if optimizer == "adam":
                m = 0.9 * m + 0.1 * u
                v = 0.999 * v + 0.001 * u * u
                u = (m / (1 - 0.9 ** (k + 1))) / (np.sqrt(v / (1 - 0.999 ** (k + 1))) + 1e-8)
            elif optimizer != "sgd":
                raise GradgapValueError(f"optimizer={optimizer!r}: choose sgd or adam", field="optimizer",
                                        value=optimizer)
            theta = theta + eta * u
        final[j] = theta
    return {"J": out_J, "log_J": out_log, "theta": final}


# ------------------------------------------------------------------ responses of several tokens per prompt

#: the most token strings one prompt's response space may hold (A^T, enumerated)
MAX_STRINGS = 1 << 16


def _token_strings(inst: ContextualBandit, x: int, T: int) -> tuple[Array, NDArray[np.bool_]]:
    r"""All :math:`A^T` responses of prompt ``x``: their features :math:`\sum_t\phi(x,o_t)` ``(A^T, d)`` and rewards
    (every token in :math:`C_x`), enumerated with ``itertools.product`` order."""
    # T is bounded before A**T is formed: an absurd length must not build a huge integer
    if not (isinstance(T, int) and not isinstance(T, bool) and 1 <= T <= MAX_STRINGS.bit_length()
            and inst.A**T <= MAX_STRINGS):
        raise GradgapValueError(f"length={T!r} at prompt {x}: need an integer T >= 1 with A^T <= {MAX_STRINGS} "
                                f"(A = {inst.A})", field="lengths", value=T)
    phi = _phi(inst)[x]
    good = _masks(inst)[x]
    idx = np.indices((inst.A,) * T).reshape(T, -1).T  # (A^T, T) token indices
    return phi[idx].sum(axis=1), good[idx].all(axis=1)


def _check_lengths(inst: ContextualBandit, lengths: ArrayLike) -> tuple[int, ...]:
    out = tuple(int(t) if isinstance(t, int | np.integer) and not isinstance(t, bool) else t
                for t in np.atleast_1d(np.asarray(lengths, dtype=object)).tolist())
    if len(out) != inst.P:
        raise GradgapValueError(f"lengths={out!r}: need one response length per prompt (P={inst.P})",
                                field="lengths", value=out)
    return out


def _length_moments(tables: list[tuple[Array, NDArray[np.bool_]]], theta: Array
                    ) -> list[tuple[float, Array, Array]]:
    r"""Per prompt :math:`(J_x^{(T_x)},\ \mathbb E_x[r\,s],\ \mathbb E_x[(1-r)\,s])` with the response score
    :math:`s=\Phi(o)-\mathbb E\Phi`, over the enumerated strings ``tables`` (:func:`_token_strings`), probabilities
    from a log-sum-exp of :math:`\langle\theta,\Phi(o)\rangle`."""
    out = []
    for feats, rew in tables:
        z = feats @ theta
        p = np.exp(z - logsumexp(z))
        s = feats - p @ feats
        out.append((float(p[rew].sum()), (p * rew) @ s, (p * ~rew) @ s))
    return out


def _tables(inst: ContextualBandit, lengths: tuple[int, ...]) -> list[tuple[Array, NDArray[np.bool_]]]:
    return [_token_strings(inst, x, T) for x, T in enumerate(lengths)]


#: the updates of :func:`length_update`
LENGTH_UPDATES = ("summed", "normalised", "gap")


def _length_step(tables: list[tuple[Array, NDArray[np.bool_]]], rho: tuple[float, ...], lengths: tuple[int, ...],
                 theta: Array, update: str) -> tuple[float, Array]:
    r""":math:`J^{(T)}` and the expected update at ``theta``; ``gap`` is :math:`\mathbb E[s\mid r=1]-\mathbb E[s\mid
    r=0]` over the pairs (x, o), from the success and failure moments separately."""
    if update not in LENGTH_UPDATES:
        raise GradgapValueError(f"update={update!r}: choose one of {', '.join(LENGTH_UPDATES)}", field="update",
                                value=update)
    moments = _length_moments(tables, theta)
    J = math.fsum(r * j for r, (j, _, _) in zip(rho, moments, strict=True))
    if update == "gap":
        if not 0.0 < J < 1.0:
            raise GradgapValueError(f"J = {J!r} at theta = {theta.tolist()!r}: the Gradient Gap needs 0 < J < 1",
                                    field="theta", value=tuple(theta.tolist()))
        win = sum(r * w for r, (_, w, _) in zip(rho, moments, strict=True))
        lose = sum(r * v for r, (_, _, v) in zip(rho, moments, strict=True))
        return J, win / J - lose / (1.0 - J)
    total = np.zeros(theta.size)
    for r, t, (_, win, _) in zip(rho, lengths, moments, strict=True):
        total += r * (win / t if update == "normalised" else win)
    return J, total


def length_success_rate(inst: ContextualBandit, lengths: ArrayLike) -> float:
    r""":math:`J^{(T)}=\sum_x\rho_x\Pr(\text{every token of the }T_x\text{-token response is in }C_x)`, the
    :math:`A^{T_x}` responses of each prompt enumerated."""
    T = _check_lengths(inst, lengths)
    return _length_step(_tables(inst, T), inst.prompt_weights, T, np.asarray(inst.theta, float), "summed")[0]


def length_update(inst: ContextualBandit, lengths: ArrayLike, *, update: str) -> Array:
    r"""Expected update over the enumerated responses: REINFORCE :math:`\sum_x\rho_x c_x\,\mathbb E_x[r(o)
    \sum_ts(o_t)]` with :math:`c_x=1` (``summed``) or :math:`1/T_x` (``normalised``: each response's score divided by
    its length), or the joint Gradient Gap (``gap``) over the pairs (x, o)."""
    T = _check_lengths(inst, lengths)
    return _length_step(_tables(inst, T), inst.prompt_weights, T, np.asarray(inst.theta, float), update)[1]


def simulate_lengths(inst: ContextualBandit, lengths: ArrayLike, etas: ArrayLike, *, update: str,
                     steps: int = 200) -> dict[str, Array]:
    r"""Fixed-step trajectories :math:`\theta_{k+1}=\theta_k+\eta\,` :func:`length_update` from ``inst.theta``,
    one per step size: ``J`` ``(steps+1, len(etas))`` (:func:`length_success_rate`) and the final ``theta``."""
    T = _check_lengths(inst, lengths)
    tables = _tables(inst, T)
    etas = np.atleast_1d(np.asarray(etas, dtype=float))
    out_J = np.empty((steps + 1, etas.size))
    final = np.empty((etas.size, inst.d))
    for j, eta in enumerate(etas):
        theta = np.asarray(inst.theta, dtype=float)
        for k in range(steps + 1):
            if not np.all(np.isfinite(theta)):
                out_J[k:, j] = np.nan
                break
            out_J[k, j], u = _length_step(tables, inst.prompt_weights, T, theta, update)
            if k < steps:
                theta = theta + eta * u
        final[j] = theta
    return {"J": out_J, "theta": final}
