r"""Exact log-linear structure of an instance, shared by the critical-step and one-step-threshold modules.

Every family is a product of independent softmax positions: position type :math:`t` has logits
:math:`z_v(\theta) = \langle\theta,\phi_t(v)\rangle + b_{t,v}`, correct set :math:`C_t` and multiplicity
:math:`n_t`; the reward needs at least m correct positions (m = :math:`\sum_t n_t`: a product reward).

Along a line :math:`\theta+sw` the logits are affine in s: :math:`z_v + s\,a_v` with slopes
:math:`a_v = \langle w,\phi_t(v)\rangle`. :func:`line_types` gives (z, a) as exact fractions from the instance's
description (``structure()``), reading the one-hot features of the tabular families without building the feature
matrix (:data:`UNIT_FEATURES`; a K-armed bandit's K x K matrix would cost K^2).

Source: reconstruction §2 (the three families as log-linear policies, DERIVED).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

import sympy as sp

from gradgap.theory.instances import ContextualForm, GradgapValueError, Instance, LogLinearForm

__all__ = ["UNIT_FEATURES", "LineType", "Type", "is_product", "line_types", "log_J_expr", "mixture_line_types",
           "n_parameters", "types"]


@dataclass(frozen=True)
class Type:
    """One position type: rational features (V x d), biases (V), correct set, multiplicity."""

    features: tuple[tuple[sp.Rational, ...], ...]
    bias: tuple[sp.Rational, ...]
    correct: frozenset[int]
    count: int


@dataclass(frozen=True)
class LineType:
    r"""One position type restricted to the line :math:`\theta+sw`: logits ``z`` and slopes ``a`` (exact), and
    the features as sparse rows, ``columns[v]`` = the non-zero ``(j, phi_j(v))`` of :math:`\phi(v)`."""

    z: tuple[Fraction, ...]
    a: tuple[Fraction, ...]
    correct: frozenset[int]
    count: int
    columns: tuple[tuple[tuple[int, Fraction], ...], ...] = ()


def n_parameters(inst: Instance) -> int:
    """The number d of parameters of ``inst`` (the length of ``theta``)."""
    return len(inst.theta)


def types(inst: Instance) -> tuple[tuple[Type, ...], int]:
    """The position types of an instance (exact rationals, from its ``structure()``) and the number m of
    positions that must be correct. Builds the full V x d feature matrices: meant for small d (the symbolic
    critical step)."""
    form = inst.structure()
    R = sp.Rational
    out = tuple(Type(tuple(tuple(R(x) for x in row) for row in pos.features), tuple(R(b) for b in pos.bias),
                     pos.correct, pos.count) for pos in form.positions)
    return out, form.min_hits


#: one sparse position: rows of non-zero (parameter index, feature), biases, correct set, multiplicity
_SparsePosition = tuple[tuple[tuple[tuple[int, Fraction], ...], ...], tuple[Fraction, ...], frozenset[int], int]


def _sparse_positions(inst: Instance) -> tuple[list[_SparsePosition], int]:
    """The positions of ``inst`` as sparse rows: the tabular families by their unit-vector layout
    (:data:`UNIT_FEATURES`), any other family from its ``structure()``."""
    f = Fraction
    unit = UNIT_FEATURES.get(type(inst).FAMILY)
    if unit is not None:
        blocks, m = unit(inst)
        out: list[_SparsePosition] = []
        offset = 0
        for V, correct in blocks:
            out.append((tuple(((offset + v, f(1)),) for v in range(V)), (f(0),) * V, correct, 1))
            offset += V
        return out, m
    return _form_positions(inst.structure())


def _form_positions(form: LogLinearForm) -> tuple[list[_SparsePosition], int]:
    """The positions of a product form as sparse rows, and its m."""
    f = Fraction
    return [(tuple(tuple((j, f(x)) for j, x in enumerate(row) if x) for row in pos.features),
             tuple(f(b) for b in pos.bias), pos.correct, pos.count) for pos in form.positions], form.min_hits


#: families whose ``structure()`` has unit-vector features in consecutive parameter blocks and zero biases,
#: read without building the rows: family name -> (per position (V_t, C_t), m)
UNIT_FEATURES: Final[dict[str, Callable[[Any], tuple[list[tuple[int, frozenset[int]]], int]]]] = {
    "softmax": lambda inst: ([(inst.K, inst.correct)], 1),
    "tokens": lambda inst: ([(inst.V, frozenset({o})) for o in inst.target], inst.m),
}


def line_types(inst: Instance, w: Sequence[Fraction]) -> tuple[tuple[LineType, ...], int]:
    r"""Logits :math:`z_v(\theta)` and slopes :math:`a_v = \langle w,\phi(v)\rangle` per position type, exact,
    and m, from the instance's log-linear description (sparse rows: cost linear in the non-zero features)."""
    positions, m = _sparse_positions(inst)
    return _restrict(positions, [Fraction(x) for x in inst.theta], w), m


def _restrict(positions: Sequence[_SparsePosition], theta: Sequence[Fraction],
              w: Sequence[Fraction]) -> tuple[LineType, ...]:
    f = Fraction
    out = []
    for rows, bias, correct, count in positions:
        z = tuple(b + sum((theta[j] * x for j, x in row), f(0)) for row, b in zip(rows, bias, strict=True))
        a = tuple(sum((w[j] * x for j, x in row), f(0)) for row in rows)
        out.append(LineType(z, a, correct, count, rows))
    return tuple(out)


def mixture_line_types(inst: Instance, w: Sequence[Fraction]) -> tuple[tuple[Fraction, LineType], ...] | None:
    r"""For a mixture over prompts (a :class:`~gradgap.theory.instances.ContextualForm`): per prompt x its weight
    :math:`\rho_x` (the form's float, read exactly) and its one position restricted to the line, so that
    :math:`J(\theta+sw)=\sum_x\rho_x\,p_x(s)`; ``None`` for a product form (use :func:`line_types`). The
    tabular families (:data:`UNIT_FEATURES`) are products: their dense ``structure()`` is never built here."""
    if type(inst).FAMILY in UNIT_FEATURES:
        return None
    form = inst.structure()
    if not isinstance(form, ContextualForm):
        return None
    theta = [Fraction(x) for x in inst.theta]
    out = []
    for rho, prompt in zip(form.weights, form.prompts, strict=True):
        (line,) = _restrict(_form_positions(prompt)[0], theta, w)
        out.append((Fraction(rho), line))
    return tuple(out)


def is_product(counts: Sequence[int], m: int) -> bool:
    """Whether the reward is the product one (every position must be correct)."""
    return m == sum(counts)


def log_J_expr(inst: Instance, theta: Sequence[sp.Symbol]) -> sp.Expr:
    r"""Exact :math:`\log J` as an expression in ``theta`` (product rewards only)."""
    tys, m = types(inst)
    if not is_product([t.count for t in tys], m):
        raise GradgapValueError(f"min_correct={m}: critical steps need a product reward (exact match)",
                                field="min_correct", value=m)
    total = sp.S.Zero
    for ty in tys:
        logits = [sum(th * f for th, f in zip(theta, row, strict=True)) + b
                  for row, b in zip(ty.features, ty.bias, strict=True)]
        num = sum(sp.exp(logits[v]) for v in ty.correct)
        den = sum(sp.exp(z) for z in logits)
        total += ty.count * (sp.log(num) - sp.log(den))
    return total
