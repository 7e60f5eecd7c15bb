r"""Symbolic K-armed softmax bandit: exact closed forms, identities and constants.

================================  ==========================  =============================================
paper                             here                        closed form
================================  ==========================  =============================================
:math:`\pi_\theta(a)`             ``probabilities``           :math:`e^{\theta_a}/\sum_b e^{\theta_b}`
:math:`J`                         ``success_rate``            :math:`\sum_{a\in C}\pi_a`
:math:`s(a)`                      ``score``                   :math:`e_a-\pi`
:math:`\mathbb E_\pm[s]`          ``conditional_score``       :math:`\bar e_C-\pi`, :math:`\bar e_{\bar C}-\pi`
:math:`g`                         ``gradient_gap``            :math:`\bar e_C-\bar e_{\bar C}`
:math:`\ell`                      ``log_odds``                :math:`\log\frac{J}{1-J}`
:math:`\Delta\mu`                 ``alignment``               :math:`\langle w,g\rangle`
:math:`L_o, G_o`                  ``constants``               :math:`1/2`, :math:`\sqrt2`
================================  ==========================  =============================================

Here :math:`\bar e_C=\sum_{a\in C}\pi_a e_a/J` and :math:`\bar e_{\bar C}=\sum_{a\notin C}\pi_a e_a/(1-J)`.
Parameters ``theta`` = the logits, shape ``(K,)``. Identities are proved under :math:`\theta_a=\log x_a`,
which makes every quantity a rational function of :math:`x` (so ``together``/``cancel`` decide them).

Example (two even arms, arm 0 correct):

>>> ex = SoftmaxBandit(logits=(0.0, 0.0), correct=frozenset({0}))
>>> success_rate(ex), log_odds(ex), reward(ex, (1,)), alignment(ex, (0.5, 0.0))
(1/2, 0, 0, 1/2)
>>> score(ex, (1,)).T, conditional_score(ex, True).T, gradient_gap(ex).T, grad_success_rate(ex).T
(Matrix([[-1/2, 1/2]]), Matrix([[1/2, -1/2]]), Matrix([[1, -1]]), Matrix([[1/4, -1/4]]))
>>> sp.simplify(expected_score(ex)).T, grad_log_odds(ex).T, hessian_log_odds(ex)
(Matrix([[0, 0]]), Matrix([[1, -1]]), Matrix([
[0, 0],
[0, 0]]))
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import sympy as sp

from gradgap.theory import closed_forms as forms
from gradgap.theory.closed_forms import ClosedForms, Constant, FamilyConstants, IdentityResult, check_response, column
from gradgap.theory.instances import SoftmaxBandit

__all__ = [*forms.FAMILY_NAMES]

_EXAMPLE = SoftmaxBandit(logits=(0.0, 0.0), correct=frozenset({0}))


def parameters(inst: SoftmaxBandit) -> tuple[sp.Symbol, ...]:
    r"""The logit symbols :math:`(\theta_0,\dots,\theta_{K-1})`.

    >>> parameters(_EXAMPLE)
    (theta_0, theta_1)
    """
    return forms.theta_symbols(inst.K)


def _probabilities(theta: tuple[sp.Symbol, ...]) -> tuple[sp.Expr, ...]:
    weights = [sp.exp(t) for t in theta]
    total = sp.Add(*weights)
    return tuple(w / total for w in weights)


@lru_cache(maxsize=64)
def _closed_forms(K: int, correct: frozenset[int]) -> ClosedForms:
    theta = forms.theta_symbols(K)
    pi = _probabilities(theta)
    pi_vec = column(pi)
    e = [column(1 if b == a else 0 for b in range(K)) for a in range(K)]
    J = sp.Add(*(pi[a] for a in sorted(correct)))
    wrong = [a for a in range(K) if a not in correct]
    F = sp.Add(*(pi[a] for a in wrong))
    e_score = sum((pi[a] * (e[a] - pi_vec) for a in range(K)), sp.zeros(K, 1))
    e_plus = sum((pi[a] * (e[a] - pi_vec) for a in sorted(correct)), sp.zeros(K, 1)) / J
    e_minus = sum((pi[a] * (e[a] - pi_vec) for a in wrong), sp.zeros(K, 1)) / F
    e_bar_C = sum((pi[a] * e[a] for a in sorted(correct)), sp.zeros(K, 1)) / J
    e_bar_W = sum((pi[a] * e[a] for a in wrong), sp.zeros(K, 1)) / F
    unique = sp.log(pi[next(iter(correct))]) if len(correct) == 1 else None
    return ClosedForms.from_parts("softmax", f"K={K}, C={sorted(correct)}", theta, J, F, e_bar_C - e_bar_W,
                                  e_plus, e_minus, e_score, probabilities=pi, unique_correct_log_prob=unique)


def closed_forms(inst: SoftmaxBandit) -> ClosedForms:
    r"""The closed forms for the structure of ``inst`` (K and C only; cached).

    Source: reconstruction §2.1 item 5, DERIVED.

    >>> closed_forms(_EXAMPLE).success_rate
    exp(theta_0)/(exp(theta_0) + exp(theta_1))
    """
    return _closed_forms(inst.K, inst.correct)


def success_rate(inst: SoftmaxBandit) -> sp.Expr:
    r"""Success rate :math:`J=\Pr_{o\sim\pi_\theta}[r(o)=1]`, exact at the instance; closed form :math:`\sum_{a\in
    C}\pi_a`.

    Source: reconstruction §1 (:math:`J_q`), QUOTED-2nd.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.success_rate, inst)


def log_odds(inst: SoftmaxBandit) -> sp.Expr:
    r"""Log-odds :math:`\ell=\log\frac{J}{1-J}` (:math:`1-J` summed over the failures), exact.

    Source: reconstruction §2.1 item 2, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.log_odds, inst)


def gradient_gap(inst: SoftmaxBandit) -> sp.ImmutableMatrix:
    r"""Gradient Gap :math:`g=\mathbb E_+[s]-\mathbb E_-[s]`, exact at the instance; closed form :math:`\bar
    e_C-\bar e_{\bar C}`.

    Source: reconstruction §2.1 (boxed definition), DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.gradient_gap, inst)


def grad_log_odds(inst: SoftmaxBandit) -> sp.ImmutableMatrix:
    r""":math:`\nabla_\theta\ell` (by differentiating the closed form of :math:`\ell`), exact.

    Source: reconstruction §2.1 item 2, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.grad_log_odds, inst)


def grad_success_rate(inst: SoftmaxBandit) -> sp.ImmutableMatrix:
    r""":math:`\nabla_\theta J` (by differentiating the closed form of :math:`J`), exact.

    Source: reconstruction §2.1, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.grad_success_rate, inst)


def hessian_log_odds(inst: SoftmaxBandit) -> sp.ImmutableMatrix:
    r""":math:`\nabla^2_\theta\ell` (by differentiating the closed form twice), exact.

    Source: reconstruction §4.1 (second-order form), DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.hessian_log_odds, inst)


def expected_score(inst: SoftmaxBandit) -> sp.ImmutableMatrix:
    r""":math:`\mathbb E_\pi[s]=\sum_o\pi_\theta(o)\,s(o)` (which is 0), exact at the instance.

    Source: reconstruction §2.1 (proof), DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.e_score, inst)


def conditional_score(inst: SoftmaxBandit, success: bool) -> sp.ImmutableMatrix:
    r""":math:`\mathbb E_+[s]=\mathbb E[s\mid r=1]` (``success=True``) or :math:`\mathbb E_-[s]=\mathbb E[s\mid r=0]`,
    exact at the instance; closed form :math:`\bar e_C-\pi`, :math:`\bar e_{\bar C}-\pi`.

    Source: reconstruction §2.1, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.e_score_success if success else cf.e_score_failure, inst)


def alignment(inst: SoftmaxBandit, w: Iterable[float]) -> sp.Expr:
    r"""Alignment :math:`\Delta\mu=\langle w,g\rangle` for a direction ``w`` (exact).

    Source: reconstruction §2.2, INFERRED.
    """
    wv = forms.check_direction(w, len(inst.theta))
    return (wv.T * gradient_gap(inst))[0]


def reward(inst: SoftmaxBandit, response: Iterable[int]) -> int:
    r"""Reward :math:`r(a)=\mathbb 1[a\in C]` of the response ``(a,)``.

    >>> reward(_EXAMPLE, (0,)), reward(_EXAMPLE, (1,))
    (1, 0)
    """
    (a,) = check_response(response, 1, inst.K)
    return int(a in inst.correct)


def score(inst: SoftmaxBandit, response: Iterable[int]) -> sp.ImmutableMatrix:
    r"""Score :math:`s(a)=\nabla_\theta\log\pi_\theta(a)=e_a-\pi_\theta`.

    Source: reconstruction §1, DERIVED.

    >>> score(_EXAMPLE, (1,)).T
    Matrix([[-1/2, 1/2]])
    """
    (a,) = check_response(response, 1, inst.K)
    cf = closed_forms(inst)
    log_pi = sp.log(cf.probabilities[a])
    return forms.at_instance(column(sp.diff(log_pi, t) for t in cf.theta), cf.theta, inst.theta)


@lru_cache(maxsize=16)
def _constants(K: int) -> FamilyConstants:
    two_arm = "K=2: attained at pi=(1/2,1/2) (theta=0), w=(1,-1)/sqrt2" if K == 2 else (
        f"K={K}: approached as two arms get 1/2 each and the other {K - 2} arm(s) vanish; not attained, "
        "since equality in Popoviciu needs all mass on the two arms where w=+-1/sqrt2")
    L_o = Constant(
        value=sp.S.Half,
        attainment="maximum" if K == 2 else "supremum",
        proof=("Hess log pi(a) = -(diag pi - pi pi^T) for every a; w^T(diag pi - pi pi^T)w = Var_pi(w_a) <= "
               "(max w - min w)^2/4 <= 1/2 for |w|=1 (Popoviciu). " + two_arm),
    )
    G_o = Constant(
        value=sp.sqrt(2),
        attainment="supremum",
        proof=("|e_a - pi|^2 = (1-pi_a)^2 + sum_{b!=a} pi_b^2 <= 2 (1-pi_a)^2 < 2 since pi_a > 0; "
               "approached along theta = (0, lambda, 0, ...), lambda -> infinity, at a=0: "
               "|e_0 - pi|^2 -> 2. Never attained."),
    )
    smooth_text = ("K=2: J = sigma(+-(theta_0-theta_1)), Hess J = sigma''(z)(e_0-e_1)(e_0-e_1)^T with "
                   "|sigma''| = s(1-s)|1-2s| <= 1/(6 sqrt3) (max at s = 1/2 +- 1/(2 sqrt3)), so "
                   "||Hess J|| = 2/(6 sqrt3) = 1/(3 sqrt3), attained.")
    if K == 2:
        smooth = Constant(value=1 / (3 * sp.sqrt(3)), attainment="maximum", proof=smooth_text)
    else:
        smooth = Constant(
            value=1 / (3 * sp.sqrt(3)),
            attainment="numerical supremum",
            proof=(smooth_text + f" K={K}: the two-arm value is approached as the other arms vanish (a proved "
                   "lower bound); a numerical search (Nelder-Mead, 200 random starts, K<=5, every |C|) found "
                   "no larger value, its maximisers drive the extra arms to 0. The upper bound is NOT proved."),
        )
    return FamilyConstants(L_o=L_o, G_o=G_o, smoothness_J=smooth)


def constants(inst: SoftmaxBandit) -> FamilyConstants:
    r"""The family constants :math:`L_o=1/2`, :math:`G_o=\sqrt2` (supremum), smoothness of :math:`J`
    :math:`1/(3\sqrt3)`, with how each is attained.

    Source: reconstruction §3 (A1, A2: the constants), INFERRED; values and proofs DERIVED here.

    >>> constants(_EXAMPLE).G_o.value
    sqrt(2)
    """
    return _constants(inst.K)


def _identity_checks(cf: ClosedForms):
    sub = forms.log_substitution(cf.theta)
    J = cf.success_rate
    checks = [
        ("E_pi[score] = 0", lambda: forms.prove_zero_matrix(cf.e_score, sub)),
        ("g = E_+[s] - E_-[s]",
         lambda: forms.prove_zero_matrix(cf.gradient_gap - (cf.e_score_success - cf.e_score_failure), sub)),
        ("grad J = J(1-J) g",
         lambda: forms.prove_zero_matrix(cf.grad_success_rate - J * (1 - J) * cf.gradient_gap, sub)),
        ("g = grad ell", lambda: forms.prove_zero_matrix(cf.gradient_gap - cf.grad_log_odds, sub)),
    ]
    if cf.unique_correct_log_prob is not None:
        log_star = cf.unique_correct_log_prob
        grad_star = column(sp.diff(log_star, t) for t in cf.theta)
        pi_star = sp.exp(log_star)
        checks.append(("g = grad log pi(o*) / (1 - pi(o*))",
                       lambda: forms.prove_zero_matrix(cf.gradient_gap - grad_star / (1 - pi_star), sub)))
    return checks


@lru_cache(maxsize=32)
def _prove(K: int, correct: frozenset[int]) -> tuple[IdentityResult, ...]:
    cf = _closed_forms(K, correct)
    out = []
    for name, fn in _identity_checks(cf):
        res = forms.timed(name, fn)
        out.append(IdentityResult(res.name, res.proved,
                                  f"{res.detail} after theta_a = log x_a (rational in x); K={K}", res.seconds))
    return tuple(out)


def prove_identities(inst: SoftmaxBandit) -> tuple[IdentityResult, ...]:
    r"""Prove the identities for the structure of ``inst``: each difference must simplify to exactly 0.

    :math:`\mathbb E_\pi[s]=0`, :math:`g=\mathbb E_+[s]-\mathbb E_-[s]`, :math:`\nabla J=J(1-J)g`,
    :math:`g=\nabla\ell`, and for :math:`|C|=1`: :math:`g=\nabla\log\pi(o^\star)/(1-\pi(o^\star))`.

    Source: reconstruction §2.1 items 1-5, DERIVED.

    >>> all(r.proved for r in prove_identities(_EXAMPLE))
    True
    """
    return _prove(inst.K, inst.correct)


def symbolic_K_proof() -> IdentityResult:
    r"""The identity :math:`\nabla J=J(1-J)g` for a symbolic number of arms (an unspecified K).

    Coordinates split into three kinds: a correct arm :math:`c`, a wrong arm :math:`w`, and the sums
    :math:`P=\sum_{a\in C}e^{\theta_a}`, :math:`Q=\sum_{a\notin C}e^{\theta_a}`. With
    :math:`J=P/(P+Q)`, :math:`\partial_{\theta_c}J=x_c\,\partial_PJ`, :math:`\partial_{\theta_w}J=x_w\,\partial_QJ`
    (chain rule: :math:`\partial_{\theta_a}P=x_a` for :math:`a\in C`), and
    :math:`g_c=x_c/P`, :math:`g_w=-x_w/Q`; the difference is a rational function of :math:`x_c,x_w,P,Q`.

    Source: reconstruction §2.1 item 5, DERIVED.

    >>> symbolic_K_proof().proved
    True
    """
    P, Q, xc, xw = sp.symbols("P Q x_c x_w", positive=True)
    J = P / (P + Q)

    def run() -> tuple[bool, str]:
        d_c = xc * sp.diff(J, P) - J * (1 - J) * (xc / P)
        d_w = xw * sp.diff(J, Q) - J * (1 - J) * (-xw / Q)
        ok_c, how_c = forms.prove_zero(d_c)
        ok_w, how_w = forms.prove_zero(d_w)
        return ok_c and ok_w, f"correct coordinate: {how_c}; wrong coordinate: {how_w}; any K >= 2, any C"

    return forms.timed("grad J = J(1-J) g (symbolic K)", run)


def example_instance(K: int = 3, correct: Iterable[int] = (0,)) -> SoftmaxBandit:
    """A structure-only instance (zero logits) for ``gradgap derive``."""
    return SoftmaxBandit(logits=(0.0,) * K, correct=frozenset(correct))

