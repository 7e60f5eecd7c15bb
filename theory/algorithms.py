r"""Expected updates of group policy-gradient algorithms as a scalar gain along the Gradient Gap (SymPy).

One prompt, binary reward, on-policy (importance ratio 1), no clipping, no KL. A group of :math:`G` responses
:math:`o_1,\dots,o_G \sim \pi_\theta` i.i.d., rewards :math:`r_i\in\{0,1\}`, :math:`k=\sum_i r_i\sim
\mathrm{Binomial}(G,J)`, :math:`\hat p=k/G`. The update direction (the negative loss gradient) is

.. math::  w = \frac1G\sum_{i=1}^G \frac{A_i}{n_i}\, s(o_i),\qquad s(o)=\nabla_\theta\log\pi_\theta(o),

with the advantage :math:`A_i = a(r_i, k)` a function of the own reward and the group's success count, and
the aggregation weight :math:`n_i`: ``sequence`` (:math:`n_i=1`, the sequence-level sum, REINFORCE/RLOO),
``seq_mean_token_mean`` (:math:`n_i=|o_i|`, GRPO), ``token_mean`` (:math:`n_i=\sum_j|o_j|/G`, DAPO / TRL
``loss_type="dapo"``), ``constant`` (:math:`n_i=L_{\max}`, Dr. GRPO's ``max_completion_length``). For a
fixed-length family (every response has :math:`T` tokens, :math:`L_{\max}=T`) the three token-level
aggregations all equal the sequence-level one divided by :math:`T`.

Notation:

==========================  ==============================  =========================================
paper / FADE                here                             meaning
==========================  ==============================  =========================================
:math:`G`                   ``G``                            group size (TRL ``num_generations``)
:math:`k`                   ``k``                            successes in the group
:math:`a(1,k), a(0,k)`      :func:`advantages`               advantage of a success / a failure
:math:`m_S, m_F`            :func:`advantage_masses`         expected positive / negative advantage mass
:math:`\gamma(J,G)`         :func:`gain`                     :math:`\mathbb E[w]=\gamma\,g`
:math:`\gamma_\infty(J)`    :func:`gain_limit`               :math:`G\to\infty`
==========================  ==============================  =========================================

Derivation (DERIVED, reconstruction §4.4 and §7). Conditional on :math:`k`, the successes are i.i.d.
:math:`\pi^+` and the failures i.i.d. :math:`\pi^-`, and :math:`\mathbb E_+[s]=(1-J)g`,
:math:`\mathbb E_-[s]=-Jg` (reconstruction §2.1, forms 1). Hence, for fixed lengths,

.. math::  \mathbb E[w] = \frac1T\,\mathbb E_k\Big[\tfrac kG a(1,k)(1-J) - \tfrac{G-k}G a(0,k) J\Big]\,g
           = \frac1T\big[(1-J)\,m_S + J\,m_F\big]\,g,

:math:`m_S=\mathbb E[\tfrac kG a(1,k)]`, :math:`m_F=-\mathbb E[\tfrac{G-k}G a(0,k)]`. A centred advantage
(:math:`\sum_i A_i=0` in every group: RLOO, GRPO, Dr. GRPO, DAPO) has :math:`m_S=m_F` and the gain is the
expected advantage mass :math:`\gamma=m_S/T`; groups with :math:`k\in\{0,G\}` have all :math:`A_i=0`.

GRPO's :math:`\epsilon` (TRL: ``(r - mean) / (std + 1e-4)``): the gains here are exact for any symbolic
:math:`\epsilon\ge0` (keyword ``eps``); the default is :math:`\epsilon=0`. Since
:math:`\hat\sigma\ge 1/\sqrt G` whenever :math:`0<k<G`, :math:`0\le\gamma_0-\gamma_\epsilon\le
\gamma_0\,\epsilon\sqrt G/(1+\epsilon\sqrt G)` (:func:`grpo_epsilon_relative_bound`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import product
from typing import Final, Literal

import sympy as sp

from gradgap.theory.closed_forms import IdentityResult
from gradgap.theory.instances import GradgapValueError

__all__ = [
    "AGGREGATIONS",
    "ALGORITHMS",
    "AlgorithmSpec",
    "J",
    "advantage_masses",
    "advantages",
    "eos_policy_exact",
    "gain",
    "gain_limit",
    "gain_value",
    "grpo_epsilon_relative_bound",
    "parallel_residual",
    "prove_centred_mass_closed_form",
    "prove_expected_update_by_enumeration",
    "prove_grpo_limit_rate",
    "prove_logit_inversion",
    "prove_mass_form",
    "prove_telescoping",
    "variable_length_expected_update",
]

#: the success rate as a symbol, :math:`0<J<1`
J: Final = sp.Symbol("J", positive=True)

Advantage = Literal["reinforce", "rloo", "grpo", "dr_grpo"]
Aggregation = Literal["sequence", "seq_mean_token_mean", "token_mean", "constant"]

#: the four aggregations of per-token losses, see the module docstring
AGGREGATIONS: Final[tuple[str, ...]] = ("sequence", "seq_mean_token_mean", "token_mean", "constant")


@dataclass(frozen=True)
class AlgorithmSpec:
    r"""An algorithm = an advantage estimator and an aggregation of the per-token losses.

    ``advantage``: ``reinforce`` (:math:`A=r`), ``rloo`` (:math:`A_i=r_i-\frac1{G-1}\sum_{j\ne i}r_j`),
    ``grpo`` (:math:`A=(r-\hat p)/(\hat\sigma+\epsilon)`, :math:`\hat\sigma^2=\frac G{G-1}\hat p(1-\hat p)`,
    Bessel-corrected as TRL and verl), ``dr_grpo`` (:math:`A=r-\hat p`).
    """

    name: str
    advantage: Advantage
    aggregation: Aggregation
    source: str


#: the algorithms of the paper's Section 4 (reconstruction §4.4) plus RLOO and DAPO
ALGORITHMS: Final[dict[str, AlgorithmSpec]] = {
    "reinforce": AlgorithmSpec("reinforce", "reinforce", "sequence", "reconstruction §4.4 (DERIVED)"),
    "rloo": AlgorithmSpec("rloo", "rloo", "sequence", "reconstruction §4.4 (DERIVED)"),
    "grpo": AlgorithmSpec("grpo", "grpo", "seq_mean_token_mean", "reconstruction §4.4; engines.md (TRL grpo)"),
    "dr_grpo": AlgorithmSpec("dr_grpo", "dr_grpo", "constant", "reconstruction §4.4; engines.md (TRL dr_grpo)"),
    "dapo": AlgorithmSpec("dapo", "grpo", "token_mean", "engines.md (TRL dapo, verl token-mean)"),
}


def _spec(algorithm: str) -> AlgorithmSpec:
    if algorithm not in ALGORITHMS:
        raise GradgapValueError(f"algorithm={algorithm!r}: unknown; choose one of {', '.join(ALGORITHMS)}",
                                field="algorithm", value=algorithm)
    return ALGORITHMS[algorithm]


def _check_G(G: int) -> int:
    if isinstance(G, bool) or not isinstance(G, int) or G < 2:
        raise GradgapValueError(f"G={G!r}: the group size must be an integer >= 2", field="G", value=G)
    return G


def advantages(algorithm: str, k: int, G: int, *, eps: sp.Expr | int = 0) -> tuple[sp.Expr, sp.Expr]:
    r"""The advantages :math:`(a(1,k), a(0,k))` of a success and of a failure in a group with k successes.

    .. math::  \text{GRPO: } a(1,k)=\frac{1-k/G}{\hat\sigma_k+\epsilon},\quad a(0,k)=\frac{-k/G}{\hat\sigma_k+\epsilon},
               \quad \hat\sigma_k=\sqrt{\tfrac{k(G-k)}{G(G-1)}}\ (\text{zero when }k\in\{0,G\}).

    Source: reconstruction §4.4 (DERIVED); engines.md (TRL ``scale_rewards="group"``).

    >>> advantages("grpo", 1, 2)
    (sqrt(2)/2, -sqrt(2)/2)
    """
    spec = _spec(algorithm)
    G = _check_G(G)
    if not 0 <= k <= G:
        raise GradgapValueError(f"k={k!r}: must lie in 0..G={G}", field="k", value=k)
    kk, GG = sp.Integer(k), sp.Integer(G)
    phat = kk / GG
    if spec.advantage == "reinforce":
        return sp.Integer(1), sp.Integer(0)
    if spec.advantage == "rloo":
        return (GG - kk) / (GG - 1), -kk / (GG - 1)
    if spec.advantage == "dr_grpo":
        return 1 - phat, -phat
    # grpo: both advantages vanish at k in {0, G} (r - mean = 0), whatever eps
    if k in (0, G):
        return sp.Integer(0), sp.Integer(0)
    sigma = sp.sqrt(kk * (GG - kk) / (GG * (GG - 1)))
    return (1 - phat) / (sigma + eps), -phat / (sigma + eps)


def _pmf(k: int, G: int, JJ: sp.Expr) -> sp.Expr:
    return sp.binomial(G, k) * JJ**k * (1 - JJ) ** (G - k)


def advantage_masses(algorithm: str, G: int, *, JJ: sp.Expr = J, eps: sp.Expr | int = 0) -> tuple[sp.Expr, sp.Expr]:
    r"""FADE's expected advantage masses per sample, as finite sums over :math:`k\sim\mathrm{Bin}(G,J)`:

    .. math::  m_S=\sum_{k=0}^G\binom Gk J^k(1-J)^{G-k}\,\tfrac kG\,a(1,k),\qquad
               m_F=-\sum_{k=0}^G\binom Gk J^k(1-J)^{G-k}\,\tfrac{G-k}G\,a(0,k).

    Source: reconstruction §7 (DERIVED bridge to FADE's :math:`m_S, m_F`).

    >>> advantage_masses("reinforce", 2)
    (J, 0)
    """
    G = _check_G(G)
    m_s = sp.Integer(0)
    m_f = sp.Integer(0)
    for k in range(G + 1):
        a_pos, a_neg = advantages(algorithm, k, G, eps=eps)
        m_s += _pmf(k, G, JJ) * sp.Rational(k, G) * a_pos
        m_f -= _pmf(k, G, JJ) * sp.Rational(G - k, G) * a_neg
    return sp.expand(m_s), sp.expand(m_f)


def _aggregation_factor(spec: AlgorithmSpec, T: int | sp.Expr) -> sp.Expr:
    return sp.Integer(1) if spec.aggregation == "sequence" else 1 / sp.sympify(T)


def gain(algorithm: str, G: int, *, JJ: sp.Expr = J, T: int | sp.Expr = 1, eps: sp.Expr | int = 0) -> sp.Expr:
    r"""The scalar gain :math:`\gamma(J,G)` with :math:`\mathbb E[w]=\gamma\,g` for a fixed-length family.

    .. math::  \gamma(J,G)=\frac{c_T}{G}\sum_{k=0}^{G}\binom Gk J^k(1-J)^{G-k}
               \big[k(1-J)\,a(1,k)-(G-k)J\,a(0,k)\big],

    :math:`c_T=1` for the sequence-level sum, :math:`1/T` for the token-level aggregations. Closed forms
    (proved by :func:`prove_centred_mass_closed_form`): REINFORCE and RLOO :math:`J(1-J)`; Dr. GRPO
    :math:`\frac{G-1}{G}J(1-J)/T`; GRPO and DAPO
    :math:`\frac1T\sqrt{\frac{G-1}{G}}\,\frac1G\sum_{k=1}^{G-1}\binom Gk J^k(1-J)^{G-k}\sqrt{k(G-k)}` at
    :math:`\epsilon=0`.

    Source: reconstruction §4.4 (DERIVED; the paper states only the population gains).

    >>> gain("dr_grpo", 2, T=1)
    -J*(J - 1)/2
    """
    spec = _spec(algorithm)
    G = _check_G(G)
    total = sp.Integer(0)
    for k in range(G + 1):
        a_pos, a_neg = advantages(algorithm, k, G, eps=eps)
        total += _pmf(k, G, JJ) * (k * (1 - JJ) * a_pos - (G - k) * JJ * a_neg)
    return sp.factor(sp.expand(total * _aggregation_factor(spec, T) / G))


def gain_value(algorithm: str, G: int, J_value: float | str, *, T: int = 1, eps: float | str = 0,
               digits: int = 50) -> sp.Float:
    r"""The finite sum of :func:`gain` evaluated term by term at a number :math:`J` with ``digits`` digits
    (no symbolic expansion: fast for large :math:`G`).

    Source: reconstruction §4.4 (DERIVED).

    >>> float(gain_value("rloo", 64, 0.25))
    0.1875
    """
    spec = _spec(algorithm)
    G = _check_G(G)
    JJ = sp.Float(J_value, digits + 10)
    e = sp.Float(eps, digits + 10) if eps else 0
    total = sp.Float(0, digits + 10)
    for k in range(G + 1):
        a_pos, a_neg = advantages(algorithm, k, G, eps=e)
        term = _pmf(k, G, JJ) * (k * (1 - JJ) * a_pos - (G - k) * JJ * a_neg)
        total += sp.N(term, digits + 10)
    return sp.N(total * _aggregation_factor(spec, T) / G, digits)


def gain_limit(algorithm: str, *, JJ: sp.Expr = J, T: int | sp.Expr = 1) -> sp.Expr:
    r"""The :math:`G\to\infty` limit of :func:`gain` (fixed :math:`J\in(0,1)`, :math:`\epsilon=0`).

    .. math::  \gamma_\infty = J(1-J)\ (\text{REINFORCE, RLOO}),\quad J(1-J)/T\ (\text{Dr. GRPO}),\quad
               \sqrt{J(1-J)}/T\ (\text{GRPO, DAPO}).

    For GRPO: :math:`|\mathbb E\sqrt{\hat p(1-\hat p)}-\sqrt{J(1-J)}|\le\mathbb E|\hat p-J|/\sqrt{J(1-J)}
    \le 1/\sqrt G` (:func:`prove_grpo_limit_rate`).

    Source: reconstruction §4.4 (DERIVED).

    >>> gain_limit("grpo", T=2)
    sqrt(J)*sqrt(1 - J)/2
    """
    spec = _spec(algorithm)
    base = sp.sqrt(JJ) * sp.sqrt(1 - JJ) if spec.advantage == "grpo" else JJ * (1 - JJ)
    return base * _aggregation_factor(spec, T)


def grpo_epsilon_relative_bound(G: int, eps: float | sp.Expr) -> sp.Expr:
    r"""Upper bound on the relative change of the GRPO/DAPO gain caused by TRL's :math:`\epsilon`:

    .. math::  0\le\frac{\gamma_0-\gamma_\epsilon}{\gamma_0}\le\frac{\epsilon\sqrt G}{1+\epsilon\sqrt G},

    because each group's mass is multiplied by :math:`\hat\sigma_k/(\hat\sigma_k+\epsilon)` and
    :math:`\hat\sigma_k\ge\hat\sigma_1=1/\sqrt G` for :math:`0<k<G`.

    Source: DERIVED here (engines.md gives TRL's ``std + 1e-4``).

    >>> grpo_epsilon_relative_bound(4, sp.Rational(1, 2))
    1/2
    """
    G = _check_G(G)
    e = sp.sympify(eps)
    return sp.nsimplify(e * sp.sqrt(G) / (1 + e * sp.sqrt(G)))


def _is_zero(expr: sp.Expr) -> bool:
    residual = sp.simplify(sp.expand(expr))
    return residual == 0


def prove_mass_form(algorithm: str, G: int, *, eps: sp.Expr | int = 0) -> IdentityResult:
    r"""Prove :math:`\gamma=c_T[(1-J)m_S+J m_F]` and, for centred advantages, :math:`m_S=m_F` (every group
    has :math:`k\,a(1,k)+(G-k)\,a(0,k)=0`), as polynomial identities in :math:`J`.

    Source: reconstruction §7 (DERIVED).

    >>> prove_mass_form("rloo", 3).proved
    True
    """
    spec = _spec(algorithm)
    m_s, m_f = advantage_masses(algorithm, G, eps=eps)
    lhs = gain(algorithm, G, eps=eps, T=1) / _aggregation_factor(spec, 1)
    ok = _is_zero(lhs - ((1 - J) * m_s + J * m_f))
    centred = spec.advantage != "reinforce"
    if centred:
        ok = ok and all(
            _is_zero(k * advantages(algorithm, k, G, eps=eps)[0] + (G - k) * advantages(algorithm, k, G, eps=eps)[1])
            for k in range(G + 1)
        )
    what = "gain = (1-J) m_S + J m_F" + (" and m_S = m_F" if centred else "")
    return IdentityResult(f"mass_form[{algorithm},G={G}]", ok, f"{what}, polynomial identity in J, G={G}")


def prove_centred_mass_closed_form(algorithm: str, G: int | None = None) -> IdentityResult:
    r"""Prove the closed forms of the gains (sequence normalisation :math:`c_T=1`).

    With ``G=None`` the proof is for symbolic :math:`G` through the probability generating function
    :math:`\Phi(x)=(1-J+Jx)^G`: :math:`\mathbb E k=\Phi'(1)`, :math:`\mathbb E k(k-1)=\Phi''(1)`, so
    :math:`\mathbb E[k(G-k)]=G(G-1)J(1-J)`, which gives REINFORCE/RLOO :math:`J(1-J)`, Dr. GRPO
    :math:`\frac{G-1}GJ(1-J)`. With an integer ``G`` the finite sum of :func:`gain` is compared instead.
    GRPO has no closed form beyond the finite sum; for it the claim proved is the finite sum itself
    (:func:`prove_expected_update_by_enumeration`).

    Source: reconstruction §4.4 (DERIVED).

    >>> prove_centred_mass_closed_form("dr_grpo").proved
    True
    """
    spec = _spec(algorithm)
    target = {"reinforce": J * (1 - J), "rloo": J * (1 - J)}
    if spec.advantage not in ("reinforce", "rloo", "dr_grpo"):
        raise GradgapValueError(f"algorithm={algorithm!r}: no closed form beyond the finite sum",
                                field="algorithm", value=algorithm)
    if G is not None:
        closed = target.get(spec.advantage, sp.Rational(G - 1, G) * J * (1 - J))
        ok = _is_zero(gain(algorithm, G, T=1) / _aggregation_factor(spec, 1) - closed)
        return IdentityResult(f"closed_form[{algorithm},G={G}]", ok, f"finite sum = {closed}, G={G}")
    Gs = sp.Symbol("G", positive=True, integer=True)
    x = sp.Symbol("x")
    pgf = (1 - J + J * x) ** Gs
    Ek = sp.diff(pgf, x).subs(x, 1)
    Ekk1 = sp.diff(pgf, x, 2).subs(x, 1)
    Ek2 = Ekk1 + Ek
    E_k_Gmk = Gs * Ek - Ek2
    ok = _is_zero(E_k_Gmk - Gs * (Gs - 1) * J * (1 - J))
    if spec.advantage == "reinforce":  # gain = E[k](1-J)/G
        ok = ok and _is_zero(Ek * (1 - J) / Gs - J * (1 - J))
    # centred: gain = m_S = E[k a(1,k)]/G; RLOO a(1,k) = (G-k)/(G-1); Dr. GRPO a(1,k) = (G-k)/G
    elif spec.advantage == "rloo":
        ok = ok and _is_zero(E_k_Gmk / (Gs * (Gs - 1)) - J * (1 - J))
    else:
        ok = ok and _is_zero(E_k_Gmk / Gs**2 - (Gs - 1) / Gs * J * (1 - J))
    return IdentityResult(f"closed_form[{algorithm},G symbolic]", ok,
                       "E[k(G-k)] = G(G-1)J(1-J) from the Binomial PGF, symbolic G")


def prove_grpo_limit_rate(G: int) -> IdentityResult:
    r"""The ingredients of :math:`|\mathbb E\sqrt{\hat p(1-\hat p)}-\sqrt{J(1-J)}|\le 1/\sqrt G`, proved
    symbolically: (i) :math:`\mathbb E(\hat p-J)^2=J(1-J)/G` (finite sum, this ``G``), (ii)
    :math:`|x(1-x)-y(1-y)|\le|x-y|` on :math:`[0,1]^2` (:math:`x(1-x)-y(1-y)=(x-y)(1-x-y)`), and
    :math:`|\sqrt a-\sqrt b|\le|a-b|/\sqrt b`; with Cauchy-Schwarz this gives the bound.

    Source: DERIVED here.

    >>> prove_grpo_limit_rate(3).proved
    True
    """
    G = _check_G(G)
    second = sum(_pmf(k, G, J) * (sp.Rational(k, G) - J) ** 2 for k in range(G + 1))
    x, y = sp.symbols("x y")
    ok1 = _is_zero(second - J * (1 - J) / G)
    ok2 = _is_zero(x * (1 - x) - y * (1 - y) - (x - y) * (1 - x - y))
    return IdentityResult(f"grpo_limit_rate[G={G}]", ok1 and ok2,
                       "E(p-J)^2 = J(1-J)/G and x(1-x)-y(1-y) = (x-y)(1-x-y)")


def _normalisers(spec: AlgorithmSpec, group: Sequence[int], L: Sequence[sp.Expr]) -> list[sp.Expr]:
    r"""The aggregation weights :math:`n_j` of the responses of one ordered group (indices into ``L``, the
    response lengths): ``token_mean`` :math:`\frac1G\sum_i L_{o_i}`, ``seq_mean_token_mean`` :math:`L_{o_j}`,
    ``constant`` :math:`\max L`, ``sequence`` 1.

    >>> _normalisers(_spec("dapo"), (0, 1), [sp.Integer(2), sp.Integer(4)])
    [3, 3]
    """
    G = len(group)
    if spec.aggregation == "token_mean":
        return [sum(L[i] for i in group) / G] * G
    if spec.aggregation == "seq_mean_token_mean":
        return [L[i] for i in group]
    if spec.aggregation == "constant":
        return [max(L)] * G
    return [sp.Integer(1)] * G


@cache
def _enumeration_residual(algorithm: str, G: int, n_success: int, n_fail: int,
                          lengths: tuple[int, ...] | None) -> sp.Expr:
    spec = _spec(algorithm)
    N = n_success + n_fail
    p = sp.symbols(f"p0:{N}", positive=True)
    sig = sp.symbols(f"s0:{N}", real=True)
    rewards = [1] * n_success + [0] * n_fail
    L = [sp.Integer(1)] * N if lengths is None else [sp.Integer(x) for x in lengths]
    # constraints: sum p = 1, sum p s = 0 (score has mean zero): eliminate the last ones
    p_last = 1 - sum(p[:-1])
    s_last = -sum(p[i] * sig[i] for i in range(N - 1)) / p_last
    P = [*p[:-1], p_last]
    S = [*sig[:-1], s_last]
    Ew = sp.Integer(0)
    for tup in product(range(N), repeat=G):
        k = sum(rewards[i] for i in tup)
        a_pos, a_neg = advantages(algorithm, k, G)
        norm = _normalisers(spec, tup, L)
        upd = sum((a_pos if rewards[i] else a_neg) * S[i] / norm[j] for j, i in enumerate(tup)) / G
        Ew += sp.Mul(*[P[i] for i in tup]) * upd
    Jx = sum(P[:n_success])
    g = sum(P[i] * S[i] for i in range(n_success)) / Jx - sum(P[i] * S[i] for i in range(n_success, N)) / (1 - Jx)
    T = max(L)
    return sp.together(sp.expand(Ew - gain(algorithm, G, JJ=Jx, T=T) * g))


def prove_expected_update_by_enumeration(algorithm: str, G: int, *, n_success: int = 1, n_fail: int = 2,
                                         lengths: Sequence[int] | None = None) -> IdentityResult:
    r"""Prove :math:`\mathbb E[w]=\gamma(J,G)\,g` by summing over all :math:`N^G` ordered groups of a
    generic finite response space: :math:`N` responses with symbolic probabilities :math:`p_i`
    (:math:`\sum p_i=1`) and symbolic scalar scores :math:`\sigma_i` (one coordinate of the score; the
    identity is linear in it) with :math:`\sum_i p_i\sigma_i=0`. :math:`g=\sum_{i\in S}p_i\sigma_i/J-
    \sum_{i\in F}p_i\sigma_i/(1-J)`. Independent of the conditional-expectation derivation of :func:`gain`.

    ``lengths`` (one per response) tests the fixed-length hypothesis: with unequal lengths the
    token-level residual is *not* zero (then ``proved`` is False and ``detail`` says so).

    Source: reconstruction §4.4 (DERIVED).

    >>> prove_expected_update_by_enumeration("grpo", 2).proved
    True
    """
    G = _check_G(G)
    lens = None if lengths is None else tuple(int(x) for x in lengths)
    if lens is not None and len(lens) != n_success + n_fail:
        raise GradgapValueError(f"lengths={lens!r}: need one length per response ({n_success + n_fail})",
                                field="lengths", value=lens)
    resid = _enumeration_residual(algorithm, G, n_success, n_fail, lens)
    num = sp.expand(sp.numer(resid))
    ok = num == 0
    return IdentityResult(
        f"expected_update[{algorithm},G={G},N={n_success}+{n_fail}]",
        ok,
        f"E[w] - gain*g over all {(n_success + n_fail) ** G} groups "
        + ("= 0 identically" if ok else "is a non-zero rational function")
        + ("" if lens is None else f" (lengths {lens})"),
    )


def variable_length_expected_update(algorithm: str, G: int, probs: Sequence[sp.Expr],
                                    scores: Sequence[Sequence[sp.Expr]], rewards: Sequence[int],
                                    lengths: Sequence[int], *, eps: sp.Expr | int = 0) -> sp.Matrix:
    r"""Exact :math:`\mathbb E[w]` by enumeration of all ordered groups of a finite response space given by
    explicit (exact) probabilities, scores, rewards and lengths: used to re-evaluate a numeric
    counterexample to ":math:`\mathbb E[w]\parallel g`" in exact arithmetic.

    .. math::  \mathbb E[w]=\sum_{(o_1..o_G)}\prod_i\pi(o_i)\;\frac1G\sum_i\frac{A_i}{n_i}s(o_i).

    Source: reconstruction §4.4 (DERIVED).

    >>> variable_length_expected_update("reinforce", 2, [sp.Rational(1, 2)] * 2, [[1], [-1]], [1, 0], [1, 1])
    Matrix([[1/2]])
    """
    spec = _spec(algorithm)
    G = _check_G(G)
    N = len(probs)
    n = len(scores[0])
    S = [sp.Matrix(list(s)) for s in scores]
    L = [sp.Integer(x) for x in lengths]
    Ew = sp.zeros(n, 1)
    for tup in product(range(N), repeat=G):
        k = sum(rewards[i] for i in tup)
        a_pos, a_neg = advantages(algorithm, k, G, eps=eps)
        if a_pos == 0 and a_neg == 0:
            continue
        norm = _normalisers(spec, tup, L)
        weight = sp.Mul(*[probs[i] for i in tup]) / G
        for j, i in enumerate(tup):
            Ew += weight * (a_pos if rewards[i] else a_neg) / norm[j] * S[i]
    return Ew


def eos_policy_exact(position_probs: Sequence[Sequence[sp.Expr]], wrong: Sequence[int], eos: int = 0
                     ) -> tuple[list[sp.Expr], list[list[sp.Expr]], list[int], list[int]]:
    r"""The response space of the variable-length EOS policy in exact arithmetic: per-position token
    probabilities :math:`\pi_t` (exact, e.g. rationals; logits :math:`\log\pi_t`), responses that stop at
    ``eos`` or after :math:`T_{\max}` tokens, reward 1 iff no token lies in ``wrong``.
    Returns (probabilities, scores, rewards, lengths) with :math:`s(o)_{t,\cdot}=e_{o_t}-\pi_t` for
    :math:`t<|o|` and 0 after the end.

    Source: reconstruction §1 (score); the policy is this project's construction.

    >>> probs, _, rewards, lengths = eos_policy_exact([[sp.Rational(1, 2)] * 2] * 2, [1])
    >>> sum(probs), rewards, lengths
    (1, [1, 0, 0], [1, 2, 2])
    """
    P = [[sp.nsimplify(x) for x in row] for row in position_probs]
    T, V = len(P), len(P[0])
    body = [v for v in range(V) if v != eos]
    responses: list[tuple[int, ...]] = []
    for L in range(1, T + 1):
        for prefix in product(body, repeat=L - 1):
            responses.append((*prefix, eos))
            if L == T:
                responses.extend((*prefix, v) for v in body)
    probs, scores = [], []
    for o in responses:
        probs.append(sp.Mul(*[P[t][v] for t, v in enumerate(o)]))
        s = [sp.Integer(0)] * (T * V)
        for t, v in enumerate(o):
            for u in range(V):
                s[t * V + u] = (1 if u == v else 0) - P[t][u]
        scores.append(s)
    rewards = [int(not any(v in wrong for v in o)) for o in responses]
    return probs, scores, rewards, [len(o) for o in responses]


def parallel_residual(u: sp.Matrix, v: sp.Matrix) -> sp.Expr:
    r"""The largest :math:`2\times2` minor :math:`|u_iv_j-u_jv_i|` (exact): zero iff :math:`u\parallel v`.

    >>> parallel_residual(sp.Matrix([1, 2]), sp.Matrix([2, 4]))
    0
    """
    n = len(u)
    minors = [sp.nsimplify(sp.expand(u[i] * v[j] - u[j] * v[i])) for i in range(n) for j in range(i + 1, n)]
    return max((abs(m) for m in minors), key=lambda m: float(m), default=sp.Integer(0))


#: the exponent of Theorem 1's bound, :math:`e^{-M/2}`
HALF: Final = sp.Rational(1, 2)


def prove_logit_inversion(exponent: sp.Expr | int = HALF) -> IdentityResult:
    r"""Prove that :math:`\ell_K\ge\ell_0+M/2` is equivalent to the bound of Theorem 1,

    .. math::  J_K\ \ge\ \frac{J_0}{J_0+(1-J_0)e^{-M/2}},

    by inverting the logit: :math:`J=\sigma(\ell)=1/(1+e^{-\ell})` is increasing, and
    :math:`\sigma(\ell_0+M/2)` with :math:`e^{-\ell_0}=(1-J_0)/J_0` simplifies to the right-hand side
    (the residual is shown to be 0, and :math:`\sigma'=\sigma(1-\sigma)>0`).

    Source: reconstruction §4.1 (DERIVED; the bound is QUOTED-2nd).

    >>> prove_logit_inversion().proved
    True
    """
    J0 = sp.Symbol("J_0", positive=True)
    M = sp.Symbol("M", nonnegative=True)
    ell = sp.Symbol("ell", real=True)
    sigma = 1 / (1 + sp.exp(-ell))
    ell0 = sp.log(J0 / (1 - J0))
    rhs = J0 / (J0 + (1 - J0) * sp.exp(-sp.sympify(exponent) * M))
    residual = sigma.subs(ell, ell0 + M / 2) - rhs
    ok_value = _is_zero(sp.simplify(residual))
    ok_mono = _is_zero(sp.diff(sigma, ell) - sigma * (1 - sigma))
    ok_inverse = _is_zero(sp.simplify(sigma.subs(ell, ell0) - J0))
    detail = "sigma(ell_0 + M/2) = J_0/(J_0 + (1-J_0) e^{-M/2}), sigma' = sigma(1-sigma) > 0"
    if not ok_value:
        at = residual.subs({J0: sp.Rational(1, 2), M: 2})
        detail = f"residual at J_0=1/2, M=2 is {sp.nsimplify(sp.simplify(at))} = {sp.N(at, 20)} (not 0)"
    return IdentityResult(f"logit_inversion[exponent={exponent}]", ok_value and ok_mono and ok_inverse, detail)


def prove_telescoping(K: int, step_factor: sp.Expr | int = 2) -> IdentityResult:
    r"""Prove the one-step-to-trajectory step of Theorem 1 for ``K`` steps: with
    :math:`0\le\eta_k\le[\Delta\mu_k]_+/(2C)` and :math:`\Delta\ell_k\ge\eta_k\Delta\mu_k-\eta_k^2C`,
    :math:`\Delta\ell_k\ge\eta_k[\Delta\mu_k]_+/2`, so :math:`\ell_K-\ell_0\ge M_K/2`.

    The per-step inequality reduces to the sign-definite form
    :math:`\eta\Delta\mu-\eta^2C-\eta\Delta\mu/2=\eta(\Delta\mu-2\eta C)/2\ge0` (product of two
    non-negative factors under the hypotheses; when :math:`\Delta\mu\le0` the hypothesis forces
    :math:`\eta=0`). SymPy checks the factorisation and the telescoped sum for this ``K``.

    Source: reconstruction §4.1 (DERIVED; eq. (16)-type).

    >>> prove_telescoping(3).proved
    True
    """
    eta, dmu, C = sp.symbols("eta Delta_mu C", positive=True)
    slack = eta * dmu - eta**2 * C - eta * dmu / 2
    ok_factor = _is_zero(slack - eta * (dmu - 2 * eta * C) / 2)
    # at the largest allowed step the slack is exactly zero: the constant 2 cannot be improved here
    at_max = sp.simplify(slack.subs(eta, dmu / (sp.sympify(step_factor) * C)))
    ok_tight = at_max.is_nonnegative is True  # the largest allowed step keeps the slack >= 0
    etas = sp.symbols(f"eta0:{K}", nonnegative=True)
    dmus = sp.symbols(f"dmu0:{K}", positive=True)
    lb = sp.symbols(f"b0:{K}", real=True)  # per-step lower bounds on Delta ell
    ell = sp.Symbol("ell_0", real=True)
    for k in range(K):
        ell = ell + lb[k]
    telescoped = ell - sp.Symbol("ell_0", real=True) - sum(lb)
    M = sum(e * d for e, d in zip(etas, dmus, strict=True))
    ok_sum = _is_zero(telescoped) and _is_zero(sum(e * d / 2 for e, d in zip(etas, dmus, strict=True)) - M / 2)
    detail = "eta*dmu - eta^2 C - eta*dmu/2 = eta(dmu - 2 eta C)/2 >= 0; sum telescopes to M/2"
    if not ok_tight:
        detail = f"at the largest allowed step eta = dmu/({step_factor} C) the slack is {at_max} < 0"
    return IdentityResult(f"telescoping[K={K},step=dmu/({step_factor}C)]", ok_factor and ok_tight and ok_sum, detail)
