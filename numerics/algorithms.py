r"""Numeric twin of :mod:`gradgap.theory.algorithms`: expected group updates by exact enumeration and Monte Carlo.

Independent of the closed-form gains: :math:`\mathbb E[w]` is computed by summing the update of every ordered
group :math:`(o_1,\dots,o_G)` weighted by :math:`\prod_i\pi(o_i)` (``method="enumerate"``), or by sampling
groups (``method="mc"``, an :class:`~gradgap.numerics.montecarlo.Estimate`). The response space of an instance is
enumerated here with numpy (:func:`finite_policy`), so this module needs no other numeric module.

Notation: :math:`w=\frac1G\sum_i \frac{A_i}{n_i}s(o_i)` (see :mod:`gradgap.theory.algorithms` for :math:`A_i`, the
aggregation weight :math:`n_i` and the algorithm names); :math:`g=\mathbb E_+[s]-\mathbb E_-[s]`.

Also here: a variable-length policy with an end-of-sequence token (:class:`EosTokens`) where token-level
aggregation turns :math:`\mathbb E[w]` away from :math:`g`; the exact Hessian of the log-odds of log-linear
policies (:func:`log_odds_hessian`), the search for the sharpest one-step constant
(:func:`sharpest_constant_search`) and Theorem 1 trajectories (:func:`theorem1_trajectory`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, final

import numpy as np
from numpy.typing import NDArray

from gradgap.numerics.montecarlo import Estimate
from gradgap.theory.instances import (  # noqa: F401 (SoftmaxBandit: doctests)
    ContextualForm,
    GradgapValueError,
    Instance,
    LogLinearForm,
    SoftmaxBandit,
)

__all__ = [
    "ADVANTAGES",
    "AGGREGATION",
    "EosTokens",
    "FinitePolicy",
    "Theorem1Trajectory",
    "angle_degrees",
    "expected_update",
    "finite_policy",
    "group_advantages",
    "log_odds_hessian",
    "sharpest_constant_search",
    "theorem1_trajectory",
]

Array = NDArray[np.float64]

#: advantage estimator of each algorithm (numeric copy of the table in theory.algorithms)
ADVANTAGES: Final[dict[str, str]] = {"reinforce": "reinforce", "rloo": "rloo", "grpo": "grpo",
                                     "dr_grpo": "dr_grpo", "dapo": "grpo"}
#: aggregation of each algorithm
AGGREGATION: Final[dict[str, str]] = {"reinforce": "sequence", "rloo": "sequence", "grpo": "seq_mean_token_mean",
                                      "dr_grpo": "constant", "dapo": "token_mean"}
#: largest number of ordered groups enumerated
MAX_GROUPS: Final[int] = 2_000_000


@final
@dataclass(frozen=True)
class FinitePolicy:
    r"""A policy over finitely many responses: probabilities, scores :math:`s(o)=\nabla\log\pi(o)`, binary
    rewards and lengths :math:`|o|` (tokens), one row per response."""

    probs: Array
    scores: Array
    rewards: NDArray[np.int64]
    lengths: NDArray[np.int64]

    @property
    def J(self) -> float:
        return float(self.probs @ self.rewards)

    def gap(self) -> Array:
        r""":math:`g=\mathbb E_+[s]-\mathbb E_-[s]` by direct conditional averages."""
        r = self.rewards.astype(bool)
        p_s, p_f = self.probs[r], self.probs[~r]
        return p_s @ self.scores[r] / p_s.sum() - p_f @ self.scores[~r] / p_f.sum()


@final
@dataclass(frozen=True)
class EosTokens:
    r"""Variable-length tabular policy: at position :math:`t<T_{\max}` a token from
    :math:`\mathrm{softmax}(\theta_t)`; token ``eos`` ends the response (it counts in :math:`|o|`); the
    response is cut at :math:`T_{\max}` tokens. Reward 1 iff no token lies in ``wrong``: longer responses
    have more chances to fail, so success correlates with shortness.

    >>> EosTokens(logits=((0.0, 0.0, 0.0),) * 2, wrong=frozenset({2})).T_max
    2
    """

    logits: tuple[tuple[float, ...], ...]
    wrong: frozenset[int]
    eos: int = 0

    def __post_init__(self) -> None:
        rows = tuple(tuple(float(x) for x in r) for r in self.logits)
        if not rows or len({len(r) for r in rows}) != 1 or len(rows[0]) < 3:
            raise GradgapValueError(f"logits={self.logits!r}: need a T_max x V table with V >= 3",
                                    field="logits", value=self.logits)
        object.__setattr__(self, "logits", rows)
        V = len(rows[0])
        if self.eos in self.wrong or not all(0 <= v < V for v in self.wrong) or not self.wrong:
            raise GradgapValueError(f"wrong={sorted(self.wrong)!r}: a non-empty set of non-EOS tokens",
                                    field="wrong", value=self.wrong)

    @property
    def T_max(self) -> int:
        return len(self.logits)

    @property
    def V(self) -> int:
        return len(self.logits[0])

    def responses(self) -> list[tuple[int, ...]]:
        """Every response, ordered by length."""
        out: list[tuple[int, ...]] = []
        body = [v for v in range(self.V) if v != self.eos]
        for L in range(1, self.T_max + 1):
            for prefix in itertools.product(body, repeat=L - 1):
                out.append((*prefix, self.eos))
                if L == self.T_max:
                    out.extend((*prefix, v) for v in body)
        return out


def _softmax(x: Array) -> Array:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _product_policy(form: LogLinearForm, theta: Array) -> FinitePolicy:
    r"""Every response of a product of fixed positions: :math:`\pi(o)=\prod_t\pi_t(o_t)`,
    :math:`s(o)=\sum_t(\phi_t(o_t)-\mathbb E_{\pi_t}\phi_t)`, reward :math:`\mathbb 1[\text{hits}\ge m]`."""
    positions = form.expanded()
    phis = [np.asarray(p.features, dtype=float) for p in positions]
    pis = [_softmax(phi @ theta + np.asarray(p.bias, dtype=float)) for phi, p in zip(phis, positions, strict=True)]
    R = np.array(form.responses(), dtype=np.int64)
    T = len(positions)
    probs = np.ones(len(R))
    scores = np.zeros((len(R), form.n_params))
    hits = np.zeros(len(R), dtype=np.int64)
    for t, (phi, pi, p) in enumerate(zip(phis, pis, positions, strict=True)):
        probs *= pi[R[:, t]]
        scores += phi[R[:, t]] - (pi @ phi)[None, :]
        hits += np.isin(R[:, t], sorted(p.correct))
    return FinitePolicy(probs, scores, (hits >= form.min_hits).astype(np.int64), np.full(len(R), T))


def finite_policy(inst: Instance | EosTokens) -> FinitePolicy:
    r"""Enumerate the responses of a small instance: probabilities, scores, rewards and lengths.

    Softmax: :math:`s(a)=e_a-\pi`, length 1. Tokens: :math:`s(o)_{t,\cdot}=e_{o_t}-\pi_t`, length T.
    Shared: :math:`s(o)=\sum_t(\phi(o_t)-\mathbb E_\pi\phi)`, length T. Contextual (a mixture form): the pairs
    :math:`(x,a)` with :math:`\rho_x\pi(a\mid x)` and :math:`s=\phi(x,a)-\mathbb E_{\pi(\cdot\mid x)}\phi`, length 1.
    EOS: positions after the end contribute nothing.

    Source: reconstruction §1 (score), §2.1.

    >>> fp = finite_policy(SoftmaxBandit(logits=(0.0, 0.0), correct=frozenset({0})))
    >>> fp.J, fp.gap().tolist()
    (0.5, [1.0, -1.0])
    """
    if not isinstance(inst, EosTokens):
        form = inst.structure()
        theta = np.asarray(inst.theta, dtype=float)
        if isinstance(form, ContextualForm):  # a mixture over prompts: pairs (x, a) with rho_x pi(a|x), length 1
            parts = [_product_policy(prompt, theta) for prompt in form.prompts]
            return FinitePolicy(np.concatenate([w * fp.probs for w, fp in zip(form.weights, parts, strict=True)]),
                                np.concatenate([fp.scores for fp in parts]),
                                np.concatenate([fp.rewards for fp in parts]),
                                np.concatenate([fp.lengths for fp in parts]))
        return _product_policy(form, theta)
    if isinstance(inst, EosTokens):
        pis = _softmax(np.asarray(inst.logits))
        T, V = inst.T_max, inst.V
        resp = inst.responses()
        probs = np.empty(len(resp))
        scores = np.zeros((len(resp), T * V))
        for i, o in enumerate(resp):
            probs[i] = np.prod([pis[t, v] for t, v in enumerate(o)])
            for t, v in enumerate(o):
                scores[i, t * V : (t + 1) * V] = -pis[t]
                scores[i, t * V + v] += 1.0
        rewards = np.array([int(not any(v in inst.wrong for v in o)) for o in resp])
        return FinitePolicy(probs, scores, rewards, np.array([len(o) for o in resp]))
    raise GradgapValueError(f"instance={inst!r}: not a small instance this module enumerates",
                            field="instance", value=inst)


def group_advantages(algorithm: str, rewards: NDArray[np.int64], *, eps: float = 0.0) -> Array:
    r"""Advantages of a batch of groups, ``rewards`` of shape ``(..., G)``.

    .. math::  \text{RLOO: }A_i=r_i-\tfrac{1}{G-1}\textstyle\sum_{j\ne i}r_j,\quad
               \text{GRPO: }A_i=\frac{r_i-\bar r}{\mathrm{std}_{\text{Bessel}}(r)+\epsilon},\quad
               \text{Dr. GRPO: }A_i=r_i-\bar r.

    Source: reconstruction §4.4; engines.md (TRL/verl GRPO advantage).

    >>> group_advantages("grpo", np.array([1, 0, 0, 0])).tolist()
    [1.5, -0.5, -0.5, -0.5]
    """
    if algorithm not in ADVANTAGES:
        raise GradgapValueError(f"algorithm={algorithm!r}: unknown; choose one of {', '.join(ADVANTAGES)}",
                                field="algorithm", value=algorithm)
    r = np.asarray(rewards, dtype=float)
    G = r.shape[-1]
    kind = ADVANTAGES[algorithm]
    if kind == "reinforce":
        return r
    mean = r.mean(axis=-1, keepdims=True)
    if kind == "rloo":
        return r - (r.sum(axis=-1, keepdims=True) - r) / (G - 1)
    if kind == "dr_grpo":
        return r - mean
    std = r.std(axis=-1, ddof=1, keepdims=True)
    centred = r - mean
    with np.errstate(invalid="ignore", divide="ignore"):
        adv = centred / (std + eps)
    return np.where(centred == 0.0, 0.0, adv)


def _group_coefficients(algorithm: str, R: NDArray[np.int64], lengths: NDArray[np.int64],
                        rewards: NDArray[np.int64], eps: float) -> Array:
    """Per (group, member) coefficient ``A_i / (G n_i)`` for groups given as response indices ``R``."""
    G = R.shape[1]
    adv = group_advantages(algorithm, rewards[R], eps=eps)
    L = lengths[R].astype(float)
    agg = AGGREGATION[algorithm]
    if agg == "sequence":
        n = np.ones_like(L)
    elif agg == "seq_mean_token_mean":
        n = L
    elif agg == "token_mean":
        n = np.repeat(L.sum(axis=1, keepdims=True) / G, G, axis=1)
    else:
        n = np.full_like(L, float(lengths.max()))
    return adv / (G * n)


def expected_update(policy: FinitePolicy, algorithm: str, G: int, *, method: str = "enumerate",
                    eps: float = 0.0, n: int | None = None, seed: int | None = None) -> Array | Estimate:
    r""":math:`\mathbb E[w]` of ``algorithm`` with groups of size ``G``.

    ``enumerate``: :math:`\sum_{(o_1..o_G)}\prod_i\pi(o_i)\,w(o_1..o_G)` over all :math:`N^G` ordered groups
    (exact up to rounding). ``mc``: the mean of ``n`` sampled groups, with its standard error per coordinate.

    Source: reconstruction §4.4 (DERIVED).

    >>> fp = finite_policy(SoftmaxBandit(logits=(0.0, 0.0), correct=frozenset({0})))
    >>> expected_update(fp, "reinforce", 2).tolist()
    [0.25, -0.25]
    """
    if isinstance(G, bool) or not isinstance(G, int) or G < 2:
        raise GradgapValueError(f"G={G!r}: the group size must be an integer >= 2", field="G", value=G)
    N = len(policy.probs)
    if method == "enumerate":
        if N**G > MAX_GROUPS:
            raise GradgapValueError(f"N**G={N}**{G}: too many groups to enumerate (max {MAX_GROUPS})",
                                    field="G", value=G)
        R = np.array(list(itertools.product(range(N), repeat=G)), dtype=np.int64).reshape(-1, G)
        weight = np.prod(policy.probs[R], axis=1)
        coef = _group_coefficients(algorithm, R, policy.lengths, policy.rewards, eps) * weight[:, None]
        per_response = np.zeros(N)
        for j in range(G):
            per_response += np.bincount(R[:, j], weights=coef[:, j], minlength=N)
        return per_response @ policy.scores
    if method == "mc":
        if n is None or n < 2:
            raise GradgapValueError(f"n={n!r}: Monte Carlo needs n >= 2 groups", field="n", value=n)
        rng = np.random.default_rng(seed)
        R = rng.choice(N, size=(n, G), p=policy.probs / policy.probs.sum())
        coef = _group_coefficients(algorithm, R, policy.lengths, policy.rewards, eps)
        w = np.einsum("gj,gjd->gd", coef, policy.scores[R])
        return Estimate(mean=w.mean(axis=0), stderr=w.std(axis=0, ddof=1) / math.sqrt(n), n=n)
    raise NotImplementedError(f"quantity=expected_update, method={method!r}: not implemented "
                              "(use 'enumerate' or 'mc')")


def angle_degrees(u: Array, v: Array) -> float:
    r"""The angle between two vectors in degrees, :math:`\arccos\frac{\langle u,v\rangle}{\|u\|\|v\|}`,
    computed with ``atan2`` of the rejection so that small angles are accurate.

    >>> round(angle_degrees(np.array([1.0, 0.0]), np.array([1.0, 1.0])), 6)
    45.0
    """
    u = np.asarray(u, dtype=float)
    v = np.asarray(v, dtype=float)
    vv = v / np.linalg.norm(v)
    along = float(u @ vv)
    perp = float(np.linalg.norm(u - along * vv))
    return math.degrees(math.atan2(perp, along))


def log_odds_hessian(policy: FinitePolicy) -> Array:
    r"""Exact Hessian of :math:`\ell` for a log-linear policy :math:`\pi(o)\propto e^{\langle\theta,\phi(o)\rangle}`
    (softmax, tokens, shared tokens): :math:`\ell=\mathrm{LSE}_{S}\langle\theta,\phi\rangle-
    \mathrm{LSE}_{F}\langle\theta,\phi\rangle` (the normaliser cancels), so

    .. math::  \nabla^2\ell=\mathrm{Cov}_{\pi^+}(s)-\mathrm{Cov}_{\pi^-}(s).

    Source: reconstruction §4.1 (second-order form, DERIVED; the Hessian-gap term vanishes here).

    >>> fp = finite_policy(SoftmaxBandit(logits=(0.0, 0.0, 0.0), correct=frozenset({0})))
    >>> log_odds_hessian(fp).round(3).tolist()[1]
    [0.0, -0.25, 0.25]
    """
    r = policy.rewards.astype(bool)

    def cov(mask: NDArray[np.bool_]) -> Array:
        p = policy.probs[mask] / policy.probs[mask].sum()
        X = policy.scores[mask] - p @ policy.scores[mask]
        return (X * p[:, None]).T @ X

    return cov(r) - cov(~r)


def sharpest_constant_search(make: Callable[[Array], Instance], n_params: int, *, restarts: int = 40,
                             iters: int = 400, scale: float = 4.0, seed: int = 0) -> tuple[float, Array]:
    r"""A lower bound on the sharpest one-step constant
    :math:`C^\star=\tfrac12\sup_\theta\lambda_{\max}(-\nabla^2\ell(\theta))` by random restarts and a
    shrinking random-walk refinement (no gradients): the largest value found and its :math:`\theta`.

    Why this is :math:`C^\star`: :math:`\Delta\ell-\eta\langle w,g\rangle=\eta^2\int_0^1(1-t)\,w^\top
    \nabla^2\ell(\theta+t\eta w)w\,dt`, so the best constant over all :math:`\theta,\eta>0`, unit :math:`w`
    is exactly half the sup of the largest eigenvalue of :math:`-\nabla^2\ell` (approached as
    :math:`\eta\to0`).

    Source: reconstruction §4.1 (DERIVED here).
    """
    rng = np.random.default_rng(seed)

    def value(theta: Array) -> float:
        H = log_odds_hessian(finite_policy(make(theta)))
        return 0.5 * float(np.linalg.eigvalsh(-H)[-1])

    best, best_x = -math.inf, np.zeros(n_params)
    for _ in range(restarts):
        x = rng.normal(size=n_params) * scale
        v = value(x)
        if v > best:
            best, best_x = v, x
    step = scale / 2
    for i in range(iters):
        x = best_x + rng.normal(size=n_params) * step
        v = value(x)
        if v > best:
            best, best_x = v, x
        if i % 50 == 49:
            step *= 0.7
    return best, best_x


@dataclass(frozen=True)
class Theorem1Trajectory:
    r"""One run of :math:`\theta_{k+1}=\theta_k+\eta_k w_k`: success rates :math:`J_k` (K+1 values),
    alignments :math:`\Delta\mu_k`, steps :math:`\eta_k` and the final bound of Theorem 1."""

    J: Array
    delta_mu: Array
    eta: Array
    thetas: Array

    @property
    def M(self) -> float:
        return float(np.sum(self.eta * np.maximum(self.delta_mu, 0.0)))

    def bound(self, exponent: float = 0.5) -> float:
        r""":math:`J_0/(J_0+(1-J_0)e^{-\text{exponent}\cdot M_K})`."""
        J0 = float(self.J[0])
        return J0 / (J0 + (1 - J0) * math.exp(-exponent * self.M))


def theorem1_trajectory(inst: Instance, *, C: float, steps: int, direction: str, seed: int,
                        fraction: Sequence[float] = (1.0,),
                        quantities: Callable[[Instance], tuple[float, Array]] | None = None) -> Theorem1Trajectory:
    r"""Run Theorem 1's iteration with the largest allowed steps (times a fraction cycling through
    ``fraction``): :math:`\eta_k=u_k[\Delta\mu_k]_+/(2C)`, :math:`w_k=g/\|g\|` (``gap``) or a fresh random
    unit vector (``random``). ``quantities(inst) -> (J, g)`` defaults to :func:`finite_policy`.

    Source: reconstruction §4.1 (Theorem 1, QUOTED-2nd).
    """
    if direction not in ("gap", "random"):
        raise GradgapValueError(f"direction={direction!r}: use 'gap' or 'random'", field="direction",
                                value=direction)
    rng = np.random.default_rng(seed)

    def default(i: Instance) -> tuple[float, Array]:
        fp = finite_policy(i)
        return fp.J, fp.gap()

    q = quantities or default
    theta = np.asarray(inst.theta, dtype=float)
    Js, dmus, etas, thetas = [], [], [], [theta.copy()]
    cur = inst
    J, g = q(cur)
    Js.append(J)
    for k in range(steps):
        if direction == "gap":
            w = g / np.linalg.norm(g)
        else:
            w = rng.normal(size=theta.size)
            w /= np.linalg.norm(w)
        dmu = float(w @ g)
        eta = fraction[k % len(fraction)] * max(dmu, 0.0) / (2 * C)
        theta = theta + eta * w
        cur = inst.with_theta(tuple(float(x) for x in theta))
        J, g = q(cur)
        Js.append(J)
        dmus.append(dmu)
        etas.append(eta)
        thetas.append(theta.copy())
    return Theorem1Trajectory(np.array(Js), np.array(dmus), np.array(etas), np.array(thetas))
