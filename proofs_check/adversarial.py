r"""Adversarial counterexample search for a relation claim: seeded local optimisation of the violation margin.

Uniform sampling rarely lands where a near-tight false claim fails: ties among logits, directions along
differences of arms or features (nearly orthogonal to :math:`g`), the boundary of a hypothesis
:math:`\eta\le E`, :math:`\eta\to0`, near-deterministic policies (:math:`J` within :math:`10^{-12}` of 0 or 1).
After the Hypothesis search (:func:`gradgap.proofs_check.search.search_relation`, which steers with
``target()`` on the same margin), :func:`adversarial_search` minimises the relative margin

.. math::  m(\theta,w,u)=\frac{\text{lhs}-\text{rhs}}{1+|\text{lhs}|+|\text{rhs}|}

over the parameters :math:`\theta` (logits up to :math:`\pm60`), the raw direction (for ``random``) and the step
fraction :math:`u\in[0,1]` (:math:`\eta=\eta_{lo}+u(\eta_{hi}-\eta_{lo})`, the upper end narrowed by the
hypotheses, so :math:`u=1` is the boundary of ``eta <= E``), by bounded Nelder-Mead (``scipy.optimize``),
started from the best Hypothesis points and from the seeds above, on a few structures per size. Hypotheses
that fail add a penalty (the optimiser walks back into the admissible set). Every point whose float64 margin
is a candidate is re-evaluated at 50 digits with the theory side before it counts, exactly as in the search.

The budget per profile is :data:`BUDGETS` (structures, starts per structure, evaluations per start); the
report states it (``figures["search_budget"]``).

Source: reconstruction §2-§4 for the quantities; the seeds follow the extremal configurations of the
constants' proofs (§3, DERIVED) and of the one-step lemma (§4.1, DERIVED).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from gradgap.proofs_check import expressions as ex
from gradgap.proofs_check.families import family as registry_entry
from gradgap.proofs_check.tolerances import HP_RTOL, SCREEN_EQ_RTOL, SCREEN_RTOL
from gradgap.theory.instances import GradgapError, Instance

__all__ = ["BUDGETS", "AdversarialResult", "Budget", "adversarial_search", "structures_for"]


@dataclass(frozen=True)
class Budget:
    """Search budget of one profile: structures tried, local starts per structure, evaluations per start."""

    structures: int
    starts: int
    evaluations: int

    def as_dict(self) -> dict[str, int]:
        return {"structures": self.structures, "starts_per_structure": self.starts,
                "evaluations_per_start": self.evaluations}


#: the adversarial budget per profile (unknown profiles use ``ci``'s)
BUDGETS: Final[dict[str, Budget]] = {
    "quick": Budget(structures=4, starts=2, evaluations=80),
    "ci": Budget(structures=6, starts=3, evaluations=160),
    "thorough": Budget(structures=16, starts=6, evaluations=600),
}
#: step fractions of the seeds: the hypothesis' boundary, a small and a vanishing step (strict relations add 0)
_FRACTIONS: Final[tuple[float, ...]] = (1.0, 1e-2, 1e-6)
#: weights of g mixed into a direction orthogonal-ish to it (a small positive alignment)
_TILTS: Final[tuple[float, ...]] = (1e-3, 3e-2)
#: bound on the parameters the optimiser moves
THETA_BOUND: Final[float] = 60.0
_PENALTY: Final[float] = 1.0


@dataclass
class AdversarialResult:
    """What the adversarial phase found: a verified counterexample (or ``None``) and its figures."""

    counterexample: dict[str, Any] | None
    evaluations: int = 0
    starts: int = 0
    structures: int = 0
    candidates: int = 0
    cleared_by_hp: int = 0
    #: float candidates whose 50-digit re-evaluation broke down (e.g. 1 - J cancels to 0 at that precision):
    #: neither counted as counterexamples nor as cleared, and reported
    unresolved_hp: int = 0
    min_rel_margin: float = math.inf
    seconds: float = 0.0
    budget: dict[str, int] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        return {"adversarial_evaluations": self.evaluations, "adversarial_starts": self.starts,
                "adversarial_structures": self.structures, "adversarial_hp_reevaluations": self.candidates,
                "adversarial_min_rel_margin": (None if not math.isfinite(self.min_rel_margin)
                                               else float(f"{self.min_rel_margin:.3e}")),
                "adversarial_unresolved_hp": self.unresolved_hp, "adversarial_seconds": round(self.seconds, 3)}


# ------------------------------------------------------------------ structures and seeds


def structures_for(family: str, sizes: dict[str, tuple[int, int]], cap: int, limit: int) -> list[Instance]:
    r"""Up to ``limit`` structures (parameters zero) of ``family`` in ``sizes`` (capped at ``cap``; at most 256
    responses), smallest first, with the correct sets / targets that extremal configurations use (the family's
    :class:`~gradgap.proofs_check.seeds.AdversarialSeeds`), evenly thinned when there are more."""
    uniq = list(dict.fromkeys(registry_entry(family).adversarial_seeds.structures(sizes, cap)))
    if len(uniq) <= limit:
        return uniq
    idx = np.linspace(0, len(uniq) - 1, limit).round().astype(int)
    return [uniq[i] for i in dict.fromkeys(idx.tolist())]


def _theta_seeds(inst: Instance) -> list[np.ndarray]:
    """Ties (all zero), then the family's seeds: near-deterministic points toward success and failure, moves along
    features, a mild point."""
    return [np.zeros(len(inst.theta)), *registry_entry(inst).adversarial_seeds.theta(inst)]


def _direction_seeds(inst: Instance, rng: np.random.Generator) -> list[np.ndarray]:
    """The family's differences (of arms, of a position's tokens, of features), single coordinates and random
    draws, normalised."""
    n = len(inst.theta)
    out = list(registry_entry(inst).adversarial_seeds.directions(inst))
    out.extend(np.eye(n))
    out.extend(rng.standard_normal((2, n)))
    return [w / np.linalg.norm(w) for w in out if np.linalg.norm(w) > 1e-3]


def _tilted(inst: Instance, theta: np.ndarray, dirs: list[np.ndarray]) -> list[np.ndarray]:
    r"""Directions :math:`d+\tau\,g/\|g\|` for the differences :math:`d` nearly orthogonal to :math:`g`: a small
    positive alignment, where step bounds proportional to :math:`\Delta\mu` are tightest."""
    from gradgap.proofs_check.search import _float_quantities

    try:
        g = np.asarray(_float_quantities(inst.with_theta(tuple(float(v) for v in theta)))["g"], dtype=float)
    except (GradgapError, ArithmeticError, ValueError):
        return []
    norm = float(np.linalg.norm(g))
    if not norm > 1e-12:
        return []
    gh = g / norm
    out = []
    for d in dirs:
        if abs(float(np.dot(d, gh))) < 0.5:
            for tau in _TILTS:
                w = d - float(np.dot(d, gh)) * gh + tau * gh
                if np.linalg.norm(w) > 1e-3:
                    out.append(w / np.linalg.norm(w))
    return out


# ------------------------------------------------------------------ the objective


class _Found(Exception):
    pass


def adversarial_search(comp: Any, profile_name: str, starts: Iterable[Any] = (), *, cap: int = 4,
                       seed: int = 0) -> AdversarialResult:
    r"""Minimise the relative margin of the compiled relation ``comp`` (see
    :func:`gradgap.proofs_check.search._compile`) from ``starts`` (search :class:`~gradgap.proofs_check.search.Case`
    points) and the family's seeds; the first candidate that survives the 50-digit re-evaluation ends it."""
    from scipy.optimize import minimize

    from gradgap.proofs_check import search

    budget = BUDGETS.get(profile_name, BUDGETS["ci"])
    res = AdversarialResult(None, budget=budget.as_dict())
    t0 = time.perf_counter()
    rel = comp.relation
    random_dir = rel.direction == "random"
    rng = np.random.default_rng(seed)
    checked: set[tuple[Any, ...]] = set()

    def case_of(inst: Instance, x: np.ndarray) -> Any:
        n = len(inst.theta)
        theta = tuple(float(v) for v in np.clip(x[:n], -THETA_BOUND, THETA_BOUND))
        raw = tuple(float(v) for v in x[n:2 * n]) if random_dir else ()
        u = float(np.clip(x[-1], 0.0, 1.0))
        return search.Case(inst.with_theta(theta), raw, u)

    def verify(case: Any) -> None:
        key = (case.inst, case.raw_w, case.u)
        if key in checked:
            return
        checked.add(key)
        res.candidates += 1
        try:
            menv = search._mp_env(comp, case)
            if menv is None or not search._given_hold_mp(comp, menv):
                res.cleared_by_hp += 1
                return
            hm = ex.margin(comp.claim, menv, precision="mp")
            bad = ex.violated(comp.claim, hm, HP_RTOL * ex.scale(comp.claim, menv, precision="mp"))
        except ArithmeticError:  # ZeroDivisionError included: the 50-digit evaluation cannot resolve this point
            res.unresolved_hp += 1
            return
        if bad:
            res.counterexample = {**search._counterexample(comp, case, menv, hm), "found_by": "adversarial"}
            raise _Found
        res.cleared_by_hp += 1

    def objective(case: Any) -> float:
        res.evaluations += 1
        try:
            with np.errstate(all="ignore"):
                env = search._float_env(comp, case)
        except (GradgapError, ArithmeticError, ValueError):
            return 10.0
        if env is None:
            return 10.0
        penalty = 0.0
        for g in comp.given:
            m = ex.margin(g, env)
            if m != m:
                return 10.0
            sc = ex.scale(g, env)
            if m < 0 or (g.strict and m <= 0):
                penalty += _PENALTY + min(1.0, -m / sc if sc > 0 else 1.0)
        if penalty:
            return penalty
        m = ex.margin(comp.claim, env)
        sc = ex.scale(comp.claim, env)
        rel_m = m / sc if m == m and math.isfinite(sc) else -math.inf
        if comp.claim.op == "==":
            rel_m = -abs(rel_m)
            candidate = not (rel_m >= -SCREEN_EQ_RTOL)
        else:
            candidate = not (rel_m > SCREEN_RTOL) if comp.claim.strict else not (rel_m >= 0.0)
        if math.isfinite(rel_m):
            res.min_rel_margin = min(res.min_rel_margin, rel_m)
        if candidate:
            verify(case)
        return rel_m if math.isfinite(rel_m) else 10.0

    def run_local(inst: Instance, x0: np.ndarray) -> None:
        n = len(inst.theta)
        bounds = [(-THETA_BOUND, THETA_BOUND)] * n + ([(-1.0, 1.0)] * n if random_dir else []) + [(0.0, 1.0)]
        x0 = np.clip(x0, [b[0] for b in bounds], [b[1] for b in bounds])
        res.starts += 1
        minimize(lambda x: objective(case_of(inst, x)), x0, method="Nelder-Mead", bounds=bounds,
                 options={"maxfev": budget.evaluations, "xatol": 1e-10, "fatol": 1e-14, "adaptive": True})

    try:
        by_structure: dict[Instance, list[tuple[float, np.ndarray]]] = {}
        for case in starts:  # the best points of the Hypothesis search
            base = search._structure(case.inst)
            x = np.concatenate([np.asarray(case.inst.theta, dtype=float),
                                np.asarray(case.raw_w, dtype=float) if random_dir else np.zeros(0), [case.u]])
            by_structure.setdefault(base, []).append((objective(case), x))
        structures = structures_for(rel.family, dict(rel.sizes), cap, budget.structures)
        res.structures = len(structures)
        for base in structures:
            pool = by_structure.pop(base, [])
            dirs = _direction_seeds(base, rng) if random_dir else [np.zeros(0)]
            fractions = (*_FRACTIONS, 0.0) if comp.claim.strict else _FRACTIONS
            for theta in _theta_seeds(base):
                for w in [*dirs, *(_tilted(base, theta, dirs) if random_dir else [])]:
                    for u in fractions:
                        x = np.concatenate([theta, w, [u]])
                        pool.append((objective(case_of(base, x)), x))
            pool.sort(key=lambda item: item[0])
            for _, x in pool[: budget.starts]:
                run_local(base, x)
        for base, pool in by_structure.items():  # Hypothesis points on structures not in the list
            pool.sort(key=lambda item: item[0])
            for _, x in pool[:1]:
                run_local(base, x)
    except _Found:
        pass
    res.seconds = time.perf_counter() - t0
    return res
