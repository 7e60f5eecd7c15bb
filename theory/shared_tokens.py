r"""Symbolic shared-parameter log-linear token policy: exact closed forms, identities and constants.

One :math:`\theta\in\mathbb R^d` at every position, :math:`\pi_\theta(v)\propto e^{\theta^\top\phi(v)+b_v}`,
:math:`\pi_\theta(o)=\prod_{t=1}^T\pi_\theta(o_t)`; reward 1 iff every token lies in :math:`C`.

=================  ==========================  ===================================================
paper              here                        closed form
=================  ==========================  ===================================================
:math:`p`          (internal)                  :math:`\sum_{v\in C}\pi(v)`
:math:`J`          ``success_rate``            :math:`p^T`
:math:`s(o)`       ``score``                   :math:`\sum_t(\phi(o_t)-\bar\phi)`, :math:`\bar\phi=\mathbb E_\pi\phi`
:math:`g_t`        ``ClosedForms.token_gaps``  :math:`\mathbb E_+[s_t]-\mathbb E_-[s_t]`
:math:`g`          ``gradient_gap``            :math:`\sum_t g_t`
:math:`\ell`       ``log_odds``                :math:`\log\frac{p^T}{1-p^T}`
:math:`\Delta\mu`  ``alignment``               :math:`\langle w,g\rangle`
:math:`L_o`        ``constants``               :math:`\le T\,\mathrm{diam}(\phi)^2/4`
:math:`G_o`        ``constants``               :math:`T\,\mathrm{diam}(\phi)` (a supremum)
=================  ==========================  ===================================================

Per position, :math:`\Pr[r=1\mid o_t=v]=\mathbb 1[v\in C]\,p^{T-1}`. The identities are proved for
**symbolic** features :math:`\phi_{v,i}` and biases: the weights :math:`w_v=e^{\theta^\top\phi(v)+b_v}` become
positive symbols and :math:`\partial_{\theta_i}=\sum_v\phi_{v,i}w_v\,\partial_{w_v}` (chain rule), so every
quantity is rational in :math:`w` and polynomial in :math:`\phi`.

Example (one feature, :math:`\phi=(0,1)`, token 1 correct, T=2, at :math:`\theta=0`):

>>> ex = SharedTokens(theta=(0.0,), features=((0.0,), (1.0,)), correct=frozenset({1}), T=2)
>>> success_rate(ex), sp.simplify(log_odds(ex)), reward(ex, (1, 0)), alignment(ex, (0.75,))
(1/4, -log(3), 0, 1)
>>> gradient_gap(ex).T, grad_log_odds(ex).T, grad_success_rate(ex).T, hessian_log_odds(ex)
(Matrix([[4/3]]), Matrix([[4/3]]), Matrix([[1/4]]), Matrix([[-2/9]]))
>>> conditional_score(ex, True).T, expected_score(ex).T
(Matrix([[1]]), Matrix([[0]]))
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

import sympy as sp

from gradgap.theory import closed_forms as forms
from gradgap.theory.closed_forms import (
    ClosedForms,
    Constant,
    FamilyConstants,
    IdentityResult,
    check_response,
    column,
    exact,
)
from gradgap.theory.instances import SharedTokens

__all__ = [*forms.FAMILY_NAMES]

_EXAMPLE = SharedTokens(theta=(0.0,), features=((0.0,), (1.0,)), correct=frozenset({1}), T=2)

#: enumerate all V**T responses in the definition-level decomposition check up to this many
ENUMERATION_LIMIT = 81


def parameters(inst: SharedTokens) -> tuple[sp.Symbol, ...]:
    r"""The shared parameter symbols :math:`(\theta_0,\dots,\theta_{d-1})`.

    >>> parameters(_EXAMPLE)
    (theta_0,)
    """
    return forms.theta_symbols(inst.d)


def moments(pi: Sequence[sp.Expr], phi: Sequence[Sequence[sp.Expr]], correct: frozenset[int], T: int
            ) -> dict[str, sp.Basic]:
    r"""Per-position moments from the token probabilities ``pi`` and features ``phi`` (generic entries).

    Returns :math:`p`, :math:`J=p^T`, :math:`\mathbb E[s_t]=\sum_v\pi_v(\phi_v-\bar\phi)`,
    :math:`\mathbb E[r s_t]=\sum_v\pi_v\,\mathbb 1[v\in C]p^{T-1}(\phi_v-\bar\phi)` and
    :math:`\mathbb E[(1-r)s_t]` (same with :math:`1-\mathbb 1[v\in C]p^{T-1}`).

    Source: reconstruction §2.1 item 3, DERIVED.

    >>> h = sp.S.Half
    >>> moments((h, h), ((0,), (1,)), frozenset({1}), 1)["win"]
    Matrix([[1/4]])
    """
    V, d = len(pi), len(phi[0])
    p = sp.Add(*(pi[v] for v in sorted(correct)))
    q = sp.Add(*(pi[v] for v in range(V) if v not in correct))  # 1 - p, without cancellation
    phis = [column(phi[v]) for v in range(V)]
    phibar = sum((pi[v] * phis[v] for v in range(V)), sp.zeros(d, 1))
    rest = p ** (T - 1)
    win, lose, mean = sp.zeros(d, 1), sp.zeros(d, 1), sp.zeros(d, 1)
    for v in range(V):
        s = phis[v] - phibar
        hit = rest if v in correct else sp.S.Zero
        win += pi[v] * hit * s
        lose += pi[v] * (1 - hit) * s
        mean += pi[v] * s
    F = q * sp.Add(*(p**k for k in range(T)))  # 1 - p^T = (1-p)(1 + p + ... + p^(T-1))
    return {"p": p, "J": p**T, "F": F, "phibar": phibar, "win": sp.ImmutableMatrix(win),
            "lose": sp.ImmutableMatrix(lose), "mean": sp.ImmutableMatrix(mean)}


def _exact_table(rows: Iterable[Iterable[float]]) -> tuple[tuple[sp.Expr, ...], ...]:
    return tuple(tuple(exact(x) for x in row) for row in rows)


@lru_cache(maxsize=32)
def _closed_forms(features: tuple[tuple[float, ...], ...], biases: tuple[float, ...], correct: frozenset[int],
                  T: int) -> ClosedForms:
    d = len(features[0])
    theta = forms.theta_symbols(d)
    phi = _exact_table(features)
    b = [exact(x) for x in biases]
    weights = [sp.exp(sp.Add(*(theta[i] * phi[v][i] for i in range(d))) + b[v]) for v in range(len(phi))]
    total = sp.Add(*weights)
    pi = tuple(w / total for w in weights)
    mo = moments(pi, phi, correct, T)
    J, F = mo["J"], mo["F"]
    g_t = sp.ImmutableMatrix(mo["win"] / J - mo["lose"] / F)
    unique = T * sp.log(pi[next(iter(correct))]) if len(correct) == 1 else None
    structure = (f"d={d}, V={len(phi)}, T={T}, C={sorted(correct)}, features={[list(r) for r in phi]}, "
                 f"bias={list(b)}")
    return ClosedForms.from_parts("shared_tokens", structure, theta, J, F, T * g_t, T * mo["win"] / J,
                                  T * mo["lose"] / F, T * mo["mean"], token_gaps=(g_t,) * T, probabilities=pi,
                                  unique_correct_log_prob=unique)


def closed_forms(inst: SharedTokens) -> ClosedForms:
    r"""The closed forms for the structure of ``inst`` (features, biases, C, T; cached).

    Source: reconstruction §1-§2.1, DERIVED.

    >>> closed_forms(_EXAMPLE).success_rate
    exp(2*theta_0)/(exp(theta_0) + 1)**2
    """
    return _closed_forms(inst.features, inst.biases, inst.correct, inst.T)


def success_rate(inst: SharedTokens) -> sp.Expr:
    r"""Success rate :math:`J=\Pr_{o\sim\pi_\theta}[r(o)=1]`, exact at the instance; closed form :math:`p^T`.

    Source: reconstruction §1 (:math:`J_q`), QUOTED-2nd.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.success_rate, inst)


def log_odds(inst: SharedTokens) -> sp.Expr:
    r"""Log-odds :math:`\ell=\log\frac{J}{1-J}` (:math:`1-J` summed over the failures), exact.

    Source: reconstruction §2.1 item 2, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.log_odds, inst)


def gradient_gap(inst: SharedTokens) -> sp.ImmutableMatrix:
    r"""Gradient Gap :math:`g=\mathbb E_+[s]-\mathbb E_-[s]`, exact at the instance; closed form
    :math:`\frac{T(1-p)}{1-p^T}(\mu_C-\mu_{\bar C})`.

    Source: reconstruction §2.1 (boxed definition), DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.gradient_gap, inst)


def grad_log_odds(inst: SharedTokens) -> sp.ImmutableMatrix:
    r""":math:`\nabla_\theta\ell` (by differentiating the closed form of :math:`\ell`), exact.

    Source: reconstruction §2.1 item 2, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.grad_log_odds, inst)


def grad_success_rate(inst: SharedTokens) -> sp.ImmutableMatrix:
    r""":math:`\nabla_\theta J` (by differentiating the closed form of :math:`J`), exact.

    Source: reconstruction §2.1, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.grad_success_rate, inst)


def hessian_log_odds(inst: SharedTokens) -> sp.ImmutableMatrix:
    r""":math:`\nabla^2_\theta\ell` (by differentiating the closed form twice), exact.

    Source: reconstruction §4.1 (second-order form), DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.hessian_log_odds, inst)


def expected_score(inst: SharedTokens) -> sp.ImmutableMatrix:
    r""":math:`\mathbb E_\pi[s]=\sum_o\pi_\theta(o)\,s(o)` (which is 0), exact at the instance.

    Source: reconstruction §2.1 (proof), DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.e_score, inst)


def conditional_score(inst: SharedTokens, success: bool) -> sp.ImmutableMatrix:
    r""":math:`\mathbb E_+[s]=\mathbb E[s\mid r=1]` (``success=True``) or :math:`\mathbb E_-[s]=\mathbb E[s\mid r=0]`,
    exact at the instance; closed form the table of this module.

    Source: reconstruction §2.1, DERIVED.
    """
    cf = closed_forms(inst)
    return forms.substitute(cf, cf.e_score_success if success else cf.e_score_failure, inst)


def alignment(inst: SharedTokens, w: Iterable[float]) -> sp.Expr:
    r"""Alignment :math:`\Delta\mu=\langle w,g\rangle` for a direction ``w`` (exact).

    Source: reconstruction §2.2, INFERRED.
    """
    wv = forms.check_direction(w, len(inst.theta))
    return (wv.T * gradient_gap(inst))[0]


def reward(inst: SharedTokens, response: Iterable[int]) -> int:
    r""":math:`r(o)=\prod_t\mathbb 1[o_t\in C]`.

    >>> reward(_EXAMPLE, (1, 1)), reward(_EXAMPLE, (1, 0))
    (1, 0)
    """
    o = check_response(response, inst.T, inst.V)
    return int(all(v in inst.correct for v in o))


def score(inst: SharedTokens, response: Iterable[int]) -> sp.ImmutableMatrix:
    r"""Score :math:`s(o)=\nabla_\theta\sum_t\log\pi_\theta(o_t)=\sum_t(\phi(o_t)-\bar\phi)`.

    Source: reconstruction §1, DERIVED.

    >>> score(_EXAMPLE, (1, 1)).T
    Matrix([[1]])
    """
    o = check_response(response, inst.T, inst.V)
    cf = closed_forms(inst)
    log_pi = sp.Add(*(sp.log(cf.probabilities[v]) for v in o))
    return forms.at_instance(column(sp.diff(log_pi, s) for s in cf.theta), cf.theta, inst.theta)


@lru_cache(maxsize=32)
def _constants(features: tuple[tuple[float, ...], ...], T: int) -> FamilyConstants:
    phi = _exact_table(features)
    V = len(phi)
    pairs = [(u, v) for u in range(V) for v in range(u + 1, V)]
    dist2 = {(u, v): sp.Add(*((a - b) ** 2 for a, b in zip(phi[u], phi[v], strict=True))) for u, v in pairs}
    diam2 = max(dist2.values())
    u, v = max(pairs, key=lambda uv: dist2[uv])
    diam = sp.sqrt(diam2)
    if diam2 == 0:
        zero = Constant(sp.S.Zero, "maximum", "all features are equal: pi is constant in theta, every score is 0.")
        return FamilyConstants(L_o=zero, G_o=zero, smoothness_J=zero)
    lo_text = (f"Hess log pi(o) = -T Cov_pi(phi) for every o; w^T Cov_pi(phi) w = Var_pi(w.phi) <= "
               f"(max_v w.phi(v) - min_v w.phi(v))^2/4 <= |w|^2 diam(phi)^2/4 (Popoviciu, Cauchy-Schwarz), "
               f"diam(phi)^2 = |phi({u}) - phi({v})|^2 = {diam2}. ")
    if V == 2:
        L_o = Constant(T * diam2 / 4, "maximum",
                       lo_text + "V=2: Cov = pi_0 pi_1 (phi_0-phi_1)(phi_0-phi_1)^T, equality at pi_0 = 1/2, "
                       "reached by theta with theta.(phi_0-phi_1) = b_1-b_0 (the features differ).")
    else:
        L_o = Constant(T * diam2 / 4, "upper bound",
                       lo_text + f"V={V}: only an upper bound for these features; it is approached only if "
                       "the log-linear family can split its mass 1/2-1/2 on the diameter pair with the "
                       "other tokens vanishing (e.g. not when a feature lies strictly between them).")
    G_o = Constant(
        T * diam, "supremum",
        (f"|s(o)| <= sum_t |phi(o_t) - phibar| <= sum_t sum_w pi_w |phi(o_t)-phi(w)| <= T (1 - min pi) diam "
         f"< T diam. Approached with o = ({u},...,{u}) and theta = lam (phi({v}) - phi({u})), lam -> infinity: "
         f"{v} is the unique maximiser of theta.phi up to tokens sharing its feature (it is the farthest "
         "point from phi(u)), so phibar -> phi(v) whatever the biases. Never attained."),
    )
    smooth = Constant(None, None, "sup ||Hess J|| for J = p(theta)^T not established symbolically (left open).")
    return FamilyConstants(L_o=L_o, G_o=G_o, smoothness_J=smooth)


def constants(inst: SharedTokens) -> FamilyConstants:
    r""":math:`L_o\le T\,\mathrm{diam}(\phi)^2/4` (a maximum for V=2, an upper bound otherwise) and
    :math:`G_o=T\,\mathrm{diam}(\phi)` (a supremum), :math:`\mathrm{diam}(\phi)=\max_{u,v}\|\phi(u)-\phi(v)\|`.

    Source: reconstruction §3 (A1, A2: the constants), INFERRED; values and proofs DERIVED here.

    >>> c = constants(_EXAMPLE)
    >>> c.L_o.value, c.G_o.value
    (1/2, 2)
    """
    return _constants(inst.features, inst.T)


def _generic(V: int, d: int) -> tuple[list[sp.Symbol], list[list[sp.Symbol]], Callable[[sp.Expr], sp.ImmutableMatrix]]:
    ws = [sp.Symbol(f"w_{v}", positive=True) for v in range(V)]
    phi = [[sp.Symbol(f"phi_{v}{i}", real=True) for i in range(d)] for v in range(V)]

    def grad(expr: sp.Expr) -> sp.ImmutableMatrix:  # d/d theta_i = sum_v phi_{v,i} w_v d/dw_v
        partial = [sp.diff(expr, w) for w in ws]
        return column(sp.Add(*(phi[v][i] * ws[v] * partial[v] for v in range(V))) for i in range(d))

    return ws, phi, grad


@lru_cache(maxsize=32)
def _prove(V: int, d: int, correct: frozenset[int], T: int) -> tuple[IdentityResult, ...]:
    ws, phi, grad = _generic(V, d)
    total = sp.Add(*ws)
    pi = [w / total for w in ws]
    mo = moments(pi, phi, correct, T)
    J, F = mo["J"], mo["F"]
    g_t = mo["win"] / J - mo["lose"] / F
    g = T * g_t
    ell = sp.log(J) - sp.log(F)
    common = f"symbolic features phi_(v,i) and biases (w_v = exp(theta.phi(v)+b_v)); V={V}, d={d}, T={T}"
    checks: list[tuple[str, Callable[[], tuple[bool, str]]]] = [
        ("E_pi[score] = 0", lambda: forms.prove_zero_matrix(T * mo["mean"])),
        ("grad J = J(1-J) g", lambda: forms.prove_zero_matrix(grad(J) - J * (1 - J) * g)),
        ("g = grad ell", lambda: forms.prove_zero_matrix(g - grad(ell))),
    ]

    def decomposition() -> tuple[bool, str]:
        if V**T <= ENUMERATION_LIMIT:
            plus, minus = sp.zeros(d, 1), sp.zeros(d, 1)
            for o in itertools.product(range(V), repeat=T):
                prob = sp.Mul(*(pi[v] for v in o))
                s = grad(sp.Add(*(sp.log(pi[v]) for v in o)))
                if all(v in correct for v in o):
                    plus += prob * s
                else:
                    minus += prob * s
            ok, how = forms.prove_zero_matrix(plus / J - minus / (1 - J) - g)
            return ok, (f"{how}; response-level E_+[s]-E_-[s] by enumerating all V^T={V**T} responses, "
                        "s(o) = grad log pi(o) differentiated")
        p = mo["p"]
        bar_c = sum((pi[v] * column(phi[v]) for v in sorted(correct)), sp.zeros(d, 1)) / p
        bar_w = sum((pi[v] * column(phi[v]) for v in range(V) if v not in correct), sp.zeros(d, 1)) / (1 - p)
        plus = T * (bar_c - mo["phibar"])
        minus = sp.zeros(d, 1)
        for k in range(T):  # k positions in C, at least one outside: a failure
            weight = sp.binomial(T, k) * p**k * (1 - p) ** (T - k)
            minus += weight * (k * (bar_c - mo["phibar"]) + (T - k) * (bar_w - mo["phibar"]))
        ok, how = forms.prove_zero_matrix(plus - minus / (1 - J) - g)
        return ok, (f"{how}; response-level E_+[s]-E_-[s] by the number k of in-C tokens (V^T={V**T} > "
                    f"{ENUMERATION_LIMIT}: responses not enumerated)")

    checks.append(("g = sum_t g_t", decomposition))
    if len(correct) == 1:
        c = next(iter(correct))
        pi_star = pi[c] ** T
        checks.append(("g = grad log pi(o*) / (1 - pi(o*))",
                       lambda: forms.prove_zero_matrix(g - grad(T * sp.log(pi[c])) / (1 - pi_star))))
    out = []
    for name, fn in checks:
        res = forms.timed(name, fn)
        out.append(IdentityResult(res.name, res.proved, f"{res.detail}; {common}", res.seconds))
    return tuple(out)


def prove_identities(inst: SharedTokens) -> tuple[IdentityResult, ...]:
    r"""Prove the identities for (V, d, C, T) of ``inst`` with symbolic features and biases.

    :math:`\mathbb E_\pi[s]=0`, :math:`\nabla J=J(1-J)g`, :math:`g=\nabla\ell`, :math:`g=\sum_tg_t`, and for
    :math:`|C|=1`: :math:`g=\nabla\log\pi(o^\star)/(1-\pi(o^\star))`.

    Source: reconstruction §2.1 items 1-4, DERIVED.

    >>> [r.proved for r in prove_identities(_EXAMPLE)]
    [True, True, True, True, True]
    """
    return _prove(inst.V, inst.d, inst.correct, inst.T)


def example_instance(d: int = 2, T: int = 2, V: int = 3, correct: Iterable[int] = (0,)) -> SharedTokens:
    r"""A structure-only instance for ``gradgap derive``: :math:`\phi(v)_i=(v+1)^{i+1}\bmod 5-2` (small distinct
    integers), no biases, zero parameters.

    >>> example_instance(d=1, V=3).features
    ((-1.0,), (0.0,), (1.0,))
    """
    feats = tuple(tuple(float(pow(v + 1, i + 1, 5) - 2) for i in range(d)) for v in range(V))
    return SharedTokens(theta=(0.0,) * d, features=feats, correct=frozenset(correct), T=T)
