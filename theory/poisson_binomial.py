r"""The Poisson-binomial law of a count of independent hits, generic over the arithmetic.

:math:`N=\sum_t B_t`, :math:`B_t\sim\mathrm{Bernoulli}(p_t)` independent. One dynamic programme over the
positions gives :math:`\Pr[N=k]` for :math:`k<m` and :math:`\Pr[N\ge m]` (the counts at or above :math:`m`
merged into one state), so the tail and its complement cost :math:`O(Tm)` and never enumerate subsets.

The routine uses only ``+``, ``*`` and ``1 - p``, so it runs unchanged on SymPy expressions (closed forms),
``fractions.Fraction`` (exact rationals), ``mpmath.mpf`` / ``mpmath.iv`` (high precision, intervals) and
floats. Its log-space float64 twin is ``gradgap.numerics.poisson_binomial``.

Source: reconstruction §1 (product policy: a response is correct when enough positions hit), DERIVED.

>>> from fractions import Fraction
>>> tail((Fraction(1, 2), Fraction(1, 3)), 1), head((Fraction(1, 2), Fraction(1, 3)), 1)
(Fraction(2, 3), Fraction(1, 3))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["count_convolution", "distribution", "head", "prefix_distributions", "suffix_distributions", "tail"]


def _step(dist: list[Any], p: Any, q: Any, m: int, absorb: Any) -> list[Any]:
    """One position more: counts below m move up with weight ``p`` or stay with weight ``q``; the merged
    state ``>= m`` keeps its mass times ``absorb`` (``None``: unchanged, i.e. ``p + q = 1``)."""
    zero = 0 * dist[0]
    new: list[Any] = [zero] * min(len(dist) + 1, m + 1)
    for k, w in enumerate(dist):
        if k >= m:  # ``new[k] = new[k] + ...``, never ``+=``: numpy arrays would be changed in place
            new[m] = new[m] + (w if absorb is None else w * absorb)
            continue
        new[k] = new[k] + w * q
        new[k + 1] = new[k + 1] + w * p
    return new


def prefix_distributions(ps: Sequence[Any], m: int, one: Any = 1,
                         comps: Sequence[Any] | None = None) -> list[list[Any]]:
    r"""The count distributions of the first t positions, t = 0..T: entry t is :func:`distribution` of
    ``ps[:t]``. ``comps`` are the weights of a miss (default :math:`1-p_t`); given, the programme is homogeneous:
    with weights :math:`n_t` and :math:`d_t-n_t` it gives :math:`\prod_t d_t` times the probabilities of
    :math:`p_t=n_t/d_t` (polynomials, no division).

    >>> prefix_distributions((0.5, 0.5), 1)
    [[1], [0.5, 0.5], [0.25, 0.75]]
    """
    out = [[one]]
    for i, p in enumerate(ps):
        q = 1 - p if comps is None else comps[i]
        out.append(_step(out[-1], p, q, m, None if comps is None else p + q))
    return out


def suffix_distributions(ps: Sequence[Any], m: int, one: Any = 1,
                         comps: Sequence[Any] | None = None) -> list[list[Any]]:
    """The count distributions of positions t..T-1, t = 0..T (entry T is the empty one), capped as in
    :func:`distribution`.

    >>> suffix_distributions((1.0, 0.0), 2)
    [[0.0, 1.0, 0.0], [1.0, 0.0], [1]]
    """
    rev = list(reversed(ps))
    rcomps = None if comps is None else list(reversed(comps))
    return list(reversed(prefix_distributions(rev, m, one, rcomps)))


def count_convolution(a: Sequence[Any], b: Sequence[Any], n: int, zero: Any = 0) -> Any:
    r""":math:`\Pr[N_a+N_b=n]=\sum_k a_k\,b_{n-k}` for two independent counts given as (capped) distributions
    (exact counts only: ``n`` below both caps). With a prefix and the suffix after position t and
    :math:`n=m-1` it is :math:`\partial\Pr[N\ge m]/\partial p_t` (exactly m - 1 of the others hit).

    >>> count_convolution([0.5, 0.5], [0.25, 0.75], 1)
    0.5
    """
    total = zero
    for k in range(min(len(a), n + 1)):
        if n - k < len(b):
            total = total + a[k] * b[n - k]
    return total


def distribution(ps: Sequence[Any], m: int, one: Any = 1, comps: Sequence[Any] | None = None) -> list[Any]:
    r"""``dist[k]`` :math:`=\Pr[N=k]` for :math:`k<m` and ``dist[m]`` :math:`=\Pr[N\ge m]` (fewer entries when
    :math:`T<m`: then ``dist[k]`` for :math:`k\le T`), by the dynamic programme over positions; ``one`` is the
    unit of the arithmetic (``1`` works for every scalar type above; an array of ones evaluates many
    probability vectors at once); ``comps`` as in :func:`prefix_distributions`.

    >>> distribution((0.5, 0.5), 1)
    [0.25, 0.75]
    """
    dist: list[Any] = [one]
    for i, p in enumerate(ps):
        q = 1 - p if comps is None else comps[i]
        dist = _step(dist, p, q, m, None if comps is None else p + q)
    return dist


def tail(ps: Sequence[Any], m: int, one: Any = 1, comps: Sequence[Any] | None = None) -> Any:
    r"""Poisson-binomial tail :math:`\Pr[N\ge m]` (``one`` when :math:`m\le0`, ``0`` when :math:`m>T`).

    >>> import sympy as sp
    >>> a, b = sp.symbols("a b")
    >>> sp.expand(tail((a, b), 1))
    -a*b + a + b
    """
    if m <= 0:
        return one
    if m > len(ps):
        return 0 * one
    return distribution(ps, m, one, comps)[m]


def head(ps: Sequence[Any], m: int, one: Any = 1) -> Any:
    r"""The complement :math:`\Pr[N<m]=\sum_{k<m}\Pr[N=k]`, summed from the same programme (no
    :math:`1-\text{tail}` cancellation when the tail is near 1).

    >>> import sympy as sp
    >>> a, b = sp.symbols("a b")
    >>> sp.expand(head((a, b), 1) + tail((a, b), 1))
    1
    """
    if m <= 0:
        return 0 * one
    dist = distribution(ps, min(m, len(ps) + 1), one)
    total = 0 * one
    for w in dist[:m]:
        total = total + w
    return total
