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

__all__ = ["distribution", "head", "tail"]


def distribution(ps: Sequence[Any], m: int, one: Any = 1) -> list[Any]:
    r"""``dist[k]`` :math:`=\Pr[N=k]` for :math:`k<m` and ``dist[m]`` :math:`=\Pr[N\ge m]` (fewer entries when
    :math:`T<m`: then ``dist[k]`` for :math:`k\le T`), by the dynamic programme over positions; ``one`` is the
    unit of the arithmetic (``1`` works for every numeric type above).

    >>> distribution((0.5, 0.5), 1)
    [0.25, 0.75]
    """
    dist: list[Any] = [one]
    for p in ps:
        new: list[Any] = [0 * one] * min(len(dist) + 1, m + 1)
        for k, w in enumerate(dist):
            if k >= m:
                new[m] += w
                continue
            new[k] += w * (1 - p)
            new[k + 1] += w * p
        dist = new
    return dist


def tail(ps: Sequence[Any], m: int, one: Any = 1) -> Any:
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
    return distribution(ps, m, one)[m]


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
