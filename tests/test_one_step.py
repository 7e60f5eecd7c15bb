"""One-step log-odds inequality: the exact log-linear Hessian, the sharpest constant C* = sup lambda_max(-Hess ell)/2
against the bound G_o^2/8, and the built-in claims (paper, derived, log-linear constants; half-sharp refuted)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradgap.numerics import algorithms as na
from gradgap.proofs_check import families
from gradgap.proofs_check.tolerances import EXACT, FD
from gradgap.theory.instances import SharedTokens, SoftmaxBandit, TokenSequence
from tests.strategies import shared_instances, softmax_instances, token_instances, unit_directions

SMALL = st.one_of(
    softmax_instances(K=(2, 5)),
    token_instances(T=(1, 3), V=(2, 3)),
    shared_instances(d=(1, 3), V=(2, 3), T=(1, 3)),
)


def _G_o(inst) -> float:
    return float(families.theory_module(inst).constants(inst).G_o.value)


@settings(max_examples=20)
@given(SMALL)
def test_log_odds_hessian_covariance_formula_vs_autograd(inst) -> None:
    H_cov = na.log_odds_hessian(na.finite_policy(inst))
    H_ad = np.asarray(families.numerics_module(inst).hessian_log_odds(inst, method="autograd"))
    err = float(np.max(np.abs(H_cov - H_ad)))
    assert err <= FD[1] + FD[0] * float(np.max(np.abs(H_ad))), f"{inst}: Cov+ - Cov- vs autograd error {err:.2e}"


@settings(max_examples=30)
@given(SMALL)
def test_curvature_never_exceeds_loglinear_bound(inst) -> None:
    H = na.log_odds_hessian(na.finite_policy(inst))
    half_lambda = 0.5 * float(np.linalg.eigvalsh(-H)[-1])
    assert half_lambda <= _G_o(inst) ** 2 / 8 * (1 + EXACT[0]), f"{inst}: {half_lambda} > G_o^2/8"


def test_softmax_sharp_constant_attained_at_equal_wrong_logits() -> None:
    inst = SoftmaxBandit((0.0, 0.0, 0.0), frozenset({0}))
    H = na.log_odds_hessian(na.finite_policy(inst))
    assert math.isclose(0.5 * float(np.linalg.eigvalsh(-H)[-1]), 0.25, rel_tol=EXACT[0])


@pytest.mark.parametrize("eta", [1e-1, 1e-2, 1e-3])
def test_taylor_deficit_ratio_tends_to_sharp_constant(eta: float) -> None:
    """(eta <w,g> - Delta ell)/eta^2 -> 1/4 at the softmax extremal point, from below (log cosh)."""
    inst = SoftmaxBandit((0.0, 0.0, 0.0), frozenset({0}))
    w = np.array([0.0, 1.0, -1.0]) / math.sqrt(2)
    mod = families.numerics_module(inst)
    nxt = inst.with_theta(tuple(np.asarray(inst.theta) + eta * w))
    ratio = (eta * float(w @ mod.gradient_gap(inst)) - (mod.log_odds(nxt) - mod.log_odds(inst))) / eta**2
    expected = math.log(math.cosh(eta / math.sqrt(2))) / eta**2  # exact: Delta ell = -log cosh(eta/sqrt2)
    assert math.isclose(ratio, expected, rel_tol=1e-6)
    assert ratio <= 0.25 and 0.25 - ratio <= eta**2


@pytest.mark.parametrize(
    ("make", "n", "low", "high"),
    [
        (lambda x: SoftmaxBandit(tuple(x), frozenset({0})), 3, 0.249, 0.25),
        (lambda x: SoftmaxBandit(tuple(x), frozenset({0, 1})), 3, 0.0, 1e-12),
        (lambda x: TokenSequence((tuple(x[:2]), tuple(x[2:])), (0, 0)), 4, 0.495, 0.5),
        (lambda x: TokenSequence((tuple(x[:2]), tuple(x[2:])), (0, 0), 1), 4, 0.0, 1e-12),
        (lambda x: SharedTokens(tuple(x), ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)), frozenset({0}), T=1),
         3, 0.249, 0.25),
    ],
    ids=["softmax-K3-C1", "softmax-K3-C2", "tokens-T2-exact", "tokens-T2-m1", "shared-onehot"],
)
def test_sharpest_constant_search_values(make, n: int, low: float, high: float) -> None:
    value, _ = na.sharpest_constant_search(make, n, restarts=20, iters=300, seed=0)
    assert low <= value <= high * (1 + EXACT[0]), value


def test_paper_constant_is_at_least_64_times_the_loglinear_bound() -> None:
    for inst in (SoftmaxBandit((0.0, 0.0, 0.0), frozenset({0})), TokenSequence(((0.0, 0.0),) * 3, (0, 0, 0))):
        c = families.theory_module(inst).constants(inst)
        L, G = float(c.L_o.value), float(c.G_o.value)
        assert (L + 8 * G**2) / (G**2 / 8) >= 64


@settings(max_examples=15)
@given(inst=softmax_instances(K=(3, 5)), data=st.data())
def test_one_step_holds_with_loglinear_constant_random_directions(inst, data) -> None:
    w = np.asarray(data.draw(unit_directions(inst.K)))
    eta = data.draw(st.floats(0.0, 10.0))
    mod = families.numerics_module(inst)
    nxt = inst.with_theta(tuple(np.asarray(inst.theta) + eta * w))
    lhs = mod.log_odds(nxt) - mod.log_odds(inst)
    rhs = eta * float(w @ mod.gradient_gap(inst)) - eta**2 * _G_o(inst) ** 2 / 8
    assert lhs >= rhs - 1e-9 * (1 + abs(lhs) + abs(rhs))


def test_one_step_claims_in_quick_profile() -> None:
    from gradgap.proofs_check.builtin import one_step
    from gradgap.proofs_check.claims import run_claim

    results = {c.id: run_claim(c, "quick") for c in one_step.claims()}
    bad = {i: (r.evidence.status, r.evidence.detail) for i, r in results.items() if not r.ok}
    assert not bad, bad
    assert results["one-step-half-sharp-softmax"].evidence.counterexample


@pytest.mark.slow
def test_one_step_mutants_all_killed() -> None:
    from gradgap.proofs_check.builtin import one_step
    from gradgap.proofs_check.mutants import run_mutation

    outcome = run_mutation(one_step.claims(), "quick", progress=False)
    assert outcome.score == 1.0, [r for r in outcome.rows if not r[3]]
