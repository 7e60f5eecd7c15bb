"""Tabular token-sequence policy: the symbolic closed forms (theory/tokens.py) against every numeric twin."""

from __future__ import annotations

from hypothesis import example, given

from tests.strategies import EXTREME, token_instances
from tests.twins import (
    check_grad_success_rate_is_variance_times_gap,
    check_gradient_gap,
    check_gradient_gap_monte_carlo,
    check_hessian_log_odds,
    check_log_odds,
    check_score_mean_zero_by_enumeration,
    check_success_rate,
)
from theory.instances import TokenSequence

AT_LEAST_TWO = TokenSequence(logits=((0.2, -0.4, 1.0), (0.0, 0.5, -1.0), (1.5, 0.0, 0.3)), target=(1, 0, 2),
                             min_correct=2)
NEAR_CERTAIN = TokenSequence(logits=((40.0, 0.0), (0.0, 40.0)), target=(0, 1))


@given(token_instances())
@example(AT_LEAST_TWO)
def test_success_rate_symbolic_vs_enumerate_structured_autograd(inst: TokenSequence) -> None:
    check_success_rate(inst, ("enumerate", "structured", "autograd"))


@given(token_instances())
@example(AT_LEAST_TWO)
def test_gradient_gap_symbolic_vs_enumerate_structured_autograd_fd(inst: TokenSequence) -> None:
    check_gradient_gap(inst, ("enumerate", "structured", "autograd", "fd"))


@given(token_instances(bound=EXTREME))
@example(NEAR_CERTAIN)
def test_gradient_gap_and_log_odds_symbolic_vs_structured_near_deterministic(inst: TokenSequence) -> None:
    check_gradient_gap(inst, ("structured",))
    check_log_odds(inst, ("structured",))


@given(token_instances())
def test_grad_success_rate_equals_variance_times_gradient_gap(inst: TokenSequence) -> None:
    check_grad_success_rate_is_variance_times_gap(inst)


@given(token_instances(T=(1, 2), V=(2, 3)))
def test_hessian_log_odds_symbolic_vs_autograd(inst: TokenSequence) -> None:
    check_hessian_log_odds(inst)


@given(token_instances())
def test_score_mean_zero_by_enumeration(inst: TokenSequence) -> None:
    check_score_mean_zero_by_enumeration(inst)


def test_gradient_gap_mc_vs_symbolic() -> None:
    check_gradient_gap_monte_carlo(AT_LEAST_TWO)
    check_gradient_gap_monte_carlo(TokenSequence(logits=((0.0, 0.5), (1.0, -0.5)), target=(1, 1)))
