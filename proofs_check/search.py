r"""The generic ``TESTED`` check of a relation claim: a Hypothesis counterexample search.

For a :class:`~gradgap.proofs_check.claims.Relation` the search draws an instance of the family (sizes in the claim's
ranges, capped by the profile), a direction :math:`w` (``gap``: :math:`g/\|g\|`; ``grad``: the policy gradient
:math:`\nabla J`, unnormalised; ``random``: a unit vector) and a step :math:`\eta` in its range (narrowed by the
hypotheses of the form ``eta <= E`` / ``eta >= E``), evaluates the vocabulary with the float64 numerics
(:mod:`numerics`) and uses the hypotheses ``given`` as filters. ``target()`` pushes toward violations.

Screening is in float64; a candidate is **re-evaluated at 50 digits** with the theory side (the closed forms of
:mod:`theory`, evaluated by mpmath at the exact rational parameters, the exact step
:math:`\theta+\eta w` included) before it counts: the hypotheses must hold there and the relation must fail by
more than :data:`HP_RTOL` (relative to :math:`1+|\text{lhs}|+|\text{rhs}|`). So rounding never fails a true claim
and a near-tight true bound is not flagged. Hypothesis then shrinks to a minimal counterexample.

Source: reconstruction §2-4 for the quantities; the evidence levels are docs/DESIGN.md's (TESTED).
"""

from __future__ import annotations

import ast
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final, Literal

import mpmath
import numpy as np
import sympy
from hypothesis import HealthCheck, Phase, assume, given, settings, target
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from gradgap.proofs_check import expressions as ex
from gradgap.proofs_check import families
from gradgap.proofs_check.claims import Claim, Evidence, Profile, Relation, Strength, named_check
from gradgap.proofs_check.families import LOGIT_BOUND
from gradgap.proofs_check.tolerances import HP_RTOL, SCREEN_EQ_RTOL, SCREEN_RTOL
from gradgap.theory.instances import GradgapValueError, Instance

__all__ = [
    "HP_RTOL",
    "SCREEN_EQ_RTOL",
    "SCREEN_RTOL",
    "Case",
    "evaluate_case",
    "hypothesis_settings",
    "instance_strategy",
    "relation_claim",
    "search_check",
    "search_relation",
]

# the screens SCREEN_RTOL, SCREEN_EQ_RTOL and the 50-digit verdict HP_RTOL are in proofs_check.tolerances;
# LOGIT_BOUND and MAX_RESPONSES (what a search draws) are the registry's, proofs_check.families
_NEXT: Final[frozenset[str]] = frozenset({"J_next", "ell_next"})


#: the phases of a search that hunts a violation: explicit seeds, random draws, then ``target()`` hill climbing
SEARCH_PHASES: Final[tuple[Phase, ...]] = (Phase.explicit, Phase.generate, Phase.target)


def hypothesis_settings(profile: Profile, *, examples: int | None = None,
                        phases: Sequence[Phase] = SEARCH_PHASES) -> settings:
    """Hypothesis settings of every gate search: ``examples`` (default the profile's), the profile's
    derandomisation, no example database, no deadline or health checks (a claim's draw is slow by design)."""
    return settings(max_examples=profile.examples if examples is None else examples,
                    derandomize=profile.derandomize, database=None, deadline=None, print_blob=False,
                    phases=tuple(phases), suppress_health_check=list(HealthCheck))


class _Violation(Exception):
    """Raised inside the Hypothesis test for a verified counterexample (so that Hypothesis shrinks it)."""


# ------------------------------------------------------------------ instances


def _floats(bound: float) -> st.SearchStrategy[float]:
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def instance_strategy(family: str, sizes: Mapping[str, tuple[int, int]], cap: int,
                      bound: float = LOGIT_BOUND) -> st.SearchStrategy[Instance]:
    r"""Instances of ``family`` with size parameters in ``sizes`` (each capped at ``cap``, and the number of
    responses at :data:`MAX_RESPONSES`): the registry's strategy of the family."""
    return families.instance_strategy(family, sizes, cap, bound)


def _structure(inst: Instance) -> Instance:
    """The instance with zero parameters: the cache key of everything that depends on structure only."""
    return inst.with_theta((0.0,) * len(inst.theta))


def instance_dict(inst: Instance) -> dict[str, Any]:
    """A JSON-ready description of an instance (for counterexamples): its ``as_dict()``."""
    return inst.as_dict()


# ------------------------------------------------------------------ the two evaluators


@lru_cache(maxsize=256)
def _constants_float(structure: Instance) -> dict[str, float]:
    return {k: float(v) for k, v in _constants_mp(structure).items()}


@lru_cache(maxsize=256)
def _constants_mp(structure: Instance) -> dict[str, Any]:
    consts = families.theory_module(structure).constants(structure)
    out: dict[str, Any] = {}
    for name in ("L_o", "G_o"):
        value = getattr(consts, name).value
        if value is not None:
            with mpmath.workdps(ex.HP_DIGITS + 10):
                out[name] = mpmath.mpf(str(value.evalf(ex.HP_DIGITS + 10)))
    return out


@dataclass(frozen=True)
class _HPFunctions:
    J: Callable[..., Any]
    log_odds: Callable[..., Any]
    gap: Callable[..., Any]
    grad_J: Callable[..., Any]


@lru_cache(maxsize=128)
def _hp_functions(structure: Instance) -> _HPFunctions:
    """The theory's closed forms of this structure, compiled for mpmath (exact-to-50-digits evaluation)."""

    cf = families.theory_module(structure).closed_forms(structure)
    args = list(cf.theta)

    def comp(expr: Any) -> Callable[..., Any]:
        return sympy.lambdify(args, expr, modules="mpmath")

    return _HPFunctions(J=comp(cf.success_rate), log_odds=comp(cf.log_odds), gap=comp(list(cf.gradient_gap)),
                        grad_J=comp(list(cf.grad_success_rate)))


def _float_quantities(inst: Instance) -> dict[str, Any]:
    mod = families.numerics_module(inst)
    g = np.asarray(mod.gradient_gap(inst), dtype=float)
    return {"J": float(mod.success_rate(inst)), "ell": float(mod.log_odds(inst)), "g": g,
            "grad_J": np.asarray(mod.grad_success_rate(inst), dtype=float)}


@dataclass(frozen=True)
class Case:
    r"""One point of the search: instance, the raw direction draw (used for ``random``) and the step fraction
    ``u`` in [0, 1] (:math:`\eta = \eta_{lo} + u(\eta_{hi}-\eta_{lo})`, the upper end narrowed by hypotheses)."""

    inst: Instance
    raw_w: tuple[float, ...]
    u: float


@dataclass(frozen=True)
class _Compiled:
    relation: Relation
    claim: ex.ParsedRelation
    given: tuple[ex.ParsedRelation, ...]
    names: frozenset[str]
    eta_upper: tuple[tuple[ast_expr, bool], ...]
    eta_lower: tuple[tuple[ast_expr, bool], ...]


ast_expr = Any  # an ``ast.expr`` validated by :mod:`gradgap.proofs_check.expressions`


def _eta_bounds(givens: Sequence[ex.ParsedRelation]) -> tuple[list[tuple[Any, bool]], list[tuple[Any, bool]]]:
    """Upper and lower bounds on eta read off hypotheses ``eta <= E``, ``E >= eta`` (E free of eta and of the
    next-step quantities), each with whether it is strict."""

    upper: list[tuple[Any, bool]] = []
    lower: list[tuple[Any, bool]] = []

    def free(node: Any) -> bool:
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        return not names & (_NEXT | {"eta"})

    for g in givens:
        lhs_eta = isinstance(g.lhs, ast.Name) and g.lhs.id == "eta"
        rhs_eta = isinstance(g.rhs, ast.Name) and g.rhs.id == "eta"
        if lhs_eta and free(g.rhs) and g.op != "==":
            (upper if g.op in ("<", "<=") else lower).append((g.rhs, g.strict))
        elif rhs_eta and free(g.lhs) and g.op != "==":
            (upper if g.op in (">", ">=") else lower).append((g.lhs, g.strict))
    return upper, lower


def _compile(relation: Relation) -> _Compiled:
    claim = ex.parse_relation(relation.claim)
    givens = tuple(ex.parse_relation(g) for g in relation.given)
    names = claim.names.union(*(g.names for g in givens))
    allowed = set(ex.VARIABLES) - {"K", "T", "V", "d"} | set(relation.sizes)
    unknown = sorted(names - allowed)
    if unknown:
        raise GradgapValueError(f"names={unknown}: not defined for family {relation.family!r} "
                                f"(its sizes: {', '.join(relation.sizes)})", field="names", value=unknown)
    upper, lower = _eta_bounds(givens)
    return _Compiled(relation, claim, givens, frozenset(names), tuple(upper), tuple(lower))


def _direction_float(kind: str, q: Mapping[str, Any], raw: Sequence[float]) -> np.ndarray | None:
    if kind == "gap":
        norm = float(np.linalg.norm(q["g"]))
        return None if not norm > 0 else q["g"] / norm
    if kind == "grad":
        return q["grad_J"]
    w = np.asarray(raw, dtype=float)
    norm = float(np.linalg.norm(w))
    return None if norm < 1e-3 else w / norm


def _eta_float(comp: _Compiled, env: Mapping[str, Any], u: float) -> float | None:
    lo, hi = comp.relation.ranges["eta"]
    for node, _ in comp.eta_upper:
        value = ex.evaluate(node, env)
        if value != value:
            return None
        hi = min(hi, value)
    for node, _ in comp.eta_lower:
        value = ex.evaluate(node, env)
        if value != value:
            return None
        lo = max(lo, value)
    if hi < lo:
        return None
    return lo + u * (hi - lo)


def _eta_mp(comp: _Compiled, env: Mapping[str, Any], u: float) -> Any:
    lo, hi = (mpmath.mpf(x) for x in comp.relation.ranges["eta"])
    for node, _ in comp.eta_upper:
        hi = min(hi, ex.evaluate(node, env, precision="mp"))
    for node, _ in comp.eta_lower:
        lo = max(lo, ex.evaluate(node, env, precision="mp"))
    if not hi >= lo:
        return None
    with mpmath.workdps(ex.HP_DIGITS):
        return lo + mpmath.mpf(u) * (hi - lo)


def _float_env(comp: _Compiled, case: Case) -> dict[str, Any] | None:
    """The vocabulary at ``case`` in float64 (numerics), or ``None`` where the point is degenerate."""
    inst = case.inst
    names = comp.names
    env: dict[str, Any] = dict(inst.sizes)
    if names & {"L_o", "G_o"}:
        consts = _constants_float(_structure(inst))
        if not names & {"L_o", "G_o"} <= set(consts):
            return None
        env.update(consts)
    q = _float_quantities(inst)
    env.update(J=q["J"], ell=q["ell"], norm_g=float(np.linalg.norm(q["g"])))
    w = _direction_float(comp.relation.direction, q, case.raw_w)
    if w is None:
        return None
    env["Delta_mu"] = float(np.dot(w, q["g"]))
    eta = _eta_float(comp, env, case.u)
    if eta is None:
        return None
    env["eta"] = eta
    if names & _NEXT:
        mod = families.numerics_module(inst)
        nxt = inst.with_theta(tuple(float(x) for x in np.asarray(inst.theta) + eta * w))
        env["J_next"] = float(mod.success_rate(nxt))
        env["ell_next"] = float(mod.log_odds(nxt))
    return env


def _mp_env(comp: _Compiled, case: Case) -> dict[str, Any] | None:
    r"""The vocabulary at ``case`` at 50 digits from the theory's closed forms, the step taken exactly."""
    inst = case.inst
    structure = _structure(inst)
    names = comp.names
    with mpmath.workdps(ex.HP_DIGITS + 10):
        fns = _hp_functions(structure)
        theta = [mpmath.mpf(x) for x in inst.theta]  # exact: every float is a dyadic rational
        env: dict[str, Any] = {k: mpmath.mpf(v) for k, v in inst.sizes.items()}
        if names & {"L_o", "G_o"}:
            consts = _constants_mp(structure)
            if not names & {"L_o", "G_o"} <= set(consts):
                return None
            env.update(consts)
        g = [mpmath.mpf(x) for x in fns.gap(*theta)]
        norm_g = mpmath.sqrt(mpmath.fsum(x * x for x in g))
        env.update(J=fns.J(*theta), ell=fns.log_odds(*theta), norm_g=norm_g)
        kind = comp.relation.direction
        if kind == "gap":
            if norm_g == 0:
                return None
            w = [x / norm_g for x in g]
        elif kind == "grad":
            w = [mpmath.mpf(x) for x in fns.grad_J(*theta)]
        else:
            raw = [mpmath.mpf(x) for x in case.raw_w]
            nr = mpmath.sqrt(mpmath.fsum(x * x for x in raw))
            if nr == 0:
                return None
            w = [x / nr for x in raw]
        env["Delta_mu"] = mpmath.fsum(a * b for a, b in zip(w, g, strict=True))
        eta = _eta_mp(comp, env, case.u)
        if eta is None:
            return None
        env["eta"] = eta
        if names & _NEXT:
            nxt = [t + eta * x for t, x in zip(theta, w, strict=True)]
            env["J_next"] = fns.J(*nxt)
            env["ell_next"] = fns.log_odds(*nxt)
        env["_w"] = w
        return env


def _short(x: Any, digits: int = 20) -> str:
    return mpmath.nstr(x, digits) if isinstance(x, mpmath.mpf) else str(x)


@dataclass
class _Stats:
    examples: int = 0
    rejected: int = 0
    degenerate: int = 0
    candidates: int = 0
    refuted_by_hp: int = 0
    undefined: int = 0
    min_margin: float = math.inf
    distinct: set[tuple[Any, ...]] = field(default_factory=set)  # the examples that satisfied the hypotheses
    best: list[tuple[float, int, Case]] = field(default_factory=list)  # the tightest points, for the adversary


def evaluate_case(relation: Relation, case: Case) -> dict[str, Any]:
    r"""Evaluate ``relation`` at one case in both precisions (for tests and reports): the float and 50-digit
    margins, whether the hypotheses hold at 50 digits, and whether the relation is violated there."""
    comp = _compile(relation)
    fenv = _float_env(comp, case)
    menv = _mp_env(comp, case)
    out: dict[str, Any] = {"float_margin": None if fenv is None else ex.margin(comp.claim, fenv)}
    if menv is None:
        out.update(mp_margin=None, given_hold=None, violated=None)
        return out
    m = ex.margin(comp.claim, menv, precision="mp")
    scale = ex.scale(comp.claim, menv, precision="mp")
    out.update(mp_margin=m, given_hold=_given_hold_mp(comp, menv),
               violated=ex.violated(comp.claim, m, HP_RTOL * scale))
    return out


def _given_hold_mp(comp: _Compiled, env: Mapping[str, Any]) -> bool:
    for g in comp.given:
        m = ex.margin(g, env, precision="mp")
        bad = ex.violated(g, m, mpmath.mpf(0))
        if bad is None or bad:
            return False
    return True


def _given_hold_float(comp: _Compiled, env: Mapping[str, Any]) -> bool:
    for g in comp.given:
        m = ex.margin(g, env)
        if m != m:
            return False
        tol = SCREEN_RTOL * ex.scale(g, env)
        if m < -tol or (g.strict and m <= -tol):
            return False
    return True


def _counterexample(comp: _Compiled, case: Case, env: Mapping[str, Any], m: Any) -> dict[str, Any]:
    shown = sorted(comp.names | {"J", "Delta_mu", "eta"})
    return {
        "family": comp.relation.family,
        "instance": instance_dict(case.inst),
        "direction": comp.relation.direction,
        "w": [_short(x, 17) for x in env["_w"]],
        "eta": _short(env["eta"], 20),
        "values": {k: _short(env[k]) for k in shown if k in env},
        "relation": comp.claim.unparse(),
        "margin": _short(m, 12),
        "digits": ex.HP_DIGITS,
    }


def _case_strategy(comp: _Compiled, profile: Profile) -> st.SearchStrategy[Case]:
    rel = comp.relation

    @st.composite
    def cases(draw: st.DrawFn) -> Case:
        inst = draw(instance_strategy(rel.family, rel.sizes, profile.size_cap))
        n = len(inst.theta)
        raw = tuple(draw(st.lists(_floats(1.0), min_size=n, max_size=n))) if rel.direction == "random" else ()
        u = draw(st.sampled_from((1.0, 0.5)) | st.floats(0.0, 1.0))
        return Case(inst, raw, u)

    return cases()


def search_relation(relation: Relation, profile: Profile) -> Evidence:
    r"""Search for a counterexample of ``relation``; ``FAILS`` (TESTED) with the shrunk counterexample, verified
    at 50 digits; ``HOLDS`` after ``profile.examples`` examples with none: ``TESTED`` when at least
    ``profile.min_examples`` distinct examples satisfied the hypotheses, ``CHECKED`` on that many otherwise;
    ``UNDECIDED`` if the hypotheses were never satisfied."""
    comp = _compile(relation)
    stats = _Stats()
    found: list[dict[str, Any]] = []
    start = time.perf_counter()

    def body(case: Case) -> None:
        env = _float_env(comp, case)
        if env is None:
            stats.degenerate += 1
            assume(False)
        assert env is not None
        if not _given_hold_float(comp, env):
            stats.rejected += 1
            assume(False)
        stats.examples += 1
        stats.distinct.add((case.inst, case.raw_w, case.u))
        m = ex.margin(comp.claim, env)
        sc = ex.scale(comp.claim, env)
        rel_m = m / sc if m == m and math.isfinite(sc) else -math.inf
        if math.isfinite(rel_m):
            stats.min_margin = min(stats.min_margin, rel_m)
            target(-rel_m, label="violation")
            _keep_best(stats, rel_m, case)
        if comp.claim.op == "==":
            candidate = not (rel_m >= -SCREEN_EQ_RTOL)
        else:
            candidate = not (rel_m > SCREEN_RTOL) if comp.claim.strict else not (rel_m >= 0.0)
        if not candidate:
            return
        stats.candidates += 1
        menv = _mp_env(comp, case)
        if menv is None or not _given_hold_mp(comp, menv):
            return
        hm = ex.margin(comp.claim, menv, precision="mp")
        bad = ex.violated(comp.claim, hm, HP_RTOL * ex.scale(comp.claim, menv, precision="mp"))
        if bad is None:
            stats.undefined += 1
            return
        if not bad:
            stats.refuted_by_hp += 1
            return
        found.append(_counterexample(comp, case, menv, hm))
        raise _Violation(comp.claim.unparse())

    test = given(_case_strategy(comp, profile))(body)
    test = hypothesis_settings(profile, phases=(*SEARCH_PHASES, Phase.shrink))(test)
    unsatisfiable = False
    try:
        test()
    except Unsatisfiable:
        unsatisfiable = True
    except (_Violation, ExceptionGroup):
        if not found:
            raise
        cx = found[-1]  # the last one recorded is Hypothesis' final replay of the shrunk example
        figures = _figures(stats, start, cx["margin"])
        return Evidence.fails(Strength.TESTED, cx, figures,
                              detail=f"counterexample survives {ex.HP_DIGITS}-digit re-evaluation "
                                     f"(margin {cx['margin']})")
    from gradgap.proofs_check.adversarial import adversarial_search

    adv = adversarial_search(comp, profile.name, [c for _, _, c in sorted(stats.best, key=lambda b: b[:2])],
                             cap=profile.size_cap)
    budget = {"hypothesis_examples": profile.examples, **adv.budget}
    if adv.counterexample is not None:
        cx = adv.counterexample
        figures = {**_figures(stats, start, cx["margin"]), **adv.figures(), "search_budget": budget}
        return Evidence.fails(Strength.TESTED, cx, figures,
                              detail=f"adversarial search: counterexample survives {ex.HP_DIGITS}-digit "
                                     f"re-evaluation (margin {cx['margin']})")
    figures = {**_figures(stats, start), **adv.figures(), "search_budget": budget}
    if unsatisfiable:
        return Evidence.undecided("the hypotheses were never satisfied", figures)
    if stats.examples == 0:
        return Evidence.undecided("no example satisfied the hypotheses", figures)
    return Evidence.sampled(len(stats.distinct), profile, figures,
                            detail=f"{len(stats.distinct)} distinct examples, no counterexample")


#: how many of the tightest Hypothesis points are handed to the adversarial phase
BEST_POINTS: Final[int] = 6


def _keep_best(stats: _Stats, rel_m: float, case: Case) -> None:
    stats.best.append((rel_m, stats.examples, case))
    if len(stats.best) > 4 * BEST_POINTS:
        stats.best.sort(key=lambda b: b[:2])
        del stats.best[BEST_POINTS:]


def _figures(stats: _Stats, start: float, confirmed: Any = None) -> dict[str, Any]:
    """Figures of a search; ``largest_violation`` is the 50-digit margin of the reported counterexample (0 when
    none), ``largest_float_violation`` the worst float64 screen value (possibly cleared at 50 digits)."""
    tight = stats.min_margin if math.isfinite(stats.min_margin) else None
    return {
        "examples": stats.examples,
        "rejected": stats.rejected + stats.degenerate,
        "hp_reevaluations": stats.candidates,
        "cleared_by_hp": stats.refuted_by_hp,
        "undefined": stats.undefined,
        "min_rel_margin": None if tight is None else float(f"{tight:.3e}"),
        "largest_float_violation": None if tight is None else float(f"{max(0.0, -tight):.3e}"),
        "largest_violation": 0.0 if confirmed is None else float(f"{abs(float(confirmed)):.6e}"),
        "search_seconds": round(time.perf_counter() - start, 3),
    }


def search_check(relation: Relation) -> Any:
    """The TESTED check of a relation claim (named ``hypothesis-search``)."""
    return named_check("hypothesis-search", lambda profile: search_relation(relation, profile))


def relation_claim(
    id: str,
    relation: Relation,
    *,
    title: str = "",
    statement: str = "",
    source: str = "user claim",
    expect: Literal["holds", "fails"] = "holds",
    extra_checks: Sequence[Any] = (),
    mutants: Callable[[], Sequence[Claim]] | None = None,
    closed_forms: Callable[[], Sequence[tuple[str, str]]] | None = None,
) -> Claim:
    r"""A claim in the claim language: ``extra_checks`` (e.g. a PROVED one) plus the generic TESTED search.

    The relation texts are parsed now, so a malformed expression raises a
    :class:`~gradgap.theory.instances.GradgapValueError` at construction, not at check time; without a
    ``statement`` the LaTeX is typeset only when asked (:attr:`Claim.latex_statement`).
    """
    ex.parse_relation(relation.claim)
    for hyp in relation.given:
        ex.parse_relation(hyp)
    return Claim(id=id, title=title or id, family=relation.family, statement=statement, source=source,
                 checks=(*extra_checks, search_check(relation)), expect=expect, relation=relation,
                 mutants=mutants, closed_forms=closed_forms, cross_check=True)
