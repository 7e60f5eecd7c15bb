"""Invalid instances raise one GradgapError naming the field; valid edge cases construct (style rule 13)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradgap.theory.instances import (
    GradgapError,
    GradgapTypeError,
    GradgapValueError,
    SharedTokens,
    SoftmaxBandit,
    TokenSequence,
    family_name,
)

F3 = ((0.0,), (1.0,), (2.0,))

# The tables below are literal calls evaluated in exactly this namespace (named, so no linter prunes it).
NAMESPACE = {
    "SoftmaxBandit": SoftmaxBandit,
    "TokenSequence": TokenSequence,
    "SharedTokens": SharedTokens,
    "F3": F3,
    "math": math,
    "np": np,
}

INVALID = [
    ("SoftmaxBandit(logits=(1.0,), correct={0})", "logits", GradgapValueError),
    ("SoftmaxBandit(logits=(), correct={0})", "logits", GradgapValueError),
    ("SoftmaxBandit(logits=(1.0, 'a'), correct={0})", "logits", GradgapTypeError),
    ("SoftmaxBandit(logits='12', correct={0})", "logits", GradgapTypeError),
    ("SoftmaxBandit(logits=(1.0, math.nan), correct={0})", "logits", GradgapValueError),
    ("SoftmaxBandit(logits=(1.0, math.inf), correct={0})", "logits", GradgapValueError),
    ("SoftmaxBandit(logits=(1.0, 2.0), correct=set())", "correct", GradgapValueError),
    ("SoftmaxBandit(logits=(1.0, 2.0), correct={0, 1})", "correct", GradgapValueError),
    ("SoftmaxBandit(logits=(1.0, 2.0), correct={2})", "correct", GradgapValueError),
    ("SoftmaxBandit(logits=(1.0, 2.0), correct={-1})", "correct", GradgapValueError),
    ("SoftmaxBandit(logits=(1.0, 2.0), correct={0.5})", "correct", GradgapTypeError),
    ("SoftmaxBandit(logits=(True, 2.0), correct={0})", "logits", GradgapTypeError),
    ("TokenSequence(logits=(), target=())", "logits", GradgapValueError),
    ("TokenSequence(logits=((0.0, 1.0), (1.0,)), target=(0, 0))", "logits", GradgapValueError),
    ("TokenSequence(logits=((0.0,), (1.0,)), target=(0, 0))", "logits", GradgapValueError),
    ("TokenSequence(logits=((0.0, 1.0),), target=(0, 0))", "target", GradgapValueError),
    ("TokenSequence(logits=((0.0, 1.0),), target=(2,))", "target", GradgapValueError),
    ("TokenSequence(logits=((0.0, 1.0),), target=('x',))", "target", GradgapTypeError),
    ("TokenSequence(logits=((0.0, 1.0),), target=(0,), min_correct=0)", "min_correct", GradgapValueError),
    ("TokenSequence(logits=((0.0, 1.0),), target=(0,), min_correct=2)", "min_correct", GradgapValueError),
    ("TokenSequence(logits=((0.0, math.nan),), target=(0,))", "logits[0]", GradgapValueError),
    ("SharedTokens(theta=(0.0,), features=((0.0,),), correct={0}, T=1)", "features", GradgapValueError),
    ("SharedTokens(theta=(0.0,), features=((0.0, 1.0), (1.0,)), correct={0}, T=1)", "features[0]",
     GradgapValueError),
    ("SharedTokens(theta=(0.0,), features=F3, correct={0}, T=0)", "T", GradgapValueError),
    ("SharedTokens(theta=(0.0,), features=F3, correct={0}, T=1.5)", "T", GradgapTypeError),
    ("SharedTokens(theta=(0.0,), features=F3, correct={0, 1, 2}, T=2)", "correct", GradgapValueError),
    ("SharedTokens(theta=(0.0,), features=F3, correct={1}, T=2, bias=(0.0, 1.0))", "bias", GradgapValueError),
]


@pytest.mark.parametrize(("call", "field", "cls"), INVALID, ids=[c for c, _, _ in INVALID])
def test_invalid_instance_raises_one_line_error_naming_the_field(call: str, field: str, cls: type) -> None:
    with pytest.raises(cls) as info:
        eval(call, dict(NAMESPACE))  # the table holds literal calls written in this file
    assert isinstance(info.value, GradgapError)
    assert info.value.field == field
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{field}=")


VALID = [
    "SoftmaxBandit(logits=(1000.0, -1000.0, 0.0), correct={0})",
    "SoftmaxBandit(logits=np.array([0.5, 1.5]), correct=[np.int64(1)])",
    "TokenSequence(logits=((0.0, 1.0),), target=(1,), min_correct=1)",
    "TokenSequence(logits=[[0, 1], [2, 3]], target=[1, 0])",
    "SharedTokens(theta=(0.0,), features=F3, correct={1}, T=64)",
    "SharedTokens(theta=(0.5, -0.5), features=((0, 0), (1, 0), (0, 1)), correct={0, 2}, T=3, bias=(1, 0, 0))",
]


@pytest.mark.parametrize("call", VALID, ids=VALID)
def test_valid_edge_cases_construct_and_round_trip(call: str) -> None:
    instance = eval(call, dict(NAMESPACE))
    again = instance.with_theta(instance.theta)
    assert again == instance
    assert family_name(instance) in {"softmax", "tokens", "shared_tokens"}
    assert all(isinstance(x, float) for x in instance.theta)


def test_token_sequence_flat_layout_is_row_major() -> None:
    inst = TokenSequence(logits=((0.0, 1.0, 2.0), (3.0, 4.0, 5.0)), target=(0, 1))
    assert inst.theta == (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)
    assert inst.with_theta(range(6)).logits == ((0.0, 1.0, 2.0), (3.0, 4.0, 5.0))
    assert inst.m == 2
