r"""Symbolic tabular token-sequence policy: exact closed forms, identities and constants.

T positions, V tokens, independent logits per position (flat ``theta[t*V + v]``),
:math:`\pi_\theta(o)=\prod_t\pi_t(o_t)`, :math:`\pi_t=\mathrm{softmax}(\theta_t)`; reward 1 iff at least
:math:`m` positions carry the target token (:math:`m=T`: exact match of :math:`o^\star`).

================================  ==========================  ==================================================
paper                             here                        closed form
================================  ==========================  ==================================================
:math:`p_t`                       (internal)                  :math:`\pi_t(o^\star_t)`
:math:`J`                         ``success_rate``            :math:`\Pr[\mathrm{PoissonBinomial}(p_1..p_T)\ge m]`
:math:`s(o)`                      ``score``                   block t: :math:`e_{o_t}-\pi_t`
:math:`\mathbb E_\pm[s_t]`        ``conditional_score``       :math:`\sum_v\pi_t(v)\Pr[r=1\mid o_t=v](e_v-\pi_t)/J`
:math:`g=\sum_t g_t`              ``gradient_gap``            :math:`g_t=\mathbb E_+[s_t]-\mathbb E_-[s_t]`
:math:`\ell`                      ``log_odds``                :math:`\log\frac{J}{1-J}`
:math:`\Delta\mu`                 ``alignment``               :math:`\langle w,g\rangle`
:math:`L_o, G_o`                  ``constants``               :math:`1/2`, :math:`\sqrt{2T}`
================================  ==========================  ==================================================

No closed form enumerates the :math:`V^T` responses: :math:`J` and
:math:`\Pr[r=1\mid o_t=v]` are Poisson-binomial tails of the target probabilities (a dynamic programme over
positions), and the conditional laws factor over positions.

Example (T=2, V=2, even logits, exact match of :math:`o^\star=(0,1)`):

>>> ex = TokenSequence(logits=((0.0, 0.0), (0.0, 0.0)), target=(0, 1))
>>> success_rate(ex), sp.simplify(log_odds(ex)), reward(ex, (0, 1)), alignment(ex, (1.5, 0.0, 0.0, 0.0))
(1/4, -log(3), 1, 1)
>>> gradient_gap(ex).T, grad_success_rate(ex).T, hessian_log_odds(ex)[0, 0]
(Matrix([[2/3, -2/3, -2/3, 2/3]]), Matrix([[1/8, -1/8, -1/8, 1/8]]), -2/9)
>>> conditional_score(ex, True).T, sp.simplify(expected_score(ex)).T
(Matrix([[1/2, -1/2, -1/2, 1/2]]), Matrix([[0, 0, 0, 0]]))
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache

import sympy as sp

from gradgap.theory import closed_forms as forms
from gradgap.theory.closed_forms import ClosedForms, Constant, FamilyConstants, IdentityResult, check_response, column
from gradgap.theory.instances import TokenSequence
from gradgap.theory.poisson_binomial import head, tail

__all__ = [*forms.FAMILY_NAMES]

_EXAMPLE = TokenSequence(logits=((0.0, 0.0), (0.0, 0.0)), target=(0, 1))


def parameters(inst: TokenSequence) -> tuple[sp.Symbol, ...]:
    r"""The flat logit symbols :math:`\theta_{tV+v}`, row-major.

    >>> parameters(_EXAMPLE)
    (theta_0, theta_1, theta_2, theta_3)
    """
    return forms.theta_symbols(inst.T * inst.V)


def block_moments(pi_t: Sequence[sp.Expr], star: int, others: Sequence[sp.Expr], m: int, *, stable: bool = True
                  ) -> tuple[sp.ImmutableMatrix, sp.ImmutableMatrix, sp.ImmutableMatrix]:
    r"""Block t of :math:`\mathbb E[r\,s_t]`, :math:`\mathbb E[(1-r)\,s_t]` and :math:`\mathbb E[s_t]`.

    :math:`\mathbb E[r\,s_t]=\sum_v\pi_t(v)\,\Pr[r=1\mid o_t=v]\,(e_v-\pi_t)` with
    :math:`\Pr[r=1\mid o_t=o^\star_t]=\Pr[\ge m-1\text{ of the others}]` and
    :math:`\Pr[r=1\mid o_t\ne o^\star_t]=\Pr[\ge m\text{ of the others}]` (failure weights: the complements
    by :func:`head`, or literally :math:`1-\Pr[\cdot]` with ``stable=False``, the cheaper form used in
    proofs); ``others`` are the target probabilities of the other positions, the only way they enter.

    Source: reconstruction §2.1 item 3 (token-level gap), DERIVED.

    >>> h = sp.S.Half
    >>> [list(b) for b in block_moments((h, h), 0, (), 1)]
    [[1/4, -1/4], [-1/4, 1/4], [0, 0]]
    """
    V = len(pi_t)
    pi_vec = column(pi_t)
    hit, miss = tail(others, m - 1), tail(others, m)
    if stable:  # 1 - hit, 1 - miss as sums over the failing counts
        hit_fail, miss_fail = head(others, m - 1), head(others, m)
    else:
        hit_fail, miss_fail = 1 - hit, 1 - miss
    plus, minus, mean = sp.zeros(V, 1), sp.zeros(V, 1), sp.zeros(V, 1)
    for v in range(V):
        e_v = column(1 if u == v else 0 for u in range(V))
        s = e_v - pi_vec
        plus += pi_t[v] * (hit if v == star else miss) * s
        minus += pi_t[v] * (hit_fail if v == star else miss_fail) * s
        mean += pi_t[v] * s
    return sp.ImmutableMatrix(plus), sp.ImmutableMatrix(minus), sp.ImmutableMatrix(mean)


def _position_probs(theta: Sequence[sp.Expr], T: int, V: int) -> tuple[tuple[sp.Expr, ...], ...]:
    rows = []
    for t in range(T):
        w = [sp.exp(theta[t * V + v]) for v in range(V)]
        total = sp.Add(*w)
        rows.append(tuple(x / total for x in w))
    return tuple(rows)


def _embed(block: sp.MatrixBase, t: int, T: int, V: int) -> sp.ImmutableMatrix:
    full = sp.zeros(T * V, 1)
    full[t * V:(t + 1) * V, 0] = block
    return sp.ImmutableMatrix(full)


@lru_cache(maxsize=32)
def _closed_forms(T: int, V: int, target: tuple[int, ...], m: int) -> ClosedForms:
    theta = forms.theta_symbols(T * V)
    probs = _position_probs(theta, T, V)
    ps = [probs[t][target[t]] for t in range(T)]
    J = tail(ps, m)
    F = 1 - J  # head(ps, m) would avoid cancellation but makes sympy's evalf of the forms far slower
    n = T * V
    plus, minus, mean, gaps = sp.zeros(n, 1), sp.zeros(n, 1), sp.zeros(n, 1), []
    for t in range(T):
        others = ps[:t] + ps[t + 1:]
        bp, bm, be = block_moments(probs[t], target[t], others, m, stable=False)
        plus += _embed(bp / J, t, T, V)
        minus += _embed(bm / F, t, T, V)
        mean += _embed(be, t, T, V)
        gaps.append(_embed(bp / J - bm / F, t, T, V))
    unique = sp.Add(*(sp.log(p) for p in ps)) if m == T else None
    reward_text = "exact match" if m == T else f"at least {m} of {T} positions"
    structure = f"T={T}, V={V}, target={list(target)}, reward: {reward_text}"
    return ClosedForms.from_parts("tokens", structure, theta, J, F, sum(gaps, sp.zeros(n, 1)), plus, minus, mean,
                                  token_gaps=tuple(gaps), probabilities=probs, unique_correct_log_prob=unique)


def closed_forms(inst: TokenSequence) -> ClosedForms:
    r"""The closed forms for the structure of ``inst`` (T, V, target, m; cached).

    Source: reconstruction §1-§2.1, DERIVED.

    >>> closed_forms(TokenSequence(logits=((0.0, 0.0),), target=(1,))).success_rate
    exp(theta_1)/(exp(theta_0) + exp(theta_1))
    """
    return _closed_forms(inst.T, inst.V, inst.target, inst.m)


def success_rate(inst: TokenSequence) -> sp.Expr:
    r"""Success rate :math:`J=\Pr_{o\sim\pi_\theta}[r(o)=1]`, exact at the instance; closed form
    :math:`\Pr[\mathrm{PoissonBinomial}(p_1..p_T)\ge m]`.

    Source: reconstruction §1 (:math:`J_q`), QUOTED-2nd.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.success_rate, inst)


def log_odds(inst: TokenSequence) -> sp.Expr:
    r"""Log-odds :math:`\ell=\log\frac{J}{1-J}` (:math:`1-J` summed over the failures), exact.

    Source: reconstruction §2.1 item 2, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.log_odds, inst)


def gradient_gap(inst: TokenSequence) -> sp.ImmutableMatrix:
    r"""Gradient Gap :math:`g=\mathbb E_+[s]-\mathbb E_-[s]`, exact at the instance; closed form the table of this
    module.

    Source: reconstruction §2.1 (boxed definition), DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.gradient_gap, inst)


def grad_log_odds(inst: TokenSequence) -> sp.ImmutableMatrix:
    r""":math:`\nabla_\theta\ell` (by differentiating the closed form of :math:`\ell`), exact.

    Source: reconstruction §2.1 item 2, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.grad_log_odds, inst)


def grad_success_rate(inst: TokenSequence) -> sp.ImmutableMatrix:
    r""":math:`\nabla_\theta J` (by differentiating the closed form of :math:`J`), exact.

    Source: reconstruction §2.1, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.grad_success_rate, inst)


def hessian_log_odds(inst: TokenSequence) -> sp.ImmutableMatrix:
    r""":math:`\nabla^2_\theta\ell` (by differentiating the closed form twice), exact.

    Source: reconstruction §4.1 (second-order form), DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.hessian_log_odds, inst)


def expected_score(inst: TokenSequence) -> sp.ImmutableMatrix:
    r""":math:`\mathbb E_\pi[s]=\sum_o\pi_\theta(o)\,s(o)` (which is 0), exact at the instance.

    Source: reconstruction §2.1 (proof), DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.e_score, inst)


def conditional_score(inst: TokenSequence, success: bool) -> sp.ImmutableMatrix:
    r""":math:`\mathbb E_+[s]=\mathbb E[s\mid r=1]` (``success=True``) or :math:`\mathbb E_-[s]=\mathbb E[s\mid r=0]`,
    exact at the instance; closed form the table of this module.

    Source: reconstruction §2.1, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.e_score_success if success else cf.e_score_failure, inst)


def alignment(inst: TokenSequence, w: Iterable[float]) -> sp.Expr:
    r"""Alignment :math:`\Delta\mu=\langle w,g\rangle` for a direction ``w`` (exact).

    Source: reconstruction §2.2, INFERRED.
    """
    wv = forms.check_direction(w, len(inst.theta))
    return (wv.T * gradient_gap(inst))[0]


def reward(inst: TokenSequence, response: Iterable[int]) -> int:
    r""":math:`r(o)=\mathbb 1[\#\{t:o_t=o^\star_t\}\ge m]`.

    >>> reward(_EXAMPLE, (0, 1)), reward(_EXAMPLE, (1, 1))
    (1, 0)
    """
    o = check_response(response, inst.T, inst.V)
    return int(sum(a == b for a, b in zip(o, inst.target, strict=True)) >= inst.m)


def score(inst: TokenSequence, response: Iterable[int]) -> sp.ImmutableMatrix:
    r"""Score :math:`s(o)=\nabla_\theta\sum_t\log\pi_t(o_t)`; block t is :math:`e_{o_t}-\pi_t`.

    Source: reconstruction §1, DERIVED.

    >>> score(_EXAMPLE, (0, 0)).T
    Matrix([[1/2, -1/2, 1/2, -1/2]])
    """
    o = check_response(response, inst.T, inst.V)
    cf = closed_forms(inst)
    log_pi = sp.Add(*(sp.log(cf.probabilities[t][o[t]]) for t in range(inst.T)))
    return forms.at_instance(column(sp.diff(log_pi, s) for s in cf.theta), cf.theta, inst.theta)


@lru_cache(maxsize=32)
def _constants(T: int, V: int, m: int) -> FamilyConstants:
    L_o = Constant(
        value=sp.S.Half,
        attainment="maximum" if V == 2 else "supremum",
        proof=("Hess log pi(o) = -blockdiag_t(diag pi_t - pi_t pi_t^T), independent of o; its norm is "
               "max_t lambda_max(diag pi_t - pi_t pi_t^T) <= 1/2 (Popoviciu, as for the softmax bandit). "
               + ("V=2: attained at theta_t = 0." if V == 2 else
                  f"V={V}: approached when one position puts 1/2 on two tokens and the rest vanish; "
                  "not attained.")),
    )
    G_o = Constant(
        value=sp.sqrt(2 * T),
        attainment="supremum",
        proof=(f"|s(o)|^2 = sum_t |e_(o_t) - pi_t|^2 and each term is < 2 (softmax bandit); the sum "
               f"approaches 2T={2 * T} when every position concentrates on a token other than o_t. "
               "Never attained."),
    )
    if T == 1 and m == 1:
        smooth = Constant(
            value=1 / (3 * sp.sqrt(3)),
            attainment="maximum" if V == 2 else "numerical supremum",
            proof=f"T=1 is the softmax bandit with K={V} arms and one correct arm; see theory.softmax.constants.",
        )
    else:
        smooth = Constant(value=None, attainment=None,
                          proof=f"T={T} > 1 or m<T: sup ||Hess J|| not established symbolically (left open).")
    return FamilyConstants(L_o=L_o, G_o=G_o, smoothness_J=smooth)


def constants(inst: TokenSequence) -> FamilyConstants:
    r""":math:`L_o=1/2`, :math:`G_o=\sqrt{2T}` (supremum), smoothness of :math:`J` (only for T=1).

    Source: reconstruction §3 (A1, A2: the constants), INFERRED; values and proofs DERIVED here.

    >>> constants(_EXAMPLE).G_o.value
    2
    """
    return _constants(inst.T, inst.V, inst.m)


def _block_proofs(T: int, V: int, target: tuple[int, ...], m: int, t: int) -> dict[str, tuple[bool, str]]:
    r"""Prove the identities in block t, with :math:`\theta_{t,v}=\log x_v` and the other positions'
    target probabilities as free symbols :math:`u_s` (they enter only through them)."""
    xs = [sp.Symbol(f"x_{v}", positive=True) for v in range(V)]
    total = sp.Add(*xs)
    pi_t = [x / total for x in xs]
    us = [sp.Symbol(f"u_{s}", positive=True) for s in range(T) if s != t]
    ps = [*us[:t], pi_t[target[t]], *us[t:]]
    J = tail(ps, m)
    F = 1 - J
    bp, bm, be = block_moments(pi_t, target[t], us, m, stable=False)
    g_t = bp / J - bm / F

    def d(expr: sp.Expr) -> sp.ImmutableMatrix:  # d/d theta_{t,v} = x_v d/dx_v
        return column(x * sp.diff(expr, x) for x in xs)

    ell = sp.log(J) - sp.log(F)
    out = {
        "E_pi[score] = 0": forms.prove_zero_matrix(be),
        "grad J = J(1-J) g": forms.prove_zero_matrix(d(J) - J * (1 - J) * g_t),
        "g = grad ell": forms.prove_zero_matrix(g_t - d(ell)),
    }
    # response-level gap, block t, by enumerating the 2^T match patterns P (positions carrying the target)
    star_score = column((1 if v == target[t] else 0) - pi_t[v] for v in range(V))
    miss_score = sp.zeros(V, 1)
    for v in range(V):
        if v != target[t]:
            e_v = column(1 if u == v else 0 for u in range(V))
            miss_score += pi_t[v] * (e_v - column(pi_t)) / (1 - ps[t])
    win, lose = sp.zeros(V, 1), sp.zeros(V, 1)
    for pattern in itertools.product((0, 1), repeat=T):
        prob = sp.Mul(*(ps[s] if bit else 1 - ps[s] for s, bit in enumerate(pattern)))
        cond = star_score if pattern[t] else miss_score
        if sum(pattern) >= m:
            win += prob * cond
        else:
            lose += prob * cond
    out["g = sum_t g_t"] = forms.prove_zero_matrix(win / J - lose / (1 - J) - g_t)
    if m == T:
        pi_star = sp.Mul(*ps)
        out["g = grad log pi(o*) / (1 - pi(o*))"] = forms.prove_zero_matrix(g_t - d(sp.log(ps[t])) / (1 - pi_star))
    return out


_DETAIL = {
    "E_pi[score] = 0": "per position: sum_v pi_t(v)(e_v - pi_t) = 0",
    "grad J = J(1-J) g": "J = Poisson-binomial tail, differentiated in theta_t",
    "g = grad ell": "ell = log J - log(1-J), differentiated in theta_t",
    "g = sum_t g_t": ("block t of the response-level gap E_+[s(o)] - E_-[s(o)], enumerating the 2^T "
                      "match patterns with E[s_t | pattern], equals block t of g_t (the only non-zero block)"),
    "g = grad log pi(o*) / (1 - pi(o*))": "exact match: pi(o*) = prod_t p_t",
}


@lru_cache(maxsize=32)
def _prove(T: int, V: int, target: tuple[int, ...], m: int) -> tuple[IdentityResult, ...]:
    results: dict[str, list] = {}
    times: dict[str, float] = {}
    for t in range(T):
        start = time.perf_counter()
        block = _block_proofs(T, V, target, m, t)
        share = (time.perf_counter() - start) / max(len(block), 1)
        for name, (ok, how) in block.items():
            results.setdefault(name, []).append((ok, how))
            times[name] = times.get(name, 0.0) + share
    out = []
    for name, per_block in results.items():
        bad = [t for t, (ok, _) in enumerate(per_block) if not ok]
        hows = sorted({how for _, how in per_block})
        detail = (f"{_DETAIL[name]}; each block t: theta_(t,v) = log x_v, other positions' target "
                  f"probabilities as free symbols u_s; {', '.join(hows)}; T={T}, V={V}, m={m}")
        if bad:
            detail = f"NOT proved in blocks {bad}: " + detail
        out.append(IdentityResult(name, not bad, detail, times[name]))
    return tuple(out)


def prove_identities(inst: TokenSequence) -> tuple[IdentityResult, ...]:
    r"""Prove the identities for the structure of ``inst``, block by block (each difference exactly 0).

    :math:`\mathbb E_\pi[s]=0`, :math:`\nabla J=J(1-J)g`, :math:`g=\nabla\ell`, :math:`g=\sum_tg_t`, and for
    exact match :math:`g=\nabla\log\pi(o^\star)/(1-\pi(o^\star))`.

    Source: reconstruction §2.1 items 1-4, DERIVED.

    >>> [r.proved for r in prove_identities(_EXAMPLE)]
    [True, True, True, True, True]
    """
    return _prove(inst.T, inst.V, inst.target, inst.m)


def symbolic_T_proof() -> IdentityResult:
    r""":math:`\nabla J=J(1-J)g` and :math:`g=\nabla\log\pi(o^\star)/(1-\pi(o^\star))` for exact match and a
    symbolic length T.

    In block t, :math:`J=p_t R` with :math:`R=\prod_{s\ne t}p_s` free (any T); with
    :math:`p_t=x_\star/\sum_v x_v` the block gap is :math:`g_t=\mathbb E[r s_t]/J-\mathbb E[(1-r)s_t]/(1-J)` from
    :func:`block_moments` with the others' hit/miss probabilities R and 0, i.e. a rational function of
    :math:`x` (V=3 here; V only sets the block size) and R.

    Source: reconstruction §2.1 item 4, DERIVED.

    >>> symbolic_T_proof().proved
    True
    """
    xs = [sp.Symbol(f"x_{v}", positive=True) for v in range(3)]
    R = sp.Symbol("R", positive=True)
    total = sp.Add(*xs)
    pi_t = [x / total for x in xs]
    J = pi_t[0] * R

    def run() -> tuple[bool, str]:
        # Pr[r=1 | hit] = R (all others match), Pr[r=1 | miss] = 0: block_moments with m = 2 and
        # a single 'other' position of target probability R reproduces exactly that.
        bp, bm, _ = block_moments(pi_t, 0, (R,), 2)
        g_t = bp / J - bm / (1 - J)
        d = column(x * sp.diff(J, x) for x in xs)
        ok1, how1 = forms.prove_zero_matrix(d - J * (1 - J) * g_t)
        dlog = column(x * sp.diff(sp.log(pi_t[0]), x) for x in xs)
        ok2, how2 = forms.prove_zero_matrix(g_t - dlog / (1 - J))
        return ok1 and ok2, f"grad J: {how1}; unique o*: {how2}; R = prod over the T-1 other positions"

    return forms.timed("grad J = J(1-J) g and g = grad log pi(o*)/(1-pi(o*)) (exact match, symbolic T)", run)


def example_instance(T: int = 2, V: int = 3, target: Sequence[int] | None = None,
                     min_correct: int | None = None) -> TokenSequence:
    """A structure-only instance (zero logits) for ``gradgap derive``; the default target is all zeros."""
    tgt = tuple(target) if target is not None else (0,) * T
    return TokenSequence(logits=tuple((0.0,) * V for _ in range(T)), target=tgt, min_correct=min_correct)
