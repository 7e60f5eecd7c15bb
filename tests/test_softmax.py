"""Softmax bandit: the symbolic closed forms (theory/softmax.py) against every numeric twin."""

from __future__ import annotations

from gradgap.theory.instances import SoftmaxBandit
from tests.strategies import EXTREME, softmax_instances
from tests.twins import twin_tests

EXTREME_EXAMPLE = SoftmaxBandit(logits=(1000.0, -1000.0, 0.0), correct=frozenset({0}))
TWO_ARMS_HALF = SoftmaxBandit(logits=(0.0, 0.0), correct=frozenset({1}))

TestSoftmaxTwins = twin_tests(
    "softmax", softmax_instances(), near_deterministic=softmax_instances(bound=EXTREME),
    hessian=softmax_instances(K=(2, 4)), examples=(TWO_ARMS_HALF,),
    monte_carlo=(SoftmaxBandit(logits=(0.3, -1.2, 2.0, 0.5), correct=frozenset({0, 2})), TWO_ARMS_HALF))


def test_extreme_logits_give_log_odds_1000_and_gap_1_0_minus1() -> None:
    import numpy as np

    import gradgap.numerics.softmax as num

    assert num.log_odds(EXTREME_EXAMPLE) == 1000.0
    assert np.array_equal(num.gradient_gap(EXTREME_EXAMPLE), np.array([1.0, 0.0, -1.0]))
