r"""Exact step-size thresholds: one-step :math:`\eta^\star`, critical steps of the dynamics, their scaling.

Notation (paper symbol -> name):

=============================  ==========================  ==================================================
paper                          here                         meaning
=============================  ==========================  ==================================================
:math:`\eta^\star(\theta,w)`   :func:`eta_star`             largest step along ``w`` that never lowers J
:math:`\eta_{\rm thm}`         :func:`eta_theorem`          Theorem 1's :math:`[\Delta\mu]_+/(2(L_o+8G_o^2))`
:math:`c(J)`                   :func:`gain`                 gain of an update rule along :math:`g`
:math:`\eta_c`                 :func:`local_critical_step`  local-stability threshold at the optimum
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
formulas here are DERIVED by this project (docs/thresholds.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Final

import mpmath
import sympy as sp
from gradgap.theory.instances import (
    GradgapValueError,
    Instance,
    SharedTokens,
    SoftmaxBandit,
    TokenSequence,
)

__all__ = [
    "RULES",
    "CriticalStep",
    "EtaStar",
    "LengthLaw",
    "critical_step_law",
    "eta_star",
    "eta_theorem",
    "fixed_success_instance",
    "gain",
    "gradient_gap_direction",
    "local_critical_step",
    "separating_ray_gap_limit",
    "success_instance",
    "success_law",
    "tabular_gap_progress",
    "worked_example",
]

#: update rules with their population gains (see :func:`gain`)
RULES: Final[tuple[str, ...]] = ("gap", "reinforce", "dr_grpo", "grpo")

T_SYM: Final = sp.Symbol("T", positive=True, integer=True)
J_SYM: Final = sp.Symbol("J", positive=True)
_X: Final = sp.Symbol("x", real=True)
_Z: Final = sp.Symbol("z", positive=True)


def gain(rule: str, J: sp.Expr) -> sp.Expr:
    r"""Population gain :math:`c(J)` with :math:`\mathbb E[w] = c(J)\,g` (large-group limit :math:`G\to\infty`).

    gap: 1; REINFORCE and Dr. GRPO: :math:`J(1-J)`; GRPO: :math:`\sqrt{J(1-J)}`: the sequence-level
    (:math:`T=1`) limits of ``gradgap.theory.algorithms.gain_limit``; the 1/T aggregation is applied separately
    (``normalized``). The exact finite-G gains are ``gradgap.theory.algorithms.gain``.

    Source: reconstruction §4.4, DERIVED.

    >>> gain("grpo", sp.Rational(1, 2))
    1/2
    """
    from gradgap.theory import algorithms

    if rule == "gap":
        return sp.S.One
    if rule not in RULES:
        raise GradgapValueError(f"rule={rule!r}: choose one of {', '.join(RULES)}", field="rule", value=rule)
    return algorithms.gain_limit(rule, JJ=J, T=1)


# ---------------------------------------------------------------------------------------------------------
# exact log-linear structure of an instance


@dataclass(frozen=True)
class _Type:
    """One position type: rational features (V x d), biases (V), correct set, multiplicity."""

    features: tuple[tuple[sp.Rational, ...], ...]
    bias: tuple[sp.Rational, ...]
    correct: frozenset[int]
    count: int


def _types(inst: Instance) -> tuple[tuple[_Type, ...], int]:
    """The position types of an instance (exact rationals) and the number m of positions that must be correct."""
    R = sp.Rational
    if isinstance(inst, SoftmaxBandit):
        K = inst.K
        feats = tuple(tuple(R(int(i == j)) for j in range(K)) for i in range(K))
        return (_Type(feats, (R(0),) * K, inst.correct, 1),), 1
    if isinstance(inst, TokenSequence):
        T, V = inst.T, inst.V
        out = []
        for t in range(T):
            feats = tuple(tuple(R(int(j == t * V + v)) for j in range(T * V)) for v in range(V))
            out.append(_Type(feats, (R(0),) * V, frozenset({inst.target[t]}), 1))
        return tuple(out), inst.m
    if isinstance(inst, SharedTokens):
        feats = tuple(tuple(R(x) for x in row) for row in inst.features)
        return (_Type(feats, tuple(R(b) for b in inst.biases), inst.correct, inst.T),), inst.T
    raise GradgapValueError(f"instance={inst!r}: not a gradgap instance", field="instance", value=inst)


def _is_product(types: tuple[_Type, ...], m: int) -> bool:
    return m == sum(t.count for t in types)


def _log_J_expr(inst: Instance, theta: Sequence[sp.Symbol]) -> sp.Expr:
    r"""Exact :math:`\log J` as an expression in ``theta`` (product rewards only)."""
    types, m = _types(inst)
    if not _is_product(types, m):
        raise GradgapValueError(f"min_correct={m}: critical steps need a product reward (exact match)",
                                field="min_correct", value=m)
    total = sp.S.Zero
    for ty in types:
        logits = [sum(th * f for th, f in zip(theta, row, strict=True)) + b for row, b in zip(ty.features, ty.bias,
                                                                                             strict=True)]
        num = sum(sp.exp(logits[v]) for v in ty.correct)
        den = sum(sp.exp(z) for z in logits)
        total += ty.count * (sp.log(num) - sp.log(den))
    return total


# ---------------------------------------------------------------------------------------------------------
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


def local_critical_step(inst: Instance, rule: str = "gap", *, normalized: bool = False) -> CriticalStep:
    r"""Critical step :math:`\eta_c = 2/(c(J^\star)\,\lambda_{\max}(-\nabla^2\ell(\theta^\star)))` at
    :math:`\theta^\star` = ``inst.theta``, times T when ``normalized``.

    SymPy derives it: :math:`\ell = \log J - \log(1-J)` from the instance's exact log-linear form; the gradient
    at :math:`\theta^\star` must simplify to 0 (else :class:`GradgapValueError`); the Jacobian of
    :math:`\theta\mapsto\theta+\eta\,c(J)\,\nabla\ell` is differentiated and evaluated exactly; its eigenvalues
    :math:`1+\eta c\lambda_i` leave :math:`(-1,1)` at :math:`\eta_c`.

    Source: module docstring, DERIVED (this project).

    >>> local_critical_step(worked_example(2)).eta_crit
    4/3
    """
    types, _ = _types(inst)
    d = len(types[0].features[0])
    if d > 4:
        raise GradgapValueError(f"d={d}: the exact critical step supports at most 4 parameters", field="d", value=d)
    theta = sp.symbols(f"theta0:{d}", real=True)
    logJ = _log_J_expr(inst, theta)
    point = {th: sp.Rational(v) for th, v in zip(theta, inst.theta, strict=True)}
    J = sp.exp(logJ)
    ell = logJ - sp.log(1 - J)
    c = gain(rule, J)
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
    c_star = gain(rule, sp.cancel(_atomize(J.xreplace(point), atoms)))
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
    eta = 2 / (gain(rule, Js) * (-curv))
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
    :math:`J\to1`: no fixed-step plateau (the perceptron-type argument of issue 4), whatever T.

    Source: reconstruction §4.3 (stagnation, DERIVED corollary); this project.

    >>> separating_ray_gap_limit()
    1
    """
    u = sp.Symbol("u", positive=True)
    return sp.limit(T_SYM * u / (1 - (1 - u) ** T_SYM), u, 0, "+")


# ---------------------------------------------------------------------------------------------------------
# exact one-step threshold eta_star


@dataclass(frozen=True)
class EtaStar:
    r"""The one-step threshold along ``w``: ``value`` (``math.inf`` when J never drops below its start),
    the bracketing interval ``(lo, hi)``, the route (``polynomial`` = certified root isolation of the
    polynomial in :math:`z=e^{\eta/q}`, ``bracket`` = sign scan + 50-digit bisection) and whether the sign
    change was re-verified with interval arithmetic."""

    value: float
    lo: float
    hi: float
    route: str
    certified: bool
    degree: int | None = None


def _parse_exact(w: Sequence[object]) -> tuple[Fraction, ...] | None:
    out = []
    for x in w:
        if isinstance(x, Fraction):
            out.append(x)
        elif isinstance(x, int) and not isinstance(x, bool):
            out.append(Fraction(x))
        elif isinstance(x, sp.Rational):
            out.append(Fraction(int(x.p), int(x.q)))
        else:
            return None
    return tuple(out)


def _line_data(inst: Instance) -> tuple[tuple[_Type, ...], int]:
    return _types(inst)


def _eval_J(inst: Instance, w: Sequence[object], s: object, ctx: object) -> object:
    """J(theta + s w) with mpmath context ``ctx`` (mp or iv); w entries mpf / mpi."""
    types, m = _types(inst)
    theta = [ctx.mpf(sp.Rational(v).p) / ctx.mpf(sp.Rational(v).q) for v in inst.theta]
    probs = []
    for ty in types:
        logits = []
        for row, b in zip(ty.features, ty.bias, strict=True):
            z = ctx.mpf(b.p) / b.q
            for th, wi, f in zip(theta, w, row, strict=True):
                if f != 0:
                    z += (th + s * wi) * (ctx.mpf(f.p) / f.q)
            logits.append(z)
        top = ctx.mpf(max(_approx(z) for z in logits))
        ex = [ctx.exp(z - top) for z in logits]
        den = sum(ex)
        num = sum(ex[v] for v in ty.correct)
        for _ in range(ty.count if _is_product(types, m) else 1):
            probs.append(num / den)
    if _is_product(types, m):
        out = ctx.mpf(1)
        for p in probs:
            out *= p
        return out
    # at least m of T independent positions correct: dynamic programming over counts
    dist = [ctx.mpf(1)]
    for p in probs:
        new = [ctx.mpf(0)] * (len(dist) + 1)
        for k, mass in enumerate(dist):
            new[k] += mass * (1 - p)
            new[k + 1] += mass * p
        dist = new
    return sum(dist[m:])


def _approx(z: object) -> float:
    """A float near an mpf or an interval (its midpoint)."""
    mid = getattr(z, "mid", None)
    return float(z if mid is None else mid)


def _polynomial(inst: Instance, w: tuple[Fraction, ...], digits: int) -> tuple[sp.Poly, int]:
    r"""The polynomial :math:`P(z)` with :math:`\mathrm{sign}\,P(e^{s/q}) = \mathrm{sign}(J(\theta+sw)-J(\theta))`
    for :math:`s>0`, and q. Coefficients :math:`e^{z_v}` are rationalised at ``digits`` digits."""
    types, m = _types(inst)
    slopes = []
    for ty in types:
        for row in ty.features:
            a = sum((Fraction(int(f.p), int(f.q)) * wi for f, wi in zip(row, w, strict=True)), Fraction(0))
            slopes.append(a)
    q = math.lcm(*(a.denominator for a in slopes))
    mpmath.mp.dps = digits + 10
    nums, dens = [], []
    for ty in types:
        ints = []
        coefs = []
        for row, b in zip(ty.features, ty.bias, strict=True):
            a = sum((Fraction(int(f.p), int(f.q)) * wi for f, wi in zip(row, w, strict=True)), Fraction(0))
            ints.append(int(a * q))
            zv = mpmath.mpf(b.p) / b.q + sum(mpmath.mpf(sp.Rational(th).p) / sp.Rational(th).q * (
                mpmath.mpf(f.p) / f.q) for th, f in zip(inst.theta, row, strict=True))
            coefs.append(zv)
        top = max(coefs)
        lo = min(ints)
        num = sp.S.Zero
        den = sp.S.Zero
        for v, (n, zv) in enumerate(zip(ints, coefs, strict=True)):
            c = sp.Rational(mpmath.nstr(mpmath.exp(zv - top), digits, min_fixed=-mpmath.inf, max_fixed=mpmath.inf))
            term = c * _Z ** (n - lo)
            den += term
            if v in ty.correct:
                num += term
        nums.append(sp.Poly(num, _Z))
        dens.append(sp.Poly(den, _Z))
    if _is_product(types, m):
        pn = sp.Poly(1, _Z)
        pd = sp.Poly(1, _Z)
        for ty, n_, d_ in zip(types, nums, dens, strict=True):
            pn *= n_ ** ty.count
            pd *= d_ ** ty.count
        if len(types) == 1:  # (N/D)^T: compare N/D, T-th root is monotone
            pn, pd = nums[0], dens[0]
    else:
        dist = [sp.Poly(1, _Z)]
        for n_, d_ in zip(nums, dens, strict=True):
            new = [sp.Poly(0, _Z)] * (len(dist) + 1)
            for k, mass in enumerate(dist):
                new[k] += mass * (d_ - n_)
                new[k + 1] += mass * n_
            dist = new
        pn = sum(dist[m:], sp.Poly(0, _Z))
        pd = sp.Poly(1, _Z)
        for d_ in dens:
            pd *= d_
    P = pn * sp.Poly(pd.eval(1), _Z) - pd * sp.Poly(pn.eval(1), _Z)
    return P, q


def _eta_star_polynomial(inst: Instance, w: tuple[Fraction, ...], digits: int, max_degree: int) -> EtaStar | None:
    P, q = _polynomial(inst, w, digits)
    if P.is_zero:
        return EtaStar(math.inf, math.inf, math.inf, "polynomial", True, 0)
    if P.degree() > max_degree:
        return None
    one = sp.Poly(_Z - 1, _Z)
    while P.eval(1) == 0:
        P = P.exquo(one)
    if P.eval(1) < 0:
        return EtaStar(0.0, 0.0, 0.0, "polynomial", True, P.degree())
    best: tuple[sp.Rational, sp.Rational] | None = None
    for factor, mult in P.sqf_list()[1]:
        if mult % 2 == 0:
            continue
        for (lo, hi), _ in factor.intervals(inf=1, eps=sp.Rational(1, 10**24)):
            if hi <= 1:
                continue
            if best is None or lo < best[0]:
                best = (sp.Rational(lo), sp.Rational(hi))
    if best is None:
        return EtaStar(math.inf, math.inf, math.inf, "polynomial", True, P.degree())
    lo_z, hi_z = best
    lo = float(q * sp.log(lo_z).evalf(30)) if lo_z > 1 else 0.0
    hi = float(q * sp.log(hi_z).evalf(30))
    # re-verify the sign change of the true J difference with interval arithmetic at both ends
    certified = False
    try:
        iv = mpmath.iv
        iv.dps = digits
        wv = [iv.mpf(x.numerator) / x.denominator for x in w]
        base = _eval_J(inst, wv, iv.mpf(0), iv)
        left = _eval_J(inst, wv, iv.mpf(q) * iv.log(iv.mpf(lo_z.p) / lo_z.q), iv) - base if lo > 0 else None
        right = _eval_J(inst, wv, iv.mpf(q) * iv.log(iv.mpf(hi_z.p) / hi_z.q), iv) - base
        certified = (left is None or left.a > 0) and right.b < 0
    except (TypeError, ValueError, ZeroDivisionError):  # pragma: no cover - interval evaluation failed
        certified = False
    return EtaStar(0.5 * (lo + hi), lo, hi, "polynomial", certified, P.degree())


def _eta_star_bracket(inst: Instance, w: Sequence[float], digits: int, scan: int = 4000,
                      s_max: float = 1e3) -> EtaStar:
    mpmath.mp.dps = digits
    wv = [mpmath.mpf(x) for x in w]
    norm = float(mpmath.sqrt(sum(x * x for x in wv)))
    if norm == 0.0:
        return EtaStar(math.inf, math.inf, math.inf, "bracket", False)
    base = _eval_J(inst, wv, mpmath.mpf(0), mpmath.mp)

    def f(s: object) -> object:
        return _eval_J(inst, wv, s, mpmath.mp) - base

    # geometric scan from 1e-6/|w| to s_max/|w|
    grid = [0.0] + [1e-6 / norm * (s_max * 1e6) ** (i / scan) for i in range(scan + 1)]
    prev = 0.0
    first = f(mpmath.mpf(grid[1]))
    if first < 0:
        return EtaStar(0.0, 0.0, 0.0, "bracket", False)
    for s in grid[1:]:
        val = f(mpmath.mpf(s))
        if val < 0:
            lo, hi = mpmath.mpf(prev), mpmath.mpf(s)
            for _ in range(200):
                mid = (lo + hi) / 2
                if f(mid) < 0:
                    hi = mid
                else:
                    lo = mid
                if hi - lo < mpmath.mpf(10) ** (-(digits - 10)) * hi:
                    break
            return EtaStar(float((lo + hi) / 2), float(lo), float(hi), "bracket", False)
        prev = s
    return EtaStar(math.inf, math.inf, math.inf, "bracket", False)


def gradient_gap_direction(inst: Instance, kind: str = "gap", digits: int = 50) -> tuple[mpmath.mpf, ...]:
    r"""The direction :math:`g` (``gap``) or :math:`\nabla J` (``grad``) at the instance, at ``digits`` digits,
    from the exact log-linear form of this module."""
    types, m = _types(inst)
    d = len(types[0].features[0])
    theta = sp.symbols(f"theta0:{d}", real=True)
    if _is_product(types, m):
        logJ = _log_J_expr(inst, theta)
    else:  # at least m of T positions correct: J = sum_{k >= m} P(k correct), by dynamic programming
        dist: list[sp.Expr] = [sp.S.One]
        for ty in types:
            logits = [sum(t * f for t, f in zip(theta, row, strict=True)) for row in ty.features]
            p = sum(sp.exp(logits[v]) for v in ty.correct) / sum(sp.exp(z) for z in logits)
            new = [sp.S.Zero] * (len(dist) + 1)
            for k, mass in enumerate(dist):
                new[k] += mass * (1 - p)
                new[k + 1] += mass * p
            dist = new
        logJ = sp.log(sum(dist[m:]))
    point = {th: sp.Rational(v) for th, v in zip(theta, inst.theta, strict=True)}
    Jv = sp.exp(logJ).xreplace(point)
    out = []
    for th in theta:
        dlog = sp.diff(logJ, th).xreplace(point)
        val = dlog / (1 - Jv) if kind == "gap" else dlog * Jv
        out.append(mpmath.mpf(str(sp.N(val, digits))))
    return tuple(out)


def eta_star(inst: Instance, w: Sequence[object], *, digits: int = 40, max_degree: int = 400) -> EtaStar:
    r""":math:`\eta^\star(\theta,w) = \sup\{\eta>0 : J(\theta+sw)\ge J(\theta)\ \forall s\in(0,\eta]\}`.

    Rational ``w`` (``Fraction`` / ``int`` / ``sympy.Rational`` entries): with q the common denominator of the
    slopes :math:`w^\top\phi(v)`, :math:`z = e^{s/q}` makes :math:`J(\theta+sw)-J(\theta)` a rational function
    of z whose sign is that of a polynomial :math:`P(z)`; the root z = 1 is divided out, and the first root
    :math:`z>1` of odd multiplicity is isolated by SymPy (``Poly.intervals``, exact arithmetic on coefficients
    rationalised at ``digits`` digits) and re-verified by interval arithmetic on the true J. Other ``w``
    (floats): sign scan plus bisection at ``digits`` digits.

    Source: issue 4 (definition); reconstruction §4.1 (sufficient step), DERIVED.

    >>> r = eta_star(SoftmaxBandit((0.0, 0.0, 0.0), frozenset({0})), (1, 0, -2))
    >>> r.route, r.value
    ('polynomial', inf)
    """
    exact = _parse_exact(w)
    types, _ = _types(inst)
    d = len(types[0].features[0])
    if len(tuple(w)) != d:
        raise GradgapValueError(f"w has {len(tuple(w))} entries: the instance has {d} parameters", field="w",
                                value=tuple(w))
    if exact is not None:
        res = _eta_star_polynomial(inst, exact, digits, max_degree)
        if res is not None:
            return res
    return _eta_star_bracket(inst, [float(x) for x in w], digits)


def eta_theorem(inst: Instance, w: Sequence[object]) -> tuple[float, float]:
    r"""Theorem 1's sufficient step along the unit direction :math:`u = w/\|w\|`:
    :math:`[\Delta\mu]_+/(2(L_o+8G_o^2))` with :math:`\Delta\mu = \langle u, g(\theta)\rangle`, and
    :math:`\|w\|` (so that a step :math:`\eta` along u is :math:`\eta/\|w\|` along w).

    ``L_o`` and ``G_o`` come from the family module's ``constants(inst)``.

    Source: reconstruction §4.1 (QUOTED-2nd constants).
    """
    from gradgap import theory  # the family module of the instance (not numerics)


    consts = theory.family_module(inst).constants(inst)
    if consts.L_o.value is None or consts.G_o.value is None:
        raise GradgapValueError("constants: L_o or G_o unknown for this family; eta_theorem undefined",
                                field="constants", value=None)
    L = float(sp.N(consts.L_o.value, 30))
    G = float(sp.N(consts.G_o.value, 30))
    g = gradient_gap_direction(inst, "gap", 30)
    wv = [mpmath.mpf(str(x)) if not isinstance(x, Fraction) else mpmath.mpf(x.numerator) / x.denominator for x in w]
    norm = mpmath.sqrt(sum(x * x for x in wv))
    if norm == 0:
        raise GradgapValueError("w=0: the direction must be non-zero", field="w", value=tuple(w))
    dmu = float(sum(a * b for a, b in zip(wv, g, strict=True)) / norm)
    return max(dmu, 0.0) / (2.0 * (L + 8.0 * G * G)), float(norm)
