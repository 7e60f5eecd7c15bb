r"""The smoothness of the success rate, :math:`\sup_\theta\|\nabla^2J\|_{op}=1/(3\sqrt3)`: the claim holds, and
near-tight wrong values or a wrong attainment turn it red.

Derivation of the value (two arms): :math:`J=\sigma(z)`, :math:`z=\theta_0-\theta_1`, so
:math:`\nabla^2J=\sigma''(z)(e_0-e_1)(e_0-e_1)^\top` with operator norm :math:`2|\sigma''(z)|` and
:math:`\sigma''=\sigma(1-\sigma)(1-2\sigma)`. Its extremes are where :math:`\sigma'''=0`, i.e.
:math:`\sigma=\tfrac12\pm\tfrac1{2\sqrt3}`, :math:`\sigma(1-\sigma)=\tfrac16`, :math:`|1-2\sigma|=\tfrac1{\sqrt3}`:
the norm is :math:`2\cdot\tfrac16\cdot\tfrac1{\sqrt3}=1/(3\sqrt3)`, attained at :math:`z=\log(2+\sqrt3)`. With
more arms it is approached as the extra arms vanish (a supremum, not attained).
"""

from __future__ import annotations

import math
from dataclasses import replace

import mpmath
import pytest
import sympy as sp

from gradgap.proofs_check.builtin import builtin_claims, core
from gradgap.proofs_check.claims import PROFILES, Status, Strength, run_claim
from gradgap.theory import autoregressive, softmax, tokens
from gradgap.theory.instances import SoftmaxBandit

CI = PROFILES["ci"]


def _claim():
    return next(c for c in builtin_claims() if c.id == "constant-smoothness_J")


def _patched(monkeypatch, change) -> None:
    """``constants`` of softmax, tokens and autoregressive with ``smoothness_J`` replaced by ``change(constant)``."""
    for module in (softmax, tokens, autoregressive):
        real = module.constants

        def wrong(inst, real=real):
            c = real(inst)
            return c if c.smoothness_J.value is None else replace(c, smoothness_J=change(c.smoothness_J))

        monkeypatch.setattr(module, "constants", wrong)


def test_the_claim_holds_at_tested_and_is_approached():
    result = run_claim(_claim(), CI)
    ev = result.evidence
    assert (ev.status, ev.strength) == (Status.HOLDS, Strength.TESTED), ev.detail
    assert ev.figures["distinct_examples"] >= CI.min_examples
    assert {a["family"] for a in ev.figures["near_attaining"]} == {"softmax", "tokens", "autoregressive"}
    assert set(ev.figures["values"]) == {"softmax", "tokens", "autoregressive"}
    assert set(ev.figures["no_closed_value"]) == {"shared_tokens", "contextual"}


@pytest.mark.parametrize("factor", [0.98, 1.05])
def test_a_value_two_percent_too_small_or_five_percent_too_large_fails(monkeypatch, factor):
    _patched(monkeypatch, lambda c: replace(c, value=sp.nsimplify(factor) * c.value))
    result = run_claim(_claim(), CI)
    assert result.evidence.status is Status.FAILS, (factor, result.evidence.detail)


def test_a_supremum_called_a_maximum_fails(monkeypatch):
    """With three arms the value is only approached; calling it a maximum there must be refused."""
    _patched(monkeypatch, lambda c: replace(c, attainment="maximum"))
    result = run_claim(_claim(), CI)
    assert result.evidence.status is Status.FAILS
    assert "maximum for softmax K=3" in result.evidence.detail


def test_a_value_too_large_for_more_arms_only_fails(monkeypatch):
    """Sharpness is judged per structure: a value that is right for two arms and loose (by sqrt2) for three must
    not pass because the two-arm configuration attains its own value."""
    real = softmax.constants

    def wrong(inst):
        c = real(inst)
        if inst.K == 2:
            return c
        return replace(c, smoothness_J=replace(c.smoothness_J, value=sp.sqrt(2) * c.smoothness_J.value))

    monkeypatch.setattr(softmax, "constants", wrong)
    result = run_claim(_claim(), CI)
    assert result.evidence.status is Status.FAILS
    assert "softmax K=3" in result.evidence.detail


def test_the_search_alone_finds_a_value_ten_percent_too_small(monkeypatch):
    """The Hypothesis search, not only the near-attaining configurations, must reach a norm above 0.9 c."""
    _patched(monkeypatch, lambda c: replace(c, value=sp.Rational(9, 10) * c.value))
    monkeypatch.setattr(core, "_near_attaining", lambda family, name: [])
    result = run_claim(_claim(), CI)
    assert result.evidence.status is Status.FAILS
    assert "survives 50-digit re-evaluation" in result.evidence.detail


def test_the_fifty_digit_norm_matches_the_hand_computation():
    z = math.log(2 + math.sqrt(3))
    for inst in (SoftmaxBandit((z, 0.0), frozenset({0})), SoftmaxBandit((z, 0.0), frozenset({1})),
                 SoftmaxBandit((0.3, -1.7), frozenset({0}))):
        with mpmath.workdps(60):
            s = 1 / (1 + mpmath.exp(-(mpmath.mpf(inst.theta[0]) - mpmath.mpf(inst.theta[1]))))
            expected = 2 * s * (1 - s) * abs(1 - 2 * s)
            assert abs(core._hp_norm(inst, (), "smoothness_J") - expected) < mpmath.mpf(10) ** -45
