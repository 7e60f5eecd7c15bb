r"""Core built-in claims: the identities of the Gradient Gap and the family constants.

==========================  =======================================================================  ============
id                          statement                                                                source
==========================  =======================================================================  ============
``score-mean-zero``         :math:`\mathbb E_\pi[s]=0`                                               §2.1 proof
``gap-conditional-scores``  :math:`g=\mathbb E_+[s]-\mathbb E_-[s]`                                  §2.1 boxed
``grad-J-variance-gap``     :math:`\nabla J=J(1-J)\,g`                                               §2.1 boxed
``gap-grad-log-odds``       :math:`g=\nabla\ell`, :math:`\ell=\log\frac{J}{1-J}`                     §2.1 item 2
``gap-token-sum``           :math:`g=\sum_t g_t`, :math:`g_t=\mathbb E_+[s_t]-\mathbb E_-[s_t]`      §2.1 item 3
``gap-unique-correct``      :math:`g=\nabla\log\pi(o^\star)/(1-\pi(o^\star))`                        §2.1 item 4
``constant-G_o``            :math:`\|\nabla\log\pi_\theta(o)\|\le G_o`, and :math:`G_o` is sharp     §3 (A1)
``constant-L_o``            :math:`\|\nabla^2\log\pi_\theta(o)\|_{op}\le L_o`, and sharp             §3 (A2)
``constant-smoothness_J``   :math:`\|\nabla^2 J(\theta)\|_{op}\le 1/(3\sqrt3)`, and sharp              §3 (L)
==========================  =======================================================================  ============

Each identity is ``PROVED`` by the theory side (``prove_identities``: the difference simplifies to exactly 0)
for the stated structures, and ``TESTED`` by a Hypothesis search comparing two independent numeric routes; a
float disagreement is re-evaluated at 50 digits with the theory's closed forms: if the identity fails there too
the claim FAILS with that instance, otherwise the numerics are wrong and the check is an ERROR (never HOLDS).

The constants come with their exact values and proofs from ``theory.<family>.constants``; the checks are a
Hypothesis search for a score (resp. Hessian) norm above the constant, re-evaluated at 50 digits, and a
near-attaining configuration showing the constant is not loose.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import mpmath
import numpy as np
import sympy as sp
from hypothesis import HealthCheck, Phase, given, settings, target
from hypothesis import strategies as st

from gradgap.numerics import loglinear as numeric_loglinear
from gradgap.numerics._routes import fd_jacobian
from gradgap.proofs_check import families
from gradgap.proofs_check.claims import Claim, Evidence, Profile, Status, Strength, mutant_claim, named_check
from gradgap.proofs_check.tolerances import EXACT, FD, FD_STEP, HP_ZERO, SHARP_RATIO
from gradgap.theory import loglinear as symbolic_loglinear
from gradgap.theory.instances import (
    Autoregressive,
    ContextualForm,
    Instance,
    SoftmaxBandit,
    TokenSequence,
    family_name,
)

__all__ = ["IDENTITIES", "claims"]

FAMILY_ORDER: Final[tuple[str, ...]] = families.LOG_LINEAR_FAMILIES


def _theory(inst_or_family: Instance | str) -> Any:
    return families.theory_module(inst_or_family)


def _numerics(inst_or_family: Instance | str) -> Any:
    return families.numerics_module(inst_or_family)


def _structures(family: str, profile: Profile) -> tuple[Instance, ...]:
    """The registry's structures (parameters zero) on which identities are proved, more with deeper profiles."""
    return families.family(family).structures(profile.size_cap >= 5)


def _proved_check(identity: str, family_names: Sequence[str],
                  applies: Callable[[Instance], bool] = lambda inst: True) -> Any:
    r"""PROVED when ``prove_identities`` proves ``identity`` on every stated structure; UNDECIDED if any did not
    simplify to 0; the structures are the figures."""

    def run(profile: Profile) -> Evidence:
        proved: list[str] = []
        unproduced: list[str] = []  # families whose theory side does not produce this identity
        for fam in family_names:
            for inst in _structures(fam, profile):
                if not applies(inst):
                    continue
                results = {r.name: r for r in _theory(inst).prove_identities(inst)}
                res = results.get(identity)
                if res is None:
                    if fam not in unproduced:
                        unproduced.append(fam)
                    continue
                if not res.proved:
                    return Evidence.undecided(f"not proved for {inst.describe()}: {res.detail}",
                                              {"structures": proved})
                proved.append(inst.describe())
        if not proved:
            return Evidence.undecided("no structure to prove it on" + (
                f" (the theory has no identity {identity!r} for {', '.join(unproduced)})" if unproduced else ""))
        figures: dict[str, Any] = {"identities": len(proved), "structures": proved}
        if unproduced:  # say exactly what was reached: the proof covers the other families only
            from gradgap.proofs_check.evidence import proof_scope

            figures["not_proved_for"] = unproduced
            figures["scope"] = f"{proof_scope({'structures': proved})} only ({', '.join(unproduced)}: TESTED)"
        return Evidence.holds(Strength.PROVED, figures,
                              detail=f"difference simplifies to exactly 0 on {len(proved)} structures")

    return named_check("prove_identities", run)


# ------------------------------------------------------------------ the TESTED identity searches


def _vec(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=float).reshape(-1)


def _token_sum_float(inst: Instance) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\sum_t(\mathbb E_+[s_t]-\mathbb E_-[s_t])` by enumerating responses, against the structured g."""
    return numeric_loglinear.token_sum_gap(inst), _vec(_numerics(inst).gradient_gap(inst, method="structured"))


def _unique_response(inst: Instance) -> tuple[int, ...]:
    response = inst.unique_correct_response()
    assert response is not None
    return response


def _unique_applies(inst: Instance) -> bool:
    return inst.unique_correct_response() is not None


@dataclass(frozen=True)
class IdentitySpec:
    r"""One identity: its theory name, families, a filter, the two float routes (independent numerics) and the
    50-digit residual built from the theory's closed forms (``cf -> list of sympy expressions``)."""

    id: str
    title: str
    theory_name: str
    statement: str
    source: str
    families: tuple[str, ...]
    routes: Callable[[Instance], tuple[np.ndarray, np.ndarray]]
    residual: Callable[[Any], list[Any]]
    routes_text: str
    applies: Callable[[Instance], bool] = lambda inst: True
    symbolic: tuple[tuple[str, str, str], ...] = ()
    """proofs for symbolic sizes: (family, theory function without arguments, the scope it proves)."""


def _res_unique(cf: Any) -> list[Any]:
    log_star = cf.unique_correct_log_prob
    grad = sp.Matrix([sp.diff(log_star, t) for t in cf.theta])
    return list(cf.gradient_gap - grad / (1 - sp.exp(log_star)))


def _res_token_sum(cf: Any) -> list[Any]:
    total = sp.zeros(cf.n, 1)
    for g_t in cf.token_gaps:
        total += sp.Matrix(g_t)
    return list(total - cf.gradient_gap)


IDENTITIES: Final[tuple[IdentitySpec, ...]] = (
    IdentitySpec(
        "score-mean-zero", "The score has mean zero", "E_pi[score] = 0",
        r"\mathbb E_{o\sim\pi_\theta}\big[\nabla_\theta\log\pi_\theta(o)\big]=0",
        "reconstruction §2.1 (proof of the boxed form), DERIVED", FAMILY_ORDER,
        lambda inst: (_vec(_numerics(inst).expected_score(inst, method="enumerate")), np.zeros(len(inst.theta))),
        lambda cf: list(cf.e_score), "enumerate vs 0"),
    IdentitySpec(
        "gap-conditional-scores", "The Gradient Gap is the difference of conditional mean scores",
        "g = E_+[s] - E_-[s]",
        r"g(\theta)=\mathbb E_{\pi^+_\theta}[s_\theta(o)]-\mathbb E_{\pi^-_\theta}[s_\theta(o)]",
        "reconstruction §2.1 (boxed definition), DERIVED", FAMILY_ORDER,
        lambda inst: (_vec(_numerics(inst).conditional_score(inst, True, method="enumerate"))
                      - _vec(_numerics(inst).conditional_score(inst, False, method="enumerate")),
                      _vec(_numerics(inst).gradient_gap(inst, method="structured"))),
        lambda cf: list(cf.gradient_gap - (cf.e_score_success - cf.e_score_failure)),
        "enumerate (conditional scores) vs structured (gap)"),
    IdentitySpec(
        "grad-J-variance-gap", "Policy gradient = reward variance times Gradient Gap", "grad J = J(1-J) g",
        r"\nabla_\theta J(\theta)=J(\theta)\,\big(1-J(\theta)\big)\,g(\theta)",
        "reconstruction §2.1 (boxed), QUOTED-2nd + DERIVED", FAMILY_ORDER,
        lambda inst: (_vec(_numerics(inst).grad_success_rate(inst, method="autograd")),
                      float(_numerics(inst).success_rate(inst)) * (1 - float(_numerics(inst).success_rate(inst)))
                      * _vec(_numerics(inst).gradient_gap(inst, method="enumerate"))),
        lambda cf: list(cf.grad_success_rate - cf.success_rate * (1 - cf.success_rate) * cf.gradient_gap),
        "autograd (grad J) vs enumerate (g)",
        symbolic=(("softmax", "symbolic_K_proof", "softmax any K >= 2, any C"),
                  ("tokens", "symbolic_T_proof", "tokens exact match, symbolic T (one block, V = 3)"))),
    IdentitySpec(
        "gap-grad-log-odds", "The Gradient Gap is the gradient of the log-odds", "g = grad ell",
        r"g(\theta)=\nabla_\theta\,\ell(\theta),\qquad \ell=\log\frac{J}{1-J}",
        "reconstruction §2.1 item 2, DERIVED", FAMILY_ORDER,
        lambda inst: (_vec(_numerics(inst).grad_log_odds(inst, method="autograd")),
                      _vec(_numerics(inst).gradient_gap(inst, method="enumerate"))),
        lambda cf: list(cf.gradient_gap - cf.grad_log_odds), "autograd (grad ell) vs enumerate (g)"),
    IdentitySpec(
        "gap-token-sum", "Token decomposition of the Gradient Gap", "g = sum_t g_t",
        r"g(\theta)=\sum_{t=1}^T g_t(\theta),\qquad g_t=\mathbb E_{\pi^+}[s_t]-\mathbb E_{\pi^-}[s_t]",
        "reconstruction §2.1 item 3, INFERRED/DERIVED", ("tokens", "shared_tokens"),
        _token_sum_float, _res_token_sum, "per-position enumeration vs structured g"),
    IdentitySpec(
        "gap-unique-correct", "Unique correct response: the gap is a rescaled log-likelihood gradient",
        "g = grad log pi(o*) / (1 - pi(o*))",
        r"g(\theta)=\frac{\nabla_\theta\log\pi_\theta(o^\star)}{1-\pi_\theta(o^\star)}\quad(\text{one correct "
        r"response }o^\star)",
        "reconstruction §2.1 item 4, DERIVED", ("softmax", "tokens"),
        lambda inst: (_vec(_numerics(inst).score(inst, _unique_response(inst)))
                      / (1.0 - float(_numerics(inst).success_rate(inst))),
                      _vec(_numerics(inst).gradient_gap(inst, method="enumerate"))),
        _res_unique, "score(o*)/(1-J) vs enumerate (g)", applies=_unique_applies,
        symbolic=(("tokens", "symbolic_T_proof", "tokens exact match, symbolic T (one block, V = 3)"),)),
)


def _structure(inst: Instance) -> Instance:
    return inst.with_theta((0.0,) * len(inst.theta))


@lru_cache(maxsize=256)
def _hp_residual_fn(spec_id: str, structure: Instance) -> Callable[..., Any]:
    spec = _spec_by_id(spec_id)
    cf = _theory(structure).closed_forms(structure)
    return sp.lambdify(list(cf.theta), spec.residual(cf), modules="mpmath")


def _hp_residual(spec: IdentitySpec, inst: Instance) -> mpmath.mpf:
    """Max-abs 50-digit residual of the identity at the exact parameters of ``inst`` (theory closed forms)."""
    fn = _hp_residual_fn(spec.id, _structure(inst))
    with mpmath.workdps(60):
        vals = fn(*[mpmath.mpf(x) for x in inst.theta])
        return max(abs(mpmath.mpf(v)) for v in vals)


def _instance_dict(inst: Instance) -> dict[str, Any]:
    return {"family": family_name(inst), **inst.as_dict()}


def _run_hypothesis(strategy: st.SearchStrategy[Any], body: Callable[[Any], None], examples: int,
                    profile: Profile) -> None:
    test = settings(max_examples=examples, derandomize=profile.derandomize, database=None, deadline=None,
                    print_blob=False, suppress_health_check=list(HealthCheck),
                    phases=(Phase.explicit, Phase.generate, Phase.target, Phase.shrink))(given(strategy)(body))
    test()


class _Found(Exception):
    pass


def _family_strategy(family: str, profile: Profile, applies: Callable[[Instance], bool]) -> Any:
    return families.instance_strategy(family, None, profile.size_cap).filter(applies)


def tested_identity(routes: Callable[[Instance], tuple[np.ndarray, np.ndarray]], routes_text: str,
                    fams: Sequence[str], applies: Callable[[Instance], bool],
                    hp_residual: Callable[[Instance], Any]) -> Any:
    r"""The ``hypothesis-routes`` check of an identity :math:`a = b`: two independent float routes compared on
    instances drawn per family, a disagreement re-evaluated by ``hp_residual`` (the theory's 50-digit residual):
    FAILS when it is not 0, ERROR (a numerics bug) when it is; TESTED by the distinct instances drawn."""

    def run(profile: Profile) -> Evidence:
        rtol, atol = EXACT
        per_family = max(20, profile.examples // max(1, len(fams)))
        count = {"examples": 0, "hp_reevaluations": 0}
        worst = [0.0]
        refuted: list[dict[str, Any]] = []
        numerics_wrong: list[dict[str, Any]] = []

        seen: set[Instance] = set()

        def body(inst: Instance) -> None:
            a, b = routes(inst)
            count["examples"] += 1
            seen.add(inst)
            err = float(np.max(np.abs(a - b))) if a.size else 0.0
            scale = 1.0 + float(max(np.max(np.abs(a)), np.max(np.abs(b))))
            ratio = err / (atol + rtol * scale)
            worst[0] = max(worst[0], ratio)
            target(ratio, label="error/tolerance")
            if ratio <= 1.0:
                return
            count["hp_reevaluations"] += 1
            hp = hp_residual(inst)
            info = {"instance": _instance_dict(inst), "float_error": f"{err:.3e}",
                    "residual_50_digits": mpmath.nstr(hp, 5), "routes": routes_text}
            if hp > HP_ZERO * scale:
                refuted.append(info)
                raise _Found(routes_text)
            numerics_wrong.append(info)
            raise _Found(routes_text)

        for fam in fams:
            try:
                _run_hypothesis(_family_strategy(fam, profile, applies), body, per_family, profile)
            except (_Found, ExceptionGroup):
                break
        figures = {"examples": count["examples"], "families": list(fams), "routes": routes_text,
                   "max_error_over_tolerance": float(f"{worst[0]:.3e}"), "tolerance": list(EXACT),
                   "hp_reevaluations": count["hp_reevaluations"]}
        if refuted:
            return Evidence.fails(Strength.TESTED, refuted[-1], figures,
                                  detail=f"identity fails at 50 digits (residual {refuted[-1]['residual_50_digits']})")
        if numerics_wrong:
            return Evidence.error(f"numerics disagree ({routes_text}) beyond {EXACT} while the 50-digit theory "
                                  f"residual is 0 at {numerics_wrong[-1]['instance']}: a numerics bug", figures)
        if not fams:
            return Evidence.undecided("no family available", figures)
        return Evidence.sampled(len(seen), profile, figures,
                                detail=f"{len(seen)} distinct instances, routes agree within {EXACT}",
                                what="distinct instances")

    return named_check("hypothesis-routes", run)


def _tested_identity(spec: IdentitySpec) -> Any:
    return tested_identity(spec.routes, spec.routes_text, list(spec.families), spec.applies,
                           lambda inst: _hp_residual(spec, inst))


def _symbolic_check(proofs: tuple[tuple[str, str, str], ...]) -> Any:
    r"""PROVED for symbolic sizes when every proof of ``proofs`` (``theory.<family>.<function>()``) simplifies to
    exactly 0; a proof that does not is an ``ERROR`` (it was expected: the theory changed), never a silent drop."""

    def run(profile: Profile) -> Evidence:
        scopes = []
        for family, function, scope in proofs:
            res = getattr(families.theory_module(family), function)()
            if not res.proved:
                return Evidence.error(f"the symbolic-size proof {family}.{function} did not simplify to 0: "
                                      f"{res.detail}")
            scopes.append(scope)
        return Evidence.holds(Strength.PROVED, {"identities": len(proofs), "scope": "; ".join(scopes)},
                              detail=f"symbolic sizes: {'; '.join(scopes)}")

    return named_check("symbolic-sizes", run)


def _identity_claim(spec: IdentitySpec) -> Claim:
    family = "all" if set(spec.families) == set(FAMILY_ORDER) else ",".join(spec.families)
    symbolic = (_symbolic_check(spec.symbolic),) if spec.symbolic else ()
    return Claim(
        id=spec.id, title=spec.title, family=family, statement=spec.statement, source=spec.source,
        checks=(_proved_check(spec.theory_name, spec.families, spec.applies), *symbolic, _tested_identity(spec)),
        mutants=lambda spec=spec: _identity_mutants(spec),
        closed_forms=lambda spec=spec: _closed_form_examples(spec),
    )


# ------------------------------------------------------------------ mutants of the identities


def _scaled_routes(spec: IdentitySpec, factor: float, kind: str) -> IdentitySpec:
    def routes(inst: Instance) -> tuple[np.ndarray, np.ndarray]:
        a, b = spec.routes(inst)
        if kind == "scale":
            return a, factor * b + (factor - 1.0) * (1.0 if not np.any(b) else 0.0)
        if kind == "drop-J":  # a dropped factor: the right side without its J-dependent factor
            J = float(_numerics(inst).success_rate(inst))
            return a, b / max(J * (1 - J), 1e-300) if spec.id == "grad-J-variance-gap" else b / max(1 - J, 1e-300)
        return a, -b  # flipped sign

    def residual(cf: Any) -> list[Any]:
        base = spec.residual(cf)
        if kind == "scale":
            a_minus_b = sp.Matrix(base)
            # residual of a = factor*b (+ shift when b == 0):
            rhs = _rhs_of(spec, cf)
            shift = (factor - 1) if all(x == 0 for x in rhs) else 0
            return list(a_minus_b + rhs - factor * rhs - shift * sp.ones(len(base), 1))
        if kind == "drop-J":
            rhs = _rhs_of(spec, cf)
            div = cf.success_rate * (1 - cf.success_rate) if spec.id == "grad-J-variance-gap" else (1 - cf.success_rate)
            return list(sp.Matrix(base) + rhs - rhs / div)
        rhs = _rhs_of(spec, cf)
        return list(sp.Matrix(base) + 2 * rhs)

    return IdentitySpec(f"{spec.id}~{kind}", spec.title, spec.theory_name, spec.statement, spec.source,
                        spec.families, routes, residual, spec.routes_text, spec.applies)


def _rhs_of(spec: IdentitySpec, cf: Any) -> Any:
    """The theory closed form of the right side ``b`` of each identity (so that residual = a - b)."""

    if spec.id == "score-mean-zero":
        return sp.zeros(cf.n, 1)
    if spec.id == "grad-J-variance-gap":
        return cf.success_rate * (1 - cf.success_rate) * cf.gradient_gap
    return sp.Matrix(cf.gradient_gap)


def _identity_mutants(spec: IdentitySpec) -> list[Claim]:
    r"""Wrong variants: the right side off by 2, its sign flipped, and (where the right side has one) a dropped
    factor; each is checked by the same route search (its PROVED check does not apply) and must FAIL."""
    kinds = [("scale", 2.0)] if spec.id == "score-mean-zero" else [("scale", 2.0), ("flip", -1.0)]
    if spec.id in ("grad-J-variance-gap", "gap-unique-correct"):
        kinds.append(("drop-J", 1.0))
    out = []
    for kind, factor in kinds:
        mspec = _scaled_routes(spec, factor, kind)
        _MUTANT_SPECS[mspec.id] = mspec
        out.append(mutant_claim(spec.id, kind, _tested_identity(mspec)))
    return out


_MUTANT_SPECS: dict[str, IdentitySpec] = {}


def _spec_by_id(spec_id: str) -> IdentitySpec:
    for s in IDENTITIES:
        if s.id == spec_id:
            return s
    return _MUTANT_SPECS[spec_id]


# ------------------------------------------------------------------ closed forms for the LaTeX document


def _closed_form_examples(spec: IdentitySpec) -> list[tuple[str, str]]:
    """LaTeX of the closed forms the identity speaks about, for the smallest members of its families."""

    out: list[tuple[str, str]] = []
    if "softmax" in spec.families:
        inst = SoftmaxBandit((0.0, 0.0, 0.0), frozenset({0}))
        cf = _theory(inst).closed_forms(inst)
        out.append(("softmax $K=3$, $C=\\{0\\}$: $J$", sp.latex(cf.success_rate)))
        out.append(("softmax $K=3$, $C=\\{0\\}$: $g$", sp.latex(sp.simplify(cf.gradient_gap.T))))
    if "tokens" in spec.families:
        inst2 = TokenSequence(((0.0, 0.0), (0.0, 0.0)), (0, 0))
        cf2 = _theory(inst2).closed_forms(inst2)
        out.append(("tokens $T=2$, $V=2$, exact match: $J$", sp.latex(cf2.success_rate)))
    return out


# ------------------------------------------------------------------ family constants


def _constant_value(inst: Instance, name: str) -> tuple[Any, str, str] | None:
    c = getattr(_theory(inst).constants(inst), name)
    if c.value is None:
        return None
    return c.value, str(c.attainment), c.proof


def _score_norm_float(inst: Instance, response: tuple[int, ...]) -> float:
    return float(np.linalg.norm(_vec(_numerics(inst).score(inst, response))))


def _hessian_float(inst: Instance, response: tuple[int, ...]) -> np.ndarray:
    r"""Hessian of :math:`\log\pi_\theta(o)` by central differences of the numeric score (tolerance ``FD``)."""
    mod = _numerics(inst)
    H = fd_jacobian(lambda theta: _vec(mod.score(inst.with_theta(tuple(theta)), response)),
                    np.asarray(inst.theta, dtype=float), FD_STEP)
    return 0.5 * (H + H.T)


def _success_hessian_float(inst: Instance) -> np.ndarray:
    r"""Hessian of :math:`J(\theta)` by central differences of the numeric :math:`\nabla J` (tolerance ``FD``)."""
    mod = _numerics(inst)
    H = fd_jacobian(lambda theta: _vec(mod.grad_success_rate(inst.with_theta(tuple(theta)))),
                    np.asarray(inst.theta, dtype=float), FD_STEP)
    return 0.5 * (H + H.T)


def _norm_float(inst: Instance, response: tuple[int, ...], name: str) -> float:
    r"""The numerics' norm the constant ``name`` bounds: :math:`\|s(o)\|` (``G_o``),
    :math:`\|\nabla^2\log\pi(o)\|_{op}` (``L_o``) or :math:`\|\nabla^2J\|_{op}` (``smoothness_J``, no response)."""
    if name == "G_o":
        return _score_norm_float(inst, response)
    if name == "L_o":
        return numeric_loglinear.operator_norm(_hessian_float(inst, response))
    return numeric_loglinear.operator_norm(_success_hessian_float(inst))


@lru_cache(maxsize=256)
def _hp_logprob_fns(structure: Instance, response: tuple[int, ...]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Score and Hessian of log pi(o) from the theory (its log-linear form) differentiated, for mpmath."""
    params = list(_theory(structure).parameters(structure))
    logp = symbolic_loglinear.log_prob(structure, response, params)
    grad = [sp.diff(logp, p) for p in params]
    hess = [[sp.diff(g, p) for p in params] for g in grad]
    return (sp.lambdify(params, grad, modules="mpmath"), sp.lambdify(params, hess, modules="mpmath"))


@lru_cache(maxsize=64)
def _hp_success_fns(structure: Instance) -> tuple[Callable[..., Any], Callable[..., Any]]:
    r""":math:`\nabla J` and :math:`\nabla^2 J` from the theory's closed-form :math:`J` differentiated, for mpmath."""
    cf = _theory(structure).closed_forms(structure)
    grad = [sp.diff(cf.success_rate, p) for p in cf.theta]
    hess = [[sp.diff(g, p) for p in cf.theta] for g in grad]
    return sp.lambdify(cf.theta, grad, modules="mpmath"), sp.lambdify(cf.theta, hess, modules="mpmath")


def hp_norm_of(fns: tuple[Callable[..., Any], Callable[..., Any]], theta: Sequence[float], name: str) -> mpmath.mpf:
    r"""At 60 digits, from mpmath functions ``fns = (gradient, Hessian)`` of the parameters: the gradient's norm
    for ``G_o``, the Hessian's operator norm otherwise (``L_o`` of :math:`\log\pi_\theta(o)`, ``smoothness_J``
    of :math:`J`)."""
    grad_fn, hess_fn = fns
    with mpmath.workdps(60):
        point = [mpmath.mpf(x) for x in theta]
        if name == "G_o":
            return mpmath.sqrt(mpmath.fsum(mpmath.mpf(x) ** 2 for x in grad_fn(*point)))
        return max(abs(e) for e in mpmath.eigsy(mpmath.matrix(hess_fn(*point)), eigvals_only=True))


def _hp_norm(inst: Instance, response: tuple[int, ...], name: str) -> mpmath.mpf:
    fns = _hp_success_fns(_structure(inst)) if name == "smoothness_J" else _hp_logprob_fns(_structure(inst), response)
    return hp_norm_of(fns, inst.theta, name)


def _responses(inst: Instance, name: str = "G_o") -> st.SearchStrategy[tuple[int, ...]]:
    if name == "smoothness_J":  # a property of J, not of one response
        return st.just(())
    form = inst.structure()
    if isinstance(form, ContextualForm):  # pairs (x, a) of a mixture over prompts
        return st.sampled_from(form.responses())
    return st.tuples(*(st.integers(0, p.V - 1) for p in form.expanded()))


def _near_attaining(family: str, name: str) -> list[tuple[Instance, tuple[int, ...], str]]:
    """Configurations that approach the supremum (from the constants' proofs), with a description."""
    lam = 30.0
    if name == "smoothness_J":  # |sigma''(z)| is largest at z = log(2 + sqrt3), sigma(z) = 1/2 + 1/(2 sqrt3)
        peak = math.log(2 + math.sqrt(3))
        if family == "softmax":
            return [(SoftmaxBandit((peak, 0.0), frozenset({0})), (), "K=2, theta=(log(2+sqrt3), 0)"),
                    (SoftmaxBandit((peak, 0.0, -lam), frozenset({0})), (), "K=3, theta=(log(2+sqrt3), 0, -30)")]
        if family == "tokens":
            return [(TokenSequence(((peak, 0.0),), (0,)), (), "T=1, V=2, theta=(log(2+sqrt3), 0)")]
        if family == "autoregressive":
            return [(Autoregressive(logits=(((peak, 0.0),),), target=(0,)), (), "T=1, V=2, theta=(log(2+sqrt3), 0)")]
        return []
    if family == "softmax":
        if name == "G_o":
            return [(SoftmaxBandit((0.0, lam, 0.0), frozenset({0})), (0,), "K=3, theta=(0,30,0), a=0")]
        return [(SoftmaxBandit((0.0, 0.0), frozenset({0})), (0,), "K=2, theta=0"),
                (SoftmaxBandit((0.0, 0.0, -lam), frozenset({0})), (0,), "K=3, theta=(0,0,-30)")]
    if family == "tokens":
        if name == "G_o":
            return [(TokenSequence(((0.0, lam), (lam, 0.0)), (0, 1)), (0, 1), "T=2, V=2, mass off o_t")]
        return [(TokenSequence(((0.0, 0.0), (lam, 0.0)), (0, 0)), (0, 0), "T=2, V=2, theta_1=0")]
    return []


#: the families whose constants the claims call sharp (their statements), each with near-attaining configurations
SHARP_FAMILIES: Final[tuple[str, ...]] = ("softmax", "tokens")


def _constant_families(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The families searched for the constant ``name``, and those it is claimed sharp for (the smoothness of J
    also has a closed value, sharp, for the one-token autoregressive table: the softmax bandit)."""
    if name == "smoothness_J":
        return (*FAMILY_ORDER, "autoregressive"), (*SHARP_FAMILIES, "autoregressive")
    return FAMILY_ORDER, SHARP_FAMILIES


def _approach(name: str, fams: Sequence[str]) -> list[dict[str, Any]]:
    r"""The near-attaining configurations of each family at 50 digits: the ratio :math:`\|\cdot\|/c`, whether
    the norm equals the constant :math:`c` (``attained``: :math:`|\,\|\cdot\|-c\,|\le` ``HP_ZERO`` :math:`c`) or
    exceeds it (``exceeds``: a counterexample), and whether the theory calls :math:`c` a maximum."""
    out = []
    for fam in fams:
        for inst, resp, text in _near_attaining(fam, name):
            cv = _constant_value(inst, name)
            if cv is None:
                continue
            hp = _hp_norm(inst, resp, name)
            with mpmath.workdps(60):
                c = mpmath.mpf(str(cv[0].evalf(60)))
                out.append({"family": fam, "structure": _structure(inst).describe(), "config": text,
                            "ratio": float(mpmath.nstr(hp / c, 12)),
                            "attained": bool(abs(hp - c) <= HP_ZERO * c), "maximum": cv[1] == "maximum",
                            "exceeds": bool(hp > c * (1 + mpmath.mpf(HP_ZERO)))})
    return out


def _not_sharp(attained: Sequence[dict[str, Any]], families_: Sequence[str]) -> list[dict[str, Any]]:
    r"""Per structure with near-attaining configurations (the constant may differ between structures of one
    family): its best configuration neither evaluates to the constant at 50 digits nor reaches ``SHARP_RATIO`` of
    it, or the theory calls the constant a maximum there and no configuration attains it; and the families
    claimed sharp with no configuration at all. Each with the reason; empty when every such claim is met."""
    bad = [{"family": fam, "reason": f"no configuration approaching it for {fam}"}
           for fam in families_ if not any(a["family"] == fam for a in attained)]
    for structure in dict.fromkeys(a["structure"] for a in attained if a["family"] in families_):
        mine = [a for a in attained if a["structure"] == structure]
        best = max(mine, key=lambda a: a["ratio"])
        if mine[0]["maximum"] and not any(a["attained"] for a in mine):
            bad.append({**best, "reason": f"called a maximum for {structure}, but no configuration checked attains "
                                          f"it at 50 digits (best ratio {best['ratio']:.12g}, {best['config']})"})
        elif not (best["attained"] or best["ratio"] >= SHARP_RATIO):
            bad.append({**best, "reason": f"best approach ratio {best['ratio']:.6g} < {SHARP_RATIO} for {structure} "
                                          f"({best['config']})"})
    return bad


def _constant_check(name: str) -> Any:
    def run(profile: Profile) -> Evidence:
        fams, sharp = _constant_families(name)
        valued = {fam: [(rep, cv) for rep in _structures(fam, profile)
                        if (cv := _constant_value(rep, name)) is not None] for fam in fams}
        per_family = max(15, profile.examples // (2 * max(1, sum(map(bool, valued.values())))))
        stats = {"examples": 0, "hp_reevaluations": 0}
        best = [0.0]
        found: list[dict[str, Any]] = []
        values: dict[str, str] = {}
        no_value: list[str] = []

        @st.composite
        def cases(draw: st.DrawFn, fam: str) -> tuple[Instance, tuple[int, ...]]:
            inst = draw(_family_strategy(fam, profile, lambda i: _constant_value(i, name) is not None))
            return inst, draw(_responses(inst, name))

        seen: set[tuple[Instance, tuple[int, ...]]] = set()

        def body(case: tuple[Instance, tuple[int, ...]]) -> None:
            inst, resp = case
            cv = _constant_value(inst, name)
            if cv is None:
                return
            bound = float(cv[0])
            stats["examples"] += 1
            seen.add(case)
            norm = _norm_float(inst, resp, name)
            ratio = norm / bound if bound > 0 else (0.0 if norm <= EXACT[1] else math.inf)
            best[0] = max(best[0], ratio)
            if math.isfinite(ratio):
                target(ratio, label="norm/constant")
            rtol, atol = EXACT if name == "G_o" else FD
            if norm <= bound * (1 + rtol) + atol:
                return
            stats["hp_reevaluations"] += 1
            hp = _hp_norm(inst, resp, name)
            with mpmath.workdps(60):
                exact_bound = mpmath.mpf(str(cv[0].evalf(60)))
                if hp > exact_bound * (1 + mpmath.mpf(HP_ZERO)):
                    found.append({"instance": _instance_dict(inst), "response": list(resp),
                                  "norm_50_digits": mpmath.nstr(hp, 20), name: mpmath.nstr(exact_bound, 20)})
                    raise _Found(name)

        for fam in fams:
            if not valued[fam]:  # no member of the family has a closed value: nothing to search
                no_value.append(fam)
                continue
            rep, cv = valued[fam][0]
            values[fam] = f"{cv[0]} ({cv[1]}) for {rep.describe()}"
            try:
                _run_hypothesis(cases(fam), body, per_family, profile)
            except (_Found, ExceptionGroup):
                break
        attained = _approach(name, fams)
        figures: dict[str, Any] = {"examples": stats["examples"], "values": values,
                                   "largest_ratio_found": round(best[0], 9),
                                   "hp_reevaluations": stats["hp_reevaluations"], "near_attaining": attained}
        if no_value:
            figures["no_closed_value"] = no_value
        if found:
            return Evidence.fails(Strength.TESTED, found[-1], figures,
                                  detail=f"a norm above {name} survives 50-digit re-evaluation")
        if not stats["examples"]:
            return Evidence.undecided(f"no family has a closed value of {name}", figures)
        above = [a for a in attained if a["exceeds"]]
        if above:
            return Evidence.checked(Status.FAILS, len(attained), "near-attaining configurations", figures, above[0],
                                    detail=f"a near-attaining configuration exceeds {name} at 50 digits: "
                                           f"{above[0]['family']} {above[0]['config']}, ratio {above[0]['ratio']:.12g}")
        not_sharp = _not_sharp(attained, sharp)
        if not_sharp:
            return Evidence.checked(Status.FAILS, len(attained), "near-attaining configurations", figures,
                                    not_sharp[0], detail=f"{name} is claimed sharp but not approached: "
                                                         f"{not_sharp[0]['reason']}")
        return Evidence.sampled(len(seen), profile, figures,
                                detail=f"no sampled norm above {name}; approach ratio "
                                       f"{min(a['ratio'] for a in attained):.9f} or better per family",
                                what="distinct (instance, response) pairs")

    return named_check(f"hypothesis-{name}", run)


def _g_o_proof(structure: Instance, response: tuple[int, ...]) -> tuple[bool, str]:
    r""":math:`G_o^2-\|s(o)\|^2>0` as a sign-definite rational function of :math:`x=e^\theta`, and
    :math:`\|s(o)\|^2\to G_o^2` along the near-attaining ray (the SymPy limit is :func:`_g_o_limit`)."""
    cv = _constant_value(structure, "G_o")
    if cv is None:
        return False, "no closed value"
    params = list(_theory(structure).parameters(structure))
    xs = [sp.Symbol(f"x_{i}", positive=True) for i in range(len(params))]
    to_x = {sp.exp(p): x for p, x in zip(params, xs, strict=True)}
    norm2 = symbolic_loglinear.score_norm_squared(structure, response, params)
    diff = (cv[0] ** 2 - norm2).subs(to_x)
    return symbolic_loglinear.positive_form(diff, xs)


def _g_o_limit(structure: Instance) -> tuple[bool, str]:
    """The supremum is approached: ||s||^2 -> G_o^2 along theta = lam * direction, lam -> oo, the direction
    weighting the parameter of the token after o*_t at every position (tabular structures, o* unique)."""
    lam = sp.Symbol("lam", positive=True)
    cv = _constant_value(structure, "G_o")
    params = list(_theory(structure).parameters(structure))
    response = _unique_response(structure)
    pushed: set[int] = set()
    for o, position in zip(response, structure.structure().expanded(), strict=True):
        pushed.add(position.features[(o + 1) % position.V].index(1.0))  # tabular: that token's one parameter
    ray = {p: (lam if i in pushed else 0) for i, p in enumerate(params)}
    norm2 = symbolic_loglinear.score_norm_squared(structure, response, params).subs(ray)
    value = sp.limit(sp.simplify(norm2), lam, sp.oo)
    return bool(sp.simplify(value - cv[0] ** 2) == 0), f"lim ||s||^2 = {value}"


def _g_o_proved_check() -> Any:
    def run(profile: Profile) -> Evidence:
        proved: list[str] = []
        for fam in ("softmax", "tokens"):
            shapes = ([SoftmaxBandit((0.0,) * k, frozenset({0})) for k in (2, 3, 4)] if fam == "softmax" else
                      [TokenSequence(((0.0,) * v,) * t, (0,) * t) for t, v in ((1, 2), (2, 2), (1, 3))
                       + (((2, 3),) if profile.size_cap >= 5 else ())])
            for structure in shapes:
                responses = structure.structure().responses()
                for resp in responses:
                    ok, how = _g_o_proof(structure, resp)
                    if not ok:
                        return Evidence.undecided(f"G_o^2 - |s|^2 not sign-definite for {structure.describe()}, "
                                                  f"o={resp}: {how}")
                ok, how = _g_o_limit(structure)
                if not ok:
                    return Evidence.undecided(f"supremum not reached for {structure.describe()}: {how}")
                proved.append(f"{structure.describe()} ({len(responses)} responses)")
        return Evidence.holds(Strength.PROVED, {"identities": len(proved), "structures": proved},
                              detail="G_o^2 - |s(o)|^2 is a ratio of polynomials in x = e^theta with positive "
                                     "coefficients (so |s| < G_o), and |s|^2 -> G_o^2 along a ray (SymPy limit); "
                                     "softmax and tokens structures listed; shared tokens, contextual: TESTED only")

    return named_check("sign-definite-G_o", run)


def _constant_mutants(name: str) -> list[Claim]:
    """The constant halved (the unsafe direction): the near-attaining configurations must exceed it."""

    def run(profile: Profile) -> Evidence:
        checked = 0
        for fam in _constant_families(name)[0]:
            for inst, resp, text in _near_attaining(fam, name):
                cv = _constant_value(inst, name)
                if cv is None:
                    continue
                checked += 1
                hp = _hp_norm(inst, resp, name)
                with mpmath.workdps(60):
                    half = mpmath.mpf(str(cv[0].evalf(60))) / 2
                    if hp > half:
                        return Evidence.checked(Status.FAILS, checked, "near-attaining configurations", {},
                                                {"instance": _instance_dict(inst), "config": text,
                                                 "norm_50_digits": mpmath.nstr(hp, 20),
                                                 f"{name}/2": mpmath.nstr(half, 20)})
        return Evidence.checked(Status.HOLDS, checked, "near-attaining configurations",
                                detail="no configuration exceeds the halved constant")

    return [mutant_claim(f"constant-{name}", "half", named_check("near-attaining", run))]


def _constant_claim(name: str) -> Claim:
    if name == "G_o":
        statement = (r"\sup_{\theta,o}\big\|\nabla_\theta\log\pi_\theta(o)\big\|=G_o,\quad G_o=\sqrt2\ "
                     r"(\text{softmax}),\ \sqrt{2T}\ (\text{tokens})")
        title = "Score bound G_o (assumption A1) is valid and sharp"
        source = "reconstruction §3 (A1), INFERRED; values DERIVED (theory constants)"
    elif name == "L_o":
        statement = (r"\sup_{\theta,o}\big\|\nabla^2_\theta\log\pi_\theta(o)\big\|_{op}=L_o,\quad L_o=\tfrac12\ "
                     r"(\text{softmax, tokens})")
        title = "Smoothness constant L_o (assumption A2) is valid and sharp"
        source = "reconstruction §3 (A2), INFERRED; values DERIVED (theory constants)"
    else:
        statement = (r"\sup_\theta\big\|\nabla^2_\theta J(\theta)\big\|_{op}=\tfrac1{3\sqrt3}\ (\text{softmax, every }K"
                     r"\text{ and }C\text{; tokens and autoregressive }T=1\text{; a maximum for two arms})")
        title = "Smoothness of J (sup of the Hessian norm of the success rate) is valid and sharp"
        source = ("reconstruction §3 (the smoothness L of J in the step-size analysis), INFERRED; value DERIVED "
                  "(theory constants: proved for K=2, a numerical supremum for K>2)")
    checks = (_g_o_proved_check(), _constant_check(name)) if name == "G_o" else (_constant_check(name),)
    return Claim(id=f"constant-{name}", title=title, family="all", statement=statement, source=source,
                 checks=checks, mutants=lambda name=name: _constant_mutants(name),
                 closed_forms=lambda name=name: _constant_forms(name))


def _constant_forms(name: str) -> list[tuple[str, str]]:
    out = []
    for fam in _constant_families(name)[0]:
        rep = _structures(fam, PROFILE_FOR_DOCS)[0]
        cv = _constant_value(rep, name)
        if cv is not None:
            out.append((f"{rep.describe()}: ${name}$ ({cv[1]})", sp.latex(cv[0])))
    return out


PROFILE_FOR_DOCS: Final[Profile] = Profile("docs", examples=0, size_cap=3, seeds=(0,), trajectories=0, steps=0,
                                           grid=0)


def claims() -> list[Claim]:
    """The core built-in claims (identities and family constants)."""
    return [*(_identity_claim(s) for s in IDENTITIES), *(_constant_claim(n) for n in ("G_o", "L_o", "smoothness_J"))]
