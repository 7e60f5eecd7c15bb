r"""Symbolic forms read off an instance's log-linear description, for every family at once.

Every family is log-linear per position (``gradgap.theory.instances.LogLinearForm``):
:math:`\pi_t(v)\propto\exp(\phi_t(v)^\top\theta+b_t(v))`. This module builds, in the flat parameter symbols of
the family module (:func:`gradgap.theory.closed_forms.theta_symbols`), the per-position probabilities, the
log-probability of a response and its score norm, and decides sign-definiteness of rational functions of
positive variables (used to prove the score bound :math:`G_o`).

==========================  ======================================================================
here                        formula
==========================  ======================================================================
:func:`probabilities`       :math:`\pi_t(v)=e^{z_t(v)}/\sum_u e^{z_t(u)}`, :math:`z_t=A_t\theta+b_t`
:func:`log_prob`            :math:`\log\pi_\theta(o)=\sum_t\big(z_t(o_t)-\log\sum_u e^{z_t(u)}\big)`
:func:`score_norm_squared`  :math:`\|s(o)\|^2=\|\sum_t(\phi_t(o_t)-\mathbb E_{\pi_t}\phi_t)\|^2`
:func:`positive_form`       numerator and denominator with non-negative coefficients
==========================  ======================================================================

Source: reconstruction §1 (policy, score), QUOTED-2nd/INFERRED; §3 (A1), INFERRED.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from gradgap.theory.closed_forms import theta_symbols
from gradgap.theory.instances import ContextualForm, Instance, Position

__all__ = ["log_prob", "logits", "positive_form", "probabilities", "score_norm_squared"]


def _linear(row: Sequence[float], bias: float, params: Sequence[sp.Symbol]) -> sp.Expr:
    return sp.Add(*(sp.Rational(f) * p for f, p in zip(row, params, strict=True) if f != 0)) + sp.Rational(bias)


def logits(position: Position, params: Sequence[sp.Symbol]) -> tuple[sp.Expr, ...]:
    r"""The exact logits :math:`z(v)=\phi(v)^\top\theta+b_v` of one position (features and biases made exact).

    >>> pos = Position(features=((1.0, 0.0), (0.5, 1.0)), bias=(0.0, 0.25), correct=frozenset({0}))
    >>> logits(pos, theta_symbols(2))
    (theta_0, theta_0/2 + theta_1 + 1/4)
    """
    return tuple(_linear(row, b, params) for row, b in zip(position.features, position.bias, strict=True))


def probabilities(inst: Instance, params: Sequence[sp.Symbol] | None = None) -> list[tuple[sp.Expr, ...]]:
    r"""Per response position, the probabilities :math:`\pi_t(v)=e^{z_t(v)}/\sum_u e^{z_t(u)}`.

    >>> from gradgap.theory.instances import SoftmaxBandit
    >>> probabilities(SoftmaxBandit(logits=(0.0, 0.0), correct=frozenset({0})))
    [(exp(theta_0)/(exp(theta_0) + exp(theta_1)), exp(theta_1)/(exp(theta_0) + exp(theta_1)))]
    """
    form = inst.structure()
    params = theta_symbols(form.n_params) if params is None else params
    out = []
    for position in form.expanded():
        weights = [sp.exp(z) for z in logits(position, params)]
        total = sp.Add(*weights)
        out.append(tuple(w / total for w in weights))
    return out


def log_prob(inst: Instance, response: Sequence[int], params: Sequence[sp.Symbol] | None = None) -> sp.Expr:
    r""":math:`\log\pi_\theta(o)=\sum_t\big(z_t(o_t)-\log\sum_u e^{z_t(u)}\big)` in the parameter symbols.

    >>> from gradgap.theory.instances import SoftmaxBandit
    >>> log_prob(SoftmaxBandit(logits=(0.0, 0.0), correct=frozenset({0})), (1,))
    theta_1 - log(exp(theta_0) + exp(theta_1))
    """
    form = inst.structure()
    params = theta_symbols(form.n_params) if params is None else params
    if isinstance(form, ContextualForm):  # log pi(a | x): the prompt's own one-position form (rho_x has no theta)
        form, response = form.conditional(response)
    terms = []
    for o, position in zip(response, form.expanded(), strict=True):
        z = logits(position, params)
        terms.append(z[o] - sp.log(sp.Add(*(sp.exp(x) for x in z))))
    return sp.Add(*terms)


def score_norm_squared(inst: Instance, response: Sequence[int],
                       params: Sequence[sp.Symbol] | None = None) -> sp.Expr:
    r""":math:`\|s(o)\|^2` with :math:`s(o)=\sum_t\big(\phi_t(o_t)-\sum_v\pi_t(v)\phi_t(v)\big)`.

    >>> from gradgap.theory.instances import SoftmaxBandit
    >>> sp.simplify(score_norm_squared(SoftmaxBandit(logits=(0.0, 0.0), correct=frozenset({0})), (0,))
    ...             .subs({sp.Symbol("theta_0", real=True): 0, sp.Symbol("theta_1", real=True): 0}))
    1/2
    """
    form = inst.structure()
    params = theta_symbols(form.n_params) if params is None else params
    probs = probabilities(inst, params)
    score = [sp.S.Zero] * form.n_params
    for o, position, pi in zip(response, form.expanded(), probs, strict=True):
        for j in range(form.n_params):
            mean = sp.Add(*(p * sp.Rational(row[j]) for p, row in zip(pi, position.features, strict=True)
                            if row[j] != 0))
            score[j] += sp.Rational(position.features[o][j]) - mean
    return sp.Add(*(c**2 for c in score))


def positive_form(expr: sp.Expr, variables: Sequence[sp.Symbol]) -> tuple[bool, str]:
    r"""Whether a rational function of positive variables is *sign-definite positive* by inspection: after
    ``together``, numerator and denominator are non-zero polynomials whose coefficients are all :math:`\ge 0`
    (so the value is :math:`>0` wherever every variable is :math:`>0`).

    Source: reconstruction §3 (A1), DERIVED (the proof device is this project's).

    >>> x, y = sp.symbols("x y", positive=True)
    >>> positive_form((x**2 + x*y) / (x + y)**2, (x, y))[0], positive_form((x - y)**2, (x, y))[0]
    (True, False)
    """
    num, den = sp.fraction(sp.together(sp.expand(expr)))
    num_p, den_p = sp.Poly(sp.expand(num), *variables), sp.Poly(sp.expand(den), *variables)
    if num_p.is_zero or den_p.is_zero:
        return False, "zero numerator or denominator"
    signs = [*num_p.coeffs(), *den_p.coeffs()]
    if all(c.is_nonnegative for c in signs) and (num_p.LC().is_positive and den_p.LC().is_positive):
        return True, f"numerator: {len(num_p.terms())} terms, all coefficients > 0"
    return False, "a coefficient is negative"
