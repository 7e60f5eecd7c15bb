"""Expected group updates: closed-form gains (theory/algorithms.py) against exact enumeration and Monte Carlo
(numerics/algorithms.py), and the variable-length counterexample."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gradgap.numerics import algorithms as na
from gradgap.proofs_check import families
from gradgap.proofs_check.tolerances import EXACT
from gradgap.theory import algorithms as ta
from gradgap.theory.instances import SharedTokens, SoftmaxBandit, TokenSequence
from tests.mc_checks import assert_estimator, coverage_and_scale, replicate
from tests.strategies import shared_instances, softmax_instances, token_instances

ALGOS = tuple(ta.ALGORITHMS)
SMALL = st.one_of(
    softmax_instances(K=(2, 4)),
    token_instances(T=(1, 2), V=(2, 3)),
    shared_instances(d=(1, 2), V=(2, 3), T=(1, 2)),
)
VARLEN_PROBS = ((0.5, 0.25, 0.25), (1 / 3, 1 / 3, 1 / 3))


def _gain(alg: str, G: int, J: float, T: int) -> float:
    return float(ta.gain_value(alg, G, J, T=T, digits=30))


def _assert_close(a: np.ndarray, b: np.ndarray, what: str, tol: tuple[float, float] = EXACT) -> None:
    rtol, atol = tol
    scale = float(np.max(np.abs(b))) if np.size(b) else 0.0
    err = float(np.max(np.abs(a - b)))
    assert err <= atol + rtol * scale, f"{what}: error {err:.3e} > atol {atol} + rtol {rtol} * {scale:.3e}"


@pytest.mark.parametrize("alg", ALGOS)
@given(inst=SMALL, G=st.integers(2, 3))
@example(inst=SoftmaxBandit((0.3, -0.4, 1.1), frozenset({0})), G=4)
@example(inst=TokenSequence(((0.2, -0.5, 0.1), (0.7, 0.0, -0.3)), target=(0, 1)), G=3)
def test_expected_update_enumerate_equals_gain_times_gap(alg: str, inst, G: int) -> None:
    fp = na.finite_policy(inst)
    mod = families.numerics_module(inst)
    J = float(mod.success_rate(inst))
    g = np.asarray(mod.gradient_gap(inst))
    T = getattr(inst, "T", 1)
    Ew = na.expected_update(fp, alg, G)
    # compare at the scale of the largest term J(1-J)|g| (the gain is at most ~sqrt(J(1-J)))
    err = float(np.max(np.abs(Ew - _gain(alg, G, J, T) * g)))
    assert err <= EXACT[1] + EXACT[0] * float(np.linalg.norm(g)), (
        f"E[w] {alg} G={G} instance={inst}: enumerate vs gain*g error {err:.3e}")


@pytest.mark.parametrize("alg", ALGOS)
@pytest.mark.parametrize("J", [0.05, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("G", [2, 3, 5, 8])
def test_gain_finite_sum_vs_advantages_of_all_reward_vectors(alg: str, J: float, G: int) -> None:
    """Independent route: the numeric advantages of all 2^G reward vectors, weighted by their probabilities,
    give m_S and m_F; the gain is (1-J) m_S + J m_F (for T = 1)."""
    R = np.array(list(itertools.product((0, 1), repeat=G)))
    pr = np.prod(np.where(R == 1, J, 1 - J), axis=1)
    A = na.group_advantages(alg, R)
    m_s = float(pr @ (A * R).sum(axis=1)) / G
    m_f = -float(pr @ (A * (1 - R)).sum(axis=1)) / G
    assert math.isclose(_gain(alg, G, J, 1), (1 - J) * m_s + J * m_f, rel_tol=EXACT[0], abs_tol=EXACT[1])


@pytest.mark.parametrize("alg", ["reinforce", "rloo", "dr_grpo"])
def test_gain_closed_forms_match_finite_sums_numerically(alg: str) -> None:
    for G, J in itertools.product((2, 3, 7, 20), (0.1, 0.5, 0.8)):
        expected = J * (1 - J) * ((G - 1) / G if alg == "dr_grpo" else 1.0)
        assert math.isclose(_gain(alg, G, J, 1), expected, rel_tol=EXACT[0])


def test_grpo_gain_small_groups_by_hand() -> None:
    # G = 2: only k = 1 contributes (prob 2J(1-J)); Bessel std 1/sqrt2, r - mean = +-1/2, so A = +-1/sqrt2;
    # gain = (1/2) 2J(1-J) [(1-J)/sqrt2 + J/sqrt2] = J(1-J)/sqrt2
    J = sp.Rational(1, 3)
    by_hand = J * (1 - J) / sp.sqrt(2)
    assert sp.simplify(ta.gain("grpo", 2, JJ=J) - by_hand) == 0


@pytest.mark.parametrize("G", [4, 16, 64, 256])
def test_grpo_gain_tends_to_sqrt_variance_within_one_over_sqrt_G(G: int) -> None:
    for J in (0.05, 0.2, 0.5, 0.95):
        dev = abs(_gain("grpo", G, J, 1) * math.sqrt(G / (G - 1)) - math.sqrt(J * (1 - J)))
        assert dev <= 1 / math.sqrt(G), f"G={G} J={J}: deviation {dev}"


def test_grpo_gain_deviation_shrinks_with_G() -> None:
    devs = [abs(_gain("grpo", G, 0.3, 1) - math.sqrt(0.3 * 0.7)) for G in (4, 16, 64, 256)]
    assert all(b < a for a, b in itertools.pairwise(devs)), devs


def test_group_advantages_bessel_corrected() -> None:
    # r = (1,0,0,0): mean 1/4, Bessel std sqrt(1/4) = 1/2 -> A = (3/2, -1/2, -1/2, -1/2)
    _assert_close(na.group_advantages("grpo", np.array([1, 0, 0, 0])), np.array([1.5, -0.5, -0.5, -0.5]), "grpo")
    _assert_close(na.group_advantages("rloo", np.array([1, 0, 0, 0])), np.array([1.0, -1 / 3, -1 / 3, -1 / 3]),
                  "rloo")
    _assert_close(na.group_advantages("grpo", np.array([1, 1, 1])), np.zeros(3), "degenerate group")


@pytest.mark.parametrize("alg", ALGOS)
def test_expected_update_mc_vs_enumerate(alg: str) -> None:
    inst = TokenSequence(((0.2, -0.5, 0.1), (0.7, 0.0, -0.3)), target=(0, 1), min_correct=1)
    fp = na.finite_policy(inst)
    exact = na.expected_update(fp, alg, 4)
    assert_estimator(f"{alg}: E[w] [mc vs enumerate]",
                     lambda seed: na.expected_update(fp, alg, 4, method="mc", n=2_000, seed=seed), exact, seed=7)


def test_expected_update_mc_detects_a_wrong_gain() -> None:
    """The coverage test has power: the no-Bessel GRPO gain is rejected by the same MC estimates (the test's own
    standard error from independent estimates), while the right gain passes."""
    inst = SoftmaxBandit((0.3, -0.4, 1.1), frozenset({0}))
    fp = na.finite_policy(inst)
    means, errors = replicate(lambda seed: na.expected_update(fp, "grpo", 3, method="mc", n=20_000, seed=seed), 3)
    right = _gain("grpo", 3, fp.J, 1) * fp.gap()
    assert not coverage_and_scale(means, errors, right)
    wrong = right * math.sqrt(3 / 2)
    assert any(b.startswith("coverage") for b in coverage_and_scale(means, errors, wrong))


@pytest.mark.parametrize("G", [2, 4, 8])
def test_grpo_epsilon_changes_gain_within_bound(G: int) -> None:
    inst = SoftmaxBandit((0.3, -0.4, 1.1), frozenset({0}))
    fp = na.finite_policy(inst)
    a = na.expected_update(fp, "grpo", G)
    b = na.expected_update(fp, "grpo", G, eps=1e-4)
    rel = float(np.linalg.norm(a - b) / np.linalg.norm(a))
    bound = float(ta.grpo_epsilon_relative_bound(G, sp.Rational(1, 10**4)))
    assert 0 < rel <= bound * (1 + 1e-9), (rel, bound)


def _varlen() -> na.EosTokens:
    return na.EosTokens(logits=tuple(tuple(math.log(p) for p in row) for row in VARLEN_PROBS), wrong=frozenset({2}))


def test_eos_policy_exact_theory_vs_numeric_enumeration() -> None:
    probs, scores, rewards, lengths = ta.eos_policy_exact(
        [[sp.Rational(1, 2), sp.Rational(1, 4), sp.Rational(1, 4)], [sp.Rational(1, 3)] * 3], [2])
    fp = na.finite_policy(_varlen())
    _assert_close(fp.probs, np.array([float(p) for p in probs]), "probabilities")
    _assert_close(fp.scores, np.array([[float(x) for x in s] for s in scores]), "scores")
    for alg in ("grpo", "dapo", "rloo"):
        exact = ta.variable_length_expected_update(alg, 2, probs, scores, rewards, lengths)
        _assert_close(na.expected_update(fp, alg, 2), np.array([float(x) for x in exact]), f"E[w] {alg}")


def test_token_level_aggregation_turns_away_from_gap_with_variable_lengths() -> None:
    fp = na.finite_policy(_varlen())
    g = fp.gap()
    for alg in ("reinforce", "rloo", "dr_grpo"):
        assert na.angle_degrees(na.expected_update(fp, alg, 3), g) < 1e-6, alg
    grpo = [na.angle_degrees(na.expected_update(fp, "grpo", G), g) for G in (2, 3, 4)]
    dapo = [na.angle_degrees(na.expected_update(fp, "dapo", G), g) for G in (2, 3, 4)]
    assert min(grpo) > 5.0 and max(grpo) - min(grpo) < 1e-6, grpo  # GRPO's turn does not depend on G
    assert dapo[0] > dapo[1] > dapo[2] > 1.0, dapo  # DAPO's turn shrinks with G


def test_token_level_aggregation_parallel_for_fixed_lengths() -> None:
    inst = SharedTokens((0.3, -0.2), ((1.0, 0.0), (0.0, 1.0), (1.0, 1.0)), frozenset({0, 2}), T=2)
    fp = na.finite_policy(inst)
    for alg in ("grpo", "dapo"):
        assert na.angle_degrees(na.expected_update(fp, alg, 3), fp.gap()) < 1e-6


def test_symbolic_enumeration_proof_can_fail() -> None:
    assert ta.prove_expected_update_by_enumeration("grpo", 2).proved
    assert not ta.prove_expected_update_by_enumeration("grpo", 2, lengths=(1, 2, 1)).proved
    assert ta.prove_expected_update_by_enumeration("dr_grpo", 2, lengths=(1, 2, 1)).proved


def test_mass_form_and_closed_forms_proved() -> None:
    assert all(ta.prove_mass_form(a, 4).proved for a in ALGOS)
    assert all(ta.prove_centred_mass_closed_form(a).proved for a in ("reinforce", "rloo", "dr_grpo"))


@settings(max_examples=10)
@given(inst=SMALL)
def test_finite_policy_gap_equals_family_gradient_gap(inst) -> None:
    fp = na.finite_policy(inst)
    _assert_close(fp.gap(), np.asarray(families.numerics_module(inst).gradient_gap(inst)), "g")


def test_algorithm_claims_hold_in_quick_profile() -> None:
    from gradgap.proofs_check.builtin import algorithms
    from gradgap.proofs_check.claims import run_claim

    for claim in algorithms.claims():
        res = run_claim(claim, "quick")
        assert res.ok, (claim.id, res.evidence.status, res.evidence.detail)
