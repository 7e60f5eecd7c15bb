r"""Built-in claims of the autoregressive family (logits per position and prefix, optional end-of-sequence).

The generic identity claims of :mod:`.core` run on the families with a fixed-position log-linear form; this
module states the same identities for the autoregressive family, where a position's logit row depends on the
prefix. Each identity is ``PROVED`` by :func:`gradgap.theory.autoregressive.prove_identities` on the registry's
structures (the scope is stated in the figures) and ``TESTED`` by a Hypothesis search comparing two independent
numeric routes (a mismatch is re-evaluated at 50 digits with the theory's closed forms before it counts). The
prefix-tree dynamic programme (the ``structured`` route) is ``TESTED`` against the enumeration, near-deterministic
logits included. The family constants :math:`G_o=\sqrt{2T}` and :math:`L_o=\tfrac12` of
:func:`gradgap.theory.autoregressive.constants` are ``TESTED`` as the log-linear families' are in :mod:`.core`: a
Hypothesis search for a larger norm (numeric score, central-difference Hessian; an excess re-evaluated at 50
digits from the theory's row probabilities), then near-attaining configurations at 50 digits (ratio at least
``SHARP_RATIO``, and exactly the constant where it is called a maximum).

Source: reconstruction §2.1 items 1-4 (the identities), DERIVED; the family is this project's (issue text:
tabular prefix-dependent logits).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import mpmath
import numpy as np
import sympy as sp
from hypothesis import HealthCheck, Phase, given, settings, target
from hypothesis import strategies as st

from gradgap.experiments import eos_length
from gradgap.numerics import algorithms as numeric_algorithms
from gradgap.numerics import autoregressive as numeric
from gradgap.numerics import loglinear as numeric_loglinear
from gradgap.numerics._routes import fd_jacobian
from gradgap.proofs_check import families
from gradgap.proofs_check.builtin import core
from gradgap.proofs_check.claims import Claim, Evidence, Profile, Status, Strength, mutant_claim, named_check
from gradgap.proofs_check.tolerances import ANGLE_DEG, EXACT, FD, FD_STEP, HP_ZERO, SHARP_RATIO
from gradgap.theory import autoregressive as symbolic
from gradgap.theory.instances import Autoregressive

__all__ = ["IDENTITIES", "NEAR_ATTAINING", "claims"]

FAMILY: Final[str] = "autoregressive"
_SOURCE: Final[str] = "reconstruction §2.1 items 1-4, DERIVED (autoregressive family: this project's)"


@dataclass(frozen=True)
class ArIdentity:
    """One identity: its claim id, the name ``prove_identities`` gives it, two numeric routes and the theory's
    residual (expressions in the parameter symbols that vanish when it holds)."""

    id: str
    title: str
    theory_name: str
    statement: str
    routes: Callable[[Autoregressive], tuple[np.ndarray, np.ndarray]]
    residual: Callable[[Any], list[Any]]
    routes_text: str
    applies: Callable[[Autoregressive], bool] = lambda inst: True
    #: the theory's closed form of the right side b of the routes (a, b), for the mutants' residuals
    rhs: Callable[[Any], list[Any]] = lambda cf: list(cf.gradient_gap)


def _vec(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1)


def _unique(inst: Autoregressive) -> tuple[int, ...]:
    o = inst.unique_correct_response()
    assert o is not None
    return o


def _unique_routes(inst: Autoregressive) -> tuple[np.ndarray, np.ndarray]:
    s = _vec(numeric.score(inst, _unique(inst), method="autograd"))
    return s / (1.0 - float(numeric.success_rate(inst, method="enumerate"))), _vec(
        numeric.gradient_gap(inst, method="structured"))


def _unique_residual(cf: Any) -> list[Any]:
    star = cf.unique_correct_log_prob
    return list(sp.Matrix([sp.diff(star, s) for s in cf.theta]) / (1 - sp.exp(star)) - cf.gradient_gap)


IDENTITIES: Final[tuple[ArIdentity, ...]] = (
    ArIdentity(
        "autoregressive-score-mean-zero", "The score has mean zero (autoregressive)", "E_pi[score] = 0",
        r"\mathbb E_{o\sim\pi_\theta}\big[\nabla_\theta\log\pi_\theta(o)\big]=0",
        lambda inst: (_vec(numeric.expected_score(inst, method="enumerate")), np.zeros(len(inst.theta))),
        lambda cf: list(cf.e_score), "enumerate vs 0", rhs=lambda cf: [sp.S.Zero] * cf.n),
    ArIdentity(
        "autoregressive-grad-J-variance-gap", "Policy gradient = reward variance times Gradient Gap (autoregressive)",
        "grad J = J(1-J) g", r"\nabla_\theta J=J(1-J)\,g",
        lambda inst: (_vec(numeric.grad_success_rate(inst, method="autograd")),
                      float(numeric.success_rate(inst)) * (1 - float(numeric.success_rate(inst)))
                      * _vec(numeric.gradient_gap(inst, method="enumerate"))),
        lambda cf: list(cf.grad_success_rate - cf.success_rate * (1 - cf.success_rate) * cf.gradient_gap),
        "autograd (grad J) vs enumerate (g)",
        rhs=lambda cf: list(cf.success_rate * (1 - cf.success_rate) * cf.gradient_gap)),
    ArIdentity(
        "autoregressive-gap-grad-log-odds", "The Gradient Gap is the gradient of the log-odds (autoregressive)",
        "g = grad ell", r"g=\nabla_\theta\ell,\qquad\ell=\log\frac{J}{1-J}",
        lambda inst: (_vec(numeric.grad_log_odds(inst, method="autograd")),
                      _vec(numeric.gradient_gap(inst, method="enumerate"))),
        lambda cf: list(cf.gradient_gap - cf.grad_log_odds), "autograd (grad ell) vs enumerate (g)"),
    ArIdentity(
        "autoregressive-gap-unique-correct",
        "Exact match: the gap is a rescaled log-likelihood gradient (autoregressive)",
        "g = grad log pi(o*) / (1 - pi(o*))",
        r"g=\frac{\nabla_\theta\log\pi_\theta(o^\star)}{1-\pi_\theta(o^\star)}\quad(\text{exact match of the ended "
        r"target})",
        _unique_routes, _unique_residual, "autograd score of o* vs structured (prefix DP) g",
        applies=lambda inst: inst.unique_correct_response() is not None),
)


# ------------------------------------------------------------------ the checks


def _structures(profile: Profile) -> tuple[Autoregressive, ...]:
    return tuple(s for s in families.family(FAMILY).structures(profile.size_cap >= 5)
                 if isinstance(s, Autoregressive))


def _scope(structures: list[Autoregressive]) -> str:
    sizes = sorted({(s.T, s.V) for s in structures})
    rules = sorted({"exact" if s.min_correct is None else "at least m" for s in structures})
    eos = sorted({"eos" if s.eos is not None else "no eos" for s in structures})
    return ("autoregressive (T,V) in {" + ",".join(f"({t},{v})" for t, v in sizes) + "}, "
            + " and ".join(rules) + ", " + " and ".join(eos))


def _proved_check(spec: ArIdentity) -> Any:
    def run(profile: Profile) -> Evidence:
        proved: list[Autoregressive] = []
        for inst in _structures(profile):
            if not spec.applies(inst):
                continue
            res = {r.name: r for r in symbolic.prove_identities(inst)}.get(spec.theory_name)
            if res is None or not res.proved:
                why = "not produced" if res is None else res.detail
                return Evidence.undecided(f"not proved for {inst.describe()}: {why}")
            proved.append(inst)
        if not proved:
            return Evidence.undecided("no structure to prove it on")
        return Evidence.holds(Strength.PROVED, {"identities": len(proved), "structures": [s.describe() for s in proved],
                                                "scope": _scope(proved)},
                              detail=f"difference simplifies to exactly 0 on {len(proved)} structures (theta = log x)")

    return named_check("prove_identities", run)


def _doubled(spec: ArIdentity) -> ArIdentity:
    """The mutant ``a = 2 b`` (``a = 2 b + 1`` when b is 0): its route search must FAIL at 50 digits."""

    def routes(inst: Autoregressive) -> tuple[np.ndarray, np.ndarray]:
        a, b = spec.routes(inst)
        return a, 2.0 * b + (0.0 if np.any(b) else 1.0)

    def residual(cf: Any) -> list[Any]:
        rhs = spec.rhs(cf)
        shift = 1 if all(x == 0 for x in rhs) else 0
        return [r - b - shift for r, b in zip(spec.residual(cf), rhs, strict=True)]

    return ArIdentity(f"{spec.id}~double", spec.title, spec.theory_name, spec.statement, routes, residual,
                      spec.routes_text, spec.applies, spec.rhs)


#: every identity and its mutant, by id (the 50-digit residuals are looked up here)
_SPECS: Final[dict[str, ArIdentity]] = {s.id: s for spec in IDENTITIES for s in (spec, _doubled(spec))}


@lru_cache(maxsize=256)
def _hp_residual_fn(spec_id: str, structure: Autoregressive) -> Callable[..., Any]:
    spec = _SPECS[spec_id]
    cf = symbolic.closed_forms(structure)
    return sp.lambdify(list(cf.theta), spec.residual(cf), modules="mpmath")


def _hp_residual(spec: ArIdentity, inst: Autoregressive) -> Any:
    fn = _hp_residual_fn(spec.id, inst.with_theta((0.0,) * len(inst.theta)))
    with mpmath.workdps(60):
        return max((abs(mpmath.mpf(x)) for x in fn(*[mpmath.mpf(x) for x in inst.theta])), default=mpmath.mpf(0))


class _Found(Exception):
    pass


def _search(strategy: st.SearchStrategy[Any], body: Callable[[Any], None], examples: int, profile: Profile) -> None:
    test = settings(max_examples=examples, derandomize=profile.derandomize, database=None, deadline=None,
                    print_blob=False, suppress_health_check=list(HealthCheck),
                    phases=(Phase.explicit, Phase.generate, Phase.target))(given(strategy)(body))
    try:
        test()
    except _Found:
        pass


def _tested_check(spec: ArIdentity) -> Any:
    """The generic identity search of :func:`~gradgap.proofs_check.builtin.core.tested_identity` on this family."""
    return core.tested_identity(spec.routes, spec.routes_text, (FAMILY,), spec.applies,
                                lambda inst: _hp_residual(spec, inst))


def _identity_claim(spec: ArIdentity) -> Claim:
    mutant = _SPECS[f"{spec.id}~double"]
    return Claim(id=spec.id, title=spec.title, family=FAMILY, statement=spec.statement, source=_SOURCE,
                 checks=(_proved_check(spec), _tested_check(spec)),
                 mutants=lambda: [mutant_claim(spec.id, "double", _tested_check(mutant), family=FAMILY)])


def _dp_check(bound: float, factor: float = 1.0) -> Any:
    r"""The prefix-tree programme against the enumeration: :math:`\log J`, :math:`\ell` and :math:`g` (relative
    error of ``g`` against its norm), logits up to ``bound``."""

    def run(profile: Profile) -> Evidence:
        rtol, atol = EXACT
        worst = [0.0]
        count = [0]
        bad: list[dict[str, Any]] = []

        seen: set[Autoregressive] = set()

        def body(inst: Autoregressive) -> None:
            count[0] += 1
            seen.add(inst)
            g_dp = factor * _vec(numeric.gradient_gap(inst))
            g_en = _vec(numeric.gradient_gap(inst, method="enumerate"))
            l_dp, l_en = numeric.log_odds(inst), numeric.log_odds(inst, method="enumerate")
            scale = 1.0 + float(np.max(np.abs(g_en)))
            ratio = max(float(np.max(np.abs(g_dp - g_en))) / (atol + rtol * scale),
                        abs(l_dp - l_en) / (atol + rtol * (1.0 + abs(l_en))))
            worst[0] = max(worst[0], ratio)
            target(ratio, label="error/tolerance")
            if ratio > 1.0:
                bad.append({"instance": {"family": FAMILY, **inst.as_dict()}, "error_over_tolerance": ratio})
                raise _Found("dp")

        strategy = families.instance_strategy(FAMILY, None, profile.size_cap, bound)
        _search(strategy, body, profile.examples, profile)
        figures = {"examples": count[0], "logit_bound": bound, "tolerance": list(EXACT),
                   "max_error_over_tolerance": float(f"{worst[0]:.3e}")}
        if bad:
            return Evidence.fails(Strength.TESTED, bad[-1], figures, detail="prefix DP and enumeration disagree")
        return Evidence.sampled(len(seen), profile, figures,
                                detail=f"{len(seen)} distinct instances, |logits| <= {bound:g}",
                                what="distinct instances")

    return named_check(f"dp-vs-enumerate-{bound:g}", run)


# ------------------------------------------------------------------ variable lengths (end of sequence)


#: the relative agreement asked of two ways to one exact float64 number (ratios, identical steps)
_RATIO_RTOL: Final[float] = 1e-6
#: T . eta_1/2(g) may vary by at most this factor over the lengths checked ("about 1/T")
_ONE_OVER_T_SPREAD: Final[float] = 1.25


def _lengths(profile: Profile) -> tuple[int, ...]:
    """T = 4..6 at the gate profiles, 4..8 at ``thorough`` (the half-progress bisection costs ~V^T)."""
    return tuple(range(4, 9 if profile.name == "thorough" else 7))


@lru_cache(maxsize=32)
def _eos_row(T: int, eos: bool) -> dict[str, Any]:
    return eos_length._row(eos_length.worked(T, eos=eos))


def _eos_instances() -> list[Autoregressive]:
    """The worked instances T = 2, 3 and two seeded random ones (logits N(0, 1), T = 3, V = 3, eos = 0)."""
    rng = np.random.default_rng(20261202)
    out = [eos_length.worked(2), eos_length.worked(3)]
    for goal in ((1, 2, 0), (2, 1, 1)):
        tables = tuple(tuple(tuple(float(x) for x in rng.standard_normal(3)) for _ in range(3**t)) for t in range(3))
        out.append(Autoregressive(logits=tables, target=goal, eos=0))
    return out


def _finite_policy(inst: Autoregressive) -> numeric_algorithms.FinitePolicy:
    tab = numeric.response_table(inst)
    return numeric_algorithms.FinitePolicy(tab.probs, tab.scores, tab.rewards, tab.lengths)


def _grpo_direction_check(reference: str) -> Any:
    r""":math:`\angle(\mathbb E[w_{\rm GRPO}], d)` by enumerating every ordered group (G = 2, 3), with ``reference``
    ``h`` (the length-weighted gap) or ``g``; Dr. GRPO (constant normaliser) against g in both cases."""

    def run(profile: Profile) -> Evidence:
        angles: dict[str, float] = {}
        worst = None
        for k, inst in enumerate(_eos_instances()):
            fp = _finite_policy(inst)
            g = np.asarray(numeric.gradient_gap(inst))
            d = eos_length.length_weighted_gap(inst) if reference == "h" else g
            for G in (2, 3):
                a = numeric_algorithms.angle_degrees(numeric_algorithms.expected_update(fp, "grpo", G), d)
                b = numeric_algorithms.angle_degrees(numeric_algorithms.expected_update(fp, "dr_grpo", G), g)
                angles[f"{k}:G={G}:grpo"] = float(f"{a:.3e}")
                angles[f"{k}:G={G}:dr_grpo"] = float(f"{b:.3e}")
                if max(a, b) > ANGLE_DEG and worst is None:
                    worst = {"instance": {"family": FAMILY, **inst.as_dict()}, "G": G, "angle_grpo_deg": a,
                             "angle_dr_grpo_deg": b}
        figures = {"angles_deg": angles, "tolerance_deg": ANGLE_DEG, "reference": reference}
        if worst is not None:
            return Evidence.checked(Status.FAILS, len(_eos_instances()), "instances", figures, worst,
                                    detail=f"E[w] is not parallel to {reference} (exact group enumeration)")
        return Evidence.checked(Status.HOLDS, len(_eos_instances()), "instances", figures,
                                detail="exact enumeration of every ordered group, G = 2, 3")

    return named_check("group-enumeration", run)


def _angle_check(profile: Profile, first_above: float = 1.0) -> Evidence:
    r"""Worked family: :math:`\angle(h,g)=0` at fixed length and at T = 1; with eos it is > 1 degree and strictly
    increasing for T = 2..max."""
    Ts = (1, 2, 3, *_lengths(profile))
    eos = {T: eos_length.angle(eos_length.worked(T)) for T in Ts}
    fixed = {T: eos_length.angle(eos_length.worked(T, eos=False)) for T in Ts}
    figures = {"angle_deg_eos": {T: round(a, 4) for T, a in eos.items()},
               "angle_deg_fixed": {T: float(f"{a:.2e}") for T, a in fixed.items()}}
    vals = [eos[T] for T in Ts[1:]]
    ok = (max(fixed.values()) <= ANGLE_DEG and eos[1] <= ANGLE_DEG and vals[0] > first_above
          and all(b > a for a, b in itertools.pairwise(vals)))
    if ok:
        return Evidence.checked(Status.HOLDS, len(Ts), "lengths of the worked family", figures,
                                detail="exact float64 sums over the responses")
    return Evidence.checked(Status.FAILS, len(Ts), "lengths of the worked family", figures, figures,
                            detail="angle not 0 at fixed length or not increasing")


def _normalisation_check(profile: Profile, eos_equals_T: bool = False) -> Evidence:
    r"""Fixed length: :math:`\eta_{1/2}(h)/\eta_{1/2}(g)=T`; with eos the factor lies strictly between the mean
    length :math:`\mathbb E|o|` and T."""
    rows = {T: (_eos_row(T, True), _eos_row(T, False)) for T in _lengths(profile)}
    figures = {"ratio_eos": {T: round(e["ratio"], 4) for T, (e, _) in rows.items()},
               "ratio_fixed": {T: round(f["ratio"], 6) for T, (_, f) in rows.items()},
               "mean_length_eos": {T: round(e["mean_length"], 4) for T, (e, _) in rows.items()}}
    fixed_ok = all(abs(f["ratio"] / T - 1) <= _RATIO_RTOL for T, (_, f) in rows.items())
    eos_ok = all((abs(e["ratio"] / T - 1) <= _RATIO_RTOL) if eos_equals_T else (e["mean_length"] < e["ratio"] < T)
                 for T, (e, _) in rows.items())
    if fixed_ok and eos_ok:
        return Evidence.checked(Status.HOLDS, len(rows), "lengths of the worked family", figures,
                                detail="half-progress steps by bisection (rtol 1e-10)")
    return Evidence.checked(Status.FAILS, len(rows), "lengths of the worked family", figures, figures,
                            detail="normalisation factor outside (E|o|, T) or != T")


def _one_over_t_check(spread: float) -> Any:
    def run(profile: Profile) -> Evidence:
        rows = {T: (_eos_row(T, True), _eos_row(T, False)) for T in _lengths(profile)}
        scaled = {T: e["eta_half_gap"] * T for T, (e, _) in rows.items()}
        same = all(abs(e["eta_half_gap"] / f["eta_half_gap"] - 1) <= _RATIO_RTOL for e, f in rows.values())
        figures = {"T_times_eta_half_gap": {T: round(v, 4) for T, v in scaled.items()},
                   "slope": round(eos_length.fit_slope(list(scaled), [v / T for T, v in scaled.items()]), 4),
                   "allowed_spread": spread}
        if same and max(scaled.values()) <= spread * min(scaled.values()):
            return Evidence.checked(Status.HOLDS, len(rows), "lengths of the worked family", figures,
                                    detail="T * eta_1/2(g) within the allowed spread")
        return Evidence.checked(Status.FAILS, len(rows), "lengths of the worked family", figures, figures,
                                detail="T * eta_1/2(g) varies more than allowed")

    return named_check("half-progress-1/T", run)


def _eos_claims() -> list[Claim]:
    src = "reconstruction §4.3 (length normalisation, DERIVED) and §4.4; measured here (experiments/eos_length.py)"
    return [
        Claim(id="autoregressive-grpo-length-weighted-gap",
              title="GRPO's expected update is the length-weighted gap; Dr. GRPO's is along g (variable lengths)",
              family=FAMILY,
              statement=(r"$\mathbb E[w_{\rm GRPO}]\parallel h=\mathbb E_+[s/|o|]-\mathbb E_-[s/|o|]$ for every group "
                         r"size, $\mathbb E[w_{\rm Dr.GRPO}]\parallel g$, with an end-of-sequence token"),
              source=src, checks=(_grpo_direction_check("h"),),
              mutants=lambda: [mutant_claim("autoregressive-grpo-length-weighted-gap", "parallel_to_g",
                                            _grpo_direction_check("g"), family=FAMILY)]),
        Claim(id="autoregressive-grpo-parallel-to-gap-with-eos",
              title="Claimed (and refuted): with variable lengths GRPO's expected update is parallel to g",
              family=FAMILY, statement=r"$\mathbb E[w_{\rm GRPO}]\parallel g$ when lengths vary",
              source=src, checks=(_grpo_direction_check("g"),), expect="fails"),
        Claim(id="autoregressive-eos-angle",
              title="Token-level aggregation turns the update away from g, more for longer responses",
              family=FAMILY,
              statement=(r"worked family (V=3, eos, exact match of $(1,\dots,1)$, $\theta=0$): $\angle(h,g)=0$ at "
                         r"fixed length and $T=1$; with eos it is positive and increasing in $T$"),
              source=src, checks=(named_check("angles", _angle_check),),
              mutants=lambda: [mutant_claim("autoregressive-eos-angle", "first_above_45deg",
                                            named_check("angles", lambda p: _angle_check(p, 45.0)), family=FAMILY)]),
        Claim(id="autoregressive-eos-normalisation-factor",
              title="With eos, 1/|o| normalisation rescales the half-progress step by less than T",
              family=FAMILY,
              statement=(r"$\eta_{1/2}(h)/\eta_{1/2}(g)=T$ at fixed length; with eos it lies in "
                         r"$(\mathbb E|o|,\,T)$"),
              source=src, checks=(named_check("half-progress-ratio", _normalisation_check),),
              mutants=lambda: [mutant_claim("autoregressive-eos-normalisation-factor", "eos_factor_T",
                                            named_check("half-progress-ratio", lambda p: _normalisation_check(p, True)),
                                            family=FAMILY)]),
        Claim(id="autoregressive-half-progress-about-1-over-T",
              title="The half-progress step of the Gradient-Gap step is about c/T, with or without eos",
              family=FAMILY,
              statement=(r"$T\,\eta_{1/2}(g)$ varies by less than a factor 1.25 over the lengths checked, and "
                         r"$\eta_{1/2}(g)$ is the same with and without eos (exact match)"),
              source=src, checks=(_one_over_t_check(_ONE_OVER_T_SPREAD),),
              mutants=lambda: [mutant_claim("autoregressive-half-progress-about-1-over-T", "spread_1.01",
                                            _one_over_t_check(1.01), family=FAMILY)]),
    ]


# ------------------------------------------------------------------ the constants L_o and G_o


def _constant(inst: Autoregressive, name: str) -> sp.Expr:
    return getattr(symbolic.constants(inst), name).value


@lru_cache(maxsize=64)
def _hp_log_prob_fns(structure: Autoregressive, response: tuple[int, ...]) -> tuple[Callable[..., Any], ...]:
    r"""Score and Hessian of :math:`\log\pi_\theta(o)=\sum_{t<L(o)}\log\pi_{o_{<t}}(o_t)` from the theory's
    closed-form row probabilities, differentiated by SymPy, for mpmath."""
    cf = symbolic.closed_forms(structure)
    L = structure.ended_length(response)
    log_pi = sp.Add(*(sp.log(cf.probabilities[structure.row_index(t, response[:t])][response[t]]) for t in range(L)))
    grad = [sp.diff(log_pi, s) for s in cf.theta]
    hess = [[sp.diff(g, s) for s in cf.theta] for g in grad]
    return sp.lambdify(cf.theta, grad, modules="mpmath"), sp.lambdify(cf.theta, hess, modules="mpmath")


def _hp_norm(inst: Autoregressive, response: tuple[int, ...], name: str) -> mpmath.mpf:
    structure = inst.with_theta((0.0,) * len(inst.theta))
    return core.hp_norm_of(_hp_log_prob_fns(structure, response), inst.theta, name)


def _float_norm(inst: Autoregressive, response: tuple[int, ...], name: str) -> float:
    """The numerics' norm: the score (autograd), or the central-difference Hessian of the numeric score."""
    if name == "G_o":
        return float(np.linalg.norm(_vec(numeric.score(inst, response, method="autograd"))))
    H = fd_jacobian(lambda th: _vec(numeric.score(inst.with_theta(tuple(th)), response)),
                    np.asarray(inst.theta, dtype=float), FD_STEP)
    return numeric_loglinear.operator_norm(0.5 * (H + H.T))


def _push(T: int, V: int, on: int, lam: float) -> tuple[tuple[tuple[float, ...], ...], ...]:
    """Logits with every row putting ``lam`` on token ``on`` (0 elsewhere)."""
    row = tuple(lam if v == on else 0.0 for v in range(V))
    return tuple((row,) * V**t for t in range(T))


#: configurations approaching each constant (from the proofs of ``theory.autoregressive.constants``):
#: (instance, response, description, attained exactly)
NEAR_ATTAINING: Final[dict[str, tuple[tuple[Autoregressive, tuple[int, ...], str, bool], ...]]] = {
    "G_o": ((Autoregressive(logits=_push(2, 2, 1, 30.0), target=(0, 0)), (0, 0),
             "T=2, V=2, every row 30 on token 1, o=(0,0)", False),
            (Autoregressive(logits=_push(2, 3, 2, 30.0), target=(0, 0), eos=1), (0, 0),
             "T=2, V=3, eos=1, every row 30 on token 2, o=(0,0)", False)),
    "L_o": ((Autoregressive(logits=_push(2, 2, 0, 0.0), target=(0, 0)), (0, 0), "T=2, V=2, theta=0", True),
            (Autoregressive(logits=_push(1, 3, 2, -30.0), target=(0,)), (0,),
             "T=1, V=3, theta=(0,0,-30)", False)),
}


def _approach(name: str) -> list[dict[str, Any]]:
    r"""Each near-attaining configuration at 50 digits: the ratio :math:`\|\cdot\|/c`, whether it equals the
    constant (``attained``, within ``HP_ZERO``), and whether the constant's ``attainment`` says "maximum"."""
    out = []
    for inst, resp, text, _ in NEAR_ATTAINING[name]:
        c = getattr(symbolic.constants(inst), name)
        hp = _hp_norm(inst, resp, name)
        with mpmath.workdps(60):
            value = mpmath.mpf(str(sp.N(c.value, 60)))
            out.append({"config": text, "ratio": float(mpmath.nstr(hp / value, 12)),
                        "attained": bool(abs(hp - value) <= HP_ZERO * value), "maximum": c.attainment == "maximum",
                        "norm_50_digits": mpmath.nstr(hp, 20), name: mpmath.nstr(value, 20)})
    return out


def _constant_check(name: str, scale: float = 1.0) -> Any:
    r"""Hypothesis search (with ``target`` on the ratio) for a norm above the theory's constant (times ``scale``:
    the mutant), a float excess re-evaluated at 50 digits; then the constant must be approached (ratio
    :math:`\ge` ``SHARP_RATIO``) and a constant called a maximum attained."""

    def run(profile: Profile) -> Evidence:
        seen: set[tuple[Autoregressive, tuple[int, ...]]] = set()
        best = [0.0]
        found: list[dict[str, Any]] = []
        rtol, atol = EXACT if name == "G_o" else FD

        @st.composite
        def cases(draw: st.DrawFn) -> tuple[Autoregressive, tuple[int, ...]]:
            inst = draw(families.instance_strategy(FAMILY, None, profile.size_cap, 30.0))
            return inst, draw(st.sampled_from(inst.responses()))

        def body(case: tuple[Autoregressive, tuple[int, ...]]) -> None:
            inst, resp = case
            seen.add(case)
            bound = scale * float(_constant(inst, name))
            ratio = _float_norm(inst, resp, name) / bound
            best[0] = max(best[0], ratio)
            target(ratio, label="norm/constant")
            if ratio <= 1 + rtol + atol / bound:
                return
            hp = _hp_norm(inst, resp, name)
            with mpmath.workdps(60):
                exact = mpmath.mpf(scale) * mpmath.mpf(str(sp.N(_constant(inst, name), 60)))
                if hp > exact * (1 + mpmath.mpf(HP_ZERO)):
                    found.append({"instance": {"family": FAMILY, **inst.as_dict()}, "response": list(resp),
                                  "norm_50_digits": mpmath.nstr(hp, 20), name: mpmath.nstr(exact, 20)})
                    raise _Found(name)

        _search(cases(), body, profile.examples, profile)
        approach = _approach(name)
        figures = {"largest_ratio_found": round(best[0], 9), "near_attaining": approach}
        if found:
            return Evidence.fails(Strength.TESTED, found[-1], figures,
                                  detail=f"a norm above {name} survives 50-digit re-evaluation")
        if any(a["ratio"] > 1 + HP_ZERO for a in approach):
            bad = next(a for a in approach if a["ratio"] > 1 + HP_ZERO)
            return Evidence.checked(Status.FAILS, len(approach), "near-attaining configurations", figures, bad,
                                    detail=f"a near-attaining configuration exceeds {name} at 50 digits")
        for (_, _, text, exact), a in zip(NEAR_ATTAINING[name], approach, strict=True):
            if exact and not (a["attained"] and a["maximum"]):
                return Evidence.checked(Status.FAILS, len(approach), "near-attaining configurations", figures, a,
                                        detail=f"{name} should be a maximum attained at {text}")
            if not exact and a["ratio"] < SHARP_RATIO:
                return Evidence.checked(Status.FAILS, len(approach), "near-attaining configurations", figures, a,
                                        detail=f"{name} claimed sharp but approached only to ratio "
                                               f"{a['ratio']:.6g} < {SHARP_RATIO} ({text})")
        return Evidence.sampled(len(seen), profile, figures,
                                detail=f"no sampled norm above {name}; approached to ratio "
                                       f"{min(a['ratio'] for a in approach):.9f} or better",
                                what="distinct (instance, response) pairs")

    return named_check(f"hypothesis-{name}", run)


def _constant_claims() -> list[Claim]:
    statements = {
        "G_o": (r"\sup_{\theta,o}\|\nabla_\theta\log\pi_\theta(o)\|=\sqrt{2T}\ (\text{not attained})",
                "Score bound G_o = sqrt(2T) is valid and sharp (autoregressive)"),
        "L_o": (r"\sup_{\theta,o}\|\nabla^2_\theta\log\pi_\theta(o)\|_{op}=\tfrac12\ (\text{attained for }V=2)",
                "Smoothness constant L_o = 1/2 is valid and sharp (autoregressive)"),
    }
    return [Claim(id=f"autoregressive-constant-{name}", title=title, family=FAMILY, statement=statement,
                  source="reconstruction §3 (A1, A2), INFERRED; values DERIVED (theory.autoregressive.constants)",
                  checks=(_constant_check(name),),
                  mutants=lambda name=name: [mutant_claim(f"autoregressive-constant-{name}", "half",
                                                          _constant_check(name, 0.5), family=FAMILY)])
            for name, (statement, title) in statements.items()]


def claims() -> list[Claim]:
    """The built-in claims of this module."""
    out = [_identity_claim(spec) for spec in IDENTITIES]
    out.append(Claim(
        id="autoregressive-prefix-dp",
        title="The prefix-tree dynamic programme equals the enumeration (autoregressive)",
        family=FAMILY,
        statement=(r"$S(u)=\sum_v\pi_u(v)S(uv)$, $J=S(\varnothing)$, and "
                   r"$g_{u,v}=P(u)\pi_u(v)\,(S(uv)-S(u))/(J(1-J))$ agree with the sums over all responses"),
        source="DERIVED here (sum the scores of the responses through a prefix u); reconstruction §2.1",
        checks=(_dp_check(4.0), _dp_check(60.0)),
        aggregate="weakest",
        mutants=lambda: [mutant_claim("autoregressive-prefix-dp", "gap_x1.000001",
                                      named_check("dp-vs-enumerate-4", _dp_check(4.0, 1.000001)), family=FAMILY)],
    ))
    out.extend(_eos_claims())
    out.extend(_constant_claims())
    return out
