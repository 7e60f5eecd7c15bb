"""The autoregressive constants L_o = 1/2 and G_o = sqrt(2T): the claims hold, and wrong values turn them red.

The wrong values are near-tight (2 % too small, 5 % too large) or a wrong attainment; each must be FAILS. The
50-digit norms the claim reports are set against a hand computation.
"""

from __future__ import annotations

from dataclasses import replace

import mpmath
import pytest
import sympy as sp

from gradgap.proofs_check.builtin import autoregressive as ar_claims
from gradgap.proofs_check.builtin import builtin_claims
from gradgap.proofs_check.claims import PROFILES, Status, Strength, run_claim
from gradgap.theory import autoregressive as theory

CI = PROFILES["ci"]


def _claim(name: str):
    return next(c for c in builtin_claims() if c.id == f"autoregressive-constant-{name}")


def _patched(monkeypatch, name: str, change) -> None:
    """``theory.constants`` with the constant ``name`` replaced by ``change(constant)``."""
    real = theory.constants

    def wrong(inst):
        c = real(inst)
        return replace(c, **{name: change(getattr(c, name))})

    monkeypatch.setattr(theory, "constants", wrong)


@pytest.mark.parametrize("name", ["G_o", "L_o"])
def test_the_constant_claims_hold_at_tested(name):
    result = run_claim(_claim(name), CI)
    assert (result.evidence.status, result.evidence.strength) == (Status.HOLDS, Strength.TESTED), result.evidence.detail
    assert result.evidence.figures["distinct_examples"] >= CI.min_examples


@pytest.mark.parametrize("name, factor", [("G_o", 0.98), ("L_o", 0.98), ("G_o", 1.05), ("L_o", 1.05)])
def test_a_constant_two_percent_too_small_or_five_percent_too_large_fails(monkeypatch, name, factor):
    _patched(monkeypatch, name, lambda c: replace(c, value=sp.nsimplify(factor) * c.value))
    result = run_claim(_claim(name), CI)
    assert result.evidence.status is Status.FAILS, (factor, result.evidence.detail)


def test_a_maximum_called_a_supremum_fails(monkeypatch):
    _patched(monkeypatch, "L_o", lambda c: replace(c, attainment="supremum"))
    result = run_claim(_claim("L_o"), CI)
    assert result.evidence.status is Status.FAILS
    assert "maximum" in result.evidence.detail


def test_the_fifty_digit_norms_match_a_hand_computation():
    r"""Every row puts 30 on token 1 and o = (0, 0): :math:`\|s\|^2=\sum_t|e_0-\pi|^2=2T(1-\pi_0)^2`, so
    :math:`\|s\|=2(1-\pi_0)` at T = 2 with :math:`\pi_0=1/(1+e^{30})`; at :math:`\theta=0`, V = 2 the Hessian
    blocks :math:`-(\mathrm{diag}\,\pi-\pi\pi^\top)` have eigenvalues 0 and 1/2."""
    inst, resp, _, _ = ar_claims.NEAR_ATTAINING["G_o"][0]
    with mpmath.workdps(60):
        p0 = 1 / (1 + mpmath.exp(30))
        expected = 2 * (1 - p0)
        assert abs(ar_claims._hp_norm(inst, resp, "G_o") - expected) < mpmath.mpf(10) ** -45
    inst, resp, _, _ = ar_claims.NEAR_ATTAINING["L_o"][0]
    with mpmath.workdps(60):
        assert abs(ar_claims._hp_norm(inst, resp, "L_o") - mpmath.mpf(1) / 2) < mpmath.mpf(10) ** -45
