r"""Every numeric route against an mpmath reference for logits up to +-1e300, ties included.

The reference enumerates the responses of the instance's log-linear description (``structure()``) in mpmath at
2,200 bits, enough to hold ``1e300 + 0.5`` exactly, so the float64 routes are checked against the true values
of J, grad J and g at the given (exact, dyadic) parameters. A route that adds magnitudes before it forms the
differences of logits (``1e16 + log 2 == 1e16``) fails here.

Scope: the logits reach +-1e300, but :math:`\log J` and :math:`\log(1-J)` stay representable to an absolute
accuracy far below 1 (here at most ~2000 in magnitude). When :math:`1-J\approx e^{-10^{300}}` the float64 number
:math:`\log(1-J)` itself has a last bit of ~1e284, so no float64 log-space route can give :math:`g`; that is a
limit of the format, not of a route.
"""

from __future__ import annotations

from statistics import NormalDist

import mpmath
import numpy as np
import pytest

from gradgap.proofs_check import families
from gradgap.proofs_check.tolerances import EXACT, FD, MC_ALPHA
from gradgap.theory.instances import Instance, SharedTokens, SoftmaxBandit, TokenSequence

BIG = 1e300

CASES: dict[str, Instance] = {
    "softmax-tie-1e16": SoftmaxBandit((1e16, 1e16), frozenset({0})),
    "softmax-tie-1e300": SoftmaxBandit((BIG, -BIG, BIG), frozenset({0})),
    "softmax-three-way-tie": SoftmaxBandit((BIG, BIG, BIG), frozenset({2})),
    "softmax-mixed": SoftmaxBandit((-BIG, 0.25, -0.5, -BIG), frozenset({0, 1})),
    "tokens-issue-example": TokenSequence(((1e16, 1e16, 0.0), (0.0, 0.0, 0.0)), (0, 0)),
    "tokens-J-near-1": TokenSequence(((1e3, -1e3), (-1e3, 1e3)), (0, 1)),
    "tokens-at-least-one": TokenSequence(((1e16, 1e16), (0.0, 1e16)), (0, 0), min_correct=1),
    "tokens-ties-1e300": TokenSequence(((BIG, BIG, -BIG), (0.5, -BIG, 0.5)), (1, 2), min_correct=1),
    "shared-tie-bias": SharedTokens((1e16,), ((0.0,), (1.0,), (1.0,)), frozenset({1}), 2, bias=(0.0, 0.0, 0.5)),
    "shared-1e300": SharedTokens((BIG, -BIG), ((1.0, 1.0), (0.0, 1.0), (1.0, 1.0)), frozenset({2}), 2,
                                 bias=(0.0, 0.0, -0.75)),
    "shared-tie-1e300": SharedTokens((BIG,), ((2.0,), (2.0,), (-1.0,)), frozenset({0}), 1, bias=(0.25, 0.0, 0.0)),
}


def _reference(inst: Instance) -> tuple[float, np.ndarray, np.ndarray]:
    """J, grad J and g by enumeration in mpmath (2,200 bits) from the instance's log-linear form."""
    form = inst.structure()
    positions = form.expanded()
    with mpmath.workprec(2200):
        theta = [mpmath.mpf(x) for x in inst.theta]
        log_pi, means = [], []
        for p in positions:
            z = [mpmath.fsum(mpmath.mpf(f) * t for f, t in zip(row, theta, strict=True)) + mpmath.mpf(b)
                 for row, b in zip(p.features, p.bias, strict=True)]
            top = max(z)
            lse = top + mpmath.log(mpmath.fsum(mpmath.exp(x - top) for x in z))
            lp = [x - lse for x in z]
            log_pi.append(lp)
            means.append([mpmath.fsum(mpmath.exp(lp[v]) * mpmath.mpf(p.features[v][j]) for v in range(p.V))
                          for j in range(form.n_params)])
        n = form.n_params
        J, F = mpmath.mpf(0), mpmath.mpf(0)
        plus, minus = [mpmath.mpf(0)] * n, [mpmath.mpf(0)] * n
        for resp in form.responses():
            prob = mpmath.exp(mpmath.fsum(log_pi[t][o] for t, o in enumerate(resp)))
            s = [mpmath.fsum(mpmath.mpf(positions[t].features[o][j]) - means[t][j] for t, o in enumerate(resp))
                 for j in range(n)]
            if form.reward(resp):
                J += prob
                plus = [a + prob * b for a, b in zip(plus, s, strict=True)]
            else:
                F += prob
                minus = [a + prob * b for a, b in zip(minus, s, strict=True)]
        grad_J = np.array([float(a) for a in plus])  # grad J = sum_{r=1} pi(o) s(o)
        gap = np.array([float(a / J - b / F) for a, b in zip(plus, minus, strict=True)])
        return float(J), grad_J, gap


def _assert_close(name: str, route: str, value, ref, tol: tuple[float, float]) -> None:
    rtol, atol = tol
    value, ref = np.atleast_1d(np.asarray(value, dtype=float)), np.atleast_1d(np.asarray(ref, dtype=float))
    assert np.all(np.isfinite(value)), f"{name} {route}: non-finite {value}"
    err = np.abs(value - ref)
    assert np.all(err <= atol + rtol * np.abs(ref)), f"{name} {route}: {value} vs mpmath {ref}, tolerance {tol}"


ROUTES = ("enumerate", "structured", "autograd", "fd")


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("route", ROUTES)
def test_routes_match_mpmath_for_huge_logits(case: str, route: str) -> None:
    inst = CASES[case]
    mod = families.numerics_module(inst)
    J, grad_J, gap = _reference(inst)
    tol = FD if route == "fd" else EXACT
    if route != "fd":  # success_rate has no fd route
        _assert_close(f"{case} J", route, mod.success_rate(inst, method=route), J, tol)
    _assert_close(f"{case} grad_J", route, mod.grad_success_rate(inst, method=route), grad_J, tol)
    _assert_close(f"{case} g", route, mod.gradient_gap(inst, method=route), gap, tol)


@pytest.mark.parametrize("case", list(CASES))
def test_mc_route_matches_mpmath_for_huge_logits(case: str) -> None:
    """Monte Carlo at a stated alpha (Bonferroni over the coordinates): estimate within z * stderr of the truth."""
    inst = CASES[case]
    mod = families.numerics_module(inst)
    J, grad_J, gap = _reference(inst)
    checks = [("J", mod.success_rate(inst, method="mc", n=4000, seed=1), J),
              ("grad_J", mod.grad_success_rate(inst, method="mc", n=4000, seed=1), grad_J)]
    if 0.05 < J < 0.95:
        checks.append(("g", mod.gradient_gap(inst, method="mc", n=4000, seed=1), gap))
    z = NormalDist().inv_cdf(1 - MC_ALPHA / (2 * (1 + 2 * len(inst.theta))))
    for name, est, ref in checks:
        mean, stderr = np.atleast_1d(est.mean), np.atleast_1d(est.stderr)
        assert np.all(np.isfinite(mean)), f"{case} {name} mc: non-finite"
        assert np.all(np.abs(mean - ref) <= z * stderr + EXACT[1]), f"{case} {name} mc: {mean} +- {stderr} vs {ref}"


def test_issue_examples_exactly() -> None:
    """The two reported wrong answers: softmax (1e16, 1e16) and the token table of the bug report."""
    soft = families.numerics_module("softmax")
    inst = CASES["softmax-tie-1e16"]
    for route in ("enumerate", "structured", "autograd"):
        assert soft.success_rate(inst, method=route) == 0.5
        assert soft.grad_success_rate(inst, method=route).tolist() == [0.25, -0.25]
    tok = families.numerics_module("tokens")
    assert abs(tok.success_rate(CASES["tokens-issue-example"], method="enumerate") - 1 / 6) < 1e-15
