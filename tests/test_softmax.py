"""Softmax bandit: the symbolic closed forms (theory/softmax.py) against every numeric twin."""

from __future__ import annotations

from hypothesis import example, given

from tests.strategies import EXTREME, softmax_instances
from tests.twins import (
    check_grad_success_rate_is_variance_times_gap,
    check_gradient_gap,
    check_gradient_gap_monte_carlo,
    check_hessian_log_odds,
    check_log_odds,
    check_score_mean_zero_by_enumeration,
    check_success_rate,
)
from theory.instances import SoftmaxBandit

EXTREME_EXAMPLE = SoftmaxBandit(logits=(1000.0, -1000.0, 0.0), correct=frozenset({0}))
TWO_ARMS_HALF = SoftmaxBandit(logits=(0.0, 0.0), correct=frozenset({1}))


@given(softmax_instances())
@example(TWO_ARMS_HALF)
def test_success_rate_symbolic_vs_enumerate_structured_autograd(inst: SoftmaxBandit) -> None:
    check_success_rate(inst, ("enumerate", "structured", "autograd"))


@given(softmax_instances(bound=EXTREME))
def test_log_odds_symbolic_vs_structured_near_deterministic(inst: SoftmaxBandit) -> None:
    check_log_odds(inst, ("structured",))


@given(softmax_instances())
def test_gradient_gap_symbolic_vs_enumerate_structured_autograd_fd(inst: SoftmaxBandit) -> None:
    check_gradient_gap(inst, ("enumerate", "structured", "autograd", "fd"))


@given(softmax_instances(bound=EXTREME))
def test_gradient_gap_symbolic_vs_structured_near_deterministic(inst: SoftmaxBandit) -> None:
    check_gradient_gap(inst, ("structured",))


def test_extreme_logits_give_log_odds_1000_and_gap_1_0_minus1() -> None:
    import numpy as np

    import numerics.softmax as num

    assert num.log_odds(EXTREME_EXAMPLE) == 1000.0
    assert np.array_equal(num.gradient_gap(EXTREME_EXAMPLE), np.array([1.0, 0.0, -1.0]))


@given(softmax_instances())
def test_grad_success_rate_equals_variance_times_gradient_gap(inst: SoftmaxBandit) -> None:
    check_grad_success_rate_is_variance_times_gap(inst)


@given(softmax_instances(K=(2, 4)))
def test_hessian_log_odds_symbolic_vs_autograd(inst: SoftmaxBandit) -> None:
    check_hessian_log_odds(inst)


@given(softmax_instances())
def test_score_mean_zero_by_enumeration(inst: SoftmaxBandit) -> None:
    check_score_mean_zero_by_enumeration(inst)


def test_gradient_gap_mc_vs_symbolic() -> None:
    for inst in (SoftmaxBandit(logits=(0.3, -1.2, 2.0, 0.5), correct=frozenset({0, 2})), TWO_ARMS_HALF):
        check_gradient_gap_monte_carlo(inst)
