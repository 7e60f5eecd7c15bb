"""Hypothesis strategies for random instances of every family, including the hard regimes."""

from __future__ import annotations

from hypothesis import strategies as st

from gradgap.theory.instances import Autoregressive, ContextualBandit, SharedTokens, SoftmaxBandit, TokenSequence


def _floats(bound: float) -> st.SearchStrategy[float]:
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, allow_subnormal=False)


#: logits of moderate size, and near-deterministic ones (J near 0 or 1)
BOUNDED = 4.0
EXTREME = 60.0


@st.composite
def softmax_instances(draw: st.DrawFn, *, K: tuple[int, int] = (2, 6), bound: float = BOUNDED) -> SoftmaxBandit:
    k = draw(st.integers(*K))
    logits = draw(st.lists(_floats(bound), min_size=k, max_size=k))
    correct = draw(st.sets(st.integers(0, k - 1), min_size=1, max_size=k - 1))
    return SoftmaxBandit(logits=tuple(logits), correct=frozenset(correct))


@st.composite
def token_instances(
    draw: st.DrawFn,
    *,
    T: tuple[int, int] = (1, 3),
    V: tuple[int, int] = (2, 3),
    bound: float = BOUNDED,
    exact_match: bool | None = None,
) -> TokenSequence:
    t = draw(st.integers(*T))
    v = draw(st.integers(*V))
    rows = draw(st.lists(st.lists(_floats(bound), min_size=v, max_size=v), min_size=t, max_size=t))
    target = draw(st.lists(st.integers(0, v - 1), min_size=t, max_size=t))
    exact = draw(st.booleans()) if exact_match is None else exact_match
    m = None if exact else draw(st.integers(1, t))
    return TokenSequence(logits=tuple(map(tuple, rows)), target=tuple(target), min_correct=m)


@st.composite
def shared_instances(
    draw: st.DrawFn,
    *,
    d: tuple[int, int] = (1, 3),
    V: tuple[int, int] = (2, 4),
    T: tuple[int, int] = (1, 4),
    bound: float = 2.0,
) -> SharedTokens:
    dim = draw(st.integers(*d))
    v = draw(st.integers(*V))
    theta = draw(st.lists(_floats(bound), min_size=dim, max_size=dim))
    feats = draw(st.lists(st.lists(st.integers(-2, 2).map(float), min_size=dim, max_size=dim),
                          min_size=v, max_size=v))
    correct = draw(st.sets(st.integers(0, v - 1), min_size=1, max_size=v - 1))
    bias = draw(st.none() | st.lists(_floats(1.0), min_size=v, max_size=v).map(tuple))
    return SharedTokens(theta=tuple(theta), features=tuple(map(tuple, feats)), correct=frozenset(correct),
                        T=draw(st.integers(*T)), bias=bias)


def unit_directions(n: int) -> st.SearchStrategy[tuple[float, ...]]:
    """Unit vectors of R^n (rejecting near-zero draws)."""
    vec = st.lists(_floats(1.0), min_size=n, max_size=n).filter(lambda w: sum(x * x for x in w) > 1e-4)
    return vec.map(lambda w: tuple(x / sum(y * y for y in w) ** 0.5 for x in w))


@st.composite
def autoregressive_instances(
    draw: st.DrawFn,
    *,
    T: tuple[int, int] = (1, 3),
    V: tuple[int, int] = (2, 3),
    bound: float = BOUNDED,
    max_params: int = 14,
    eos: bool | None = None,
) -> Autoregressive:
    """Autoregressive tables (at most ``max_params`` parameters: T=3, V=3 is left out), exact match or at
    least m, with an end-of-sequence token when ``eos`` (drawn when ``None``)."""
    t = draw(st.integers(*T))
    v = draw(st.integers(*V))
    while t > 1 and v * (v**t - 1) // (v - 1) > max_params:
        t -= 1
    tables = tuple(tuple(tuple(draw(st.lists(_floats(bound), min_size=v, max_size=v))) for _ in range(v**k))
                   for k in range(t))
    target = draw(st.lists(st.integers(0, v - 1), min_size=t, max_size=t))
    use_eos = draw(st.booleans()) if eos is None else eos
    end = draw(st.integers(0, v - 1)) if use_eos else None
    reach = Autoregressive(logits=tables, target=tuple(target), eos=end).max_hits()
    m = draw(st.none() | st.integers(1, reach))
    return Autoregressive(logits=tables, target=tuple(target), min_correct=m, eos=end)


@st.composite
def contextual_instances(
    draw: st.DrawFn,
    *,
    P: tuple[int, int] = (1, 2),
    A: tuple[int, int] = (2, 3),
    d: tuple[int, int] = (1, 2),
    bound: float = 2.0,
) -> ContextualBandit:
    """Contextual bandits: integer features in [-2, 2], a proper correct set per prompt, optional weights."""
    p, a, dim = draw(st.integers(*P)), draw(st.integers(*A)), draw(st.integers(*d))
    theta = draw(st.lists(_floats(bound), min_size=dim, max_size=dim))
    row = st.lists(st.integers(-2, 2).map(float), min_size=dim, max_size=dim).map(tuple)
    feats = draw(st.lists(st.lists(row, min_size=a, max_size=a).map(tuple), min_size=p, max_size=p))
    correct = draw(st.lists(st.sets(st.integers(0, a - 1), min_size=1, max_size=a - 1).map(frozenset),
                            min_size=p, max_size=p))
    weights = draw(st.none() | st.lists(st.integers(1, 4).map(float), min_size=p, max_size=p).map(tuple))
    return ContextualBandit(theta=tuple(theta), features=tuple(feats), correct=tuple(correct), weights=weights)
