r"""Plain instance types shared by ``theory/`` and ``numerics/``, and the project's error family.

This module imports neither sympy nor torch: it is the one thing the symbolic side and its
numeric twin share, so that a check comparing them is worth something.

Notation (paper symbol -> field):

===============  ===================================  ==========================================
paper            here                                  meaning
===============  ===================================  ==========================================
:math:`\theta`   ``logits`` / ``theta``                policy parameters
:math:`K`        ``SoftmaxBandit.K``                   number of arms
:math:`C`        ``correct``                           correct arms / correct vocabulary subset
:math:`T, V`     ``TokenSequence.T``, ``.V``           response length, vocabulary size
:math:`o^\star`  ``TokenSequence.target``              target response
:math:`m`        ``TokenSequence.min_correct``         reward 1 iff at least m positions match
:math:`\phi(v)`  ``SharedTokens.features[v]``          log-linear feature of token v
:math:`x, P, A`  ``ContextualBandit.P``, ``.A``        prompt, number of prompts, actions per prompt
:math:`\phi(x,a)` ``ContextualBandit.features[x][a]``  log-linear feature of action a at prompt x
===============  ===================================  ==========================================

Parameter vectors are always flat: softmax ``(K,)``, tokens ``(T*V,)`` row-major, shared ``(d,)``.

Each instance type describes its family once (style rule 16): ``FAMILY`` (its name), ``SIZE_PARAMETERS`` (the
size parameters with the default inclusive ranges of a search), ``sizes``, ``as_dict()``, ``describe()`` and
``structure()``, its :class:`LogLinearForm`: every family here is log-linear per position,

.. math:: \pi_\theta(o) = \prod_{t=1}^T \mathrm{softmax}(A_t\theta + b_t)_{o_t},\qquad
          r(o) = \mathbb 1\big[\#\{t : o_t\in C_t\} \ge m\big],

with the feature rows :math:`A_t` (one row :math:`\phi_t(v)` per token, in the flat parameter layout), the biases
:math:`b_t` and the correct sets :math:`C_t` (reconstruction §1, INFERRED: the setting; the per-position form
is this project's description). The registry that maps a family name to its twin modules is
``gradgap.proofs_check.families``.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Final, final

__all__ = [
    "FAMILIES",
    "METHODS",
    "RULES",
    "Autoregressive",
    "ContextualBandit",
    "ContextualForm",
    "GradgapError",
    "GradgapTypeError",
    "GradgapValueError",
    "Instance",
    "LogLinearForm",
    "Position",
    "SharedTokens",
    "SoftmaxBandit",
    "TokenSequence",
    "family_name",
]


#: the numeric route vocabulary (style rule 3): ``method=`` of every numeric quantity, and ``gradgap gap --method``
METHODS: Final[tuple[str, ...]] = ("enumerate", "structured", "autograd", "fd", "mc")
#: the update rules of the dynamics: exact Gradient Gap, REINFORCE (A = r), Dr. GRPO (A = r - p_hat), GRPO
#: (A = (r - p_hat)/std) -- reconstruction §4.4; shared by the closed-form thresholds, the simulator and the CLI
RULES: Final[tuple[str, ...]] = ("gap", "reinforce", "dr_grpo", "grpo")


class GradgapError(Exception):
    """Base of every error gradgap raises on bad input; the CLI prints it as one line, exit 2."""

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class GradgapValueError(GradgapError, ValueError):
    """A value that breaks a rule (range, length, emptiness)."""


class GradgapTypeError(GradgapError, TypeError):
    """A value of the wrong kind (not a number, not a sequence)."""


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(field: str, value: Any, rule: str, cls: type[GradgapError] = GradgapValueError) -> GradgapError:
    return cls(f"{field}={_short(value)}: {rule}", field=field, value=value)


def _check_target(target: Any, T: int, V: int) -> tuple[int, ...]:
    """``target`` as a tuple of ``T`` token indices in ``0..V-1``; a one-line error otherwise."""
    if isinstance(target, str | bytes) or not isinstance(target, Iterable):
        raise _fail("target", target, "must be a sequence of token indices", GradgapTypeError)
    tokens = tuple(target)
    if len(tokens) != T:
        raise _fail("target", target, f"must have length T={T}, got {len(tokens)}")
    for v in tokens:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise _fail("target", target, f"entry {_short(v, 20)} is not an integer", GradgapTypeError)
        if not 0 <= v < V:
            raise _fail("target", target, f"token {v} out of range 0..{V - 1}")
    return tuple(int(v) for v in tokens)


def _check_min_correct(m: Any, T: int) -> None:
    """``m`` is ``None`` (exact match) or an integer in ``1..T``; a one-line error otherwise."""
    if m is None:
        return
    if isinstance(m, bool) or not isinstance(m, int):
        raise _fail("min_correct", m, "must be an integer", GradgapTypeError)
    if not 1 <= m <= T:
        raise _fail("min_correct", m, f"must lie in 1..T={T}")


def check_finite_vector(field: str, values: Any, *, length: int | None = None) -> tuple[float, ...]:
    """Return ``values`` as a tuple of finite floats, or raise naming ``field``."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise _fail(field, values, "must be a sequence of numbers", GradgapTypeError)
    out: list[float] = []
    for item in values:
        if isinstance(item, bool) or not isinstance(item, numbers.Real):
            raise _fail(field, values, f"entry {_short(item, 20)} is not a real number", GradgapTypeError)
        x = float(item)
        if not math.isfinite(x):
            raise _fail(field, values, "entries must be finite")
        out.append(x)
    if not out:
        raise _fail(field, values, "must not be empty")
    if length is not None and len(out) != length:
        raise _fail(field, values, f"must have length {length}, got {len(out)}")
    return tuple(out)


def check_index_set(field: str, values: Any, *, size: int, proper: bool = True) -> frozenset[int]:
    """A non-empty set of indices in ``range(size)``; with ``proper`` it may not be all of them."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise _fail(field, values, "must be a collection of indices", GradgapTypeError)
    items = list(values)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise _fail(field, values, f"entry {_short(item, 20)} is not an integer index", GradgapTypeError)
        if not 0 <= item < size:
            raise _fail(field, values, f"index {item} out of range 0..{size - 1}")
    out = frozenset(int(i) for i in items)
    if not out:
        raise _fail(field, values, "must not be empty (some response must be correct)")
    if proper and len(out) == size:
        raise _fail(field, values, "must not contain every index (some response must be wrong)")
    return out


@final
@dataclass(frozen=True)
class Position:
    r"""One position type of a log-linear policy: :math:`\pi(v)\propto\exp(\phi(v)^\top\theta+b_v)`.

    ``features[v]`` is :math:`\phi(v)` in the flat parameter layout, ``bias[v]`` is :math:`b_v`, ``correct`` the
    tokens that count as a hit at this position and ``count`` how many positions share this type.

    >>> Position(features=((1.0, 0.0), (0.0, 1.0)), bias=(0.0, 0.0), correct=frozenset({0})).V
    2
    """

    features: tuple[tuple[float, ...], ...]
    bias: tuple[float, ...]
    correct: frozenset[int]
    count: int = 1

    @property
    def V(self) -> int:
        """Number of tokens at this position."""
        return len(self.features)


@final
@dataclass(frozen=True)
class LogLinearForm:
    r"""A family member as a product of log-linear positions with a hit-count reward.

    .. math:: \pi_\theta(o)=\prod_t\mathrm{softmax}(A_t\theta+b_t)_{o_t},\quad
              r(o)=\mathbb 1[\#\{t:o_t\in C_t\}\ge m].

    ``positions`` lists the position types in response order (a type with ``count`` c stands for c consecutive
    positions); ``min_hits`` is :math:`m`.

    >>> form = SoftmaxBandit(logits=(0.0, 0.0), correct=frozenset({1})).structure()
    >>> form.T, form.min_hits, form.reward((1,)), form.product_reward
    (1, 1, 1, True)
    """

    positions: tuple[Position, ...]
    min_hits: int
    n_params: int

    @property
    def T(self) -> int:
        r"""Response length :math:`T=\sum_j c_j`."""
        return sum(p.count for p in self.positions)

    @property
    def product_reward(self) -> bool:
        """Whether the reward is a product over positions (every position must hit: :math:`m=T`)."""
        return self.min_hits == self.T

    def expanded(self) -> tuple[Position, ...]:
        """One :class:`Position` per response position (the counts unrolled)."""
        return tuple(p for p in self.positions for _ in range(p.count))

    def reward(self, response: Sequence[int]) -> int:
        r""":math:`r(o)=\mathbb 1[\#\{t:o_t\in C_t\}\ge m]` of one response."""
        hits = sum(int(o in p.correct) for o, p in zip(response, self.expanded(), strict=True))
        return int(hits >= self.min_hits)

    def responses(self) -> list[tuple[int, ...]]:
        """Every response, in lexicographic order (small instances only)."""
        return [tuple(o) for o in itertools.product(*(range(p.V) for p in self.expanded()))]


def _unit_rows(n: int, offset: int, size: int) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(1.0 if j == offset + v else 0.0 for j in range(n)) for v in range(size))


@final
@dataclass(frozen=True)
class SoftmaxBandit:
    r"""K-armed softmax bandit: :math:`\pi_\theta(a) = e^{\theta_a} / \sum_b e^{\theta_b}`, reward
    :math:`r(a) = \mathbb 1[a \in C]`.

    >>> SoftmaxBandit(logits=(0.0, 1.0, -1.0), correct=frozenset({0})).K
    3
    """

    FAMILY: ClassVar[str] = "softmax"
    #: size parameters and the default inclusive ranges of a search
    SIZE_PARAMETERS: ClassVar[Mapping[str, tuple[int, int]]] = MappingProxyType({"K": (2, 5)})

    logits: tuple[float, ...]
    correct: frozenset[int]

    def __post_init__(self) -> None:
        logits = check_finite_vector("logits", self.logits)
        if len(logits) < 2:
            raise _fail("logits", self.logits, "a bandit needs at least 2 arms")
        object.__setattr__(self, "logits", logits)
        object.__setattr__(self, "correct", check_index_set("correct", self.correct, size=len(logits)))

    @property
    def K(self) -> int:
        return len(self.logits)

    @property
    def theta(self) -> tuple[float, ...]:
        """The flat parameter vector (here the logits)."""
        return self.logits

    def with_theta(self, theta: Sequence[float]) -> SoftmaxBandit:
        return SoftmaxBandit(logits=tuple(theta), correct=self.correct)

    @property
    def sizes(self) -> dict[str, int]:
        """The size parameters of this member."""
        return {"K": self.K}

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready description (the constructor's keywords)."""
        return {"logits": list(self.logits), "correct": sorted(self.correct)}

    def describe(self) -> str:
        """The structure in words, e.g. ``softmax K=3 C=[0]``."""
        return f"softmax K={self.K} C={sorted(self.correct)}"

    def structure(self) -> LogLinearForm:
        r"""One position, :math:`A=I_K`, :math:`b=0`, :math:`C`, :math:`m=1`."""
        K = self.K
        return LogLinearForm((Position(_unit_rows(K, 0, K), (0.0,) * K, self.correct),), 1, K)

    def unique_correct_response(self) -> tuple[int, ...] | None:
        r"""The one correct response :math:`o^\star`, or ``None`` when several responses are correct."""
        return (next(iter(self.correct)),) if len(self.correct) == 1 else None


@final
@dataclass(frozen=True)
class TokenSequence:
    r"""Tabular token-sequence policy: T positions, V tokens, independent logits per position,
    :math:`\pi_\theta(o) = \prod_t \mathrm{softmax}(\theta_t)_{o_t}`.

    Reward: 1 iff at least ``min_correct`` positions carry the target token (``None`` = all T:
    exact match of ``target``).

    >>> TokenSequence(logits=((0.0, 1.0), (2.0, 0.0)), target=(1, 0)).T
    2
    """

    FAMILY: ClassVar[str] = "tokens"
    #: size parameters and the default inclusive ranges of a search
    SIZE_PARAMETERS: ClassVar[Mapping[str, tuple[int, int]]] = MappingProxyType({"T": (1, 3), "V": (2, 3)})

    logits: tuple[tuple[float, ...], ...]
    target: tuple[int, ...]
    min_correct: int | None = None

    def __post_init__(self) -> None:
        rows = self.logits
        if isinstance(rows, str | bytes) or not isinstance(rows, Iterable):
            raise _fail("logits", rows, "must be a T x V table of numbers", GradgapTypeError)
        rows = list(rows)
        if not rows:
            raise _fail("logits", self.logits, "must have at least one row (T >= 1)")
        table = tuple(check_finite_vector(f"logits[{t}]", row) for t, row in enumerate(rows))
        V = len(table[0])
        for t, row in enumerate(table):
            if len(row) != V:
                raise _fail("logits", self.logits, f"ragged rows: row 0 has {V} entries, row {t} has {len(row)}")
        if V < 2:
            raise _fail("logits", self.logits, "the vocabulary needs at least 2 tokens (V >= 2)")
        object.__setattr__(self, "logits", table)
        object.__setattr__(self, "target", _check_target(self.target, len(table), V))
        _check_min_correct(self.min_correct, len(table))

    @property
    def T(self) -> int:
        return len(self.logits)

    @property
    def V(self) -> int:
        return len(self.logits[0])

    @property
    def m(self) -> int:
        """Successes need at least ``m`` matching positions (``T`` for exact match)."""
        return self.T if self.min_correct is None else self.min_correct

    @property
    def theta(self) -> tuple[float, ...]:
        """Flat parameter vector, row-major ``(T*V,)``."""
        return tuple(x for row in self.logits for x in row)

    def with_theta(self, theta: Sequence[float]) -> TokenSequence:
        flat = tuple(theta)
        if len(flat) != self.T * self.V:
            raise _fail("theta", flat, f"must have length T*V={self.T * self.V}")
        rows = tuple(flat[t * self.V : (t + 1) * self.V] for t in range(self.T))
        return TokenSequence(logits=rows, target=self.target, min_correct=self.min_correct)

    @property
    def sizes(self) -> dict[str, int]:
        """The size parameters of this member."""
        return {"T": self.T, "V": self.V}

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready description (the constructor's keywords)."""
        return {"logits": [list(r) for r in self.logits], "target": list(self.target),
                "min_correct": self.min_correct}

    def describe(self) -> str:
        """The structure in words, e.g. ``tokens T=2 V=3 m=2``."""
        return f"tokens T={self.T} V={self.V} m={self.m}"

    def structure(self) -> LogLinearForm:
        r"""T positions, :math:`A_t` the unit rows of block t, :math:`b=0`, :math:`C_t=\{o^\star_t\}`, :math:`m`."""
        T, V = self.T, self.V
        positions = tuple(Position(_unit_rows(T * V, t * V, V), (0.0,) * V, frozenset({self.target[t]}))
                          for t in range(T))
        return LogLinearForm(positions, self.m, T * V)

    def unique_correct_response(self) -> tuple[int, ...] | None:
        r"""The one correct response :math:`o^\star` (exact match), or ``None`` when ``m < T``."""
        return self.target if self.m == self.T else None


@final
@dataclass(frozen=True)
class SharedTokens:
    r"""Shared-parameter log-linear token policy: one :math:`\theta\in\mathbb R^d` at every position,
    :math:`\pi_\theta(v) \propto \exp(\theta^\top\phi(v) + b_v)`, :math:`\pi_\theta(o)=\prod_{t=1}^T\pi_\theta(o_t)`.

    Reward: 1 iff every token lies in the correct subset ``correct`` of the vocabulary, so
    :math:`J = p^T` with :math:`p = \sum_{v\in C}\pi_\theta(v)`.

    >>> SharedTokens(theta=(0.0,), features=((0.0,), (1.0,), (2.0,)), correct=frozenset({1}), T=2).V
    3
    """

    FAMILY: ClassVar[str] = "shared_tokens"
    #: size parameters and the default inclusive ranges of a search
    SIZE_PARAMETERS: ClassVar[Mapping[str, tuple[int, int]]] = MappingProxyType(
        {"d": (1, 3), "T": (1, 3), "V": (2, 4)})

    theta: tuple[float, ...]
    features: tuple[tuple[float, ...], ...]
    correct: frozenset[int]
    T: int
    bias: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        theta = check_finite_vector("theta", self.theta)
        object.__setattr__(self, "theta", theta)
        feats = self.features
        if isinstance(feats, str | bytes) or not isinstance(feats, Iterable):
            raise _fail("features", feats, "must be a V x d table of numbers", GradgapTypeError)
        table = tuple(check_finite_vector(f"features[{v}]", row, length=len(theta)) for v, row in enumerate(feats))
        if len(table) < 2:
            raise _fail("features", self.features, "the vocabulary needs at least 2 tokens (V >= 2)")
        object.__setattr__(self, "features", table)
        object.__setattr__(self, "correct", check_index_set("correct", self.correct, size=len(table)))
        if isinstance(self.T, bool) or not isinstance(self.T, int):
            raise _fail("T", self.T, "must be an integer", GradgapTypeError)
        if self.T < 1:
            raise _fail("T", self.T, "must be >= 1")
        if self.bias is not None:
            object.__setattr__(self, "bias", check_finite_vector("bias", self.bias, length=len(table)))

    @property
    def d(self) -> int:
        return len(self.theta)

    @property
    def V(self) -> int:
        return len(self.features)

    @property
    def biases(self) -> tuple[float, ...]:
        """The per-token biases :math:`b_v` (zeros when none were given)."""
        return self.bias if self.bias is not None else (0.0,) * self.V

    def with_theta(self, theta: Sequence[float]) -> SharedTokens:
        return SharedTokens(theta=tuple(theta), features=self.features, correct=self.correct, T=self.T,
                            bias=self.bias)

    @property
    def sizes(self) -> dict[str, int]:
        """The size parameters of this member."""
        return {"d": self.d, "T": self.T, "V": self.V}

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready description (the constructor's keywords)."""
        return {"theta": list(self.theta), "features": [list(r) for r in self.features],
                "correct": sorted(self.correct), "T": self.T, "bias": None if self.bias is None else list(self.bias)}

    def describe(self) -> str:
        """The structure in words, e.g. ``shared d=1 V=3 T=2 C=[1]``."""
        return f"shared d={self.d} V={self.V} T={self.T} C={sorted(self.correct)}"

    def structure(self) -> LogLinearForm:
        r"""One position type repeated T times, :math:`A=\Phi`, :math:`b`, :math:`C`, :math:`m=T`."""
        return LogLinearForm((Position(self.features, self.biases, self.correct, self.T),), self.T, self.d)

    def unique_correct_response(self) -> tuple[int, ...] | None:
        r"""The one correct response :math:`(c,\dots,c)` when :math:`C=\{c\}`, else ``None``."""
        return (next(iter(self.correct)),) * self.T if len(self.correct) == 1 else None


@final
@dataclass(frozen=True)
class Autoregressive:
    r"""Tabular autoregressive policy: a logit vector per position and prefix,
    :math:`\pi_\theta(o)=\prod_{t<L(o)}\mathrm{softmax}(\theta_{t,o_{<t}})_{o_t}`.

    ``logits[t]`` has :math:`V^t` rows, one per prefix :math:`(o_1,\dots,o_t)` read as a base-V number (first
    token most significant), each of V logits; the flat layout is ``(t, prefix, v)``, so there are
    :math:`V(V^T-1)/(V-1)` parameters. With an end-of-sequence token ``eos`` a response ends at its first
    ``eos`` (included) or at T, so :math:`L(o)\le T`; a response is written as a length-T tuple padded with
    ``eos`` after its end (the unpadded tuples have probability 0), and rows whose prefix holds ``eos`` are
    never used. Reward on the ended response: exact match (``min_correct=None``) of the target ended the same
    way, or at least ``min_correct`` of its :math:`L(o)` positions carrying the target's token.

    >>> ar = Autoregressive(logits=(((0.0, 1.0),), ((0.0, 0.0), (2.0, 0.0))), target=(1, 0))
    >>> ar.T, ar.V, len(ar.theta), ar.param_index(1, (1,), 0)
    (2, 2, 6, 4)
    """

    FAMILY: ClassVar[str] = "autoregressive"
    #: size parameters and the default inclusive ranges of a search (V(V^T - 1)/(V - 1) parameters)
    SIZE_PARAMETERS: ClassVar[Mapping[str, tuple[int, int]]] = MappingProxyType({"T": (1, 3), "V": (2, 3)})
    #: largest parameter count accepted (V^T rows grow fast; the command line bounds the work separately)
    MAX_PARAMS: ClassVar[int] = 1_000_000

    logits: tuple[tuple[tuple[float, ...], ...], ...]
    target: tuple[int, ...]
    min_correct: int | None = None
    eos: int | None = None

    def __post_init__(self) -> None:
        tables = self.logits
        if isinstance(tables, str | bytes) or not isinstance(tables, Iterable):
            raise _fail("logits", tables, "must be a list over t of V^t rows of V logits", GradgapTypeError)
        tables = list(tables)
        if not tables:
            raise _fail("logits", self.logits, "must have at least one position (T >= 1)")
        out: list[tuple[tuple[float, ...], ...]] = []
        V = 0
        for t, table in enumerate(tables):
            if isinstance(table, str | bytes) or not isinstance(table, Iterable):
                raise _fail(f"logits[{t}]", table, "must be a list of rows", GradgapTypeError)
            rows = list(table)
            if t == 0:
                if len(rows) != 1:
                    raise _fail("logits[0]", table, f"must have V^0 = 1 row, got {len(rows)}")
                V = len(check_finite_vector("logits[0][0]", rows[0]))
                if V < 2:
                    raise _fail("logits", self.logits, "the vocabulary needs at least 2 tokens (V >= 2)")
                if V * (V ** len(tables) - 1) // (V - 1) > self.MAX_PARAMS:
                    raise _fail("logits", f"T={len(tables)}, V={V}", f"more than {self.MAX_PARAMS} parameters")
            elif len(rows) != V**t:
                raise _fail(f"logits[{t}]", rows, f"must have V^{t} = {V**t} rows (one per prefix), got {len(rows)}")
            out.append(tuple(check_finite_vector(f"logits[{t}][{p}]", row, length=V) for p, row in enumerate(rows)))
        object.__setattr__(self, "logits", tuple(out))
        T = len(out)
        object.__setattr__(self, "target", _check_target(self.target, T, V))
        m = self.min_correct
        _check_min_correct(m, T)
        e = self.eos
        if e is not None:
            if isinstance(e, bool) or not isinstance(e, int):
                raise _fail("eos", e, "must be an integer token index", GradgapTypeError)
            if not 0 <= e < V:
                raise _fail("eos", e, f"token {e} out of range 0..{V - 1}")
            if m is not None and m > self.max_hits():
                raise _fail("min_correct", m, f"no response reaches it: with eos={e} at most {self.max_hits()} "
                                              "positions can match the target")

    def max_hits(self) -> int:
        """The most positions a response can match: every non-eos target token before the response stops, plus
        one if it stops by matching an eos of the target."""
        free = [t for t, v in enumerate(self.target) if v != self.eos]
        stops = [len([s for s in free if s < t]) + 1 for t, v in enumerate(self.target) if v == self.eos]
        return max([len(free), *stops])

    @property
    def T(self) -> int:
        """Largest response length (number of positions)."""
        return len(self.logits)

    @property
    def V(self) -> int:
        return len(self.logits[0][0])

    @property
    def n_rows(self) -> int:
        r"""Number of (position, prefix) rows :math:`\sum_{t<T}V^t`."""
        return sum(self.V**t for t in range(self.T))

    def row_index(self, t: int, prefix: Sequence[int]) -> int:
        """The row of position ``t`` after ``prefix`` (length t) in the flat ``(t, prefix)`` order."""
        code = 0
        for o in prefix:
            code = code * self.V + int(o)
        return sum(self.V**s for s in range(t)) + code

    def param_index(self, t: int, prefix: Sequence[int], v: int) -> int:
        """The flat index of logit ``v`` of position ``t`` after ``prefix``."""
        return self.row_index(t, prefix) * self.V + v

    def ended_length(self, response: Sequence[int]) -> int:
        """:math:`L(o)`: the position of the first ``eos`` plus one, or T."""
        if self.eos is not None:
            for t, o in enumerate(response):
                if o == self.eos:
                    return t + 1
        return len(response)

    def reward(self, response: Sequence[int]) -> int:
        r""":math:`r(o)` on the ended response: exact match of the ended target, or
        :math:`\mathbb 1[\#\{t<L(o):o_t=o^\star_t\}\ge m]`."""
        L = self.ended_length(response)
        if self.min_correct is None:
            return int(tuple(response[:L]) == self.target[: self.ended_length(self.target)])
        return int(sum(int(response[t] == self.target[t]) for t in range(L)) >= self.min_correct)

    def responses(self) -> list[tuple[int, ...]]:
        """Every response of positive probability (padded with ``eos`` after its end), lexicographic order."""
        out = []
        for o in itertools.product(range(self.V), repeat=self.T):
            L = self.ended_length(o)
            if all(x == self.eos for x in o[L:]):
                out.append(tuple(o))
        return out

    @property
    def theta(self) -> tuple[float, ...]:
        """Flat parameter vector in the order ``(t, prefix, v)``."""
        return tuple(x for table in self.logits for row in table for x in row)

    def with_theta(self, theta: Sequence[float]) -> Autoregressive:
        flat = tuple(theta)
        V, n = self.V, len(self.theta)
        if len(flat) != n:
            raise _fail("theta", flat, f"must have length V(V^T-1)/(V-1)={n}")
        tables, k = [], 0
        for t in range(self.T):
            rows = []
            for _ in range(V**t):
                rows.append(flat[k : k + V])
                k += V
            tables.append(tuple(rows))
        return Autoregressive(logits=tuple(tables), target=self.target, min_correct=self.min_correct, eos=self.eos)

    @property
    def sizes(self) -> dict[str, int]:
        """The size parameters of this member."""
        return {"T": self.T, "V": self.V}

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready description (the constructor's keywords)."""
        return {"logits": [[list(r) for r in table] for table in self.logits], "target": list(self.target),
                "min_correct": self.min_correct, "eos": self.eos}

    def describe(self) -> str:
        """The structure in words, e.g. ``autoregressive T=2 V=2 target=[1, 0] exact eos=None``."""
        rule = "exact" if self.min_correct is None else f"m={self.min_correct}"
        return f"autoregressive T={self.T} V={self.V} target={list(self.target)} {rule} eos={self.eos}"

    def structure(self) -> LogLinearForm:
        """Not available: the position a logit row serves depends on the prefix, so this family has no
        fixed-position :class:`LogLinearForm` (docs/DESIGN.md, "Families without a fixed-position form")."""
        raise _fail("family", self.FAMILY, "positions depend on the prefix: no fixed-position log-linear form")

    def unique_correct_response(self) -> tuple[int, ...] | None:
        r"""The one correct response (exact match: the target, padded with ``eos`` after its end), else ``None``."""
        if self.min_correct is not None:
            return None
        L = self.ended_length(self.target)
        return self.target[:L] + (self.eos,) * (self.T - L) if L < self.T else self.target


@final
@dataclass(frozen=True)
class ContextualForm:
    r"""A contextual bandit as a mixture over prompts of one-position log-linear forms.

    .. math:: \pi_\theta(x,a)=\rho_x\,\pi_\theta(a\mid x),\quad
              \pi_\theta(a\mid x)=\mathrm{softmax}(\Phi_x\theta)_a,\quad r(x,a)=\mathbb 1[a\in C_x].

    :class:`LogLinearForm` is a *product* over positions with one feature table per position; a contextual bandit
    draws its prompt :math:`x\sim\rho` (no parameter) and then one action from a table that depends on
    :math:`x`, which no product of fixed positions expresses. This is the minimal extension: ``prompts[x]`` is
    the one-position form of prompt :math:`x` (``min_hits`` 1), ``weights`` is :math:`\rho`. A response is the
    pair ``(x, a)``; :meth:`conditional` gives the prompt's own form and ``(a,)``, whose log-probability,
    score and Hessian are those of the pair (the prompt weight does not depend on :math:`\theta`).

    >>> form = ContextualBandit(theta=(0.0,), features=(((1.0,), (0.0,)),), correct=(frozenset({0}),)).structure()
    >>> form.responses(), form.reward((0, 0)), form.T
    ([(0, 0), (0, 1)], 1, 1)
    """

    prompts: tuple[LogLinearForm, ...]
    weights: tuple[float, ...]
    n_params: int

    @property
    def T(self) -> int:
        """Response length per prompt (one action)."""
        return 1

    def conditional(self, response: Sequence[int]) -> tuple[LogLinearForm, tuple[int, ...]]:
        """The form of prompt ``x`` and the action response ``(a,)`` of the pair ``(x, a)``."""
        x, a = response
        return self.prompts[x], (a,)

    def reward(self, response: Sequence[int]) -> int:
        r""":math:`r(x,a)=\mathbb 1[a\in C_x]`."""
        form, sub = self.conditional(response)
        return form.reward(sub)

    def responses(self) -> list[tuple[int, ...]]:
        """Every pair ``(x, a)``, prompt-major."""
        return [(x, a) for x, form in enumerate(self.prompts) for a in range(form.positions[0].V)]


@final
@dataclass(frozen=True)
class ContextualBandit:
    r"""Contextual log-linear bandit: P prompts :math:`x\sim\rho` (uniform unless ``weights``), A actions per
    prompt, one shared :math:`\theta\in\mathbb R^d`, :math:`\pi_\theta(a\mid x)\propto\exp\langle\theta,
    \phi(x,a)\rangle`, reward :math:`r(x,a)=\mathbb 1[a\in C_x]`.

    :math:`J=\sum_x\rho_xJ_x` with :math:`J_x=\pi_\theta(C_x\mid x)`; the joint Gradient Gap is
    :math:`g=\mathbb E[s\mid r=1]-\mathbb E[s\mid r=0]` over pairs :math:`(x,a)`, :math:`s=\nabla\log\pi(a\mid x)`.
    Every prompt needs a correct and a wrong action (so every per-prompt gap exists). ``weights`` are positive
    and normalised here (reconstruction §5: the paper's contextual-bandit experiments, INFERRED).

    >>> ContextualBandit(theta=(0.1, -0.2), features=(((1, 0), (0, 1), (1, 1)), ((0, 0), (1, 0), (0, 1))),
    ...                  correct=((0,), (1, 2))).sizes
    {'P': 2, 'A': 3, 'd': 2}
    """

    FAMILY: ClassVar[str] = "contextual"
    #: size parameters and the default inclusive ranges of a search
    SIZE_PARAMETERS: ClassVar[Mapping[str, tuple[int, int]]] = MappingProxyType(
        {"P": (1, 2), "A": (2, 3), "d": (1, 2)})

    theta: tuple[float, ...]
    features: tuple[tuple[tuple[float, ...], ...], ...]
    correct: tuple[frozenset[int], ...]
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        theta = check_finite_vector("theta", self.theta)
        object.__setattr__(self, "theta", theta)
        feats = self.features
        if isinstance(feats, str | bytes) or not isinstance(feats, Iterable):
            raise _fail("features", feats, "must be a P x A x d table of numbers", GradgapTypeError)
        prompts = list(feats)
        if not prompts:
            raise _fail("features", self.features, "needs at least one prompt (P >= 1)")
        table = []
        for x, rows in enumerate(prompts):
            if isinstance(rows, str | bytes) or not isinstance(rows, Iterable):
                raise _fail(f"features[{x}]", rows, "must be an A x d table of numbers", GradgapTypeError)
            table.append(tuple(check_finite_vector(f"features[{x}][{a}]", row, length=len(theta))
                               for a, row in enumerate(rows)))
        A = len(table[0])
        if A < 2:
            raise _fail("features", self.features, "every prompt needs at least 2 actions (A >= 2)")
        for x, rows in enumerate(table):
            if len(rows) != A:
                raise _fail("features", self.features, f"ragged: prompt 0 has {A} actions, prompt {x} has {len(rows)}")
        object.__setattr__(self, "features", tuple(table))
        corr = self.correct
        if isinstance(corr, str | bytes) or not isinstance(corr, Iterable):
            raise _fail("correct", corr, "must be one set of correct actions per prompt", GradgapTypeError)
        corr = list(corr)
        if len(corr) != len(table):
            raise _fail("correct", self.correct, f"must have one set per prompt (P={len(table)}), got {len(corr)}")
        object.__setattr__(self, "correct", tuple(check_index_set(f"correct[{x}]", c, size=A)
                                                  for x, c in enumerate(corr)))
        if self.weights is not None:
            w = check_finite_vector("weights", self.weights, length=len(table))
            if min(w) <= 0:
                raise _fail("weights", self.weights, "prompt weights must be positive")
            object.__setattr__(self, "weights", w)

    @property
    def P(self) -> int:
        return len(self.features)

    @property
    def A(self) -> int:
        return len(self.features[0])

    @property
    def d(self) -> int:
        return len(self.theta)

    @property
    def prompt_weights(self) -> tuple[float, ...]:
        r"""The prompt law :math:`\rho` (normalised ``weights``; uniform :math:`1/P` without them)."""
        if self.weights is None:
            return (1.0 / self.P,) * self.P
        total = math.fsum(self.weights)
        return tuple(w / total for w in self.weights)

    def with_theta(self, theta: Sequence[float]) -> ContextualBandit:
        return ContextualBandit(theta=tuple(theta), features=self.features, correct=self.correct,
                                weights=self.weights)

    @property
    def sizes(self) -> dict[str, int]:
        """The size parameters of this member."""
        return {"P": self.P, "A": self.A, "d": self.d}

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready description (the constructor's keywords)."""
        return {"theta": list(self.theta), "features": [[list(r) for r in rows] for rows in self.features],
                "correct": [sorted(c) for c in self.correct],
                "weights": None if self.weights is None else list(self.weights)}

    def describe(self) -> str:
        """The structure in words, e.g. ``contextual P=2 A=3 d=2 C=[[0], [1, 2]]``."""
        extra = "" if self.weights is None else f" w={list(self.weights)}"
        return f"contextual P={self.P} A={self.A} d={self.d} C={[sorted(c) for c in self.correct]}{extra}"

    def structure(self) -> ContextualForm:
        r"""Its :class:`ContextualForm`: per prompt one position :math:`\Phi_x`, :math:`b=0`, :math:`C_x`."""
        prompts = tuple(LogLinearForm((Position(rows, (0.0,) * self.A, c),), 1, self.d)
                        for rows, c in zip(self.features, self.correct, strict=True))
        return ContextualForm(prompts, self.prompt_weights, self.d)

    def unique_correct_response(self) -> tuple[int, ...] | None:
        r"""``None``: a pair :math:`(x,a)` is never the only correct response unless P = 1 and |C| = 1."""
        if self.P == 1 and len(self.correct[0]) == 1:
            return (0, next(iter(self.correct[0])))
        return None


Instance = SoftmaxBandit | TokenSequence | SharedTokens | Autoregressive | ContextualBandit

#: the instance type of each family, by name (the full registry, with the twin modules, is
#: ``gradgap.proofs_check.families.FAMILIES``)
FAMILIES: Final[Mapping[str, type[Instance]]] = MappingProxyType(
    {cls.FAMILY: cls for cls in (SoftmaxBandit, TokenSequence, SharedTokens, Autoregressive, ContextualBandit)})


def family_name(instance: Instance) -> str:
    """The family name (a key of :data:`FAMILIES`) of an instance."""
    name = getattr(type(instance), "FAMILY", None)
    if name in FAMILIES and isinstance(instance, FAMILIES[name]):
        return name
    raise GradgapTypeError(f"instance={_short(instance)}: not a gradgap instance", field="instance", value=instance)
