"""Shared-parameter log-linear token policy: theory/shared_tokens.py against every numeric twin."""

from __future__ import annotations

from hypothesis import example, given

from tests.strategies import shared_instances
from tests.twins import (
    check_grad_success_rate_is_variance_times_gap,
    check_gradient_gap,
    check_gradient_gap_monte_carlo,
    check_hessian_log_odds,
    check_log_odds,
    check_score_mean_zero_by_enumeration,
    check_success_rate,
)
from theory.instances import SharedTokens

F3 = ((0.0,), (1.0,), (2.0,))
WORKED_EXAMPLE = SharedTokens(theta=(0.0,), features=F3, correct=frozenset({1}), T=3)  # J* = 3^-T at theta=0
NEAR_ONE = SharedTokens(theta=(30.0,), features=((0.0,), (1.0,)), correct=frozenset({1}), T=4)


@given(shared_instances())
@example(WORKED_EXAMPLE)
def test_success_rate_symbolic_vs_enumerate_structured_autograd(inst: SharedTokens) -> None:
    check_success_rate(inst, ("enumerate", "structured", "autograd"))


@given(shared_instances())
@example(WORKED_EXAMPLE)
def test_gradient_gap_symbolic_vs_enumerate_structured_autograd_fd(inst: SharedTokens) -> None:
    check_gradient_gap(inst, ("enumerate", "structured", "autograd", "fd"))


@given(shared_instances(bound=20.0))
@example(NEAR_ONE)
def test_gradient_gap_and_log_odds_symbolic_vs_structured_near_deterministic(inst: SharedTokens) -> None:
    check_gradient_gap(inst, ("structured",))
    check_log_odds(inst, ("structured",))


@given(shared_instances())
def test_grad_success_rate_equals_variance_times_gradient_gap(inst: SharedTokens) -> None:
    check_grad_success_rate_is_variance_times_gap(inst)


@given(shared_instances())
def test_hessian_log_odds_symbolic_vs_autograd(inst: SharedTokens) -> None:
    check_hessian_log_odds(inst)


@given(shared_instances())
def test_score_mean_zero_by_enumeration(inst: SharedTokens) -> None:
    check_score_mean_zero_by_enumeration(inst)


def test_gradient_gap_mc_vs_symbolic() -> None:
    check_gradient_gap_monte_carlo(WORKED_EXAMPLE)
    check_gradient_gap_monte_carlo(SharedTokens(theta=(0.3, -0.2), features=((0, 0), (1, 0), (0, 1)),
                                                correct=frozenset({0, 2}), T=2, bias=(0.5, 0.0, -0.5)))
