"""Tabular token-sequence policy: the symbolic closed forms (theory/tokens.py) against every numeric twin."""

from __future__ import annotations

from gradgap.theory.instances import TokenSequence
from tests.strategies import EXTREME, token_instances
from tests.twins import twin_tests

AT_LEAST_TWO = TokenSequence(logits=((0.2, -0.4, 1.0), (0.0, 0.5, -1.0), (1.5, 0.0, 0.3)), target=(1, 0, 2),
                             min_correct=2)
NEAR_CERTAIN = TokenSequence(logits=((40.0, 0.0), (0.0, 40.0)), target=(0, 1))

TestTokenTwins = twin_tests(
    "tokens", token_instances(), examples=(AT_LEAST_TWO,), near_deterministic=token_instances(bound=EXTREME),
    near_examples=(NEAR_CERTAIN,), hessian=token_instances(T=(1, 2), V=(2, 3)),
    monte_carlo=(AT_LEAST_TWO, TokenSequence(logits=((0.0, 0.5), (1.0, -0.5)), target=(1, 1))))
