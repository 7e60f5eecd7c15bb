"""The generic Poisson-binomial programme against enumeration of every hit pattern (exact rationals), on every
arithmetic its callers use: homogeneous weights (the threshold's polynomials), numpy arrays of grid points (the
float route) and Arb balls (the enclosures)."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from flint import arb

from gradgap.theory import poisson_binomial as pb


def _law(ps: list[Fraction]) -> list[Fraction]:
    """P[N = k], k = 0..T, by summing over all 2^T hit patterns."""
    out = [Fraction(0)] * (len(ps) + 1)
    for hits in itertools.product((0, 1), repeat=len(ps)):
        w = Fraction(1)
        for h, p in zip(hits, ps, strict=True):
            w *= p if h else 1 - p
        out[sum(hits)] += w
    return out


CASES = [([Fraction(1, 2), Fraction(1, 3), Fraction(3, 4)], m) for m in (1, 2, 3, 4)] + [
    ([Fraction(1, 7), Fraction(2, 5), Fraction(5, 6), Fraction(1, 9), Fraction(1, 2)], m) for m in (2, 3)]


@pytest.mark.parametrize(("ps", "m"), CASES)
def test_tail_head_and_leave_one_out_vs_enumeration(ps: list[Fraction], m: int) -> None:
    law = _law(ps)
    assert pb.tail(ps, m) == sum(law[m:], Fraction(0))
    assert pb.head(ps, m) == sum(law[:m], Fraction(0))
    pre, suf = pb.prefix_distributions(ps, m), pb.suffix_distributions(ps, m)
    for t in range(len(ps)):
        others = _law(ps[:t] + ps[t + 1:])
        want = others[m - 1] if m - 1 < len(others) else Fraction(0)
        assert pb.count_convolution(pre[t], suf[t + 1], m - 1, Fraction(0)) == want


@pytest.mark.parametrize(("ps", "m"), CASES)
def test_homogeneous_weights_give_the_tail_times_the_denominators(ps: list[Fraction], m: int) -> None:
    dens = [Fraction(p.denominator) for p in ps]
    nums = [p * d for p, d in zip(ps, dens, strict=True)]
    scale = Fraction(1)
    for d in dens:
        scale *= d
    got = pb.tail(nums, m, comps=[d - n for n, d in zip(nums, dens, strict=True)])
    assert got == scale * sum(_law(ps)[m:], Fraction(0))


def test_array_arithmetic_is_elementwise_not_in_place() -> None:
    grid = [np.array([0.1, 0.5, 0.9]), np.array([0.3, 0.2, 0.7]), np.array([0.6, 0.4, 0.05])]
    vector = pb.tail(grid, 2, np.ones(3))
    for i in range(3):
        exact = sum(_law([Fraction(float(g[i])) for g in grid])[2:], Fraction(0))
        assert abs(vector[i] - float(exact)) <= 1e-15


def test_ball_tail_encloses_the_exact_tail() -> None:
    ps = [Fraction(1, 3), Fraction(2, 7), Fraction(4, 5)]
    balls = [arb(p.numerator) / p.denominator for p in ps]
    exact = sum(_law(ps)[2:], Fraction(0))
    enclosure = pb.tail(balls, 2, arb(1))
    assert (enclosure - arb(exact.numerator) / exact.denominator).contains(0)
