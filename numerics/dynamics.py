r"""Vectorised, seeded simulator of the RLVR iteration :math:`\theta_{k+1} = \theta_k + \eta_k w_k`.

The policies are log-linear with a product reward: position type :math:`j` (repeated :math:`m_j` times)
has :math:`\pi_j(v) \propto \exp(\theta^\top\phi_j(v) + b_j(v))`, correct subset :math:`C_j`, and
:math:`J = \prod_j p_j^{m_j}` with :math:`p_j = \pi_j(C_j)`. This covers the three families of
``gradgap.theory.instances``: a softmax bandit (one type, :math:`\phi = I`), a tabular token sequence with exact
match (one type per position, :math:`\phi_t(v) = e_{tV+v}`) and the shared-token family (one type repeated
:math:`T` times).

Notation (paper symbol -> name):

=====================  ============================  ==============================================
paper                  here                           meaning
=====================  ============================  ==============================================
:math:`J`              ``success_rate``               success rate
:math:`g`              ``gradient_gap``               :math:`\nabla\ell = \nabla J/(J(1-J))`
:math:`c(J)`           ``GAINS``                      scalar gain of an update rule along :math:`g`
:math:`w_k`            ``expected_update`` /          direction of step :math:`k`
                       ``sampled_update``
:math:`\eta`           ``etas``                       step sizes (one simulation per step size)
:math:`G`              ``SimConfig.group_size``       responses sampled per step
:math:`T = |o|`        ``LogLinearModel.T``           response length
=====================  ============================  ==============================================

Every array function broadcasts over leading axes: ``theta`` has shape ``(..., d)``; a model may carry a
leading instance axis (see :func:`stack_models`), so one call simulates many instances and step sizes.

Source: reconstruction §1 (iteration, QUOTED-2nd/INFERRED), §4.4 (gains, DERIVED); the simulator itself is
this project's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, final

import numpy as np

from gradgap.theory.instances import (  # noqa: F401 (SharedTokens, SoftmaxBandit: doctests)
    RULES,
    GradgapValueError,
    Instance,
    SharedTokens,
    SoftmaxBandit,
)

__all__ = [
    "CLASSES",
    "GAINS",
    "RULES",
    "LogLinearModel",
    "SimConfig",
    "Trajectory",
    "classify",
    "collapse_fraction",
    "critical_step_bisect",
    "expected_update",
    "gradient_gap",
    "log_success_rate",
    "period",
    "sampled_update",
    "simulate",
    "stack_models",
    "success_rate",
]

Rule = Literal["gap", "reinforce", "dr_grpo", "grpo"]
# the update rules' names, RULES, are the shared vocabulary of gradgap.theory.instances

#: population gains c(J) of the expected updates, E[w] = c(J) g, in the limit of a large group
#: (G -> infinity), sequence-level (the 1/T aggregation is ``SimConfig.length_normalized``). Plain formulas
#: here (numerics may not import theory/); they are the T = 1 values of ``gradgap.theory.algorithms.gain_limit``
#: (reconstruction §4.4, DERIVED). The exact finite-G gain of Dr. GRPO is (1 - 1/G) J(1 - J).
GAINS: Final[dict[str, str]] = {
    "gap": "1",
    "reinforce": "J(1-J)",
    "dr_grpo": "J(1-J)",
    "grpo": "sqrt(J(1-J))",
}

#: the outcome classes of :func:`classify`
CLASSES: Final[tuple[str, ...]] = (
    "converged", "collapsed_to_0", "frozen_near_0", "two_cycle", "chaotic", "stalled")


def _lse(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log-sum-exp along ``axis``; ``-inf`` entries allowed (an all ``-inf`` slice gives ``-inf``)."""
    m = np.max(x, axis=axis, keepdims=True)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - m_safe), axis=axis, keepdims=True)) + m_safe
    return np.squeeze(out, axis=axis)


@final
@dataclass(frozen=True, eq=False)
class LogLinearModel:
    r"""A log-linear product-reward policy, possibly a stack of instances along a leading axis.

    Fields (without the optional leading instance axis ``B``):
    """

    features: np.ndarray
    r""":math:`\phi_j(v)`, shape ``(P, V, d)``: feature of token ``v`` at position type ``j``."""
    bias: np.ndarray
    r""":math:`b_j(v)`, shape ``(P, V)``."""
    correct: np.ndarray
    """boolean mask of :math:`C_j`, shape ``(P, V)``."""
    counts: np.ndarray
    r""":math:`m_j`, shape ``(P,)``: how many positions share type ``j``; :math:`T = \sum_j m_j`."""

    @property
    def d(self) -> int:
        return int(self.features.shape[-1])

    @property
    def T(self) -> np.ndarray:
        """Response length(s) :math:`T = \\sum_j m_j`, shape ``(B,)`` or ``()``."""
        return self.counts.sum(axis=-1)

    @classmethod
    def from_instance(cls, inst: Instance) -> LogLinearModel:
        """The model of a gradgap instance, read off its log-linear form (a product reward only: tokens need
        exact match)."""
        form = inst.structure()
        if not form.product_reward:
            raise GradgapValueError(
                f"min_correct={form.min_hits}: the simulator needs a product reward (exact match, "
                f"min_correct=None or T={form.T})", field="min_correct", value=form.min_hits)
        feats = np.array([p.features for p in form.positions], dtype=float)
        bias = np.array([p.bias for p in form.positions], dtype=float)
        mask = np.zeros(bias.shape, dtype=bool)
        for j, p in enumerate(form.positions):
            mask[j, sorted(p.correct)] = True
        return cls(feats, bias, mask, np.array([p.count for p in form.positions]))


def stack_models(models: Sequence[LogLinearModel]) -> LogLinearModel:
    """Stack same-shape models along a new leading instance axis (e.g. shared tokens for several T)."""
    shapes = {(m.features.shape, m.correct.shape) for m in models}
    if len(shapes) != 1:
        raise GradgapValueError(f"models shapes={sorted(shapes)}: stacking needs equal shapes",
                                field="models", value=len(models))
    return LogLinearModel(np.stack([m.features for m in models]), np.stack([m.bias for m in models]),
                          np.stack([m.correct for m in models]), np.stack([m.counts for m in models]))


@dataclass(frozen=True)
class _State:
    """Per-position log-probabilities and the log-masses of C and of its complement."""

    log_pi: np.ndarray  # (..., P, V)
    log_p: np.ndarray  # (..., P)   log pi_j(C_j)
    log_q: np.ndarray  # (..., P)   log (1 - pi_j(C_j))
    log_J: np.ndarray  # (...)
    log_1mJ: np.ndarray  # (...)


def _state(model: LogLinearModel, theta: np.ndarray) -> _State:
    z = np.einsum("...d,...pvd->...pv", theta, model.features) + model.bias
    log_pi = z - _lse(z)[..., None]
    log_pC = _lse(np.where(model.correct, log_pi, -np.inf))
    log_q = _lse(np.where(model.correct, -np.inf, log_pi))
    # log p = log1p(-q) when q is small: keeps 1 - J exact when J is within 1e-16 of 1
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = np.where(log_q < -0.7, np.log1p(-np.exp(np.minimum(log_q, -0.7))), log_pC)
    log_J = np.sum(model.counts * log_p, axis=-1)
    with np.errstate(divide="ignore"):
        log_1mJ = np.log(-np.expm1(np.minimum(log_J, 0.0)))
    return _State(log_pi, log_p, log_q, log_J, log_1mJ)


def log_success_rate(model: LogLinearModel, theta: np.ndarray) -> np.ndarray:
    r""":math:`\log J(\theta) = \sum_j m_j \log p_j(\theta)`, shape ``theta.shape[:-1]``."""
    return _state(model, np.asarray(theta, dtype=float)).log_J


def success_rate(model: LogLinearModel, theta: np.ndarray) -> np.ndarray:
    r""":math:`J(\theta) = \prod_j p_j^{m_j}`.

    >>> m = LogLinearModel.from_instance(SharedTokens((0.0,), ((0.,), (1.,), (2.,)), frozenset({1}), T=2))
    >>> round(float(success_rate(m, np.zeros(1))), 12)
    0.111111111111
    """
    return np.exp(log_success_rate(model, theta))


def _mean_features(model: LogLinearModel, st: _State) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means of the features under pi, pi(.|C) and pi(.|not C): each ``(..., P, d)``."""
    pi = np.exp(st.log_pi)
    mu = np.einsum("...pv,...pvd->...pd", pi, model.features)
    with np.errstate(invalid="ignore", over="ignore"):
        wC = np.where(model.correct, np.exp(st.log_pi - st.log_p[..., None]), 0.0)
        wW = np.where(model.correct, 0.0, np.exp(st.log_pi - st.log_q[..., None]))
    wC = np.nan_to_num(wC)
    wW = np.nan_to_num(wW)
    muC = np.einsum("...pv,...pvd->...pd", wC, model.features)
    muW = np.einsum("...pv,...pvd->...pd", wW, model.features)
    return mu, muC, muW


def _gap_terms(model: LogLinearModel, st: _State) -> np.ndarray:
    r""":math:`\sum_j m_j (1-p_j)(\mu_{C,j} - \mu_{W,j}) = \nabla\log J` (no division), shape ``(..., d)``."""
    _, muC, muW = _mean_features(model, st)
    weight = model.counts * np.exp(st.log_q)
    return np.einsum("...p,...pd->...d", weight, muC - muW)


def gradient_gap(model: LogLinearModel, theta: np.ndarray) -> np.ndarray:
    r"""The Gradient Gap :math:`g = \nabla\log J/(1-J) = \sum_j m_j\,\tfrac{1-p_j}{1-J}\,(\mu_{C,j}-\mu_{W,j})`.

    Computed with the ratio :math:`(1-p_j)/(1-J)` in log space, so it stays finite as :math:`J\to1`.

    >>> m = LogLinearModel.from_instance(SoftmaxBandit((0.0, 0.0), frozenset({0})))
    >>> gradient_gap(m, np.zeros(2)).tolist()
    [1.0, -1.0]
    """
    theta = np.asarray(theta, dtype=float)
    st = _state(model, theta)
    _, muC, muW = _mean_features(model, st)
    with np.errstate(over="ignore", invalid="ignore"):
        ratio = model.counts * np.exp(st.log_q - st.log_1mJ[..., None])
    return np.einsum("...p,...pd->...d", np.nan_to_num(ratio), muC - muW)


def _gain_factor(rule: str, st: _State) -> np.ndarray:
    """The factor multiplying grad log J in E[w] = c(J) g = c(J)/(1-J) * grad log J."""
    if rule == "gap":
        return np.exp(-st.log_1mJ)
    if rule in ("reinforce", "dr_grpo"):
        return np.exp(st.log_J)
    if rule == "grpo":
        return np.exp(0.5 * (st.log_J - st.log_1mJ))
    raise GradgapValueError(f"rule={rule!r}: choose one of {', '.join(RULES)}", field="rule", value=rule)


def expected_update(model: LogLinearModel, theta: np.ndarray, rule: str) -> np.ndarray:
    r"""Expected update :math:`\mathbb E[w] = c(J)\,g` with the gains of :data:`GAINS`.

    >>> m = LogLinearModel.from_instance(SoftmaxBandit((0.0, 0.0), frozenset({0})))
    >>> expected_update(m, np.zeros(2), "dr_grpo").tolist()
    [0.25, -0.25]
    """
    theta = np.asarray(theta, dtype=float)
    st = _state(model, theta)
    with np.errstate(over="ignore", invalid="ignore"):
        out = _gain_factor(rule, st)[..., None] * _gap_terms(model, st)
    return np.nan_to_num(out, posinf=0.0, neginf=0.0)


def sampled_update(model: LogLinearModel, theta: np.ndarray, rule: str, group_size: int,
                   rng: np.random.Generator) -> np.ndarray:
    r"""One group of :math:`G` sampled responses and its update (binary reward, on-policy, no clipping).

    With :math:`k` successes, :math:`\hat p = k/G`, scores :math:`s_i = \sum_j(n_{ij}\phi_j - m_j\mu_j)`:
    REINFORCE :math:`\frac1G\sum_i r_i s_i`; Dr. GRPO :math:`\frac1G\sum_i (r_i-\hat p)s_i
    = \hat p(1-\hat p)(\bar s_+-\bar s_-)`; GRPO :math:`\sqrt{\hat p(1-\hat p)}\,(\bar s_+-\bar s_-)`
    (population std); gap :math:`\bar s_+-\bar s_-`. All-fail and all-success groups give exactly 0
    (except REINFORCE on all-success groups).

    Source: reconstruction §4.4 (DERIVED) and engines note "Algebra worth knowing".
    """
    theta = np.asarray(theta, dtype=float)
    st = _state(model, theta)
    pi = np.exp(st.log_pi)
    pi = pi / pi.sum(axis=-1, keepdims=True)
    shape = (*theta.shape[:-1], group_size, *pi.shape[-2:])
    pvals = np.broadcast_to(pi[..., None, :, :], shape)
    n = np.broadcast_to(model.counts[..., None, :], shape[:-1])
    counts = rng.multinomial(n, pvals)  # (..., G, P, V)
    mu = np.einsum("...pv,...pvd->...pd", pi, model.features)
    feats = model.features[..., None, :, :, :]
    score = np.einsum("...gpv,...gpvd->...gd", counts, np.broadcast_to(feats, (*shape, model.d)))
    score = score - np.einsum("...p,...pd->...d", model.counts, mu)[..., None, :]
    n_correct = np.sum(np.where(model.correct[..., None, :, :], counts, 0), axis=-1)  # (..., G, P)
    r = np.all(n_correct == n, axis=-1).astype(float)  # (..., G)
    k = r.sum(axis=-1)
    p_hat = k / group_size
    if rule == "reinforce":
        return np.einsum("...g,...gd->...d", r, score) / group_size
    mixed = (k > 0) & (k < group_size)
    with np.errstate(invalid="ignore", divide="ignore"):
        s_plus = np.einsum("...g,...gd->...d", r, score) / k[..., None]
        s_minus = np.einsum("...g,...gd->...d", 1.0 - r, score) / (group_size - k)[..., None]
    diff = np.where(mixed[..., None], s_plus - s_minus, 0.0)
    if rule == "gap":
        return diff
    if rule == "dr_grpo":
        return (p_hat * (1 - p_hat))[..., None] * diff
    if rule == "grpo":
        return np.sqrt(p_hat * (1 - p_hat))[..., None] * diff
    raise GradgapValueError(f"rule={rule!r}: choose one of {', '.join(RULES)}", field="rule", value=rule)


@dataclass(frozen=True)
class SimConfig:
    """How to run :func:`simulate`."""

    rule: str = "gap"
    """update rule, one of :data:`RULES` (paper: Gradient Gap, REINFORCE, Dr. GRPO, GRPO)."""
    expected: bool = True
    """``True``: the expected update c(J) g; ``False``: a group of ``group_size`` sampled responses."""
    group_size: int = 8
    """G, responses per step (TRL ``num_generations``); only for ``expected=False``."""
    length_normalized: bool = False
    """multiply the update by 1/|o| = 1/T (GRPO's per-response length normalisation)."""
    optimizer: str = "sgd"
    """``sgd`` (the theory's theta + eta w) or ``adam`` (practice; TRL's default optimiser family)."""
    schedule: str = "constant"
    """``constant`` (eta_k = eta) or ``one_minus_J`` (eta_k = eta (1 - J_k))."""
    steps: int = 2000
    """number of iterations K."""
    tail: int = 64
    """how many final parameter vectors are kept for :func:`classify`."""
    seed: int = 0
    """seed of the sampler (numpy PCG64); the output is a deterministic function of it."""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """Adam's (beta1, beta2)."""
    adam_eps: float = 1e-8
    """Adam's epsilon."""

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise GradgapValueError(f"rule={self.rule!r}: choose one of {', '.join(RULES)}", field="rule",
                                    value=self.rule)
        if self.optimizer not in ("sgd", "adam"):
            raise GradgapValueError(f"optimizer={self.optimizer!r}: choose sgd or adam", field="optimizer",
                                    value=self.optimizer)
        if self.schedule not in ("constant", "one_minus_J"):
            raise GradgapValueError(f"schedule={self.schedule!r}: choose constant or one_minus_J",
                                    field="schedule", value=self.schedule)
        if self.steps < 2 or self.tail < 3 or self.group_size < 2:
            raise GradgapValueError(f"steps={self.steps}, tail={self.tail}, group_size={self.group_size}: "
                                    "need steps >= 2, tail >= 3, group_size >= 2", field="steps",
                                    value=self.steps)


@dataclass(frozen=True, eq=False)
class Trajectory:
    """What :func:`simulate` returns (``E`` step sizes, ``B`` instances or chains)."""

    etas: np.ndarray
    """step sizes, shape ``(E, B)``."""
    success: np.ndarray
    """J_k for k = 0..K, shape ``(K+1, E, B)``."""
    theta_tail: np.ndarray
    """the last ``tail`` parameter vectors, shape ``(tail, E, B, d)``."""
    config: SimConfig = field(default_factory=SimConfig)
    """the configuration that produced it."""


def simulate(model: LogLinearModel, theta0: np.ndarray, etas: np.ndarray | Sequence[float],
             config: SimConfig, *, chains: int | None = None) -> Trajectory:
    r"""Run :math:`\theta_{k+1} = \theta_k + \eta_k w_k` for every step size (and instance) at once.

    ``theta0``: ``(d,)`` or ``(B, d)`` (one per stacked instance); ``etas``: ``(E,)`` or ``(E, B)``;
    ``chains``: replicate a single instance ``chains`` times (independent seeded chains, ``B = chains``).

    Source: reconstruction §1 (iteration), §4.4 (update rules), this project.

    >>> m = LogLinearModel.from_instance(SharedTokens((0.0,), ((0.,), (1.,), (2.,)), frozenset({1}), T=1))
    >>> tr = simulate(m, np.array([0.5]), [1.0, 3.0], SimConfig(steps=200))
    >>> [round(float(x), 6) for x in tr.success[-1, :, 0]]
    [0.333333, 0.204048]
    """
    theta0 = np.asarray(theta0, dtype=float)
    if theta0.ndim == 1:
        theta0 = theta0[None]
    B = theta0.shape[0] if chains is None else chains
    if chains is not None:
        theta0 = np.broadcast_to(theta0[:1], (B, theta0.shape[-1]))
    etas = np.asarray(etas, dtype=float)
    if etas.ndim == 1:
        etas = np.broadcast_to(etas[:, None], (etas.shape[0], B))
    E = etas.shape[0]
    if not np.all(np.isfinite(etas)) or np.any(etas < 0):
        raise GradgapValueError(f"etas={etas.ravel()[:4].tolist()}: step sizes must be finite and >= 0",
                                field="etas", value=etas.ravel()[:4].tolist())
    theta = np.array(np.broadcast_to(theta0, (E, B, theta0.shape[-1])))
    rng = np.random.default_rng(config.seed)
    scale = 1.0 / model.T if config.length_normalized else np.ones_like(model.T, dtype=float)
    scale = np.asarray(scale, dtype=float)
    K = config.steps
    success = np.empty((K + 1, E, B))
    tail = np.empty((config.tail, E, B, theta.shape[-1]))
    m1 = np.zeros_like(theta)
    m2 = np.zeros_like(theta)
    b1, b2 = config.adam_betas
    for k in range(K + 1):
        J = success_rate(model, theta)
        success[k] = J
        if k >= K + 1 - config.tail:
            tail[k - (K + 1 - config.tail)] = theta
        if k == K:
            break
        if config.expected:
            w = expected_update(model, theta, config.rule)
        else:
            w = sampled_update(model, theta, config.rule, config.group_size, rng)
        w = w * scale[..., None]
        eta = etas if config.schedule == "constant" else etas * (1.0 - J)
        if config.optimizer == "adam":
            m1 = b1 * m1 + (1 - b1) * w
            m2 = b2 * m2 + (1 - b2) * w * w
            w = (m1 / (1 - b1 ** (k + 1))) / (np.sqrt(m2 / (1 - b2 ** (k + 1))) + config.adam_eps)
        theta = theta + eta[..., None] * w
    return Trajectory(etas=np.array(etas), success=success, theta_tail=tail, config=config)


def classify(traj: Trajectory, J_star: np.ndarray | float | None = None, *, rtol: float = 1e-3) -> np.ndarray:
    r"""Classify every run as one of :data:`CLASSES`.

    On the tail of the run (the last ``config.tail`` iterates), with :math:`J_{\rm ref} = J^\star` when given
    (else :math:`J_0`): ``converged`` if J ends within :math:`r_{tol}\min(J^\star, 1-J^\star)` of
    :math:`J^\star` while settled or strictly rising
    (without :math:`J^\star`: settled without loss, or still rising, e.g. towards sup J = 1);
    ``frozen_near_0`` if the parameters stopped moving at :math:`J \le J_{\rm ref}/2`; ``two_cycle`` if
    :math:`\theta_{k+2} = \theta_k` without being settled (or :math:`|\theta_{k+2}-\theta_k|` shrinking
    monotonically while 100 times below :math:`|\theta_{k+1}-\theta_k|`: a 2-cycle approached slowly);
    ``collapsed_to_0`` if J falls strictly on the
    whole tail and ends below :math:`J_{\rm ref}/2`; ``stalled`` if settled elsewhere; ``chaotic`` otherwise
    (bounded and not of period <= 2 on the tail: chaos, a longer cycle -- see :func:`period` -- or a run not yet
    settled).
    """
    th = traj.theta_tail
    J = traj.success
    J_end, J0 = J[-1], J[0]
    ref = J0 if J_star is None else np.broadcast_to(np.asarray(J_star, dtype=float), J_end.shape)
    scale = 1.0 + np.max(np.abs(th), axis=(0, -1))
    # settled: every step of the tail moves theta by less than 1e-7 (relative); a vanishing gain (J -> 0) may
    # still let theta drift slowly, which is what "frozen" means
    settled = np.max(np.abs(th[1:] - th[:-1]), axis=(0, -1)) <= 1e-7 * scale
    d2 = np.max(np.abs(th[2:] - th[:-2]), axis=-1)  # (tail-2, ...)
    d1 = np.max(np.abs(th[1:] - th[:-1]), axis=-1)
    # an exact 2-cycle, or one approached slowly (far out the map is nearly marginal): theta_{k+2} - theta_k
    # shrinks monotonically and stays 100x below the alternation theta_{k+1} - theta_k
    cycle2 = (np.max(d2, axis=0) <= 1e-7 * scale) | (
        np.all(np.diff(d2, axis=0) <= 0, axis=0) & (np.max(d2, axis=0) <= 1e-2 * np.min(d1, axis=0)))
    tailJ = J[-th.shape[0]:]
    rising = np.all(np.diff(tailJ, axis=0) > 0, axis=0)
    falling = np.all(np.diff(tailJ, axis=0) < 0, axis=0)
    low = J_end <= 0.5 * ref
    if J_star is None:
        good = (settled & (J_end >= J0 * (1 - rtol))) | (~settled & rising)
    else:
        good = (np.abs(J_end - ref) <= rtol * np.minimum(ref, 1.0 - ref)) & (settled | rising)
    out = np.full(J_end.shape, "chaotic", dtype=object)
    out[~settled & falling & low] = "collapsed_to_0"
    out[~settled & cycle2] = "two_cycle"
    out[settled] = "stalled"
    out[settled & low] = "frozen_near_0"
    out[good] = "converged"
    return out


def period(traj: Trajectory, max_period: int = 16) -> np.ndarray:
    r"""Smallest :math:`p\le` ``max_period`` with :math:`\theta_{k+p}=\theta_k` (to 1e-7 relative) on the whole
    tail, 0 if none: a diagnostic that separates longer cycles from chaos within the class ``chaotic``."""
    th = traj.theta_tail
    scale = 1.0 + np.max(np.abs(th), axis=(0, -1))
    out = np.zeros(th.shape[1:-1], dtype=int)
    for p in range(max_period, 0, -1):
        if th.shape[0] <= p:
            continue
        hit = np.max(np.abs(th[p:] - th[:-p]), axis=(0, -1)) <= 1e-7 * scale
        out = np.where(hit, p, out)
    return out


def collapse_fraction(traj: Trajectory, J_star: np.ndarray | float, *, window: float = 0.25) -> np.ndarray:
    r"""Fraction of seeded chains (axis ``B``) whose mean J over the last ``window`` of the run is below
    :math:`J^\star/2`, per step size: shape ``(E,)``."""
    K = traj.success.shape[0]
    tail = traj.success[int((1 - window) * K):]
    return np.mean(tail.mean(axis=0) < 0.5 * np.asarray(J_star, dtype=float), axis=-1)


def critical_step_bisect(model: LogLinearModel, theta0: np.ndarray, J_star: np.ndarray | float,
                         lo: np.ndarray | float, hi: np.ndarray | float, config: SimConfig, *,
                         rtol: float = 0.005, points: int = 12, max_rounds: int = 8) -> np.ndarray:
    r"""Empirical critical step: the largest :math:`\eta` whose run is ``converged``, by vectorised
    multisection of ``[lo, hi]`` (``points`` step sizes per round, all instances at once) until
    :math:`hi/lo \le 1 + r_{tol}`. Returns the geometric midpoints, shape ``(B,)``; ``nan`` where the
    bracket is not one (``lo`` fails or ``hi`` converges).
    """
    theta0 = np.asarray(theta0, dtype=float)
    B = 1 if theta0.ndim == 1 else theta0.shape[0]
    lo = np.broadcast_to(np.asarray(lo, dtype=float), (B,)).copy()
    hi = np.broadcast_to(np.asarray(hi, dtype=float), (B,)).copy()
    J_star = np.broadcast_to(np.asarray(J_star, dtype=float), (B,))
    valid = np.ones(B, dtype=bool)
    for round_ in range(max_rounds):
        frac = np.linspace(0.0, 1.0, points)[:, None]
        etas = np.exp(np.log(lo) + frac * (np.log(hi) - np.log(lo)))  # (points, B)
        tr = simulate(model, theta0, etas, config)
        ok = classify(tr, J_star[None, :]) == "converged"  # (points, B)
        if round_ == 0:
            valid = ok[0] & ~ok[-1]
        first_bad = np.argmax(~ok, axis=0)
        first_bad = np.where(np.any(~ok, axis=0), first_bad, points - 1)
        first_bad = np.maximum(first_bad, 1)
        idx = np.arange(B)
        lo, hi = etas[first_bad - 1, idx], etas[first_bad, idx]
        if np.all(hi / lo <= 1 + rtol):
            break
    return np.where(valid, np.sqrt(lo * hi), np.nan)
