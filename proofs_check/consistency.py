r"""Theory against numerics on every run: the closed forms evaluated at a few random points per claim.

A claim's checks evaluate the theory's closed forms only where the float64 numerics flag a candidate; a wrong
closed form with correct numerics would therefore never be looked at. :func:`cross_check_claim` closes that
gap: for each family of the claim it draws a few random instances (seeded by the claim id, so the gate is
reproducible), evaluates

.. math::  J,\quad \ell=\log\tfrac{J}{1-J},\quad g,\quad \nabla J

with the theory (SymPy closed forms at the exact float parameters, 50 digits) and with the independent
numerics (``structured`` and ``enumerate`` routes for :math:`J,\ell,g`; ``autograd`` for :math:`\nabla J`), and
requires agreement within :data:`~gradgap.proofs_check.tolerances.EXACT`. At the random points it also compares
the quantities no claim's search evaluates on every route (:data:`_SECOND_ROUTES`): the mean score
:math:`\mathbb E_\pi[s]` (theory :math:`J\,\mathbb E_+[s]+(1-J)\,\mathbb E_-[s]`), the log-odds Hessian
:math:`\nabla^2\ell` (theory: the closed form differentiated twice), the conditional mean scores
:math:`\mathbb E_\pm[s]` (``conditional_score``) and the alignment :math:`\langle w,g\rangle`
along a seeded unit direction :math:`w` (theory: :math:`w` against the theory's :math:`g`), on the exact routes
within :data:`~gradgap.proofs_check.tolerances.EXACT` and by finite differences within
:data:`~gradgap.proofs_check.tolerances.FD`. Besides the random points, a few fixed
*extreme* instances per family (logits of several hundred, where :math:`J` or :math:`1-J` is below
:math:`e^{-600}`) exercise the overflow and underflow guards of the numerics (a log-sum-exp without its max
shift, a disabled rescaling); the theory evaluates them at :data:`EXTREME_DPS` digits. ``grad_success_rate`` is
compared on every deterministic route (``structured``, ``enumerate``, ``autograd``): each route has its own
formula (:math:`J(1-J)g`, :math:`\mathbb E[r\,s]`, torch), so a factor dropped from one of them is seen; for
``tokens`` the array-level evaluator ``gap_arrays`` runs on the raw (unshifted) logits as well. A disagreement
is an ``ERROR`` of the claim (a closed form or a twin is wrong; which one is for a person to find), so it turns
the gate red. Once per family and run, the theory's public per-instance functions (``success_rate(inst)`` ...
``score(inst, o)``, ``reward(inst, o)``: what ``derive`` and users call, not the closed forms the claims read) are
compared with the numerics at a seeded point (:func:`public_disagreement`).

Source: docs/DESIGN.md (the two sides share only the instance types); reconstruction §1-§2.1 (quantities).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import mpmath
import numpy as np

from gradgap.proofs_check.claims import Claim, Evidence, Profile, Status
from gradgap.proofs_check.families import FAMILIES
from gradgap.proofs_check.families import family as registry_entry
from gradgap.proofs_check.tolerances import EXACT, FD
from gradgap.theory.instances import Instance

__all__ = ["EXTREME", "POINTS", "cross_check_claim", "cross_check_family", "random_instances"]

#: random points per family and profile
POINTS: Final[dict[str, int]] = {"quick": 2, "ci": 3, "thorough": 10}
#: numeric routes compared with the theory, per quantity
_ROUTES: Final[dict[str, tuple[str, ...]]] = {
    "success_rate": ("structured", "enumerate", "autograd"),
    "log_odds": ("structured", "enumerate", "autograd"),
    "gradient_gap": ("structured", "enumerate"),
    "grad_success_rate": ("structured", "enumerate", "autograd"),
}
#: quantities compared at the random points only, per route with its tolerance (finite differences are looser)
_SECOND_ROUTES: Final[dict[str, tuple[tuple[str, tuple[float, float]], ...]]] = {
    "expected_score": (("structured", EXACT), ("enumerate", EXACT), ("autograd", EXACT)),
    "hessian_log_odds": (("structured", EXACT), ("enumerate", EXACT), ("autograd", EXACT), ("fd", FD)),
    "alignment": (("structured", EXACT), ("enumerate", EXACT), ("fd", FD)),
    "grad_success_rate[fd]": (("fd", FD),),
    "grad_log_odds": (("structured", EXACT), ("enumerate", EXACT), ("autograd", EXACT), ("fd", FD)),
    "conditional_score[success]": (("structured", EXACT), ("enumerate", EXACT), ("autograd", EXACT), ("fd", FD)),
    "conditional_score[failure]": (("structured", EXACT), ("enumerate", EXACT), ("autograd", EXACT), ("fd", FD)),
}
#: digits of the theory's evaluation at the extreme instances (1 - J ~ e^-650 needs ~300 digits to resolve)
EXTREME_DPS: Final[int] = 700


def _families(claim: Claim) -> list[str]:
    if claim.relation is not None:
        return [claim.relation.family]
    if claim.family == "all":
        return list(FAMILIES)
    return [f for f in claim.family.split(",") if f in FAMILIES]


#: fixed extreme instances per family (from the registry; structures of the random points, so no new closed form
#: is compiled)
EXTREME: Final[Mapping[str, tuple[Instance, ...]]] = MappingProxyType(
    {name: entry.cross_check.extreme for name, entry in FAMILIES.items()})


def random_instances(family: str, n: int, seed: int) -> list[Instance]:
    r"""``n`` random instances of ``family``: its cross-check structures (registry) in turn, parameters uniform in
    :math:`[-\text{bound},\text{bound}]` (3 for logits, 1.5 for shared-feature weights)."""
    rng = np.random.default_rng(seed)
    points = registry_entry(family).cross_check
    structures, bound = points.structures, points.bound
    out: list[Instance] = []
    for i in range(n):
        base = structures[i % len(structures)]
        out.append(base.with_theta(tuple(float(x) for x in rng.uniform(-bound, bound, len(base.theta)))))
    return out


def _theory_values(inst: Instance, dps: int = 60) -> dict[str, list[Any]]:
    from gradgap.proofs_check.search import _hp_functions, _structure

    fns = _hp_functions(_structure(inst))
    with mpmath.workdps(dps):
        theta = [mpmath.mpf(x) for x in inst.theta]
        return {"success_rate": [fns.J(*theta)], "log_odds": [fns.log_odds(*theta)],
                "gradient_gap": [mpmath.mpf(x) for x in fns.gap(*theta)],
                "grad_success_rate": [mpmath.mpf(x) for x in fns.grad_J(*theta)]}


@functools.lru_cache(maxsize=32)
def _second_forms(structure: Instance) -> tuple[Any, Any, Any, Any]:
    r"""The theory's mean score, log-odds Hessian and conditional mean scores :math:`\mathbb E_\pm[s]` of
    ``structure``, compiled for mpmath (cached per structure: the Hessian is the costliest closed form)."""
    import sympy

    cf = registry_entry(structure).theory.closed_forms(structure)
    args = list(cf.theta)
    return tuple(sympy.lambdify(args, list(form), modules="mpmath")
                 for form in (cf.e_score, cf.hessian_log_odds, cf.e_score_success, cf.e_score_failure))


def _direction(inst: Instance) -> np.ndarray:
    """A unit direction seeded by the instance's parameters (reproducible, different at every point)."""
    rng = np.random.default_rng(zlib.crc32(repr(inst.theta).encode()))
    w = rng.standard_normal(len(inst.theta))
    return w / np.linalg.norm(w)


def _second_disagreement(inst: Instance, exact_gap: list[Any], exact_grad: list[Any]) -> dict[str, Any] | None:
    """The first of :data:`_SECOND_ROUTES` on which theory and numerics disagree at ``inst``."""
    from gradgap.proofs_check.search import _structure, instance_dict

    mod = registry_entry(inst).numerics
    e_score, hessian, e_plus, e_minus = _second_forms(_structure(inst))
    w = _direction(inst)
    with mpmath.workdps(60):
        theta = [mpmath.mpf(x) for x in inst.theta]
        theory = {"expected_score": [mpmath.mpf(x) for x in e_score(*theta)],
                  "hessian_log_odds": [mpmath.mpf(x) for x in hessian(*theta)],
                  "alignment": [mpmath.fsum(mpmath.mpf(float(a)) * b for a, b in zip(w, exact_gap, strict=True))],
                  "grad_success_rate[fd]": list(exact_grad),
                  "grad_log_odds": list(exact_gap),  # the theory's g: grad l = g (PROVED: gap-grad-log-odds)
                  "conditional_score[success]": [mpmath.mpf(x) for x in e_plus(*theta)],
                  "conditional_score[failure]": [mpmath.mpf(x) for x in e_minus(*theta)]}
    for name, routes in _SECOND_ROUTES.items():
        want = np.array([float(x) for x in theory[name]])
        quantity, _, which = name.partition("[")  # "[fd]" only names a second entry of a quantity
        args: tuple[Any, ...] = {"alignment": (inst, w), "conditional_score": (inst, which == "success]")}.get(
            quantity, (inst,))
        for route, (rtol, atol) in routes:
            try:
                got = np.asarray(getattr(mod, quantity)(*args, method=route), dtype=float).reshape(-1)
            except NotImplementedError:
                continue
            scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
            if got.shape != want.shape or not np.all(np.abs(got - want) <= atol * scale + rtol * np.abs(want)):
                return {"instance": instance_dict(inst), "quantity": name, "route": route,
                        "theory": [mpmath.nstr(x, 17) for x in theory[name]], "numerics": got.tolist(),
                        "tolerance": [rtol, atol]}
    return None


@functools.lru_cache(maxsize=64)
def _disagreement(inst: Instance, dps: int = 60) -> dict[str, Any] | None:
    """The first quantity and route on which theory and numerics disagree at ``inst`` (cached: the extreme
    instances are shared by every claim)."""
    from gradgap.proofs_check.search import instance_dict

    mod = registry_entry(inst).numerics
    exact = _theory_values(inst, dps)
    rtol, atol = EXACT
    if hasattr(mod, "gap_arrays"):  # the array-level evaluator on the raw logits (its own rescaling guards)
        arrays = mod.gap_arrays(inst.logits, inst.target, min_correct=inst.min_correct)
        got = np.asarray(arrays.gap, dtype=float).reshape(-1)
        want = np.array([float(x) for x in exact["gradient_gap"]])
        rtol, atol = EXACT
        if got.shape != want.shape or not np.all(np.abs(got - want) <= atol + rtol * np.abs(want)):
            return {"instance": instance_dict(inst), "quantity": "gradient_gap", "route": "gap_arrays",
                    "theory": [mpmath.nstr(x, 17) for x in exact["gradient_gap"]], "numerics": got.tolist(),
                    "tolerance": list(EXACT)}
    for name, routes in _ROUTES.items():
        want = np.array([float(x) for x in exact[name]])
        for route in routes:
            try:
                got = np.asarray(getattr(mod, name)(inst, method=route), dtype=float).reshape(-1)
            except NotImplementedError:
                continue
            err = np.abs(got - want)
            if got.shape != want.shape or not np.all(err <= atol + rtol * np.abs(want)):
                return {"instance": instance_dict(inst), "quantity": name, "route": route,
                        "theory": [mpmath.nstr(x, 17) for x in exact[name]], "numerics": got.tolist(),
                        "tolerance": list(EXACT)}
    if dps == EXTREME_DPS:  # the extreme instances test the guards of J, l, g and grad J only
        return None
    return _second_disagreement(inst, exact["gradient_gap"], exact["grad_success_rate"])


#: the theory's per-instance functions compared with the numerics at one seeded point per family (the gate's
#: claims read the closed forms directly; these are what ``derive`` and users call)
_PUBLIC: Final[tuple[str, ...]] = ("success_rate", "log_odds", "gradient_gap", "grad_success_rate", "grad_log_odds",
                                   "expected_score", "conditional_score", "hessian_log_odds", "alignment", "score",
                                   "reward")


@functools.lru_cache(maxsize=8)
def public_disagreement(family: str) -> dict[str, Any] | None:
    r"""The theory module's public functions (``theory.<family>.success_rate(inst)``, ..., ``score(inst, o)``,
    ``reward(inst, o)``) at one seeded random instance against the numerics' ``structured`` route (``enumerate``
    for the Hessian; ``score`` (structured and autograd) and ``reward`` at two sampled responses), within
    :data:`~gradgap.proofs_check.tolerances.EXACT`; the first disagreement, or ``None``."""
    from gradgap.proofs_check.search import instance_dict

    entry = registry_entry(family)
    (inst,) = random_instances(family, 1, zlib.crc32(family.encode()))
    theory, numerics = entry.theory, entry.numerics
    w = _direction(inst)
    responses = numerics.sample_responses(inst, 2, np.random.default_rng(0))
    rtol, atol = EXACT
    for name in _PUBLIC:
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [((inst,), {"method": "structured"})]
        if name == "hessian_log_odds":
            calls = [((inst,), {"method": "enumerate"})]
        elif name == "conditional_score":
            calls = [((inst, flag), {"method": "structured"}) for flag in (True, False)]
        elif name == "alignment":
            calls = [((inst, w), {"method": "structured"})]
        elif name == "score":
            calls = [((inst, tuple(int(v) for v in o)), {"method": m}) for o in responses
                     for m in ("structured", "autograd")]
        elif name == "reward":
            calls = [((inst, tuple(int(v) for v in o)), {}) for o in responses]
        for args, kwargs in calls:
            want = np.array([float(_number(x)) for x in _entries(getattr(theory, name)(*args))], dtype=float)
            got = np.asarray(getattr(numerics, name)(*args, **kwargs), dtype=float).reshape(-1)
            if got.shape != want.shape or not np.all(np.abs(got - want) <= atol + rtol * np.abs(want)):
                return {"family": family, "instance": instance_dict(inst), "quantity": f"theory.{name}",
                        "route": kwargs.get("method", "direct"), "arguments": [repr(a) for a in args[1:]],
                        "theory": want.tolist(), "numerics": got.tolist(), "tolerance": list(EXACT)}
    return None


def _entries(value: Any) -> list[Any]:
    import sympy

    return list(value) if isinstance(value, sympy.MatrixBase) else [value]


def _number(x: Any) -> Any:
    """A SymPy number at 30 digits (a Python int passes through)."""
    import sympy

    return sympy.N(x, 30) if isinstance(x, sympy.Basic) else x


def cross_check_family(family: str, n: int, seed: int) -> tuple[int, dict[str, Any] | None]:
    """Points checked and the first disagreement (``None`` when all agree); the theory's public functions at one
    seeded point per family (:func:`public_disagreement`, once per run) first."""
    bad = public_disagreement(family)
    if bad is not None:
        return 1, bad
    checked = 1
    points = [(inst, 60) for inst in random_instances(family, n, seed)]
    for inst, dps in [*points, *((inst, EXTREME_DPS) for inst in registry_entry(family).cross_check.extreme)]:
        bad = _disagreement(inst, dps)
        checked += 1
        if bad is not None:
            return checked, {"family": family, **bad}
    return checked, None


def cross_check_claim(claim: Claim, profile: Profile) -> Evidence:
    r"""``HOLDS`` (CHECKED on that many points) when the theory and the numerics agree at every random point of
    every family of ``claim``; ``ERROR`` with the point otherwise; ``UNDECIDED`` for a claim without a policy family."""
    fams = _families(claim)
    if not fams:
        return Evidence.undecided("no policy family to cross-check")
    n = POINTS.get(profile.name, 3)
    seed = zlib.crc32(claim.id.encode())
    total = 0
    for fam in fams:
        checked, bad = cross_check_family(fam, n, seed)
        total += checked
        if bad is not None:
            return Evidence.error(f"theory and numerics disagree on {bad['quantity']} ({bad['route']}) for "
                                  f"{fam}: a closed form or a twin is wrong", {"cross_check": bad})
    return Evidence.checked(Status.HOLDS, total, "random points", {"cross_check_points": total},
                            detail=f"theory = numerics at {total} random points")
