r"""The family registry: where the symbolic and the numeric twin of each policy family meet.

One static table, :data:`FAMILIES`, maps a family name to its :class:`Family`: the instance type (which
describes the family itself: sizes, log-linear form per position, dict and string forms, in
``gradgap.theory.instances``), the two twin modules, the Hypothesis strategy of its instances, its size
parameters and the small structures on which identities are proved. Every consumer in ``proofs_check/`` and
``experiments/`` looks a family up here instead of re-describing it (style rule 16).

Adding a family touches: its instance type in ``theory/instances.py`` (with ``FAMILY``, ``SIZE_PARAMETERS``,
``sizes``, ``as_dict``, ``describe``, ``structure``, ``unique_correct_response``), ``theory/<name>.py`` and
``numerics/<name>.py`` (the names of docs/DESIGN.md), one strategy, its adversarial seeds
(:mod:`~gradgap.proofs_check.seeds`), its cross-check points (:mod:`~gradgap.proofs_check.cross_check_points`) and
one entry below.

>>> FAMILIES["softmax"].size_parameters
{'K': (2, 5)}
>>> from gradgap.theory.instances import SoftmaxBandit
>>> numerics_module(SoftmaxBandit(logits=(0.0, 0.0), correct=frozenset({0}))).__name__
'gradgap.numerics.softmax'
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Final

from hypothesis import assume
from hypothesis import strategies as st

from gradgap.numerics import autoregressive as numerics_autoregressive
from gradgap.numerics import contextual as numerics_contextual
from gradgap.numerics import shared_tokens as numerics_shared_tokens
from gradgap.numerics import softmax as numerics_softmax
from gradgap.numerics import tokens as numerics_tokens
from gradgap.proofs_check.cross_check_points import (
    AUTOREGRESSIVE_POINTS,
    CONTEXTUAL_POINTS,
    SHARED_TOKENS_POINTS,
    SOFTMAX_POINTS,
    TOKENS_POINTS,
    CrossCheckPoints,
)
from gradgap.proofs_check.seeds import (
    AUTOREGRESSIVE_SEEDS,
    CONTEXTUAL_SEEDS,
    SHARED_TOKENS_SEEDS,
    SOFTMAX_SEEDS,
    TOKENS_SEEDS,
    AdversarialSeeds,
)
from gradgap.theory import autoregressive as theory_autoregressive
from gradgap.theory import contextual as theory_contextual
from gradgap.theory import shared_tokens as theory_shared_tokens
from gradgap.theory import softmax as theory_softmax
from gradgap.theory import tokens as theory_tokens
from gradgap.theory.instances import (
    Autoregressive,
    ContextualBandit,
    GradgapValueError,
    Instance,
    SharedTokens,
    SoftmaxBandit,
    TokenSequence,
)

__all__ = [
    "FAMILIES",
    "LOGIT_BOUND",
    "LOG_LINEAR_FAMILIES",
    "MAX_RESPONSES",
    "Family",
    "family",
    "instance_strategy",
    "numerics_module",
    "theory_module",
]

#: bound on the logits / parameters a search draws
LOGIT_BOUND: Final[float] = 4.0
#: largest number of responses of an instance a search draws (V**T for the token families)
MAX_RESPONSES: Final[int] = 256

Sizes = Mapping[str, tuple[int, int]]
Strategy = Callable[[Sizes, int, float], st.SearchStrategy[Instance]]


# ------------------------------------------------------------------ strategies


def _floats(bound: float) -> st.SearchStrategy[float]:
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def _size(sizes: Sizes, key: str, cap: int) -> st.SearchStrategy[int]:
    lo, hi = sizes[key]
    return st.integers(lo, max(lo, min(hi, cap)))


def softmax_strategy(sizes: Sizes, cap: int, bound: float) -> st.SearchStrategy[SoftmaxBandit]:
    """Bandits with K in ``sizes['K']`` (capped), logits in ``[-bound, bound]``, a proper correct set."""

    @st.composite
    def draw_one(draw: st.DrawFn) -> SoftmaxBandit:
        k = draw(_size(sizes, "K", cap))
        logits = draw(st.lists(_floats(bound), min_size=k, max_size=k))
        correct = draw(st.sets(st.integers(0, k - 1), min_size=1, max_size=k - 1))
        return SoftmaxBandit(logits=tuple(logits), correct=frozenset(correct))

    return draw_one()


def tokens_strategy(sizes: Sizes, cap: int, bound: float) -> st.SearchStrategy[TokenSequence]:
    """Token sequences with T, V in ``sizes`` (capped, at most :data:`MAX_RESPONSES` responses), any m."""

    @st.composite
    def draw_one(draw: st.DrawFn) -> TokenSequence:
        t = draw(_size(sizes, "T", cap))
        v = draw(_size(sizes, "V", cap))
        assume(v**t <= MAX_RESPONSES)
        rows = draw(st.lists(st.lists(_floats(bound), min_size=v, max_size=v), min_size=t, max_size=t))
        target_ = draw(st.lists(st.integers(0, v - 1), min_size=t, max_size=t))
        m = draw(st.none() | st.integers(1, t))
        return TokenSequence(logits=tuple(map(tuple, rows)), target=tuple(target_), min_correct=m)

    return draw_one()


def shared_tokens_strategy(sizes: Sizes, cap: int, bound: float) -> st.SearchStrategy[SharedTokens]:
    """Shared-token policies with d, V, T in ``sizes`` (capped), integer features in [-2, 2], optional biases."""

    @st.composite
    def draw_one(draw: st.DrawFn) -> SharedTokens:
        d = draw(_size(sizes, "d", cap))
        v = draw(_size(sizes, "V", cap))
        t = draw(_size(sizes, "T", cap))
        assume(v**t <= MAX_RESPONSES)
        theta = draw(st.lists(_floats(bound / 2), min_size=d, max_size=d))
        feats = draw(st.lists(st.lists(st.integers(-2, 2).map(float), min_size=d, max_size=d),
                              min_size=v, max_size=v))
        correct = draw(st.sets(st.integers(0, v - 1), min_size=1, max_size=v - 1))
        bias = draw(st.none() | st.lists(_floats(1.0), min_size=v, max_size=v).map(tuple))
        return SharedTokens(theta=tuple(theta), features=tuple(map(tuple, feats)), correct=frozenset(correct),
                            T=t, bias=bias)

    return draw_one()


def contextual_strategy(sizes: Sizes, cap: int, bound: float) -> st.SearchStrategy[ContextualBandit]:
    """Contextual bandits with P, A, d in ``sizes`` (capped), integer features in [-2, 2], a proper correct set
    per prompt, uniform or drawn positive prompt weights."""

    @st.composite
    def draw_one(draw: st.DrawFn) -> ContextualBandit:
        P = draw(_size(sizes, "P", cap))
        A = draw(_size(sizes, "A", cap))
        d = draw(_size(sizes, "d", cap))
        theta = draw(st.lists(_floats(bound / 2), min_size=d, max_size=d))
        row = st.lists(st.integers(-2, 2).map(float), min_size=d, max_size=d).map(tuple)
        feats = draw(st.lists(st.lists(row, min_size=A, max_size=A).map(tuple), min_size=P, max_size=P))
        correct = draw(st.lists(st.sets(st.integers(0, A - 1), min_size=1, max_size=A - 1).map(frozenset),
                                min_size=P, max_size=P))
        weights = draw(st.none() | st.lists(st.integers(1, 4).map(float), min_size=P, max_size=P).map(tuple))
        return ContextualBandit(theta=tuple(theta), features=tuple(feats), correct=tuple(correct), weights=weights)

    return draw_one()


# ------------------------------------------------------------------ structures on which identities are proved


def softmax_structures(big: bool) -> tuple[SoftmaxBandit, ...]:
    """K = 2, 3 (and 4, 5 with ``big``), correct {0} and {0, 1}; logits zero."""
    ks = (2, 3, 4, 5) if big else (2, 3)
    return tuple(SoftmaxBandit((0.0,) * k, frozenset(c)) for k in ks for c in ({0}, {0, 1}) if len(c) < k)


def tokens_structures(big: bool) -> tuple[TokenSequence, ...]:
    """(T, V, m) = (1,2,T), (2,2,T), (2,3,T), (2,3,1) (and (3,2,T), (3,2,2), (3,3,T) with ``big``)."""
    shapes = [(1, 2, None), (2, 2, None), (2, 3, None), (2, 3, 1)]
    if big:
        shapes += [(3, 2, None), (3, 2, 2), (3, 3, None)]
    return tuple(TokenSequence(((0.0,) * v,) * t, tuple(i % v for i in range(t)), m) for t, v, m in shapes)


def shared_tokens_structures(big: bool) -> tuple[SharedTokens, ...]:
    """d = 2, features (0,1), (1,0), (1,1); (T, C) = (1, {0}), (2, {0,1}), (5, {1}) (and (3, {1}) with ``big``).

    T = 5 has V^T = 243 responses, more than the theory's enumeration limit: its response-level decomposition
    is proved by counting the in-C tokens, the other route of ``theory.shared_tokens.prove_identities``."""
    feats = ((0.0, 1.0), (1.0, 0.0), (1.0, 1.0))
    shapes = [(1, {0}), (2, {0, 1}), (5, {1})] + ([(3, {1})] if big else [])
    return tuple(SharedTokens((0.0, 0.0), feats, frozenset(c), t) for t, c in shapes)


#: largest parameter count an autoregressive search draws (T=3, V=3 has 39: its closed forms are slow)
AUTOREGRESSIVE_MAX_PARAMS: Final[int] = 14


def autoregressive_strategy(sizes: Sizes, cap: int, bound: float) -> st.SearchStrategy[Autoregressive]:
    """Autoregressive tables with T, V in ``sizes`` (capped; at most :data:`AUTOREGRESSIVE_MAX_PARAMS`
    parameters), any target, exact match or at least m, with or without an end-of-sequence token."""

    @st.composite
    def draw_one(draw: st.DrawFn) -> Autoregressive:
        t = draw(_size(sizes, "T", cap))
        v = draw(_size(sizes, "V", cap))
        assume(v * (v**t - 1) // (v - 1) <= AUTOREGRESSIVE_MAX_PARAMS)
        tables = tuple(tuple(tuple(draw(st.lists(_floats(bound), min_size=v, max_size=v))) for _ in range(v**k))
                       for k in range(t))
        target_ = draw(st.lists(st.integers(0, v - 1), min_size=t, max_size=t))
        eos = draw(st.none() | st.integers(0, v - 1))
        reach = Autoregressive(logits=tables, target=tuple(target_), eos=eos).max_hits()
        m = draw(st.none() | st.integers(1, reach))
        return Autoregressive(logits=tables, target=tuple(target_), min_correct=m, eos=eos)

    return draw_one()


def autoregressive_structures(big: bool) -> tuple[Autoregressive, ...]:
    """(T, V, m, eos) = (1,2,-,-), (2,2,-,-), (2,2,1,-), (2,2,-,1), (1,3,-,-) (and (3,2,-,1), (3,2,2,-), (2,3,-,-)
    with ``big``); targets (0, 1, ...) mod V; logits zero."""
    shapes = [(1, 2, None, None), (2, 2, None, None), (2, 2, 1, None), (2, 2, None, 1), (1, 3, None, None)]
    if big:
        shapes += [(3, 2, None, 1), (3, 2, 2, None), (2, 3, None, None)]
    return tuple(Autoregressive(tuple(((0.0,) * v,) * v**k for k in range(t)), tuple(i % v for i in range(t)), m, e)
                 for t, v, m, e in shapes)


def contextual_structures(big: bool) -> tuple[ContextualBandit, ...]:
    """(P, A, d) = (1, 2, 1), (2, 2, 1), (2, 3, 2) (and (3, 2, 2) with ``big``); parameters zero."""
    shapes = [(1, 2, 1, ({0},)), (2, 2, 1, ({0}, {1})), (2, 3, 2, ({0}, {1, 2}))]
    if big:
        shapes.append((3, 2, 2, ({0}, {1}, {0})))
    out = []
    for P, A, d, corr in shapes:
        feats = tuple(tuple(tuple(float(((x + 1) * (a + 1) * (i + 2)) % 5 - 2) for i in range(d)) for a in range(A))
                      for x in range(P))
        out.append(ContextualBandit((0.0,) * d, feats, tuple(frozenset(c) for c in corr)))
    return tuple(out)


# ------------------------------------------------------------------ the registry


@dataclass(frozen=True)
class Family:
    """One policy family: its instance type, its two twin modules, its strategy, its proof structures and where
    the adversarial search starts on it."""

    name: str
    instance_type: type[Instance]
    theory: ModuleType
    numerics: ModuleType
    strategy: Strategy
    structures: Callable[[bool], tuple[Instance, ...]]
    adversarial_seeds: AdversarialSeeds
    #: the random structures and extreme instances of the theory-vs-numerics cross-check
    cross_check: CrossCheckPoints
    #: whether the instance type has a fixed-position ``structure()`` (a :class:`LogLinearForm`): the generic
    #: built-in claims (core identities, constants, one-step, Theorem 1) run on these families only
    log_linear_form: bool = True

    @property
    def size_parameters(self) -> dict[str, tuple[int, int]]:
        """The size parameters with the default inclusive ranges of a search (from the instance type)."""
        return dict(self.instance_type.SIZE_PARAMETERS)

    def __post_init__(self) -> None:
        for inst in (*self.cross_check.structures, *self.cross_check.extreme):
            if type(inst) is not self.instance_type:
                raise TypeError(f"family {self.name!r}: cross-check point {inst!r} is not a "
                                f"{self.instance_type.__name__}")


#: every family, in report order
FAMILIES: Final[Mapping[str, Family]] = MappingProxyType({
    f.name: f for f in (
        Family("softmax", SoftmaxBandit, theory_softmax, numerics_softmax, softmax_strategy, softmax_structures,
               SOFTMAX_SEEDS, SOFTMAX_POINTS),
        Family("tokens", TokenSequence, theory_tokens, numerics_tokens, tokens_strategy, tokens_structures,
               TOKENS_SEEDS, TOKENS_POINTS),
        Family("shared_tokens", SharedTokens, theory_shared_tokens, numerics_shared_tokens,
               shared_tokens_strategy, shared_tokens_structures, SHARED_TOKENS_SEEDS, SHARED_TOKENS_POINTS),
        Family("autoregressive", Autoregressive, theory_autoregressive, numerics_autoregressive,
               autoregressive_strategy, autoregressive_structures, AUTOREGRESSIVE_SEEDS, AUTOREGRESSIVE_POINTS,
               log_linear_form=False),
        Family("contextual", ContextualBandit, theory_contextual, numerics_contextual, contextual_strategy,
               contextual_structures, CONTEXTUAL_SEEDS, CONTEXTUAL_POINTS),
    )
})

#: the families with a fixed-position log-linear form, in report order (the generic built-in claims' families)
LOG_LINEAR_FAMILIES: Final[tuple[str, ...]] = tuple(name for name, f in FAMILIES.items() if f.log_linear_form)


def family(instance_or_name: Instance | str) -> Family:
    """The registry entry of a family name or of an instance; an unknown name raises naming the choices."""
    if isinstance(instance_or_name, str):
        name = instance_or_name
        if name not in FAMILIES:
            close = difflib.get_close_matches(name, list(FAMILIES), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise GradgapValueError(f"family={name!r}: unknown; choose one of {', '.join(FAMILIES)}{hint}",
                                    field="family", value=name)
        return FAMILIES[name]
    for entry in FAMILIES.values():
        if type(instance_or_name) is entry.instance_type:
            return entry
    raise GradgapValueError(f"instance={type(instance_or_name).__name__}: not an instance of a registered family",
                            field="instance", value=type(instance_or_name).__name__)


def theory_module(instance_or_name: Instance | str) -> ModuleType:
    """The symbolic twin (``gradgap.theory.<family>``) of a family name or an instance."""
    return family(instance_or_name).theory


def numerics_module(instance_or_name: Instance | str) -> ModuleType:
    """The numeric twin (``gradgap.numerics.<family>``) of a family name or an instance."""
    return family(instance_or_name).numerics


def instance_strategy(name: str, sizes: Sizes | None = None, cap: int = 5,
                      bound: float = LOGIT_BOUND) -> st.SearchStrategy[Instance]:
    r"""Instances of family ``name`` with size parameters in ``sizes`` (default: the family's ranges), each capped
    at ``cap``, and at most :data:`MAX_RESPONSES` responses; logits in :math:`[-\text{bound}, \text{bound}]`."""
    entry = family(name)
    return entry.strategy(entry.size_parameters if sizes is None else sizes, cap, bound)
