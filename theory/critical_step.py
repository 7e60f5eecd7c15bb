r"""Critical steps of the expected dynamics: the local-stability threshold at an optimum and its laws in T, J*.

Notation (paper symbol -> name):

=============================  ==========================  ==================================================
paper                          here                         meaning
=============================  ==========================  ==================================================
:math:`c(J)`                   ``gain_limit`` (algorithms)  population gain of an update rule along :math:`g`
:math:`\eta_c`                 :func:`critical_step`        local-stability threshold at the optimum
:math:`\ell''`                 ``curvature``                eigenvalues of :math:`\nabla^2\ell` at the optimum
:math:`J^\star`                ``J_star``                   success rate at the optimum
:math:`T`                      ``T``                        response length
=============================  ==========================  ==================================================
Critical step (DERIVED by this project). For :math:`\theta_{k+1} = \theta_k + \eta\,c(J(\theta_k))\,g(\theta_k)`
with :math:`g = \nabla\ell` and an interior maximiser :math:`\theta^\star` of J (so :math:`g(\theta^\star)=0`),
the Jacobian of the map at :math:`\theta^\star` is :math:`I + \eta\,c(J^\star)\,\nabla^2\ell(\theta^\star)`;
the optimum is linearly stable iff

.. math:: \eta < \eta_c = \frac{2}{c(J^\star)\,\lambda_{\max}(-\nabla^2\ell(\theta^\star))}
          = \frac{2\,(1-J^\star)}{c(J^\star)\,\lambda_{\max}(-\nabla^2\log J(\theta^\star))},

and with the :math:`1/|o| = 1/T` normalisation :math:`\eta_c` is multiplied by T. Crossing :math:`\eta_c` is a
period doubling: the optimum gives way to a bounded 2-cycle whose J falls as :math:`\eta` grows.

Source: reconstruction §4.2 (sharpness heuristic, DERIVED), §4.3-§4.4 (gains, length, DERIVED); the
formulas here are DERIVED by this project (docs/thresholds.md). Numeric twin:
``gradgap.numerics.critical_step`` (finite-difference Jacobian of the expected update).
"""


from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Final

import sympy as sp

from gradgap.theory import _loglinear as ll
from gradgap.theory import algorithms
from gradgap.theory.instances import GradgapValueError, Instance, SharedTokens

__all__ = [
    "ETA",
    "J_SYM",
    "RULES",
    "T_SYM",
    "CriticalStep",
    "LengthLaw",
    "critical_step",
    "critical_step_law",
    "fixed_success_instance",
    "separating_ray_gap_limit",
    "success_instance",
    "success_law",
    "tabular_gap_progress",
    "worked_example",
]

#: update rules: the Gradient Gap itself and the algorithms whose population gain ``algorithms.gain_limit`` gives
RULES: Final[tuple[str, ...]] = ("gap", "reinforce", "dr_grpo", "grpo")

T_SYM: Final = sp.Symbol("T", positive=True, integer=True)
J_SYM: Final = sp.Symbol("J", positive=True)
_X: Final = sp.Symbol("x", real=True)


def _rule_gain(rule: str, J: sp.Expr) -> sp.Expr:
    r""":math:`c(J)` of ``rule`` at sequence level (T = 1): 1 for the Gradient Gap, else
    ``algorithms.gain_limit(rule, JJ=J, T=1)`` (the :math:`G\to\infty` gain; the 1/T aggregation is applied by
    ``normalized``). Source: reconstruction §4.4, DERIVED."""
    if rule == "gap":
        return sp.S.One
    if rule not in RULES:
        raise GradgapValueError(f"rule={rule!r}: choose one of {', '.join(RULES)}", field="rule", value=rule)
    return algorithms.gain_limit(rule, JJ=J, T=1)

# critical steps


@dataclass(frozen=True)
class CriticalStep:
    r"""The local-stability threshold of one update rule at an optimum.

    ``eta_crit`` exact; ``J_star`` exact; ``curvature`` the eigenvalues of :math:`\nabla^2\ell(\theta^\star)`;
    ``jacobian`` the Jacobian of the update map at :math:`\theta^\star` as a function of the symbol ``eta``.
    """

    rule: str
    normalized: bool
    eta_crit: sp.Expr
    J_star: sp.Expr
    curvature: tuple[sp.Expr, ...]
    jacobian: sp.ImmutableMatrix

    def value(self, digits: int = 30) -> float:
        """``eta_crit`` as a float (evaluated at ``digits`` digits first)."""
        return float(sp.N(self.eta_crit, digits))


ETA: Final = sp.Symbol("eta", positive=True)


def critical_step(inst: Instance, rule: str = "gap", *, normalized: bool = False) -> CriticalStep:
    r"""Critical step :math:`\eta_c = 2/(c(J^\star)\,\lambda_{\max}(-\nabla^2\ell(\theta^\star)))` at
    :math:`\theta^\star` = ``inst.theta``, times T when ``normalized``.

    SymPy derives it: :math:`\ell = \log J - \log(1-J)` from the instance's exact log-linear form; the gradient
    at :math:`\theta^\star` must simplify to 0 (else :class:`GradgapValueError`); the Jacobian of
    :math:`\theta\mapsto\theta+\eta\,c(J)\,\nabla\ell` is differentiated and evaluated exactly; its eigenvalues
    :math:`1+\eta c\lambda_i` leave :math:`(-1,1)` at :math:`\eta_c`.

    Source: module docstring, DERIVED (this project).

    >>> critical_step(worked_example(2)).eta_crit
    4/3
    """
    d = ll.n_parameters(inst)
    if d > 4:
        raise GradgapValueError(f"d={d}: the exact critical step supports at most 4 parameters", field="d", value=d)
    types, _ = ll.types(inst)
    theta = sp.symbols(f"theta0:{d}", real=True)
    logJ = ll.log_J_expr(inst, theta)
    point = {th: sp.Rational(v) for th, v in zip(theta, inst.theta, strict=True)}
    J = sp.exp(logJ)
    ell = logJ - sp.log(1 - J)
    c = _rule_gain(rule, J)
    # differentiate symbolically, then evaluate at theta*: every exp(rational) becomes a positive symbol so that
    # the exact arithmetic is on rational functions (fast), and equal atoms (symmetric biases) cancel exactly
    atoms: dict[sp.Basic, sp.Symbol] = {}
    grad = [_atomize(sp.diff(logJ, th).xreplace(point), atoms) for th in theta]
    back = {v: k for k, v in atoms.items()}
    for gi in grad:
        gi = sp.cancel(gi)
        if gi != 0:
            raise GradgapValueError(f"theta={inst.theta}: not a stationary point of J (gradient "
                                    f"{sp.N(gi.xreplace(back), 6)}); give the optimum", field="theta",
                                    value=inst.theta)
    update = [c * sp.diff(ell, th) for th in theta]
    jac = sp.Matrix(d, d, lambda i, j: sp.cancel(_atomize(sp.diff(update[i], theta[j]).xreplace(point), atoms)))
    back = {v: k for k, v in atoms.items()}
    J_star = sp.simplify(sp.cancel(_atomize(J.xreplace(point), atoms)).xreplace(back))
    c_star = _rule_gain(rule, sp.cancel(_atomize(J.xreplace(point), atoms)))
    hess_ell = (jac / c_star).applyfunc(sp.cancel)
    eigs_sym = hess_ell.eigenvals(multiple=True)
    eigs = tuple(sp.simplify(e.xreplace(back)) for e in eigs_sym)
    if any(sp.N(e, 30) > 0 for e in eigs):
        raise GradgapValueError(f"theta={inst.theta}: not a local maximum of J (curvature {eigs})",
                                field="theta", value=inst.theta)
    negative = [e for e in eigs if sp.N(e, 30) < 0]
    if not negative:
        raise GradgapValueError(f"theta={inst.theta}: flat optimum (curvature {eigs}); no finite threshold",
                                field="theta", value=inst.theta)
    worst = max(negative, key=lambda e: -sp.N(e, 30))
    eta_c = sp.simplify(2 / (c_star.xreplace(back) * (-worst)))
    if normalized:
        eta_c = sp.simplify(eta_c * sum(t.count for t in types))
    jac_star = jac.xreplace(back)
    jacobian = sp.ImmutableMatrix(sp.eye(d) + ETA * jac_star)
    return CriticalStep(rule, normalized, eta_c, J_star, eigs, jacobian)


def _atomize(expr: sp.Expr, atoms: dict[sp.Basic, sp.Symbol] | None = None) -> sp.Expr:
    """Replace every ``exp(rational)`` atom by a positive symbol (shared through ``atoms``)."""
    if atoms is None:
        atoms = {}
    expr = sp.expand_power_exp(sp.powsimp(expr))
    mapping = {}
    for a in expr.atoms(sp.exp):
        if a.args[0].is_Rational:
            if a not in atoms:
                atoms[a] = sp.Symbol(f"e{len(atoms)}", positive=True)
            mapping[a] = atoms[a]
    return expr.xreplace(mapping)


def worked_example(T: int) -> SharedTokens:
    r"""The worked example: one scalar logit shared by T positions, features (0, 1, 2), token 1 correct,
    at its optimum :math:`\theta^\star = 0` with :math:`J^\star = 3^{-T}`.

    >>> worked_example(3).T
    3
    """
    return SharedTokens(theta=(0.0,), features=((0.0,), (1.0,), (2.0,)), correct=frozenset({1}), T=T)


def fixed_success_instance(J_star: float, T: int) -> SharedTokens:
    r"""Setting (ii): features (0, 1, 2), token 1 correct, biases :math:`(\beta, 0, \beta)` with
    :math:`e^\beta = (J^{\star\,-1/T}-1)/2`, so that :math:`p^\star = J^{\star\,1/T}` and :math:`J^\star` is fixed.

    >>> round(fixed_success_instance(0.5, 1).bias[0], 9)
    -0.693147181
    """
    if not 0 < J_star < 1:
        raise GradgapValueError(f"J_star={J_star}: must lie in (0, 1)", field="J_star", value=J_star)
    beta = math.log((J_star ** (-1.0 / T) - 1.0) / 2.0)
    return SharedTokens(theta=(0.0,), features=((0.0,), (1.0,), (2.0,)), correct=frozenset({1}), T=T,
                        bias=(beta, 0.0, beta))


def success_instance(J_star: float, T: int = 1, kappa: float = 1.0) -> SharedTokens:
    r"""Success-rate family: features :math:`(-a, 0, a)`, token 1 correct, biases :math:`(\beta,0,\beta)` with
    :math:`p^\star = J^{\star\,1/T}` and :math:`a^2 = \kappa/(T(1-p^\star))`, so that the curvature of
    :math:`\log J` at the optimum is :math:`\kappa` whatever :math:`J^\star` (fixed "token regularity").

    >>> success_instance(0.5).features[2][0] > 0
    True
    """
    if not 0 < J_star < 1:
        raise GradgapValueError(f"J_star={J_star}: must lie in (0, 1)", field="J_star", value=J_star)
    p = J_star ** (1.0 / T)
    beta = math.log((1.0 / p - 1.0) / 2.0)
    a = math.sqrt(kappa / (T * (1.0 - p)))
    return SharedTokens(theta=(0.0,), features=((-a,), (0.0,), (a,)), correct=frozenset({1}), T=T,
                        bias=(beta, 0.0, beta))


@dataclass(frozen=True)
class LengthLaw:
    r"""A critical-step law of a one-parameter family: ``eta_crit`` in the symbols :data:`T_SYM`
    (and :data:`J_SYM` for fixed-success families), its curvature :math:`\ell''(0)`, and the log-log slope
    :math:`\lim_{T\to\infty} d\log\eta_c/d\log T` (``None`` when the growth is exponential)."""

    setting: str
    rule: str
    normalized: bool
    eta_crit: sp.Expr
    curvature: sp.Expr
    asymptotic_slope: sp.Expr | None

    def at(self, T: int, J_star: float | None = None) -> float:
        """The law evaluated at T (and J*), 30 digits then float."""
        subs = {T_SYM: T}
        if J_star is not None:
            subs[J_SYM] = sp.Rational(J_star)
        return float(sp.N(self.eta_crit.subs(subs), 30))


def _family_curvature(setting: str) -> tuple[sp.Expr, sp.Expr]:
    r"""(:math:`\ell''(0)`, :math:`J^\star`) of a symmetric 3-token family, derived with symbolic T.

    The family: features :math:`(-a, 0, a)` shifted, biases :math:`(\beta, 0, \beta)`, token with feature 0
    correct; :math:`\log J = T\log p(x)`, :math:`p(x) = 1/(1 + e^{\beta}(e^{-ax} + e^{ax}))`.
    """
    beta, a = sp.symbols("beta a", real=True)
    logp = -sp.log(1 + sp.exp(beta) * (sp.exp(-a * _X) + sp.exp(a * _X)))
    logJ = T_SYM * logp
    ell = logJ - sp.log(1 - sp.exp(logJ))
    second = sp.diff(ell, _X, 2).subs(_X, 0)
    J_star = sp.exp(logJ.subs(_X, 0))
    if setting == "worked":  # features (0,1,2) = 1 + (-1, 0, 1): a = 1, beta = 0
        vals = {a: 1, beta: 0}
    elif setting == "fixed_success":  # a = 1, e^beta = (J^{-1/T} - 1)/2
        vals = {a: 1, beta: sp.log((J_SYM ** (-1 / T_SYM) - 1) / 2)}
    elif setting == "success":  # e^beta = (J^{-1/T} - 1)/2, a^2 = 1/(T (1 - J^{1/T}))  (kappa = 1)
        vals = {a: 1 / sp.sqrt(T_SYM * (1 - J_SYM ** (1 / T_SYM))), beta: sp.log((J_SYM ** (-1 / T_SYM) - 1) / 2)}
    else:
        raise GradgapValueError(f"setting={setting!r}: choose worked, fixed_success or success", field="setting",
                                value=setting)
    curv = sp.simplify(sp.powsimp(sp.expand_log(second.subs(vals), force=True), force=True))
    Js = sp.simplify(J_star.subs(vals))
    return curv, Js


@cache
def critical_step_law(setting: str, rule: str = "gap", normalized: bool = False) -> LengthLaw:
    r"""The closed-form critical step of a family as a function of T (and :math:`J^\star`), derived by SymPy.

    ``worked``: :math:`\ell''(0) = -\frac{2T}{3(1-3^{-T})}`, so for Gradient-Gap steps
    :math:`\eta_c = \frac{3(1-3^{-T})}{T}`. ``fixed_success``:
    :math:`\ell''(0) = -\frac{T(1-J^{\star 1/T})}{1-J^\star}`, so
    :math:`\eta_c = \frac{2(1-J^\star)}{c(J^\star)\,T(1-J^{\star 1/T})}
    \to \frac{2(1-J^\star)}{c(J^\star)\,(-\log J^\star)}`:
    at fixed :math:`J^\star` the length drops out for large T.

    Source: module docstring, DERIVED (this project).

    >>> sp.simplify(critical_step_law("worked").eta_crit - 3 * (1 - 3**-T_SYM) / T_SYM)
    0
    """
    if rule not in RULES:
        raise GradgapValueError(f"rule={rule!r}: choose one of {', '.join(RULES)}", field="rule", value=rule)
    curv, Js = _family_curvature(setting)
    eta = 2 / (_rule_gain(rule, Js) * (-curv))
    if normalized:
        eta = eta * T_SYM
    eta = sp.simplify(sp.powsimp(eta, force=True))
    slope: sp.Expr | None
    Tr = sp.Symbol("Tr", positive=True)  # a real stand-in for T, for the limit
    logeta = sp.log(eta.subs(T_SYM, Tr))
    deriv = sp.simplify(Tr * sp.diff(logeta, Tr))
    try:
        slope = sp.limit(deriv, Tr, sp.oo)
    except (NotImplementedError, ValueError):  # pragma: no cover - SymPy could not decide
        slope = None
    if slope is not None and slope.has(sp.oo, sp.zoo, sp.nan, sp.Limit):
        slope = None
    return LengthLaw(setting, rule, normalized, eta, curv, slope)


@cache
def success_law(rule: str, setting: str = "success") -> tuple[sp.Expr, sp.Expr]:
    r"""Critical step as a function of :math:`J^\star` at T = 1 and its exponent
    :math:`\lim_{J^\star\to1} d\log\eta_c/d\log(1-J^\star)`.

    ``success`` (fixed curvature :math:`\kappa=1` of :math:`\log J`): :math:`\eta_c = 2(1-J^\star)/c(J^\star)`,
    exponents gap 1, GRPO 1/2, REINFORCE/Dr. GRPO 0 -- the paper's "(1 - J) must shrink" for the gap and
    GRPO. ``fixed_success`` (fixed features): the curvature itself vanishes like :math:`1-J^\star`, and the
    exponents drop by one (gap 0, GRPO -1/2, Dr. GRPO -1).

    Source: reconstruction §4.3-§4.4 (stated dependence, QUOTED-2nd/DERIVED); this formula DERIVED.

    >>> success_law("gap")[1]
    1
    """
    law = critical_step_law(setting, rule)
    eta = sp.simplify(law.eta_crit.subs(T_SYM, 1))
    u = sp.Symbol("u", positive=True)  # u = 1 - J
    deriv = sp.simplify(u * sp.diff(sp.log(eta.subs(J_SYM, 1 - u)), u))
    return eta, sp.limit(deriv, u, 0, "+")


def tabular_gap_progress() -> sp.Expr:
    r"""Lower bound on the log-odds gain of one exact Gradient-Gap step in a 2-arm softmax bandit.

    With logits :math:`(\theta_1,\theta_2)`, arm 1 correct, :math:`g = (1,-1)` exactly, so
    :math:`\ell(\theta+\eta g) - \ell(\theta) = 2\eta` for every :math:`\theta` and every :math:`\eta>0`:
    the tabular log-odds grows linearly and J reaches 1 at any constant step (no stagnation).

    Source: reconstruction §2.1 item 5 (DERIVED); engines note (tabular bandits converge for any step).

    >>> tabular_gap_progress()
    2*eta
    """
    t1, t2 = sp.symbols("t1 t2", real=True)
    ell = t1 - t2  # log(p/(1-p)) for two arms
    J = sp.exp(t1) / (sp.exp(t1) + sp.exp(t2))
    logJ = sp.log(J)
    g = [sp.simplify(sp.diff(logJ, t) / (1 - J)) for t in (t1, t2)]
    new = ell.subs({t1: t1 + ETA * g[0], t2: t2 + ETA * g[1]}, simultaneous=True)
    return sp.simplify(new - ell)


def separating_ray_gap_limit() -> sp.Expr:
    r"""Limit of the Gradient Gap along the separating ray of the binary shared family (features (0, 1),
    token 1 correct, any T): with :math:`u = 1-p\to0`, :math:`g = T u/(1-(1-u)^T) \to 1`.

    So exact Gradient-Gap steps at a constant :math:`\eta` keep moving :math:`\theta` by about :math:`\eta` and
    :math:`J\to1`: no fixed-step plateau (a perceptron-type argument), whatever T.

    Source: reconstruction §4.3 (stagnation, DERIVED corollary); this project.

    >>> separating_ray_gap_limit()
    1
    """
    u = sp.Symbol("u", positive=True)
    return sp.limit(T_SYM * u / (1 - (1 - u) ** T_SYM), u, 0, "+")

