r"""Exact log-linear structure of an instance, shared by the critical-step and one-step-threshold modules.

Every family is a product of independent softmax positions: position type :math:`t` has logits
:math:`z_v(\theta) = \langle\theta,\phi_t(v)\rangle + b_{t,v}`, correct set :math:`C_t` and multiplicity
:math:`n_t`; the reward needs at least m correct positions (m = :math:`\sum_t n_t`: a product reward).

Along a line :math:`\theta+sw` the logits are affine in s: :math:`z_v + s\,a_v` with slopes
:math:`a_v = \langle w,\phi_t(v)\rangle`. :func:`line_types` gives (z, a) as exact fractions without building the
feature matrix (a K-armed bandit has K one-hot features: a K x K matrix would cost K^2).

Source: reconstruction §2 (the three families as log-linear policies, DERIVED).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import sympy as sp
from gradgap.theory.instances import GradgapValueError, Instance, SharedTokens, SoftmaxBandit, TokenSequence

__all__ = ["LineType", "Type", "is_product", "line_types", "log_J_expr", "n_parameters", "types"]


@dataclass(frozen=True)
class Type:
    """One position type: rational features (V x d), biases (V), correct set, multiplicity."""

    features: tuple[tuple[sp.Rational, ...], ...]
    bias: tuple[sp.Rational, ...]
    correct: frozenset[int]
    count: int


@dataclass(frozen=True)
class LineType:
    r"""One position type restricted to the line :math:`\theta+sw`: logits ``z`` and slopes ``a`` (exact)."""

    z: tuple[Fraction, ...]
    a: tuple[Fraction, ...]
    correct: frozenset[int]
    count: int


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


def line_types(inst: Instance, w: Sequence[Fraction]) -> tuple[tuple[LineType, ...], int]:
    r"""Logits :math:`z_v(\theta)` and slopes :math:`a_v = \langle w,\phi(v)\rangle` per position type, exact,
    and m. The tabular families take a sparse path (their features are unit vectors: ``structure()`` would build a
    dense K x K matrix, 10^8 entries at K = 10^4); any other instance goes through ``structure()``."""
    f = Fraction
    if isinstance(inst, SoftmaxBandit):
        return (LineType(tuple(f(x) for x in inst.logits), tuple(w), inst.correct, 1),), 1
    if isinstance(inst, TokenSequence):
        V = inst.V
        out = tuple(LineType(tuple(f(x) for x in inst.logits[t]), tuple(w[t * V:(t + 1) * V]),
                             frozenset({inst.target[t]}), 1) for t in range(inst.T))
        return out, inst.m
    if isinstance(inst, SharedTokens):
        theta = [f(x) for x in inst.theta]
        z, a = [], []
        for row, b in zip(inst.features, inst.biases, strict=True):
            fr = [f(x) for x in row]
            z.append(f(b) + sum((t * x for t, x in zip(theta, fr, strict=True) if x), f(0)))
            a.append(sum((wi * x for wi, x in zip(w, fr, strict=True) if x), f(0)))
        return (LineType(tuple(z), tuple(a), inst.correct, inst.T),), inst.T
    form = inst.structure()
    theta = [f(x) for x in inst.theta]
    out = []
    for pos in form.positions:
        rows = [[f(x) for x in row] for row in pos.features]
        z = tuple(f(b) + sum((t * x for t, x in zip(theta, r, strict=True) if x), f(0)) for r, b in zip(rows, pos.bias,
                                                                                                       strict=True))
        a = tuple(sum((wi * x for wi, x in zip(w, r, strict=True) if x), f(0)) for r in rows)
        out.append(LineType(z, a, pos.correct, pos.count))
    return tuple(out), form.min_hits


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
