r"""Symbolic tabular autoregressive policy: exact closed forms, identities and constants.

One logit row per position t and prefix :math:`u=(o_1,\dots,o_t)` (flat ``theta[(offset_t + code(u)) * V + v]``,
the prefix read as a base-V number, first token most significant), :math:`\pi_u=\mathrm{softmax}(\theta_u)`,
:math:`\pi_\theta(o)=\prod_{t<L(o)}\pi_{o_{<t}}(o_t)`; with an end-of-sequence token the response ends at its
first ``eos`` (:math:`L(o)\le T`). Reward: exact match of the ended target, or at least m of the
:math:`L(o)` positions carrying the target's token.

================================  ==========================  ==================================================
paper                             here                        closed form
================================  ==========================  ==================================================
:math:`J`                         ``success_rate``            :math:`\sum_{o:\,r(o)=1}\pi_\theta(o)`
:math:`s(o)`                      ``score``                   row :math:`o_{<t}`: :math:`e_{o_t}-\pi_{o_{<t}}`, t < L(o)
:math:`\mathbb E_\pm[s]`          ``conditional_score``       :math:`\sum_{o:\,r(o)=\pm}\pi(o)s(o)/J_\pm`
:math:`g`                         ``gradient_gap``            :math:`\mathbb E_+[s]-\mathbb E_-[s]`
:math:`\ell`                      ``log_odds``                :math:`\log J-\log(1-J)`, :math:`1-J` summed over failures
:math:`\Delta\mu`                 ``alignment``               :math:`\langle w,g\rangle`
:math:`L_o, G_o`                  ``constants``               :math:`1/2`, :math:`\sqrt{2T}`
================================  ==========================  ==================================================

The closed forms enumerate the responses of positive probability (eos-padded); the numeric twin uses a
dynamic programme over the prefix tree instead, so the two are independent. Sizes stay tiny (T <= 3, V <= 3).

Example (T=2, V=2, even logits, exact match of :math:`o^\star=(1,0)`):

>>> ex = Autoregressive(logits=(((0.0, 0.0),), ((0.0, 0.0), (0.0, 0.0))), target=(1, 0))
>>> success_rate(ex), sp.simplify(log_odds(ex)), reward(ex, (1, 0))
(1/4, -log(3), 1)
>>> gradient_gap(ex).T
Matrix([[-2/3, 2/3, 0, 0, 2/3, -2/3]])
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from functools import lru_cache

import sympy as sp

from gradgap.theory import closed_forms as forms
from gradgap.theory.closed_forms import ClosedForms, Constant, FamilyConstants, IdentityResult, check_response, column
from gradgap.theory.instances import Autoregressive

__all__ = [*forms.FAMILY_NAMES]

_EXAMPLE = Autoregressive(logits=(((0.0, 0.0),), ((0.0, 0.0), (0.0, 0.0))), target=(1, 0))



def _key(inst: Autoregressive) -> tuple[int, int, tuple[int, ...], int | None, int | None]:
    return inst.T, inst.V, inst.target, inst.min_correct, inst.eos


def _structure(T: int, V: int, target: tuple[int, ...], m: int | None, eos: int | None) -> Autoregressive:
    """The structure with zero logits (row indices, rewards and responses depend on it only)."""
    return Autoregressive(logits=tuple(((0.0,) * V,) * V**t for t in range(T)), target=target, min_correct=m,
                          eos=eos)


def parameters(inst: Autoregressive) -> tuple[sp.Symbol, ...]:
    r"""The flat logit symbols :math:`\theta_i`, in the order (t, prefix, v).

    >>> len(parameters(_EXAMPLE))
    6
    """
    return forms.theta_symbols(len(inst.theta))


def _row_probs(values: Sequence[sp.Expr], n_rows: int, V: int) -> tuple[tuple[sp.Expr, ...], ...]:
    """Softmax of every row of ``values`` (the exponentials of the logits, or positive symbols x)."""
    out = []
    for u in range(n_rows):
        w = values[u * V:(u + 1) * V]
        total = sp.Add(*w)
        out.append(tuple(x / total for x in w))
    return tuple(out)


def _paths(st: Autoregressive) -> list[tuple[tuple[int, ...], list[tuple[int, int]], int]]:
    """Each response of positive probability, with its (row, token) pairs before its end and its reward."""
    out = []
    for o in st.responses():
        L = st.ended_length(o)
        out.append((o, [(st.row_index(t, o[:t]), o[t]) for t in range(L)], st.reward(o)))
    return out


def _moments(st: Autoregressive, probs: Sequence[Sequence[sp.Expr]]
             ) -> tuple[sp.Expr, sp.Expr, sp.MatrixBase, sp.MatrixBase, sp.MatrixBase]:
    r""":math:`J`, :math:`F=1-J` (summed over failures), :math:`\mathbb E[rs]`, :math:`\mathbb E[(1-r)s]`,
    :math:`\mathbb E[s]` by enumerating the responses."""
    V, n = st.V, len(st.theta)
    J, F = sp.S.Zero, sp.S.Zero
    win, lose = sp.zeros(n, 1), sp.zeros(n, 1)
    for _, steps, r in _paths(st):
        p = sp.Mul(*(probs[u][v] for u, v in steps))
        s = sp.zeros(n, 1)
        for u, v in steps:
            for w in range(V):
                s[u * V + w] += (1 if w == v else 0) - probs[u][w]
        if r:
            J += p
            win += p * s
        else:
            F += p
            lose += p * s
    return J, F, win, lose, win + lose


@lru_cache(maxsize=32)
def _closed_forms(T: int, V: int, target: tuple[int, ...], m: int | None, eos: int | None) -> ClosedForms:
    st = _structure(T, V, target, m, eos)
    theta = forms.theta_symbols(len(st.theta))
    probs = _row_probs([sp.exp(x) for x in theta], st.n_rows, V)
    J, F, win, lose, mean = _moments(st, probs)
    plus, minus = win / J, lose / F
    unique = st.unique_correct_response()
    log_star = None
    if unique is not None:
        L = st.ended_length(unique)
        log_star = sp.Add(*(sp.log(probs[st.row_index(t, unique[:t])][unique[t]]) for t in range(L)))
    rule = "exact match" if m is None else f"at least {m} positions"
    structure = f"T={T}, V={V}, target={list(target)}, eos={eos}, reward: {rule}"
    gap = sp.ImmutableMatrix(plus - minus)
    return ClosedForms(family="autoregressive", structure=structure, theta=theta, success_rate=J, gradient_gap=gap,
                       norm_gap_sq=(gap.T * gap)[0], e_score_success=sp.ImmutableMatrix(plus),
                       e_score_failure=sp.ImmutableMatrix(minus), e_score=sp.ImmutableMatrix(mean),
                       given_hessian=_hessian_by_moments(st, probs, J, F, plus, minus), probabilities=probs,
                       unique_correct_log_prob=log_star, **forms.derived_forms(theta, J, F, hessian=False))


def _hessian_by_moments(st: Autoregressive, probs: Sequence[Sequence[sp.Expr]], J: sp.Expr, F: sp.Expr,
                        plus: sp.MatrixBase, minus: sp.MatrixBase) -> sp.ImmutableMatrix:
    r""":math:`\nabla^2\ell=\mathbb E_+[ss^\top+\nabla^2\log\pi]-\mathbb E_+[s]\mathbb E_+[s]^\top-(\text{same}_-)`,
    summed over the responses, with :math:`\nabla^2\log\pi(o)=-\sum_{t<L(o)}(\mathrm{diag}\,\pi_u-\pi_u\pi_u^\top)`
    (much smaller expressions than differentiating :math:`\ell` twice, so they evaluate fast).

    Source: reconstruction §4.1 (second-order form), DERIVED.
    """
    V, n = st.V, len(st.theta)
    second = [sp.zeros(n, n), sp.zeros(n, n)]
    for _, steps, r in _paths(st):
        p = sp.Mul(*(probs[u][v] for u, v in steps))
        s = sp.zeros(n, 1)
        M = sp.zeros(n, n)
        for u, v in steps:
            for w in range(V):
                s[u * V + w] += (1 if w == v else 0) - probs[u][w]
                for z in range(V):
                    M[u * V + w, u * V + z] -= (probs[u][w] if w == z else 0) - probs[u][w] * probs[u][z]
        second[r] += p * (s * s.T + M)
    return sp.ImmutableMatrix(second[1] / J - plus * plus.T - (second[0] / F - minus * minus.T))


def closed_forms(inst: Autoregressive) -> ClosedForms:
    r"""The closed forms for the structure of ``inst`` (T, V, target, m, eos; cached).

    Source: reconstruction §1-§2.1, DERIVED.

    >>> closed_forms(Autoregressive(logits=(((0.0, 0.0),),), target=(1,))).success_rate
    exp(theta_1)/(exp(theta_0) + exp(theta_1))
    """
    return _closed_forms(*_key(inst))


def success_rate(inst: Autoregressive) -> sp.Expr:
    r"""Success rate :math:`J=\sum_{r(o)=1}\pi_\theta(o)`, exact at the instance.

    Source: reconstruction §1 (:math:`J_q`), QUOTED-2nd.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.success_rate, inst)


def log_odds(inst: Autoregressive) -> sp.Expr:
    r"""Log-odds :math:`\ell=\log\frac{J}{1-J}` (:math:`1-J` summed over the failures), exact.

    Source: reconstruction §2.1 item 2, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.log_odds, inst)


def gradient_gap(inst: Autoregressive) -> sp.ImmutableMatrix:
    r"""Gradient Gap :math:`g=\mathbb E_+[s]-\mathbb E_-[s]`, exact at the instance.

    Source: reconstruction §2.1 (boxed definition), DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.gradient_gap, inst)


def grad_log_odds(inst: Autoregressive) -> sp.ImmutableMatrix:
    r""":math:`\nabla_\theta\ell` (by differentiating the closed form of :math:`\ell`), exact.

    Source: reconstruction §2.1 item 2, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.grad_log_odds, inst)


def grad_success_rate(inst: Autoregressive) -> sp.ImmutableMatrix:
    r""":math:`\nabla_\theta J` (by differentiating the closed form of :math:`J`), exact.

    Source: reconstruction §2.1, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.grad_success_rate, inst)


def hessian_log_odds(inst: Autoregressive) -> sp.ImmutableMatrix:
    r""":math:`\nabla^2_\theta\ell` (by differentiating the closed form twice), exact.

    Source: reconstruction §4.1 (second-order form), DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.hessian_log_odds, inst)


def expected_score(inst: Autoregressive) -> sp.ImmutableMatrix:
    r""":math:`\mathbb E_\pi[s]=\sum_o\pi_\theta(o)\,s(o)` (which is 0), exact at the instance.

    Source: reconstruction §2.1 (proof), DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.e_score, inst)


def conditional_score(inst: Autoregressive, success: bool) -> sp.ImmutableMatrix:
    r""":math:`\mathbb E_+[s]` (``success=True``) or :math:`\mathbb E_-[s]`, exact at the instance.

    Source: reconstruction §2.1, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.e_score_success if success else cf.e_score_failure, inst)


def alignment(inst: Autoregressive, w: Iterable[float]) -> sp.Expr:
    r"""Alignment :math:`\Delta\mu=\langle w,g\rangle` for a direction ``w`` (exact).

    Source: reconstruction §2.2, INFERRED.
    """
    wv = forms.check_direction(w, len(inst.theta))
    return (wv.T * gradient_gap(inst))[0]


def reward(inst: Autoregressive, response: Iterable[int]) -> int:
    r""":math:`r(o)` of the ended response (exact match of the ended target, or at least m hits).

    >>> reward(_EXAMPLE, (1, 0)), reward(_EXAMPLE, (1, 1))
    (1, 0)
    """
    return inst.reward(check_response(response, inst.T, inst.V))


def score(inst: Autoregressive, response: Iterable[int]) -> sp.ImmutableMatrix:
    r"""Score :math:`s(o)=\nabla_\theta\sum_{t<L(o)}\log\pi_{o_{<t}}(o_t)`, by differentiating that sum.

    Source: reconstruction §1, DERIVED.

    >>> score(_EXAMPLE, (0, 0)).T
    Matrix([[1/2, -1/2, 1/2, -1/2, 0, 0]])
    """
    o = check_response(response, inst.T, inst.V)
    cf = closed_forms(inst)
    L = inst.ended_length(o)
    log_pi = sp.Add(*(sp.log(cf.probabilities[inst.row_index(t, o[:t])][o[t]]) for t in range(L)))
    return forms.at_instance(column(sp.diff(log_pi, s) for s in cf.theta), cf.theta, inst.theta)


@lru_cache(maxsize=32)
def _constants(T: int, V: int, m: int | None) -> FamilyConstants:
    L_o = Constant(
        value=sp.S.Half,
        attainment="maximum" if V == 2 else "supremum",
        proof=("Hess log pi(o) = -sum_(t<L(o)) (diag pi_u - pi_u pi_u^T) on the distinct rows u = o_<t the "
               "response passes (disjoint blocks), so its norm is max_u lambda_max(diag pi_u - pi_u pi_u^T) <= 1/2 "
               + ("(V=2: attained at theta_u = 0)." if V == 2 else
                  f"(V={V}: approached with 1/2 on two tokens of one row; not attained).")),
    )
    G_o = Constant(
        value=sp.sqrt(2 * T),
        attainment="supremum",
        proof=(f"|s(o)|^2 = sum_(t<L(o)) |e_(o_t) - pi_u|^2 with each term < 2 and L(o) <= T; approached by a "
               f"response of length T whose rows concentrate on another token (sum -> 2T={2 * T}). Never attained."),
    )
    if T == 1 and m is None:
        smooth = Constant(value=1 / (3 * sp.sqrt(3)), attainment="maximum" if V == 2 else "numerical supremum",
                          proof=f"T=1 is the softmax bandit with K={V} arms and one correct arm.")
    else:
        smooth = Constant(value=None, attainment=None,
                          proof=f"T={T}: sup ||Hess J|| not established symbolically (left open).")
    return FamilyConstants(L_o=L_o, G_o=G_o, smoothness_J=smooth)


def constants(inst: Autoregressive) -> FamilyConstants:
    r""":math:`L_o=1/2`, :math:`G_o=\sqrt{2T}` (supremum), smoothness of :math:`J` (only for T=1, exact match).

    Source: reconstruction §3 (A1, A2: the constants), INFERRED; values and proofs DERIVED here.

    >>> constants(_EXAMPLE).G_o.value
    2
    """
    return _constants(inst.T, inst.V, inst.min_correct)


@lru_cache(maxsize=32)
def _prove(T: int, V: int, target: tuple[int, ...], m: int | None, eos: int | None) -> tuple[IdentityResult, ...]:
    r"""The identities with :math:`\theta_i=\log x_i` (rational functions of positive :math:`x`), where
    :math:`\partial/\partial\theta_i=x_i\,\partial/\partial x_i`; :math:`1-J` is the sum over the failures."""
    st = _structure(T, V, target, m, eos)
    n = len(st.theta)
    xs = [sp.Symbol(f"x_{i}", positive=True) for i in range(n)]
    probs = _row_probs(xs, st.n_rows, V)
    J, F, win, lose, mean = _moments(st, probs)
    g = win / J - lose / F

    def d(expr: sp.Expr) -> sp.ImmutableMatrix:
        return column(x * sp.diff(expr, x) for x in xs)

    checks: list[tuple[str, object]] = [
        ("J + (1-J) = 1", lambda: forms.prove_zero(J + F - 1)),
        ("E_pi[score] = 0", lambda: forms.prove_zero_matrix(mean)),
        ("grad J = J(1-J) g", lambda: forms.prove_zero_matrix(d(J) - J * F * g)),
        ("g = grad ell", lambda: forms.prove_zero_matrix(g - (d(J) / J - d(F) / F))),
    ]
    unique = st.unique_correct_response()
    if unique is not None:
        L = st.ended_length(unique)
        pi_star = sp.Mul(*(probs[st.row_index(t, unique[:t])][unique[t]] for t in range(L)))
        checks.append(("g = grad log pi(o*) / (1 - pi(o*))",
                       lambda: forms.prove_zero_matrix(g - d(pi_star) / pi_star / (1 - pi_star))))
    out = []
    for name, fn in checks:
        start = time.perf_counter()
        ok, how = fn()  # type: ignore[operator]
        detail = (f"theta = log x, J and 1-J as sums over the {len(st.responses())} responses; {how}; "
                  f"T={T}, V={V}, m={m}, eos={eos}")
        out.append(IdentityResult(name, bool(ok), detail, time.perf_counter() - start))
    return tuple(out)


def prove_identities(inst: Autoregressive) -> tuple[IdentityResult, ...]:
    r"""Prove the identities for the structure of ``inst`` (each difference exactly 0):
    :math:`J+(1-J)=1`, :math:`\mathbb E_\pi[s]=0`, :math:`\nabla J=J(1-J)g`, :math:`g=\nabla\ell`, and for exact
    match :math:`g=\nabla\log\pi(o^\star)/(1-\pi(o^\star))`.

    Source: reconstruction §2.1 items 1-4, DERIVED.

    >>> [r.proved for r in prove_identities(_EXAMPLE)]
    [True, True, True, True, True]
    """
    return _prove(*_key(inst))


def example_instance(T: int = 2, V: int = 2, target: Sequence[int] | None = None, min_correct: int | None = None,
                     eos: int | None = None) -> Autoregressive:
    """A structure-only instance (zero logits); the default target is all zeros."""
    tgt = tuple(target) if target is not None else (0,) * T
    return _structure(T, V, tgt, min_correct, eos)
