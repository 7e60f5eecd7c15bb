r"""Built-in claims on the expected update of group policy-gradient algorithms (reconstruction §4.4, §7).

==================================  ===========================================================================
id                                  statement
==================================  ===========================================================================
``gain-<algorithm>``                :math:`\mathbb E[w]=\gamma(J,G)\,g` for fixed-length families, the gain an
                                    exact finite sum over :math:`k\sim\mathrm{Bin}(G,J)` (5 algorithms)
``gain-limits``                     :math:`\gamma\to J(1-J)` (REINFORCE, RLOO, Dr. GRPO), :math:`\sqrt{J(1-J)}`
                                    (GRPO, DAPO) as :math:`G\to\infty`; GRPO within :math:`1/\sqrt G`
``advantage-mass-form``             :math:`\mathbb E[w]=[(1-J)m_S+Jm_F]\,g/T`
``grpo-epsilon-bound``              TRL's :math:`\epsilon` changes the GRPO gain by at most
                                    :math:`\epsilon\sqrt G/(1+\epsilon\sqrt G)` (relative)
``sequence-level-parallel-varlen``  REINFORCE, RLOO, Dr. GRPO keep :math:`\mathbb E[w]\parallel g` with
                                    variable lengths
``token-level-parallel-fixed``      GRPO, DAPO: :math:`\mathbb E[w]\parallel g` when all lengths are equal
``token-level-parallel-varlen``     expect **fails**: with lengths that vary and correlate with success, GRPO's
                                    :math:`1/|o|` and DAPO's token mean turn :math:`\mathbb E[w]` away from g
==================================  ===========================================================================

Evidence: symbolic enumeration of all ordered groups of a generic response space (PROVED for the stated
sizes, listed as ``G`` in the figures); exact enumeration with the independent numerics
(:mod:`gradgap.numerics.algorithms`) over Hypothesis-drawn instances (TESTED); the refutation is an exact (rational)
instance. ``gain-limits`` is CHECKED: its closed forms are proved for symbolic G, but the GRPO rate
:math:`1/\sqrt G` is checked on a grid of the theory's gains (its ingredients proved for G = 2, 4, 8 only),
and its checks are parts of the statement (``aggregate="weakest"``), so the claim reports the weaker. Checks
on fixed instances or on a theory-only grid (``grpo-epsilon-bound``, ``token-level-parallel-fixed``, the
numeric masses) are ``CHECKED`` on that many, never ``TESTED``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Final

import mpmath
import numpy as np
import sympy as sp
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gradgap.numerics import algorithms as na
from gradgap.numerics.algorithms import EosTokens
from gradgap.proofs_check import families
from gradgap.proofs_check.claims import Claim, Evidence, Profile, Status, Strength, mutant_claim, named_check
from gradgap.proofs_check.search import instance_dict, instance_strategy
from gradgap.proofs_check.tolerances import ANGLE_DEG, EXACT, ROUNDING
from gradgap.theory import algorithms as ta
from gradgap.theory.instances import Instance, SharedTokens, SoftmaxBandit, TokenSequence

__all__ = ["VARLEN_PROBS", "claims"]

#: the families the numeric checks draw from, with the sizes (small enough to enumerate N**G groups)
_SIZES: Final[dict[str, dict[str, tuple[int, int]]]] = {
    "softmax": {"K": (2, 4)},
    "tokens": {"T": (1, 2), "V": (2, 3)},
    "shared_tokens": {"d": (1, 2), "T": (1, 2), "V": (2, 3)},
}
#: exact per-position probabilities (EOS, good, wrong) of the variable-length counterexample, T_max = 2
VARLEN_PROBS: Final[tuple[tuple[sp.Rational, ...], ...]] = (
    (sp.Rational(1, 2), sp.Rational(1, 4), sp.Rational(1, 4)),
    (sp.Rational(1, 3), sp.Rational(1, 3), sp.Rational(1, 3)),
)
_ALGOS: Final[tuple[str, ...]] = ("reinforce", "rloo", "grpo", "dr_grpo", "dapo")
_SOURCE: Final[str] = "reconstruction §4.4 (DERIVED); §7 (DERIVED, FADE bridge)"

GainFn = Callable[[str, int, float, int], float]


# ------------------------------------------------------------------ gains from the theory side


@lru_cache(maxsize=256)
def _gain_fn(algorithm: str, G: int, T: int) -> Callable[[Any], Any]:
    return sp.lambdify(ta.J, ta.gain(algorithm, G, T=T), modules="mpmath")


def theory_gain(algorithm: str, G: int, J: float, T: int) -> float:
    r"""The closed-form gain :math:`\gamma(J,G)` of :mod:`gradgap.theory.algorithms`, evaluated at a float J."""
    with mpmath.workdps(30):
        return float(_gain_fn(algorithm, G, T)(mpmath.mpf(J)))


def _length(inst: Instance) -> int:
    return int(getattr(inst, "T", 1))


# ------------------------------------------------------------------ the TESTED check: enumeration vs gain


def _instance_and_group() -> st.SearchStrategy[tuple[Instance, int]]:
    @st.composite
    def draw(d: st.DrawFn) -> tuple[Instance, int]:
        fam = d(st.sampled_from(sorted(_SIZES)))
        inst = d(instance_strategy(fam, _SIZES[fam], cap=4))
        G = d(st.integers(2, 3 if len(inst.theta) > 4 or getattr(inst, "T", 1) > 1 else 4))
        return inst, G

    return draw()


def _hp_gap(inst: Instance) -> tuple[Any, list[Any]]:
    """J and g from the theory side at 50 digits."""

    mod = families.theory_module(inst)
    J = mod.success_rate(inst).evalf(50)
    g = [x.evalf(50) for x in mod.gradient_gap(inst)]
    return J, g


def _gain_check(algorithms: Sequence[str], gain: GainFn, name: str) -> Callable[[Profile], Evidence]:
    r"""Hypothesis over instances and G: :math:`\mathbb E[w]` by exact enumeration of all ordered groups
    (numerics) against ``gain(J, G) * g``; a float mismatch is re-checked with J and g at 50 digits."""

    def run(profile: Profile) -> Evidence:
        found: list[dict[str, Any]] = []
        stats = {"examples": 0, "worst_rel_error": 0.0}
        seen: set[tuple[Instance, int]] = set()

        def body(case: tuple[Instance, int]) -> None:
            inst, G = case
            fp = na.finite_policy(inst)
            if not 1e-6 < fp.J < 1 - 1e-6:
                return
            g = np.asarray(families.numerics_module(inst).gradient_gap(inst), dtype=float)
            J = float(families.numerics_module(inst).success_rate(inst))
            if not float(np.linalg.norm(g)) > 1e-9:
                return
            seen.add(case)
            scale = float(np.linalg.norm(g)) * fp.J * (1 - fp.J)
            for alg in algorithms:
                stats["examples"] += 1
                Ew = na.expected_update(fp, alg, G)
                err = float(np.max(np.abs(Ew - gain(alg, G, J, _length(inst)) * g))) / scale
                stats["worst_rel_error"] = max(stats["worst_rel_error"], err)
                if err <= EXACT[0]:
                    continue
                Jh, gh = _hp_gap(inst)  # 50-digit re-evaluation of the right-hand side
                rhs = [float(gain(alg, G, float(Jh), _length(inst))) * float(x) for x in gh]
                err_hp = float(np.max(np.abs(Ew - np.asarray(rhs)))) / scale
                if err_hp > EXACT[0]:

                    found.append({"algorithm": alg, "G": G, "instance": instance_dict(inst),
                                  "J": mpmath.nstr(Jh, 20), "E[w]": [float(x) for x in Ew], "rhs": rhs,
                                  "relative_error": err_hp})
                    raise AssertionError(alg)

        test = settings(max_examples=max(6, profile.examples // 4), derandomize=profile.derandomize,
                        database=None, deadline=None, print_blob=False,
                        phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))(
            given(_instance_and_group())(body))
        try:
            test()
        except AssertionError:
            if not found:
                raise
            return Evidence.fails(Strength.TESTED, found[0], stats,
                                  detail=f"{name}: E[w] != gain*g beyond rounding (re-checked at 50 digits)")
        return Evidence.sampled(len(seen), profile, stats,
                                detail=f"{stats['examples']} (instance, G, algorithm) cases, exact enumeration",
                                what="distinct (instance, G) pairs")

    return run


# ------------------------------------------------------------------ the PROVED checks


def _proof_check(algorithm: str, sizes: Sequence[int] = (2, 3, 4)) -> Callable[[Profile], Evidence]:
    def run(profile: Profile) -> Evidence:
        results = [ta.prove_expected_update_by_enumeration(algorithm, G, n_success=s, n_fail=f)
                   for G in sizes for s, f in ((1, 2), (2, 1))]
        results.append(ta.prove_mass_form(algorithm, max(sizes)))
        if ta.ALGORITHMS[algorithm].advantage in ("reinforce", "rloo", "dr_grpo"):
            results.append(ta.prove_centred_mass_closed_form(algorithm))
        bad = [r.name for r in results if not r.proved]
        figures = {"identities": len(results), "G": list(sizes), "response_spaces": ["1+2", "2+1"]}
        if bad:
            return Evidence.undecided(f"not reduced to 0: {', '.join(bad)}", figures)
        return Evidence.holds(Strength.PROVED, figures,
                              detail="E[w] - gain*g = 0 over all ordered groups of a generic 3-response space "
                                     f"(symbolic probabilities and scores), G in {list(sizes)}")

    return run


_GAIN_TEX: Final[dict[str, str]] = {
    "reinforce": r"J(1-J)",
    "rloo": r"J(1-J)",
    "dr_grpo": r"\frac{G-1}{G}\,\frac{J(1-J)}{T}",
    "grpo": r"\frac1T\sqrt{\frac{G-1}{G}}\,\frac1G\sum_{k=1}^{G-1}\binom Gk J^k(1-J)^{G-k}\sqrt{k(G-k)}",
    "dapo": r"\frac1T\sqrt{\frac{G-1}{G}}\,\frac1G\sum_{k=1}^{G-1}\binom Gk J^k(1-J)^{G-k}\sqrt{k(G-k)}",
}

#: wrong gains: (kind, function) per algorithm; each must be rejected by the numeric check
_WRONG: Final[dict[str, tuple[tuple[str, GainFn], ...]]] = {
    "reinforce": (("drop (1-J)", lambda a, G, J, T: J),
                  ("exponent J**2", lambda a, G, J, T: J**2 * (1 - J))),
    "rloo": (("Dr. GRPO factor (G-1)/G", lambda a, G, J, T: (G - 1) / G * J * (1 - J)),
             ("drop J", lambda a, G, J, T: 1 - J)),
    "dr_grpo": (("G->infinity gain at finite G", lambda a, G, J, T: J * (1 - J) / T),
                ("drop 1/T", lambda a, G, J, T: theory_gain(a, G, J, T) * T)),
    "grpo": (("G->infinity gain sqrt(J(1-J)) at finite G", lambda a, G, J, T: math.sqrt(J * (1 - J)) / T),
             ("std without Bessel correction", lambda a, G, J, T: theory_gain(a, G, J, T) * math.sqrt(G / (G - 1))),
             ("drop 1/T", lambda a, G, J, T: theory_gain(a, G, J, T) * T)),
    "dapo": (("Dr. GRPO gain (no std)", lambda a, G, J, T: (G - 1) / G * J * (1 - J) / T),
             ("drop 1/T", lambda a, G, J, T: theory_gain(a, G, J, T) * T)),
}


def _gain_claim(alg: str) -> Claim:
    spec = ta.ALGORITHMS[alg]
    cid = f"gain-{alg.replace('_', '-')}"

    def mutants() -> list[Claim]:
        return [mutant_claim(cid, kind.replace(" ", "_"),
                             named_check("enumeration-vs-gain", _gain_check([alg], fn, kind)))
                for kind, fn in _WRONG[alg]]

    def closed_forms() -> list[tuple[str, str]]:
        return [(f"gain G={G}", sp.latex(ta.gain(alg, G, T=sp.Symbol("T")))) for G in (2, 3, 4)]

    return Claim(
        id=cid,
        title=f"{alg}: expected update = gain x Gradient Gap",
        family="all",
        statement=(rf"For a fixed-length family (length $T$), one prompt, binary reward, on-policy, group size "
                   rf"$G$: $\mathbb E[w_{{\mathrm{{{alg.replace('_', '-')}}}}}]=\gamma(J,G)\,g$ with "
                   rf"$\gamma={_GAIN_TEX[alg]}$ (advantage {spec.advantage}, aggregation "
                   rf"{spec.aggregation.replace('_', ' ')})."),
        source=_SOURCE,
        checks=(named_check("symbolic-enumeration", _proof_check(alg)),
                named_check("enumeration-vs-gain", _gain_check([alg], theory_gain, "gain"))),
        mutants=mutants,
        closed_forms=closed_forms,
    )


# ------------------------------------------------------------------ limits, mass form, epsilon


def _closed_limits_proof(profile: Profile) -> Evidence:
    """The gains of REINFORCE, RLOO and Dr. GRPO in closed form for symbolic G (Binomial PGF)."""

    algorithms = ("reinforce", "rloo", "dr_grpo")
    proofs = [ta.prove_centred_mass_closed_form(a) for a in algorithms]
    bad = [p.name for p in proofs if not p.proved]
    if bad:
        return Evidence.undecided(f"not proved: {bad}")
    return Evidence.holds(Strength.PROVED, {"identities": len(proofs), "G": "symbolic", "algorithms": list(algorithms)},
                          detail="E[k(G-k)] = G(G-1)J(1-J) for symbolic G (Binomial PGF): J(1-J) and "
                                 "(G-1)/G J(1-J), whose limit is J(1-J)")


#: group sizes at which the ingredients of the GRPO rate are proved, and those of the grid check
_RATE_PROVED_G: Final[tuple[int, ...]] = (2, 4, 8)
_RATE_GRID_G: Final[tuple[int, ...]] = (2, 4, 8, 16, 32, 64)


def _sqrt_var(J: float) -> float:
    r""":math:`\sqrt{J(1-J)}`, the G -> infinity limit of GRPO's per-sample mass."""
    return math.sqrt(J * (1 - J))


def _grpo_rate_check(grpo_limit: Callable[[float], float],
                     rate: Callable[[int], float]) -> Callable[[Profile], Evidence]:
    r"""The GRPO rate :math:`|\mathbb E\sqrt{\hat p(1-\hat p)}-\sqrt{J(1-J)}|\le1/\sqrt G` on a J grid for
    G up to 64 at 20 digits (CHECKED on the grid: the Cauchy-Schwarz chain is not machine-checked for every G; its
    ingredients are proved symbolically for ``_RATE_PROVED_G`` and listed in the figures)."""

    def run(profile: Profile) -> Evidence:
        worst = -math.inf
        grid = np.linspace(0.02, 0.98, profile.grid)
        for G in _RATE_GRID_G:
            for J in grid:
                value = float(ta.gain_value("grpo", G, float(J), digits=20))
                dev = abs(value * math.sqrt(G / (G - 1)) - grpo_limit(float(J)))
                worst = max(worst, dev - rate(G))
                if dev > rate(G):
                    return Evidence.checked(Status.FAILS, 1, "grid point (theory only)", {},
                                            {"G": G, "J": float(J), "deviation": dev, "bound": rate(G)},
                                            detail="|E sqrt(p(1-p)) - limit| above the bound")
        ingredients = [ta.prove_grpo_limit_rate(G) for G in _RATE_PROVED_G]
        bad = [p.name for p in ingredients if not p.proved]
        if bad:
            return Evidence.undecided(f"not proved: {bad}")
        points = len(_RATE_GRID_G) * int(profile.grid)
        return Evidence.checked(Status.HOLDS, points, "grid points (theory only)",
                                {"points": points, "grid": int(profile.grid), "G_grid": list(_RATE_GRID_G),
                                 "largest_excess": worst, "rate_ingredients_proved_for_G": list(_RATE_PROVED_G)},
                                detail="rate 1/sqrt(G) on a J grid up to G=64 at 20 digits; E(p-J)^2 = J(1-J)/G "
                                     "and x(1-x)-y(1-y) = (x-y)(1-x-y) proved for G in (2,4,8)")

    return run


def _mass_check(swap: bool) -> Callable[[Profile], Evidence]:
    r"""Numeric m_S, m_F from the advantages of all :math:`2^G` reward vectors, against :math:`\mathbb E[w]`."""

    def run(profile: Profile) -> Evidence:
        insts = [SoftmaxBandit((0.3, -0.4, 1.1), frozenset({0})),
                 TokenSequence(((0.2, -0.5, 0.1), (0.7, 0.0, -0.3)), target=(0, 1))]
        worst = 0.0
        cases = 0
        for inst, alg, G in itertools.product(insts, _ALGOS, (2, 3)):
            fp = na.finite_policy(inst)
            J = fp.J
            R = np.array(list(itertools.product((0, 1), repeat=G)))
            pr = np.prod(np.where(R == 1, J, 1 - J), axis=1)
            A = na.group_advantages(alg, R)
            m_s = float(pr @ (A * R).sum(axis=1)) / G
            m_f = -float(pr @ (A * (1 - R)).sum(axis=1)) / G
            c = 1.0 if na.AGGREGATION[alg] == "sequence" else 1.0 / _length(inst)
            factor = (J * m_s + (1 - J) * m_f) if swap else ((1 - J) * m_s + J * m_f)
            g = np.asarray(families.numerics_module(inst).gradient_gap(inst))
            err = float(np.max(np.abs(na.expected_update(fp, alg, G) - c * factor * g)))
            worst = max(worst, err)
            cases += 1
            if not err <= EXACT[0]:  # absolute: E[w] and g are O(1) on these instances (NaN fails)
                return Evidence.checked(Status.FAILS, len(insts), "instances", {},
                                        {"algorithm": alg, "G": G, "J": J, "max_abs_error": err},
                                        detail="E[w] != [(1-J) m_S + J m_F] g")
        return Evidence.checked(Status.HOLDS, len(insts), "instances", {"cases": cases, "max_abs_error": worst},
                                detail="m_S, m_F from the advantages of all 2^G reward vectors")

    return run


def _mass_proof(profile: Profile) -> Evidence:
    sizes = list(range(2, 7))
    res = [ta.prove_mass_form(a, G) for a in _ALGOS for G in sizes]
    bad = [r.name for r in res if not r.proved]
    if bad:
        return Evidence.undecided(f"not proved: {bad}")
    return Evidence.holds(Strength.PROVED, {"identities": len(res), "G": sizes},
                          detail="gain = (1-J) m_S + J m_F (and m_S = m_F when centred), G = 2..6, polynomial in J")


def _epsilon_check(bound: Callable[[int, float], float]) -> Callable[[Profile], Evidence]:
    def run(profile: Profile) -> Evidence:
        eps = sp.Rational(1, 10**4)
        worst = -math.inf
        for G in (2, 4, 8, 16):
            for J in np.linspace(0.01, 0.99, profile.grid):
                a = ta.gain_value("grpo", G, float(J), digits=40)
                b = ta.gain_value("grpo", G, float(J), eps=str(eps.evalf(40)), digits=40)
                rel = float((a - b) / a)
                b_ = bound(G, float(eps))
                worst = max(worst, rel - b_)
                if rel < 0 or rel > b_ * (1 + ROUNDING):
                    return Evidence.checked(Status.FAILS, 1, "grid point (theory only)", {},
                                            {"G": G, "J": float(J), "relative_change": rel, "bound": b_},
                                            detail="epsilon effect outside bound")
        points = 4 * int(profile.grid)
        return Evidence.checked(Status.HOLDS, points, "grid points (theory only)",
                                {"grid": int(profile.grid), "largest_excess": worst},
                                detail="exact gains with eps=1e-4 vs eps=0 at 40 digits, G in (2,4,8,16)")

    return run


# ------------------------------------------------------------------ lengths


def _fixed_length_check(algorithms: Sequence[str], varlen: bool) -> Callable[[Profile], Evidence]:
    """Angle between E[w] and g on fixed-length instances (and, for a mutant, on the EOS policy)."""

    def run(profile: Profile) -> Evidence:
        insts: list[Any] = [
            TokenSequence(((0.2, -0.5, 0.1), (0.7, 0.0, -0.3)), target=(0, 1)),
            TokenSequence(((0.2, -0.5), (0.7, 0.0), (0.1, 0.4)), target=(0, 1, 1), min_correct=2),
            SharedTokens((0.3, -0.2), ((1.0, 0.0), (0.0, 1.0), (1.0, 1.0)), frozenset({0, 2}), T=2),
        ]
        if varlen:
            insts.append(_varlen_numeric())
        worst = 0.0
        for inst in insts:
            fp = na.finite_policy(inst)
            for alg in algorithms:
                for G in (2, 3):
                    ang = na.angle_degrees(na.expected_update(fp, alg, G), fp.gap())
                    worst = max(worst, ang)
                    if ang > ANGLE_DEG:
                        return Evidence.checked(Status.FAILS, len(insts), "instances", {},
                                                {"algorithm": alg, "G": G, "instance": repr(inst), "angle_deg": ang})
        return Evidence.checked(Status.HOLDS, len(insts), "instances", {"largest_angle_deg": worst},
                                detail="exact enumeration, G in (2, 3)")

    return run


def _varlen_numeric() -> Any:
    return EosTokens(logits=tuple(tuple(math.log(float(p)) for p in row) for row in VARLEN_PROBS),
                     wrong=frozenset({2}))


@lru_cache(maxsize=1)
def _varlen_exact() -> dict[str, Any]:
    probs, scores, rewards, lengths = ta.eos_policy_exact(VARLEN_PROBS, [2])
    S = [sp.Matrix(s) for s in scores]
    n = len(scores[0])
    Jx = sum(p for p, r in zip(probs, rewards, strict=True) if r)
    gs = sum((p * s for p, s, r in zip(probs, S, rewards, strict=True) if r), sp.zeros(n, 1)) / Jx
    gf = sum((p * s for p, s, r in zip(probs, S, rewards, strict=True) if not r), sp.zeros(n, 1)) / (1 - Jx)
    g = gs - gf
    out: dict[str, Any] = {"J": Jx, "g": g}
    for alg in _ALGOS:
        Ew = ta.variable_length_expected_update(alg, 2, probs, scores, rewards, lengths)
        cos = Ew.dot(g) / sp.sqrt(Ew.dot(Ew) * g.dot(g))
        out[alg] = (ta.parallel_residual(Ew, g), sp.acos(cos).evalf(50) * 180 / sp.pi)
    return out


def _varlen_refutation(algorithms: Sequence[str]) -> Callable[[Profile], Evidence]:
    def run(profile: Profile) -> Evidence:
        ex = _varlen_exact()
        fp = na.finite_policy(_varlen_numeric())
        figures: dict[str, Any] = {"J": str(ex["J"])}
        for alg in _ALGOS:
            figures[f"angle_deg[{alg},G=2]"] = float(sp.N(ex[alg][1], 12))
        for G in (3, 4):
            figures[f"angle_deg[dapo,G={G}]"] = na.angle_degrees(na.expected_update(fp, "dapo", G), fp.gap())
        turned = [a for a in algorithms if ex[a][0] != 0]
        if turned:
            a = turned[0]
            return Evidence.fails(Strength.PROVED, {
                "policy": "EOS tokens, T_max=2, per-position probs (EOS, good, wrong) = (1/2,1/4,1/4), "
                          "(1/3,1/3,1/3); reward 1 iff no wrong token",
                "algorithm": a, "G": 2, "angle_deg": str(sp.N(ex[a][1], 20)),
                "largest_2x2_minor": str(ex[a][0])}, figures,
                detail="exact rational enumeration: a non-zero 2x2 minor of (E[w], g)")
        return Evidence.holds(Strength.PROVED, figures, detail="E[w] parallel to g exactly")

    return run


# ------------------------------------------------------------------ the claims


def claims() -> list[Claim]:
    """The built-in claims of this module."""
    out = [_gain_claim(a) for a in _ALGOS]
    out.append(Claim(
        id="gain-limits",
        title="G -> infinity limits of the gains",
        family="all",
        statement=(r"As $G\to\infty$: $\gamma\to J(1-J)$ (REINFORCE, RLOO; exact for every $G$), "
                   r"$\frac{G-1}{G}J(1-J)\to J(1-J)$ (Dr. GRPO, per token), and for GRPO "
                   r"$\big|\mathbb E\sqrt{\hat p(1-\hat p)}-\sqrt{J(1-J)}\big|\le 1/\sqrt G$, so "
                   r"$\gamma_{\mathrm{GRPO}}\to\sqrt{J(1-J)}$ (per token)."),
        source=_SOURCE,
        checks=(named_check("closed-forms", _closed_limits_proof),
                named_check("grpo-rate-grid", _grpo_rate_check(_sqrt_var, lambda G: 1 / math.sqrt(G)))),
        aggregate="weakest",
        mutants=lambda: [
            mutant_claim("gain-limits", "grpo_limit_J(1-J)",
                         named_check("grpo-rate-grid", _grpo_rate_check(lambda J: J * (1 - J),
                                                                        lambda G: 1 / math.sqrt(G)))),
            mutant_claim("gain-limits", "rate_1/G",
                         named_check("grpo-rate-grid", _grpo_rate_check(_sqrt_var, lambda G: 0.1 / G)))],
    ))
    out.append(Claim(
        id="advantage-mass-form",
        title="advantage-mass form of the expected update",
        family="all",
        statement=(r"$\mathbb E[w]=c_T\,[(1-J)\,m_S+J\,m_F]\,g$ with $m_S=\mathbb E[\frac kG a(1,k)]$, "
                   r"$m_F=-\mathbb E[\frac{G-k}G a(0,k)]$; $m_S=m_F$ for centred advantages."),
        source="reconstruction §7 (DERIVED)",
        checks=(named_check("symbolic", _mass_proof), named_check("numeric-masses", _mass_check(False))),
        mutants=lambda: [mutant_claim("advantage-mass-form", "swapped_weights",
                                      named_check("numeric-masses", _mass_check(True)))],
    ))
    out.append(Claim(
        id="grpo-epsilon-bound",
        title="effect of TRL's epsilon on the GRPO gain",
        family="all",
        statement=(r"With advantages $(r-\hat p)/(\hat\sigma+\epsilon)$: "
                   r"$0\le(\gamma_0-\gamma_\epsilon)/\gamma_0\le\epsilon\sqrt G/(1+\epsilon\sqrt G)$."),
        source="DERIVED here; engines.md (TRL std + 1e-4)",
        checks=(named_check("exact-gains", _epsilon_check(lambda G, e: e * math.sqrt(G) / (1 + e * math.sqrt(G)))),),
        mutants=lambda: [mutant_claim("grpo-epsilon-bound", "drop_sqrt_G",
                                      named_check("exact-gains", _epsilon_check(lambda G, e: e)))],
    ))
    out.append(Claim(
        id="sequence-level-parallel-varlen",
        title="sequence-level aggregation stays along g with variable lengths",
        family="all",
        statement=(r"REINFORCE, RLOO and Dr. GRPO (constant normaliser) keep $\mathbb E[w]=\gamma\,g$ when "
                   r"response lengths vary and correlate with success."),
        source=_SOURCE,
        checks=(named_check("symbolic-enumeration-lengths", _varlen_sequence_proof),
                named_check("exact-eos-policy", _varlen_parallel(("reinforce", "rloo", "dr_grpo")))),
        mutants=lambda: [mutant_claim("sequence-level-parallel-varlen", "with_grpo",
                                      named_check("exact-eos-policy", _varlen_parallel(("grpo",))))],
    ))
    out.append(Claim(
        id="token-level-parallel-fixed",
        title="token-level aggregation is a scalar gain along g for fixed lengths",
        family="all",
        statement=r"For fixed-length families, GRPO ($1/|o|$) and DAPO (token mean): $\angle(\mathbb E[w],g)=0$.",
        source=_SOURCE,
        checks=(named_check("angle", _fixed_length_check(("grpo", "dapo"), varlen=False)),),
        mutants=lambda: [mutant_claim("token-level-parallel-fixed", "drop_fixed_length",
                                      named_check("angle", _fixed_length_check(("grpo", "dapo"), varlen=True)))],
    ))
    out.append(Claim(
        id="token-level-parallel-varlen",
        title="token-level aggregation is NOT along g when lengths vary with success",
        family="all",
        statement=(r"Claimed (and refuted): with lengths that vary and correlate with success, GRPO's "
                   r"$1/|o|$ and DAPO's token mean still give $\mathbb E[w]\parallel g$."),
        source=_SOURCE,
        checks=(named_check("exact-eos-policy", _varlen_refutation(("grpo", "dapo"))),),
        expect="fails",
        mutants=lambda: [],
    ))
    return out


def _varlen_sequence_proof(profile: Profile) -> Evidence:
    sizes, lengths = [2, 3], (1, 2, 1)
    res = [ta.prove_expected_update_by_enumeration(a, G, lengths=lengths)
           for a in ("reinforce", "rloo", "dr_grpo") for G in sizes]
    bad = [r.name for r in res if not r.proved]
    if bad:
        return Evidence.undecided(f"not proved: {bad}")
    return Evidence.holds(Strength.PROVED, {"identities": len(res), "G": sizes, "lengths": list(lengths)},
                          detail="generic 3-response space with lengths (1, 2, 1), G in (2, 3)")


def _varlen_parallel(algorithms: Sequence[str]) -> Callable[[Profile], Evidence]:
    def run(profile: Profile) -> Evidence:
        ex = _varlen_exact()
        for a in algorithms:
            if ex[a][0] != 0:
                return Evidence.fails(Strength.PROVED, {"algorithm": a, "largest_2x2_minor": str(ex[a][0])},
                                      detail="exact EOS policy: E[w] not parallel to g")
        return Evidence.checked(Status.HOLDS, 1, "instance (exact)", {"algorithms": list(algorithms)},
                                detail="exact EOS policy: every 2x2 minor of (E[w], g) is 0")

    return run
