"""Shared-parameter log-linear token policy: theory/shared_tokens.py against every numeric twin."""

from __future__ import annotations

from gradgap.theory.instances import SharedTokens
from tests.strategies import shared_instances
from tests.twins import twin_tests

F3 = ((0.0,), (1.0,), (2.0,))
WORKED_EXAMPLE = SharedTokens(theta=(0.0,), features=F3, correct=frozenset({1}), T=3)  # J* = 3^-T at theta=0
NEAR_ONE = SharedTokens(theta=(30.0,), features=((0.0,), (1.0,)), correct=frozenset({1}), T=4)
TWO_FEATURES = SharedTokens(theta=(0.3, -0.2), features=((0, 0), (1, 0), (0, 1)), correct=frozenset({0, 2}), T=2,
                            bias=(0.5, 0.0, -0.5))

TestSharedTokenTwins = twin_tests(
    "shared_tokens", shared_instances(), examples=(WORKED_EXAMPLE,), hessian=shared_instances(),
    near_deterministic=shared_instances(bound=20.0), near_examples=(NEAR_ONE,),
    monte_carlo=(WORKED_EXAMPLE, TWO_FEATURES))
