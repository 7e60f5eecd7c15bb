"""Contextual bandits answered by responses of several tokens: the theory's power law J_x^{T_x} and its fields
(theory/contextual.py) against the numerics' enumeration of the A^T token strings (numerics/contextual.py), the
length-normalised update, the fixed points, and bad lengths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from gradgap.numerics import contextual as nc
from gradgap.theory import contextual as tc
from gradgap.theory.instances import ContextualBandit, GradgapError
from tests.strategies import contextual_instances

WORKED = ContextualBandit(theta=(0.05,), features=(((0.0,), (1.0,), (2.0,)), ((0.0,), (1.0,), (3.0,))),
                          correct=(frozenset({1}), frozenset({1})))


def _lengths(P: int) -> st.SearchStrategy[tuple[int, ...]]:
    return st.lists(st.integers(1, 4), min_size=P, max_size=P).map(tuple)


def _theory_at(expr: sp.Basic, inst: ContextualBandit) -> np.ndarray:
    """A closed form at the instance's exact float parameters, 40 digits."""
    subs = {s: sp.Float(t, 40) for s, t in zip(tc.parameters(inst), inst.theta, strict=True)}
    items = list(expr) if isinstance(expr, sp.MatrixBase) else [expr]
    return np.array([float(sp.N(e.subs(subs), 40)) for e in items], dtype=float)


def _plain_enumeration(inst: ContextualBandit, lengths: tuple[int, ...]) -> tuple[float, np.ndarray]:
    """J^(T) and grad J^(T) by brute force: every string, its probability as a product of token probabilities,
    the gradient by central differences of that product sum (no score, no log-sum-exp)."""
    import itertools

    def J(theta: np.ndarray) -> float:
        total = 0.0
        for x, (rows, T) in enumerate(zip(inst.features, lengths, strict=True)):
            logits = np.array([np.dot(theta, r) for r in rows])
            p = np.exp(logits - logits.max())
            p /= p.sum()
            good = sum(p[a] for a in inst.correct[x])
            total += inst.prompt_weights[x] * sum(
                math.prod(p[a] for a in s) for s in itertools.product(range(inst.A), repeat=T)
                if all(a in inst.correct[x] for a in s)) if T <= 2 else inst.prompt_weights[x] * good**T
        return total

    theta = np.asarray(inst.theta, float)
    h = 1e-6
    grad = np.array([(J(theta + h * e) - J(theta - h * e)) / (2 * h) for e in np.eye(inst.d)])
    return J(theta), grad


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_theory_power_law_and_fields_match_the_enumerated_strings(data: st.DataObject) -> None:
    inst = data.draw(contextual_instances(P=(1, 3), A=(2, 3), d=(1, 2)))
    lengths = data.draw(_lengths(inst.P))
    J_theory = _theory_at(tc.length_success_rate(inst, lengths), inst)[0]
    assert math.isclose(nc.length_success_rate(inst, lengths), J_theory, rel_tol=1e-12, abs_tol=1e-15)
    for update in ("summed", "normalised", "gap"):
        want = _theory_at(tc.length_field(inst, lengths, update=update), inst)
        got = nc.length_update(inst, lengths, update=update)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=update)


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_summed_update_is_the_gradient_of_the_success_rate_by_brute_force(data: st.DataObject) -> None:
    """E[r sum_t s_t] = grad J^(T): the numerics' enumerated update against central differences of a product
    sum over strings (independent of both the score and the power law for T <= 2)."""
    inst = data.draw(contextual_instances(P=(1, 2), A=(2, 3), d=(1, 2)))
    lengths = data.draw(st.lists(st.integers(1, 3), min_size=inst.P, max_size=inst.P).map(tuple))
    J, grad = _plain_enumeration(inst, lengths)
    assert math.isclose(nc.length_success_rate(inst, lengths), J, rel_tol=1e-12, abs_tol=1e-15)
    np.testing.assert_allclose(nc.length_update(inst, lengths, update="summed"), grad, rtol=1e-6, atol=1e-8)


@settings(max_examples=20, deadline=None)
@given(inst=contextual_instances(P=(1, 3)))
def test_one_token_responses_are_the_one_action_bandit(inst: ContextualBandit) -> None:
    ones = (1,) * inst.P
    assert math.isclose(nc.length_success_rate(inst, ones), nc.success_rate(inst), rel_tol=1e-12, abs_tol=1e-15)
    for update in ("summed", "normalised"):
        np.testing.assert_allclose(nc.length_update(inst, ones, update=update),
                                   nc.grad_success_rate(inst, method="structured"), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(nc.length_update(inst, ones, update="gap"), nc.gradient_gap(inst, method="enumerate"),
                               rtol=1e-9, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(inst=contextual_instances(P=(1, 3)), T=st.integers(1, 4))
def test_equal_lengths_normalised_update_is_summed_over_T(inst: ContextualBandit, T: int) -> None:
    lengths = (T,) * inst.P
    np.testing.assert_allclose(nc.length_update(inst, lengths, update="normalised") * T,
                               nc.length_update(inst, lengths, update="summed"), rtol=1e-12, atol=1e-15)
    diff = tc.length_field(inst, lengths, update="normalised") * T - tc.length_field(inst, lengths, update="summed")
    assert sp.simplify(diff) == sp.zeros(inst.d, 1)


@pytest.mark.parametrize("lengths", [(1, 1), (2, 2), (1, 4), (3, 1)])
def test_summed_fixed_point_is_a_local_maximum_and_the_normalised_one_is_not_for_unequal_lengths(lengths) -> None:
    best = tc.length_fixed_point(WORKED, lengths, update="summed", start=-0.1)
    norm = tc.length_fixed_point(WORKED, lengths, update="normalised", start=-0.1)
    gap = tc.length_fixed_point(WORKED, lengths, update="gap", start=-0.1)
    theta = float(best["theta"])
    J = [nc.length_success_rate(WORKED.with_theta((theta + s,)), lengths) for s in (-1e-4, 0.0, 1e-4)]
    assert J[1] > J[0] and J[1] > J[2]
    assert math.isclose(float(best["J"]), J[1], rel_tol=1e-12)
    assert abs(float(gap["theta"]) - theta) < 1e-30  # g = grad J / (J(1-J)) vanishes with grad J
    if lengths[0] == lengths[1]:
        assert abs(float(best["theta"]) - float(norm["theta"])) < 1e-30
        assert math.isclose(float(norm["eta_crit"]), lengths[0] * float(best["eta_crit"]), rel_tol=1e-12)
    else:
        assert float(norm["J"]) < float(best["J"])
        # the normalised field vanishes there (numerics), the gradient of J does not
        at = WORKED.with_theta((float(norm["theta"]),))
        assert abs(nc.length_update(at, lengths, update="normalised")[0]) < 1e-12
        assert abs(nc.length_update(at, lengths, update="summed")[0]) > 1e-6


@pytest.mark.parametrize("lengths", [(1,), (1, 2, 3), (0, 1), (1, -2), (True, 1), (1.5, 1), (65, 1)])
def test_bad_lengths_are_one_clear_error_on_both_sides(lengths) -> None:
    with pytest.raises(GradgapError) as info:
        tc.length_success_rate(WORKED, lengths)
    assert "\n" not in str(info.value) and "lengths" in str(info.value)
    with pytest.raises(GradgapError) as info:
        nc.length_update(WORKED, lengths, update="summed")
    assert "\n" not in str(info.value) and "length" in str(info.value)


def test_too_many_strings_is_refused_before_allocating() -> None:
    with pytest.raises(GradgapError, match="A\\^T"):
        nc.length_success_rate(WORKED, (11, 1))  # 3^11 > 2^16 strings
    with pytest.raises(GradgapError, match="A\\^T"):  # refused at once, without forming 3**(10**12)
        nc.length_update(WORKED, (10**12, 1), update="summed")


def test_unknown_update_and_a_gap_at_J_0_are_one_clear_error() -> None:
    for call in (lambda: tc.length_field(WORKED, (1, 1), update="mean"),
                 lambda: nc.length_update(WORKED, (1, 1), update="mean"),
                 lambda: nc.length_update(WORKED.with_theta((-800.0,)), (1, 1), update="gap")):
        with pytest.raises(GradgapError) as info:
            call()
        assert "\n" not in str(info.value)
