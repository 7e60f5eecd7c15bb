r"""Symbolic contextual log-linear bandit: exact closed forms, identities, constants and group updates.

P prompts :math:`x\sim\rho`, A actions, one shared :math:`\theta\in\mathbb R^d`,
:math:`\pi_\theta(a\mid x)=e^{\theta^\top\phi(x,a)}/\sum_b e^{\theta^\top\phi(x,b)}`, reward
:math:`r(x,a)=\mathbb 1[a\in C_x]`. A response is the pair :math:`(x,a)`; its score is
:math:`s(x,a)=\nabla_\theta\log\pi_\theta(a\mid x)=\phi(x,a)-\bar\phi_x` (the prompt law has no parameter).

=====================  ================================  ==========================================================
paper                  here                              closed form
=====================  ================================  ==========================================================
:math:`J_x`            :func:`per_prompt_success_rate`   :math:`\sum_{a\in C_x}\pi(a\mid x)`
:math:`J`              ``success_rate``                  :math:`\sum_x\rho_xJ_x`
:math:`g_x`            :func:`per_prompt_gradient_gap`   :math:`\mu_{x,C}-\mu_{x,\bar C}` (one-prompt gap)
:math:`g`              ``gradient_gap``                  :math:`\mathbb E[s\mid r=1]-\mathbb E[s\mid r=0]` (joint)
:math:`\nabla J`       ``grad_success_rate``             :math:`J(1-J)g=\sum_x\rho_xJ_x(1-J_x)g_x`
:math:`\ell`           ``log_odds``                      :math:`\log\frac{J}{1-J}`
:math:`\bar w`         :func:`expected_group_update`     :math:`\sum_x\rho_x\gamma(J_x,G)\,g_x`
:math:`L_o`            ``constants``                     :math:`\le\max_x\mathrm{diam}(\phi_x)^2/4`
:math:`G_o`            ``constants``                     :math:`\max_x\mathrm{diam}(\phi_x)` (a supremum)
=====================  ================================  ==========================================================

Proof of :math:`\nabla J=J(1-J)g` over pairs (DERIVED). :math:`\mathbb E_\pi[s]=\sum_x\rho_x\mathbb E_{\pi_x}[s]=0`
since each conditional score has mean zero, so :math:`\mathbb E[(1-r)s]=-\mathbb E[rs]`; and
:math:`\nabla J=\sum_x\rho_x\nabla J_x=\sum_x\rho_x\mathbb E_{\pi_x}[rs]=\mathbb E[rs]`. Hence
:math:`g=\mathbb E[rs]/J-\mathbb E[(1-r)s]/(1-J)=\nabla J\,(\frac1J+\frac1{1-J})=\nabla J/(J(1-J))`. Applied per
prompt, :math:`\nabla J_x=J_x(1-J_x)g_x`, so :math:`\nabla J=\sum_x\rho_xJ_x(1-J_x)g_x`. Both are proved below
by SymPy for symbolic features and prompt weights (:func:`prove_identities`).

Group algorithms across prompts (DERIVED): with one group of G responses per prompt, the per-prompt expected
update is :math:`\gamma(J_x,G)g_x` (``theory.algorithms.gain``), so the batch update is
:math:`\sum_x\rho_x\gamma(J_x,G)g_x`. It is parallel to :math:`\nabla J` only when
:math:`\gamma(J_x,G)\propto J_x(1-J_x)` across prompts (REINFORCE, RLOO, Dr. GRPO); GRPO's
:math:`\gamma\approx\sqrt{J_x(1-J_x)}` reweights the prompts and can point downhill.

Example (the command-line instance of docs/DESIGN.md):

>>> ex = ContextualBandit(theta=(0.0,), features=(((1.0,), (0.0,)), ((0.0,), (1.0,))),
...                       correct=(frozenset({0}), frozenset({1})))
>>> success_rate(ex), gradient_gap(ex).T, per_prompt_gradient_gap(ex)
(1/2, Matrix([[1]]), (Matrix([[1]]), Matrix([[1]])))
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import mpmath
import sympy as sp

from gradgap.theory import algorithms as group_algorithms
from gradgap.theory import closed_forms as forms
from gradgap.theory.closed_forms import (
    ClosedForms,
    Constant,
    FamilyConstants,
    IdentityResult,
    column,
    exact,
)
from gradgap.theory.instances import ContextualBandit, GradgapValueError

__all__ = [*forms.FAMILY_NAMES, "PromptForms", "angle_cosine", "expected_group_update",
           "fixed_point", "length_field", "length_fixed_point", "length_success_rate",
           "per_prompt_closed_forms", "per_prompt_gradient_gap", "per_prompt_success_rate",
           "potential_bound", "potential_weights", "update_alignment"]

_EXAMPLE = ContextualBandit(theta=(0.0,), features=(((1.0,), (0.0,)), ((0.0,), (1.0,))),
                            correct=(frozenset({0}), frozenset({1})))

Table = tuple[tuple[tuple[float, ...], ...], ...]


def parameters(inst: ContextualBandit) -> tuple[sp.Symbol, ...]:
    r"""The shared parameter symbols :math:`(\theta_0,\dots,\theta_{d-1})`.

    >>> parameters(_EXAMPLE)
    (theta_0,)
    """
    return forms.theta_symbols(inst.d)


def _rho(weights: tuple[float, ...] | None, P: int) -> tuple[sp.Expr, ...]:
    if weights is None:
        return (sp.Rational(1, P),) * P
    w = [exact(x) for x in weights]
    total = sp.Add(*w)
    return tuple(x / total for x in w)


@dataclass(frozen=True)
class PromptForms:
    r"""Per-prompt closed forms: :math:`J_x`, :math:`1-J_x` (summed over the wrong actions), :math:`g_x`, the
    per-prompt :math:`\mathbb E[rs]` and :math:`\mathbb E[(1-r)s]`, the action probabilities, and :math:`\rho`."""

    success_rates: tuple[sp.Expr, ...]
    failure_rates: tuple[sp.Expr, ...]
    gradient_gaps: tuple[sp.ImmutableMatrix, ...]
    win: tuple[sp.ImmutableMatrix, ...]
    lose: tuple[sp.ImmutableMatrix, ...]
    probabilities: tuple[tuple[sp.Expr, ...], ...]
    weights: tuple[sp.Expr, ...]


def _prompt_moments(pi: list[sp.Expr], phi: list[sp.ImmutableMatrix], correct: frozenset[int]
                    ) -> tuple[sp.Expr, sp.Expr, sp.ImmutableMatrix, sp.ImmutableMatrix, sp.ImmutableMatrix]:
    r""":math:`J_x`, :math:`F_x`, :math:`\mathbb E_x[rs]`, :math:`\mathbb E_x[(1-r)s]`, :math:`\mathbb E_x[s]`."""
    d = phi[0].rows
    phibar = sum((pi[a] * phi[a] for a in range(len(pi))), sp.zeros(d, 1))
    win, lose, mean = sp.zeros(d, 1), sp.zeros(d, 1), sp.zeros(d, 1)
    for a in range(len(pi)):
        s = phi[a] - phibar
        if a in correct:
            win += pi[a] * s
        else:
            lose += pi[a] * s
        mean += pi[a] * s
    J = sp.Add(*(pi[a] for a in sorted(correct)))
    F = sp.Add(*(pi[a] for a in range(len(pi)) if a not in correct))
    return J, F, sp.ImmutableMatrix(win), sp.ImmutableMatrix(lose), sp.ImmutableMatrix(mean)


@lru_cache(maxsize=32)
def _prompt_forms(features: Table, correct: tuple[frozenset[int], ...], weights: tuple[float, ...] | None
                  ) -> PromptForms:
    d = len(features[0][0])
    theta = forms.theta_symbols(d)
    Js, Fs, gaps, wins, loses, probs = [], [], [], [], [], []
    for rows, c in zip(features, correct, strict=True):
        phi = [column(exact(v) for v in row) for row in rows]
        e = [sp.exp(sp.Add(*(theta[i] * phi[a][i] for i in range(d)))) for a in range(len(rows))]
        total = sp.Add(*e)
        pi = [w / total for w in e]
        J, F, win, lose, _ = _prompt_moments(pi, phi, c)
        Js.append(J)
        Fs.append(F)
        gaps.append(sp.ImmutableMatrix(win / J - lose / F))
        wins.append(win)
        loses.append(lose)
        probs.append(tuple(pi))
    return PromptForms(tuple(Js), tuple(Fs), tuple(gaps), tuple(wins), tuple(loses), tuple(probs),
                       _rho(weights, len(features)))


def per_prompt_closed_forms(inst: ContextualBandit) -> PromptForms:
    r"""The per-prompt closed forms of the structure of ``inst`` (features, correct sets, weights; cached).

    >>> per_prompt_closed_forms(_EXAMPLE).success_rates[1]
    exp(theta_0)/(exp(theta_0) + 1)
    """
    return _prompt_forms(inst.features, inst.correct, inst.weights)


@lru_cache(maxsize=32)
def _closed_forms(features: Table, correct: tuple[frozenset[int], ...], weights: tuple[float, ...] | None
                  ) -> ClosedForms:
    pf = _prompt_forms(features, correct, weights)
    d = len(features[0][0])
    theta = forms.theta_symbols(d)
    rho = pf.weights
    J = sp.Add(*(r * j for r, j in zip(rho, pf.success_rates, strict=True)))
    F = sp.Add(*(r * f for r, f in zip(rho, pf.failure_rates, strict=True)))
    win = sum((r * w for r, w in zip(rho, pf.win, strict=True)), sp.zeros(d, 1))
    lose = sum((r * w for r, w in zip(rho, pf.lose, strict=True)), sp.zeros(d, 1))
    plus, minus = win / J, lose / F
    structure = (f"P={len(features)}, A={len(features[0])}, d={d}, C={[sorted(c) for c in correct]}, "
                 f"features={[[list(r) for r in rows] for rows in features]}, rho={list(rho)}")
    return ClosedForms.from_parts("contextual", structure, theta, J, F, plus - minus, plus, minus, win + lose,
                                  probabilities=pf.probabilities)


def closed_forms(inst: ContextualBandit) -> ClosedForms:
    r"""The joint closed forms for the structure of ``inst`` (cached); :math:`\mathbb E_\pm[s]` over pairs.

    Source: reconstruction §1-§2.1 and §5 (contextual bandits), DERIVED.

    >>> sp.simplify(closed_forms(_EXAMPLE).success_rate)
    exp(theta_0)/(exp(theta_0) + 1)
    """
    return _closed_forms(inst.features, inst.correct, inst.weights)


def success_rate(inst: ContextualBandit) -> sp.Expr:
    r"""Success rate :math:`J=\sum_x\rho_xJ_x`, exact at the instance.

    Source: reconstruction §1 (:math:`J_q`), QUOTED-2nd; mixture over prompts, §5 INFERRED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.success_rate, inst)


def log_odds(inst: ContextualBandit) -> sp.Expr:
    r"""Log-odds :math:`\ell=\log\frac{J}{1-J}` (:math:`1-J=\sum_x\rho_x\pi(\bar C_x\mid x)`), exact.

    Source: reconstruction §2.1 item 2, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.log_odds, inst)


def gradient_gap(inst: ContextualBandit) -> sp.ImmutableMatrix:
    r"""Joint Gradient Gap :math:`g=\mathbb E[s\mid r=1]-\mathbb E[s\mid r=0]` over pairs :math:`(x,a)`, exact.

    Source: reconstruction §2.1 (boxed definition), DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.gradient_gap, inst)


def grad_log_odds(inst: ContextualBandit) -> sp.ImmutableMatrix:
    r""":math:`\nabla_\theta\ell` (the closed form of :math:`\ell` differentiated), exact.

    Source: reconstruction §2.1 item 2, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.grad_log_odds, inst)


def grad_success_rate(inst: ContextualBandit) -> sp.ImmutableMatrix:
    r""":math:`\nabla_\theta J` (the closed form of :math:`J` differentiated), exact.

    Source: reconstruction §2.1, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.grad_success_rate, inst)


def hessian_log_odds(inst: ContextualBandit) -> sp.ImmutableMatrix:
    r""":math:`\nabla^2_\theta\ell` (the closed form differentiated twice), exact.

    Source: reconstruction §4.1 (second-order form), DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.hessian_log_odds, inst)


def expected_score(inst: ContextualBandit) -> sp.ImmutableMatrix:
    r""":math:`\mathbb E_\pi[s]=\sum_x\rho_x\sum_a\pi(a\mid x)(\phi(x,a)-\bar\phi_x)` (which is 0), exact.

    Source: reconstruction §2.1 (proof), DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.e_score, inst)


def conditional_score(inst: ContextualBandit, success: bool) -> sp.ImmutableMatrix:
    r""":math:`\mathbb E[s\mid r=1]` (``success=True``) or :math:`\mathbb E[s\mid r=0]` over pairs, exact.

    Source: reconstruction §2.1, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.e_score_success if success else cf.e_score_failure, inst)


def alignment(inst: ContextualBandit, w: Iterable[float]) -> sp.Expr:
    r"""Alignment :math:`\Delta\mu=\langle w,g\rangle` with the joint gap (exact).

    Source: reconstruction §2.2, INFERRED.
    """
    wv = forms.check_direction(w, len(inst.theta))
    return (wv.T * gradient_gap(inst))[0]


def _check_pair(inst: ContextualBandit, response: Iterable[int]) -> tuple[int, int]:
    if isinstance(response, str | bytes) or not isinstance(response, Iterable):
        raise GradgapValueError(f"response={response!r}: must be a pair (prompt, action)", field="response",
                                value=response)
    pair = tuple(response)
    ok = len(pair) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
    if not ok or not (0 <= pair[0] < inst.P and 0 <= pair[1] < inst.A):
        raise GradgapValueError(f"response={pair!r}: must be (x, a) with x in 0..{inst.P - 1}, a in 0..{inst.A - 1}",
                                field="response", value=pair)
    return pair[0], pair[1]


def reward(inst: ContextualBandit, response: Iterable[int]) -> int:
    r""":math:`r(x,a)=\mathbb 1[a\in C_x]`.

    >>> reward(_EXAMPLE, (1, 1)), reward(_EXAMPLE, (1, 0))
    (1, 0)
    """
    x, a = _check_pair(inst, response)
    return int(a in inst.correct[x])


def score(inst: ContextualBandit, response: Iterable[int]) -> sp.ImmutableMatrix:
    r"""Score :math:`s(x,a)=\nabla_\theta\log\pi_\theta(a\mid x)` (the log-probability differentiated), exact.

    Source: reconstruction §1, DERIVED.

    >>> score(_EXAMPLE, (0, 0)).T
    Matrix([[1/2]])
    """
    x, a = _check_pair(inst, response)
    pf = per_prompt_closed_forms(inst)
    theta = parameters(inst)
    log_pi = sp.log(pf.probabilities[x][a])
    return forms.at_instance(column(sp.diff(log_pi, s) for s in theta), theta, inst.theta)


def per_prompt_success_rate(inst: ContextualBandit) -> tuple[sp.Expr, ...]:
    r"""The per-prompt success rates :math:`(J_x)_{x<P}`, exact at the instance.

    Source: reconstruction §5 (contextual bandits), INFERRED.
    """
    pf = per_prompt_closed_forms(inst)
    return tuple(forms.at_instance(j, parameters(inst), inst.theta) for j in pf.success_rates)


def per_prompt_gradient_gap(inst: ContextualBandit) -> tuple[sp.ImmutableMatrix, ...]:
    r"""The per-prompt Gradient Gaps :math:`g_x=\mathbb E_x[s\mid r=1]-\mathbb E_x[s\mid r=0]`, exact.

    Source: reconstruction §2.1 applied to each prompt, DERIVED.
    """
    pf = per_prompt_closed_forms(inst)
    return tuple(forms.at_instance(g, parameters(inst), inst.theta) for g in pf.gradient_gaps)


def potential_bound(inst: ContextualBandit) -> sp.Expr:
    r"""The upper bound of the potential inequality of aligned steps,
    :math:`\langle\theta,g\rangle\le\sum_x\omega_x\,(\ell_x+\log|W_x|)`, exact at the instance:
    :math:`\ell_x=\log\frac{J_x}{1-J_x}`, :math:`W_x` the wrong actions of prompt x and
    :math:`\omega_x=\rho_xJ_x(1-J_x)/(J(1-J))` (so that :math:`g=\sum_x\omega_xg_x`, :math:`\sum_x\omega_x\le1`).

    Derivation (per prompt, :math:`z_a=\langle\theta,\phi(x,a)\rangle`): :math:`\langle\theta,g_x\rangle=
    \mathbb E_{\pi_x^+}z-\mathbb E_{\pi_x^-}z`, with :math:`\mathbb E_{\pi^+}z\le\log\sum_{C_x}e^{z}` and
    :math:`\mathbb E_{\pi^-}z=\log\sum_{W_x}e^{z}-H(\pi_x^-)\ge\log\sum_{W_x}e^z-\log|W_x|` (Gibbs), whose
    difference is :math:`\ell_x+\log|W_x|`; equality for P = 1, one correct action and tied wrong logits.
    Consequence (docs/no_collapse.md): along :math:`\theta_{k+1}=\theta_k+\eta g(\theta_k)`,
    :math:`0\le\|\theta_K\|^2\le\|\theta_0\|^2+\sum_{k<K}(2\eta B_k+\eta^2G_o^2)`, so J_k cannot tend to 0.

    Source: reconstruction §4.2 (collapse, QUOTED-2nd; construction UNKNOWN): DERIVED here, an impossibility for
    log-linear contextual bandits.
    """
    return sp.Add(*(omega * (sp.log(J_x / (1 - J_x)) + sp.log(inst.A - len(c))) for omega, J_x, c in
                    zip(potential_weights(inst), per_prompt_success_rate(inst), inst.correct, strict=True)))


def potential_weights(inst: ContextualBandit) -> tuple[sp.Expr, ...]:
    r"""The prompt weights of the joint gap, :math:`\omega_x=\rho_xJ_x(1-J_x)/(J(1-J))`, so that
    :math:`g=\sum_x\omega_xg_x` (from :math:`\nabla J=\sum_x\rho_xJ_x(1-J_x)g_x=J(1-J)g`), exact.

    Source: reconstruction §2.1 applied to prompts, DERIVED.
    """
    J = success_rate(inst)
    return tuple(r * J_x * (1 - J_x) / (J * (1 - J))
                 for r, J_x in zip(_rho(inst.weights, inst.P), per_prompt_success_rate(inst), strict=True))


@lru_cache(maxsize=64)
def _gain(algorithm: str, G: int) -> sp.Expr:
    return group_algorithms.gain(algorithm, G)


def expected_group_update(inst: ContextualBandit, algorithm: str, G: int) -> sp.ImmutableMatrix:
    r"""Expected update with one group of G responses per prompt,
    :math:`\bar w=\sum_x\rho_x\,\gamma(J_x,G)\,g_x` (``gamma`` = ``theory.algorithms.gain``, T = 1), exact.

    Source: reconstruction §4.4 (one prompt), extended to prompts here, DERIVED.

    >>> expected_group_update(_EXAMPLE, "reinforce", 2).T == grad_success_rate(_EXAMPLE).T
    True
    """
    pf = per_prompt_closed_forms(inst)
    theta = parameters(inst)
    total = sp.zeros(inst.d, 1)
    for rho, J_x, g_x in zip(pf.weights, pf.success_rates, pf.gradient_gaps, strict=True):
        gamma = _gain(algorithm, G).subs(group_algorithms.J, forms.at_instance(J_x, theta, inst.theta))
        total += rho * gamma * forms.at_instance(g_x, theta, inst.theta)
    return sp.ImmutableMatrix(total)


def update_alignment(inst: ContextualBandit, algorithm: str, G: int) -> sp.Expr:
    r""":math:`\langle\bar w,\nabla J\rangle`: positive iff the expected update ascends :math:`J` to first order.

    Source: DERIVED here (reconstruction §4.4 extended to prompts).
    """
    return (expected_group_update(inst, algorithm, G).T * grad_success_rate(inst))[0]


def angle_cosine(inst: ContextualBandit, algorithm: str, G: int) -> sp.Expr:
    r""":math:`\cos\angle(\bar w,\nabla J)=\langle\bar w,\nabla J\rangle/(\|\bar w\|\|\nabla J\|)`, exact.

    Source: DERIVED here.
    """
    w = expected_group_update(inst, algorithm, G)
    gJ = grad_success_rate(inst)
    return (w.T * gJ)[0] / sp.sqrt((w.T * w)[0] * (gJ.T * gJ)[0])


# ------------------------------------------------------------------ constants


def _diameter(rows: tuple[tuple[float, ...], ...]) -> tuple[sp.Expr, int, int]:
    phi = [tuple(exact(v) for v in row) for row in rows]
    best = (sp.S.Zero, 0, 1)
    for u, v in itertools.combinations(range(len(phi)), 2):
        dist2 = sp.Add(*((a - b) ** 2 for a, b in zip(phi[u], phi[v], strict=True)))
        if dist2 > best[0]:
            best = (dist2, u, v)
    return best


@lru_cache(maxsize=32)
def _constants(features: Table) -> FamilyConstants:
    per = [_diameter(rows) for rows in features]
    x = max(range(len(per)), key=lambda i: per[i][0])
    diam2, u, v = per[x]
    if diam2 == 0:
        zero = Constant(sp.S.Zero, "maximum", "all features of each prompt are equal: every score is 0.")
        return FamilyConstants(L_o=zero, G_o=zero, smoothness_J=zero)
    A = len(features[0])
    lo_text = (f"Hess log pi(a|x) = -Cov_pi(.|x)(phi_x); w^T Cov w = Var(w.phi_x) <= |w|^2 diam(phi_x)^2/4 "
               f"(Popoviciu, Cauchy-Schwarz); max over prompts at x={x}: diam^2 = |phi(x,{u})-phi(x,{v})|^2 = "
               f"{diam2}. ")
    if A == 2:
        L_o = Constant(diam2 / 4, "maximum", lo_text + "A=2: equality at pi(.|x) = (1/2, 1/2), reached by any "
                       "theta orthogonal to phi(x,0)-phi(x,1).")
    else:
        L_o = Constant(diam2 / 4, "upper bound", lo_text + f"A={A}: an upper bound for these features.")
    G_o = Constant(sp.sqrt(diam2), "supremum",
                   f"|s(x,a)| = |phi(x,a) - phibar_x| <= (1 - min pi) diam(phi_x) < max_x diam(phi_x); approached "
                   f"at prompt {x}, a = {u}, theta = lam (phi(x,{v}) - phi(x,{u})), lam -> infinity. Never attained.")
    smooth = Constant(None, None, "sup ||Hess J|| not established symbolically (left open).")
    return FamilyConstants(L_o=L_o, G_o=G_o, smoothness_J=smooth)


def constants(inst: ContextualBandit) -> FamilyConstants:
    r""":math:`L_o\le\max_x\mathrm{diam}(\phi_x)^2/4` (a maximum for A = 2) and :math:`G_o=\max_x
    \mathrm{diam}(\phi_x)` (a supremum), :math:`\mathrm{diam}(\phi_x)=\max_{a,b}\|\phi(x,a)-\phi(x,b)\|`.

    Source: reconstruction §3 (A1, A2), INFERRED; values and proofs DERIVED here.

    >>> c = constants(_EXAMPLE)
    >>> c.L_o.value, c.G_o.value
    (1/4, 1)
    """
    return _constants(inst.features)


# ------------------------------------------------------------------ identities, symbolic features


@lru_cache(maxsize=16)
def _prove(P: int, A: int, d: int, correct: tuple[frozenset[int], ...]) -> tuple[IdentityResult, ...]:
    ws = [[sp.Symbol(f"w_{x}{a}", positive=True) for a in range(A)] for x in range(P)]
    phi = [[[sp.Symbol(f"phi_{x}{a}{i}", real=True) for i in range(d)] for a in range(A)] for x in range(P)]
    rs = [sp.Symbol(f"rho_{x}", positive=True) for x in range(P)]
    rho = [r / sp.Add(*rs) for r in rs]

    def grad(expr: sp.Expr) -> sp.ImmutableMatrix:  # d/d theta_i = sum_{x,a} phi_{xa,i} w_xa d/dw_xa
        return column(sp.Add(*(phi[x][a][i] * ws[x][a] * sp.diff(expr, ws[x][a]) for x in range(P)
                               for a in range(A))) for i in range(d))

    pis = [[w / sp.Add(*row) for w in row] for row in ws]
    cols = [[column(phi[x][a]) for a in range(A)] for x in range(P)]
    parts = [_prompt_moments(pis[x], cols[x], correct[x]) for x in range(P)]
    J = sp.Add(*(rho[x] * parts[x][0] for x in range(P)))
    F = sp.Add(*(rho[x] * parts[x][1] for x in range(P)))
    win = sum((rho[x] * parts[x][2] for x in range(P)), sp.zeros(d, 1))
    lose = sum((rho[x] * parts[x][3] for x in range(P)), sp.zeros(d, 1))
    means = sp.Matrix.vstack(*(parts[x][4] for x in range(P)))  # E_pi[s | x] for every prompt, stacked
    g = win / J - lose / F
    ell = sp.log(J) - sp.log(F)
    g_x = [parts[x][2] / parts[x][0] - parts[x][3] / parts[x][1] for x in range(P)]

    def enumerated() -> tuple[bool, str]:
        plus, minus = sp.zeros(d, 1), sp.zeros(d, 1)
        for x in range(P):
            for a in range(A):
                prob = rho[x] * pis[x][a]
                s = grad(sp.log(pis[x][a]))
                if a in correct[x]:
                    plus += prob * s
                else:
                    minus += prob * s
        ok, how = forms.prove_zero_matrix(plus / J - minus / (1 - J) - g)
        return ok, f"{how}; E_+[s]-E_-[s] by enumerating all P*A={P * A} pairs, s = grad log pi(a|x) differentiated"

    per_prompt = sum((rho[x] * parts[x][0] * parts[x][1] * g_x[x] for x in range(P)), sp.zeros(d, 1))
    checks: list[tuple[str, Callable[[], tuple[bool, str]]]] = [
        ("E_pi[score] = 0", lambda: forms.prove_zero_matrix(means)),  # per prompt, hence for every rho
        ("g = E_+[s] - E_-[s]", enumerated),
        ("grad J = J(1-J) g", lambda: forms.prove_zero_matrix(grad(J) - J * (1 - J) * g)),
        ("g = grad ell", lambda: forms.prove_zero_matrix(g - grad(ell))),
        ("grad J = sum_x rho_x J_x(1-J_x) g_x", lambda: forms.prove_zero_matrix(grad(J) - per_prompt)),
    ]
    common = (f"symbolic features phi_(x,a,i), prompt weights rho_x (w_xa = exp(theta.phi(x,a))); P={P}, A={A}, "
              f"d={d}, C={[sorted(c) for c in correct]}")
    out = []
    for name, fn in checks:
        res = forms.timed(name, fn)
        out.append(IdentityResult(res.name, res.proved, f"{res.detail}; {common}", res.seconds))
    return tuple(out)


def prove_identities(inst: ContextualBandit) -> tuple[IdentityResult, ...]:
    r"""Prove, for (P, A, d, C) of ``inst`` with symbolic features and prompt weights:
    :math:`\mathbb E_\pi[s\mid x]=0` for every x (hence :math:`\mathbb E_\pi[s]=0`),
    :math:`g=\mathbb E_+[s]-\mathbb E_-[s]` (pairs enumerated), :math:`\nabla J=J(1-J)g`, :math:`g=\nabla\ell`
    and :math:`\nabla J=\sum_x\rho_xJ_x(1-J_x)g_x`.

    Source: reconstruction §2.1 items 1-2, DERIVED (extended to prompts here).

    >>> [r.proved for r in prove_identities(_EXAMPLE)]
    [True, True, True, True, True]
    """
    return _prove(inst.P, inst.A, inst.d, inst.correct)


def example_instance(P: int = 2, A: int = 2, d: int = 1, correct: Iterable[Iterable[int]] | None = None
                     ) -> ContextualBandit:
    r"""A structure-only instance for ``gradgap derive``: :math:`\phi(x,a)_i=((x+1)(a+1)^{i+1})\bmod 5-2`, zero
    parameters, :math:`C_x=\{x\bmod A\}` unless given.

    >>> example_instance().features
    (((-1.0,), (0.0,)), ((0.0,), (2.0,)))
    """
    feats = tuple(tuple(tuple(float(((x + 1) * (a + 1) ** (i + 1)) % 5 - 2) for i in range(d)) for a in range(A))
                  for x in range(P))
    corr = tuple(frozenset({x % A}) for x in range(P)) if correct is None else tuple(frozenset(c) for c in correct)
    return ContextualBandit(theta=(0.0,) * d, features=feats, correct=corr)


# ------------------------------------------------------------------ fixed points and critical steps (d = 1)


@lru_cache(maxsize=16)
def _field_functions(features: Table, correct: tuple[frozenset[int], ...], weights: tuple[float, ...] | None,
                     rule: str, G: int) -> tuple[Callable[..., object], Callable[..., object], Callable[..., object]]:
    cf = _closed_forms(features, correct, weights)
    (t,) = cf.theta
    if rule == "gap":
        F = cf.gradient_gap[0]
    else:
        pf = _prompt_forms(features, correct, weights)
        gamma = group_algorithms.gain(rule, G)
        F = sp.Add(*(r * gamma.subs(group_algorithms.J, j) * g[0]
                     for r, j, g in zip(pf.weights, pf.success_rates, pf.gradient_gaps, strict=True)))
    return (sp.lambdify(t, F, "mpmath"), sp.lambdify(t, sp.diff(F, t), "mpmath"),
            sp.lambdify(t, cf.success_rate, "mpmath"))


def fixed_point(inst: ContextualBandit, rule: str, G: int = 8, *, start: float | None = None,
                digits: int = 50) -> dict[str, object]:
    r"""For one parameter (d = 1): the zero :math:`\theta_r` of the expected-update field :math:`F_r(\theta)`
    (``gap``: :math:`F=g=\ell'`, its zero the maximiser of J; an algorithm: :math:`F=\sum_x\rho_x\gamma(J_x,G)g_x`),
    found by mpmath ``findroot`` at ``digits`` digits on the closed form, with :math:`F_r'(\theta_r)`,
    :math:`J(\theta_r)` and the critical fixed step :math:`\eta_{crit}=2/|F_r'(\theta_r)|` of
    :math:`\theta_{k+1}=\theta_k+\eta F_r(\theta_k)` (linear stability: converges for :math:`\eta<\eta_{crit}`).

    Source: DERIVED here (linearisation of the fixed-step iteration; reconstruction §4.2 sharpness heuristic).
    """
    if inst.d != 1:
        raise GradgapValueError(f"d={inst.d}: fixed_point needs one parameter (d = 1)", field="d", value=inst.d)
    F, dF, J = _field_functions(inst.features, inst.correct, inst.weights, rule, G)
    return _stable_root(F, dF, J, inst.theta[0] if start is None else start, digits)


def _stable_root(F: Callable[..., object], dF: Callable[..., object], J: Callable[..., object], start: float,
                 digits: int) -> dict[str, object]:
    with mpmath.workdps(digits + 10):
        root = mpmath.findroot(F, mpmath.mpf(start))
        slope = dF(root)
        return {"theta": root, "slope": slope, "J": J(root), "eta_crit": 2 / abs(slope)}


# ------------------------------------------------------------------ responses of several tokens per prompt

#: the longest response of the token-length forms (the closed forms are powers; this bounds the numerics'
#: enumeration of A^T strings as well)
MAX_RESPONSE_LENGTH = 64
#: the updates of the token-response forms: REINFORCE summed over tokens, divided by |o|, the joint Gradient Gap
LENGTH_UPDATES = ("summed", "normalised", "gap")


def _check_lengths(inst: ContextualBandit, lengths: Iterable[int]) -> tuple[int, ...]:
    out = tuple(lengths)
    if len(out) != inst.P or not all(isinstance(t, int) and not isinstance(t, bool) and 1 <= t <= MAX_RESPONSE_LENGTH
                                     for t in out):
        raise GradgapValueError(f"lengths={out!r}: need one response length per prompt (P={inst.P}), integers in "
                                f"1..{MAX_RESPONSE_LENGTH}", field="lengths", value=out)
    return out


def length_success_rate(inst: ContextualBandit, lengths: Iterable[int]) -> sp.Expr:
    r"""Prompt :math:`x` answered by :math:`T_x` tokens drawn independently from :math:`\pi_\theta(\cdot\mid x)`,
    rewarded iff every token is in :math:`C_x`: :math:`J^{(T)}=\sum_x\rho_xJ_x^{T_x}` (the response is a log-linear
    action with features :math:`\sum_t\phi(x,o_t)`; independence makes its success a power), exact.

    Source: DERIVED here (the shared-tokens product law per prompt).

    >>> length_success_rate(_EXAMPLE, (1, 2)).subs(parameters(_EXAMPLE)[0], 0)
    3/8
    """
    T = _check_lengths(inst, lengths)
    pf = per_prompt_closed_forms(inst)
    return sp.Add(*(r * J_x**t for r, J_x, t in zip(pf.weights, pf.success_rates, T, strict=True)))


def _check_update(update: str) -> str:
    if update not in LENGTH_UPDATES:
        raise GradgapValueError(f"update={update!r}: choose one of {', '.join(LENGTH_UPDATES)}", field="update",
                                value=update)
    return update


def length_field(inst: ContextualBandit, lengths: Iterable[int], *, update: str) -> sp.ImmutableMatrix:
    r"""Expected update with responses of :math:`T_x` tokens: REINFORCE ``summed`` over tokens or ``normalised``
    (each response's score divided by :math:`|o|=T_x`, GRPO's per-sequence mean), or the joint Gradient Gap
    ``gap`` over the pairs (x, o):

    .. math::  F(\theta)=\sum_x\rho_x\,c_x\,\nabla\bigl(J_x^{T_x}\bigr),\quad
               c_x=\begin{cases}1&\text{summed}\\1/T_x&\text{normalised}\end{cases},\qquad
               F_{\rm gap}=\frac{\nabla J^{(T)}}{J^{(T)}(1-J^{(T)})}=\nabla\ell^{(T)}

    (:math:`\mathbb E[r\,\sum_ts_t]=\nabla J_x^{T_x}`), so the summed field is :math:`\nabla J^{(T)}` and the
    normalised one reweights the prompts by :math:`1/T_x`. Exact.

    Source: DERIVED here (reconstruction §4.3 length normalisation, applied per prompt; §2.1 for the gap).
    """
    T = _check_lengths(inst, lengths)
    _check_update(update)
    pf = per_prompt_closed_forms(inst)
    theta = parameters(inst)
    total = sp.zeros(inst.d, 1)
    for r, J_x, t in zip(pf.weights, pf.success_rates, T, strict=True):
        c = sp.Rational(1, t) if update == "normalised" else sp.S.One
        total += r * c * sp.Matrix([sp.diff(J_x**t, th) for th in theta])
    if update == "gap":
        J = length_success_rate(inst, T)
        total = total / (J * (1 - J))
    return sp.ImmutableMatrix(total)


def length_fixed_point(inst: ContextualBandit, lengths: Iterable[int], *, update: str,
                       start: float | None = None, digits: int = 50) -> dict[str, object]:
    r"""For one parameter (d = 1): the zero :math:`\theta_r` of :func:`length_field`, its slope, :math:`J^{(T)}`
    there and the critical fixed step :math:`\eta_{crit}=2/|F'(\theta_r)|` (as :func:`fixed_point`); the zero of
    the summed field (and of the gap) is a stationary point of :math:`J^{(T)}`, the normalised one's in general is not.

    Source: DERIVED here (linear stability of the fixed-step iteration).
    """
    if inst.d != 1:
        raise GradgapValueError(f"d={inst.d}: length_fixed_point needs one parameter (d = 1)", field="d",
                                value=inst.d)
    (t,) = parameters(inst)
    F = length_field(inst, lengths, update=update)[0]
    fns = [sp.lambdify(t, e, "mpmath") for e in (F, sp.diff(F, t), length_success_rate(inst, lengths))]
    return _stable_root(*fns, inst.theta[0] if start is None else start, digits)
