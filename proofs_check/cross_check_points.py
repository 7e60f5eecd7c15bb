r"""Where the theory-vs-numerics cross-check (:mod:`gradgap.proofs_check.consistency`) looks, family by family.

Each family's registry entry (:data:`gradgap.proofs_check.families.FAMILIES`) holds one
:class:`CrossCheckPoints`: a few small *structures* (parameters zero; the random points of the cross-check
redraw their parameters uniformly in :math:`[-\text{bound},\text{bound}]`, so their compiled closed forms are
cached across claims) and fixed *extreme* instances of the same structures (logits of several hundred, where
:math:`J` or :math:`1-J` is below :math:`e^{-600}`), which exercise the overflow and underflow guards of the
numerics. The field is required: a family registered without its points is an error at import, never a family
silently left out of the cross-check.

Source: docs/DESIGN.md (the two sides share only the instance types); reconstruction §1-§2.1 (quantities).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gradgap.theory.instances import (
    Autoregressive,
    ContextualBandit,
    Instance,
    SharedTokens,
    SoftmaxBandit,
    TokenSequence,
)

__all__ = [
    "AUTOREGRESSIVE_POINTS",
    "CONTEXTUAL_POINTS",
    "SHARED_TOKENS_POINTS",
    "SOFTMAX_POINTS",
    "TOKENS_POINTS",
    "CrossCheckPoints",
]


@dataclass(frozen=True)
class CrossCheckPoints:
    """One family's cross-check points: ``structures`` (at least one), ``extreme`` instances and the ``bound``
    of the uniform parameters drawn at the random points."""

    structures: tuple[Instance, ...]
    extreme: tuple[Instance, ...]
    bound: float = 3.0

    def __post_init__(self) -> None:
        if not self.structures:
            raise ValueError("CrossCheckPoints: at least one structure is needed")
        if not self.bound > 0:
            raise ValueError(f"CrossCheckPoints: bound={self.bound!r} must be positive")


#: zero logits of the autoregressive family with T = 2, V = 2 (one root row, two prefix rows)
_ZERO_AR_2: Final = (((0.0, 0.0),), ((0.0, 0.0), (0.0, 0.0)))
_SHARED_FEATURES: Final = ((0.0, 1.0), (1.0, 0.0), (1.0, 1.0))
_CONTEXTUAL_1D: Final = (((1.0,), (0.0,)), ((0.0,), (-2.0,)))

SOFTMAX_POINTS: Final[CrossCheckPoints] = CrossCheckPoints(
    structures=(SoftmaxBandit((0.0, 0.0), frozenset({0})), SoftmaxBandit((0.0,) * 3, frozenset({0})),
                SoftmaxBandit((0.0,) * 4, frozenset({0, 1}))),
    extreme=(SoftmaxBandit((-700.0, 800.0, 3.0), frozenset({0})), SoftmaxBandit((700.0, 0.0, -3.0), frozenset({0})),
             SoftmaxBandit((750.0, 748.0, -2.0, 1.0), frozenset({0, 1}))))

TOKENS_POINTS: Final[CrossCheckPoints] = CrossCheckPoints(
    structures=(TokenSequence(((0.0,) * 3,), (0,)), TokenSequence(((0.0,) * 2,) * 2, (0, 1)),
                TokenSequence(((0.0,) * 2,) * 2, (0, 0), 1)),
    extreme=(TokenSequence(((-800.0, 800.0, 0.0),), (0,)), TokenSequence(((700.0, 0.0), (1.0, 650.0)), (0, 1)),
             TokenSequence(((-760.0, 0.0), (0.0, 755.0)), (0, 1))))

SHARED_TOKENS_POINTS: Final[CrossCheckPoints] = CrossCheckPoints(
    structures=(SharedTokens((0.0, 0.0), _SHARED_FEATURES, frozenset({0}), T=1),
                SharedTokens((0.0, 0.0), _SHARED_FEATURES, frozenset({0}), T=2)),
    extreme=(SharedTokens((300.0, -200.0), _SHARED_FEATURES, frozenset({0}), T=1),
             SharedTokens((-300.0, 200.0), _SHARED_FEATURES, frozenset({0}), T=2)),
    bound=1.5)

AUTOREGRESSIVE_POINTS: Final[CrossCheckPoints] = CrossCheckPoints(
    structures=(Autoregressive((((0.0,) * 3,),), (0,)), Autoregressive(_ZERO_AR_2, (1, 0)),
                Autoregressive(_ZERO_AR_2, (0, 1), None, 0), Autoregressive(_ZERO_AR_2, (1, 1), 1)),
    extreme=(Autoregressive((((-700.0, 800.0, 3.0),),), (0,)),
             Autoregressive((((700.0, 0.0),), ((0.0, -650.0), (3.0, 1.0))), (1, 0))))

CONTEXTUAL_POINTS: Final[CrossCheckPoints] = CrossCheckPoints(
    structures=(ContextualBandit((0.0,), _CONTEXTUAL_1D, (frozenset({0}), frozenset({1}))),
                ContextualBandit((0.0, 0.0), (((1.0, 0.0), (0.0, 1.0), (1.0, 1.0)), ((0.0, 0.0), (1.0, 0.0),
                                 (0.0, 1.0))), (frozenset({0}), frozenset({1, 2})), weights=(1.0, 3.0))),
    extreme=(ContextualBandit((300.0,), _CONTEXTUAL_1D, (frozenset({0}), frozenset({1}))),),
    bound=1.5)
