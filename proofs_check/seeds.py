r"""Where the adversarial phase starts, family by family: extremal structures, parameter seeds and directions.

Uniform sampling rarely lands where a near-tight false claim fails, so each family names its own hard places:
structures with the correct sets / targets that extremal configurations use, ties among logits (the all-zero
point, always tried first by :mod:`gradgap.proofs_check.adversarial`), near-deterministic points toward success
and failure (logits up to :data:`LARGE`), and directions along differences of arms, tokens or features (nearly
orthogonal to :math:`g`). The registry (:data:`gradgap.proofs_check.families.FAMILIES`) holds one
:class:`AdversarialSeeds` per family; the search itself knows no family.

Source: the seeds follow the extremal configurations of the constants' proofs (reconstruction §3, DERIVED) and
of the one-step lemma (§4.1, DERIVED).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from gradgap.theory.instances import (
    Autoregressive,
    ContextualBandit,
    Instance,
    SharedTokens,
    SoftmaxBandit,
    TokenSequence,
)

__all__ = [
    "AUTOREGRESSIVE_SEEDS",
    "CONTEXTUAL_SEEDS",
    "J_LEVELS",
    "LARGE",
    "SHARED_TOKENS_SEEDS",
    "SOFTMAX_SEEDS",
    "TOKENS_SEEDS",
    "AdversarialSeeds",
]

Sizes = Mapping[str, tuple[int, int]]
Vector = np.ndarray

#: logit magnitudes of the near-deterministic seeds: J within ~1e-2 .. ~1e-26 of 0 or 1
LARGE: Final[tuple[float, ...]] = (4.0, 12.0, 30.0, 60.0)
#: success rates of the J-level seeds: :math:`(3\mp\sqrt3)/6`, where :math:`\sigma''=\sigma(1-\sigma)(1-2\sigma)`
#: is extremal (second-order remainders in J are tightest there), and 1/2, where :math:`\sigma'` is
J_LEVELS: Final[tuple[float, ...]] = ((3 - 3**0.5) / 6, 0.5, (3 + 3**0.5) / 6)
#: most responses of an adversarial structure
_MAX_RESPONSES: Final[int] = 256


@dataclass(frozen=True)
class AdversarialSeeds:
    """One family's starting places: ``structures(sizes, cap)`` (parameters zero, smallest first),
    ``theta(inst)`` (parameter seeds besides the all-zero tie) and ``directions(inst)`` (unnormalised directions
    besides the coordinate axes and random draws)."""

    structures: Callable[[Sizes, int], list[Instance]]
    theta: Callable[[Any], list[Vector]]
    directions: Callable[[Any], list[Vector]]


def _size_values(sizes: Sizes, key: str, cap: int) -> list[int]:
    lo, hi = sizes[key]
    return list(range(lo, max(lo, min(hi, cap)) + 1))


def _along_rows(rows: Vector, count: int, n: int) -> list[Vector]:
    r"""Large moves :math:`\pm\,\text{big}\,\phi/\max(1,\|\phi\|^2)` along the first ``count`` feature rows, and a
    mild uniform point."""
    seeds = []
    for big in LARGE[:3]:
        for v in range(min(len(rows), count)):
            x = rows[v] * big / max(1.0, float(np.dot(rows[v], rows[v])))
            seeds.append(x)
            seeds.append(-x)
    seeds.append(np.full(n, 0.3))
    return seeds


def _level_logit(J: float, hits: int, others: int) -> float:
    r"""The logit :math:`x` that gives ``hits`` tokens at :math:`x` against ``others`` at 0 the mass ``J``:
    :math:`x=\log\frac{J\,\text{others}}{\text{hits}\,(1-J)}`."""
    return float(np.log(J * others / (hits * (1.0 - J))))


def _token_differences(n: int, V: int, T: int) -> list[Vector]:
    r""":math:`e_i-e_j` at the first position; for :math:`T>1` also opposite moves at two positions and the same
    move at every position."""
    out = []
    for i, j in itertools.permutations(range(V), 2):
        x = np.zeros(n)
        x[i], x[j] = 1.0, -1.0
        out.append(x)
        if T > 1:
            y = np.zeros(n)
            y[i], y[j], y[V + i], y[V + j] = 1.0, -1.0, -1.0, 1.0
            out.append(y)
            out.append(np.tile(x[:V], T))
    return out


# ------------------------------------------------------------------ softmax bandit


def _softmax_structures(sizes: Sizes, cap: int) -> list[Instance]:
    out: list[Instance] = []
    for k in _size_values(sizes, "K", cap):
        for c in ({0}, set(range(k - 1)), {0, 1} if k > 3 else None):
            if c:
                out.append(SoftmaxBandit((0.0,) * k, frozenset(c)))
    return out


def _softmax_theta(inst: SoftmaxBandit) -> list[Vector]:
    """One arm (correct or wrong) far ahead, one wrong arm switched off (a tie among the others), and the correct
    arms together at each of :data:`J_LEVELS`."""
    n = len(inst.theta)
    c = sorted(inst.correct)
    w = [a for a in range(inst.K) if a not in inst.correct]
    seeds = []
    for big in LARGE:
        for arm in (c[0], w[0]):
            x = np.zeros(n)
            x[arm] = big
            seeds.append(x)
        x = np.zeros(n)
        x[w[-1]] = -big
        seeds.append(x)
    for level in J_LEVELS:  # the correct arms level at J
        x = np.zeros(n)
        x[c] = _level_logit(level, len(c), inst.K - len(c))
        seeds.append(x)
    return seeds


def _softmax_directions(inst: SoftmaxBandit) -> list[Vector]:
    return _token_differences(len(inst.theta), inst.K, 1)


SOFTMAX_SEEDS: Final[AdversarialSeeds] = AdversarialSeeds(_softmax_structures, _softmax_theta, _softmax_directions)


# ------------------------------------------------------------------ independent tokens


def _tokens_structures(sizes: Sizes, cap: int) -> list[Instance]:
    out: list[Instance] = []
    for t, v in itertools.product(_size_values(sizes, "T", cap), _size_values(sizes, "V", cap)):
        if v**t <= _MAX_RESPONSES:
            out.append(TokenSequence(((0.0,) * v,) * t, (0,) * t))
            if t > 1:
                out.append(TokenSequence(((0.0,) * v,) * t, (0,) * t, 1))
    return out


def _tokens_theta(inst: TokenSequence) -> list[Vector]:
    """The target everywhere far ahead (J -> 1), the same with the first position undecided, a wrong first token
    far ahead (J -> 0), and the target at :data:`J_LEVELS` (per position the T-th root)."""
    n, V = len(inst.theta), inst.V
    seeds = []
    for big in LARGE:
        x = np.zeros(n)
        for t, o in enumerate(inst.target):
            x[t * V + o] = big
        seeds.append(x)
        y = x.copy()
        y[inst.target[0]] = 0.0
        seeds.append(y)
        z = np.zeros(n)
        z[(inst.target[0] + 1) % V] = big
        seeds.append(z)
    for level in J_LEVELS:  # every position at level**(1/T) on its target (exactly J for an exact match)
        x = np.zeros(n)
        for t, o in enumerate(inst.target):
            x[t * V + o] = _level_logit(level ** (1.0 / inst.T), 1, V - 1)
        seeds.append(x)
    return seeds


def _tokens_directions(inst: TokenSequence) -> list[Vector]:
    return _token_differences(len(inst.theta), inst.V, inst.T)


TOKENS_SEEDS: Final[AdversarialSeeds] = AdversarialSeeds(_tokens_structures, _tokens_theta, _tokens_directions)


# ------------------------------------------------------------------ shared-parameter tokens


def _shared_tokens_structures(sizes: Sizes, cap: int) -> list[Instance]:
    out: list[Instance] = []
    for d, v, t in itertools.product(_size_values(sizes, "d", cap), _size_values(sizes, "V", cap),
                                     _size_values(sizes, "T", cap)):
        if v**t > _MAX_RESPONSES:
            continue
        line = tuple((float(i),) + (0.0,) * (d - 1) for i in range(v))  # phi_v = v e_1
        hot = tuple(tuple(1.0 if j == i % d else 0.0 for j in range(d)) for i in range(v))
        for feats in dict.fromkeys((line, hot)):
            for c in ({0}, {1}):
                out.append(SharedTokens((0.0,) * d, feats, frozenset(c), T=t))
    return out


def _shared_tokens_theta(inst: SharedTokens) -> list[Vector]:
    return _along_rows(np.asarray(inst.features, dtype=float), 3, len(inst.theta))


def _shared_tokens_directions(inst: SharedTokens) -> list[Vector]:
    r"""Feature differences :math:`\phi_i-\phi_j`."""
    feats = np.asarray(inst.features, dtype=float)
    return [feats[i] - feats[j] for i, j in itertools.permutations(range(inst.V), 2)]


SHARED_TOKENS_SEEDS: Final[AdversarialSeeds] = AdversarialSeeds(
    _shared_tokens_structures, _shared_tokens_theta, _shared_tokens_directions)


# ------------------------------------------------------------------ autoregressive


def _autoregressive_structures(sizes: Sizes, cap: int) -> list[Instance]:
    out: list[Instance] = []
    for t, v in itertools.product(_size_values(sizes, "T", cap), _size_values(sizes, "V", cap)):
        if v * (v**t - 1) // (v - 1) <= 14:
            zero = tuple(((0.0,) * v,) * v**k for k in range(t))
            out.append(Autoregressive(zero, (0,) * t))
            if t > 1:
                out.append(Autoregressive(zero, (0,) * t, 1))
                out.append(Autoregressive(zero, (0,) * (t - 1) + (1,), None, 1))
    return out


def _autoregressive_theta(inst: Autoregressive) -> list[Vector]:
    """The target path far ahead (J -> 1), the same with the first token undecided, a wrong first token far
    ahead (J -> 0), and the path at :data:`J_LEVELS` (per step the T-th root)."""
    n, V = len(inst.theta), inst.V
    seeds = []
    for big in LARGE:
        x = np.zeros(n)
        for t in range(inst.T):
            x[inst.param_index(t, inst.target[:t], inst.target[t])] = big
        seeds.append(x)
        y = x.copy()
        y[inst.target[0]] = 0.0
        seeds.append(y)
        z = np.zeros(n)
        z[(inst.target[0] + 1) % V] = big
        seeds.append(z)
    for level in J_LEVELS:  # every step of the target path at level**(1/T)
        x = np.zeros(n)
        for t in range(inst.T):
            x[inst.param_index(t, inst.target[:t], inst.target[t])] = _level_logit(level ** (1.0 / inst.T), 1, V - 1)
        seeds.append(x)
    return seeds


def _autoregressive_directions(inst: Autoregressive) -> list[Vector]:
    """Token differences in the first row and in the rows along the target path."""
    n, out = len(inst.theta), []
    for t in range(inst.T):
        row = inst.row_index(t, inst.target[:t]) * inst.V
        for i, j in itertools.permutations(range(inst.V), 2):
            x = np.zeros(n)
            x[row + i], x[row + j] = 1.0, -1.0
            out.append(x)
    return out


AUTOREGRESSIVE_SEEDS: Final[AdversarialSeeds] = AdversarialSeeds(
    _autoregressive_structures, _autoregressive_theta, _autoregressive_directions)


# ------------------------------------------------------------------ contextual bandit


def _contextual_structures(sizes: Sizes, cap: int) -> list[Instance]:
    out: list[Instance] = []
    for P, A, d in itertools.product(_size_values(sizes, "P", cap), _size_values(sizes, "A", cap),
                                     _size_values(sizes, "d", cap)):
        line = tuple(tuple((float(a * (x + 1)),) + (0.0,) * (d - 1) for a in range(A)) for x in range(P))
        hot = tuple(tuple(tuple(1.0 if j == (a + x) % d else 0.0 for j in range(d)) for a in range(A))
                    for x in range(P))
        for feats in dict.fromkeys((line, hot)):
            for c in ({0}, {1}):
                out.append(ContextualBandit((0.0,) * d, feats, (frozenset(c),) * P))
    return out


def _contextual_theta(inst: ContextualBandit) -> list[Vector]:
    """Large moves along the features of the first prompts' actions."""
    return _along_rows(np.asarray(inst.features, dtype=float).reshape(-1, inst.d), 4, len(inst.theta))


def _contextual_directions(inst: ContextualBandit) -> list[Vector]:
    """Differences of two actions' features at one prompt."""
    return [rows[i] - rows[j] for rows in np.asarray(inst.features, dtype=float)
            for i, j in itertools.permutations(range(inst.A), 2)]


CONTEXTUAL_SEEDS: Final[AdversarialSeeds] = AdversarialSeeds(
    _contextual_structures, _contextual_theta, _contextual_directions)
