r"""The bandit experiments (reconstruction §5): closed forms (``gradgap.theory.critical_step``) against simulations
(``gradgap.numerics.dynamics``), with JSON data and PNG figures.

=====================  ===================================================================================
experiment             what it shows
=====================  ===================================================================================
``threshold-sweep``    J_k for step sizes around the critical one (both sides of the threshold), the class
                       of each run, and stochastic (finite-group) thresholds against the expected ones
``length-scaling``     critical step against T, unnormalised and with 1/T, per update rule; fitted slopes
``success-scaling``    critical step against 1 - J*, per update rule; fitted exponents
``stagnation``         tabular runs reach J ~ 1 at every constant step; a search of parameter-sharing
                       families for a fixed-step plateau J' < 1 that a (1 - J) schedule escapes
``threshold-ratio``    eta_star / eta_theorem along the unit Gradient Gap on random instances, per family
=====================  ===================================================================================

Each ``run_*`` takes one frozen ``...Config`` and returns a JSON-ready dict; :func:`run` dispatches by name and
writes ``<name>.json`` and ``<name>.png`` under ``out`` when given. Metrics are namespaced ``gradgap/...`` in
the figures' titles only; the JSON keys are plain.

Source: reconstruction §4.2-§4.4 and §5 (INFERRED design); all formulas DERIVED by this project.
"""

from __future__ import annotations

import difflib
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import sympy as sp

from gradgap.experiments import contextual as contextual_experiment
from gradgap.numerics import dynamics as nd
from gradgap.numerics import one_step_threshold as nt
from gradgap.proofs_check.atomic import atomic_write_bytes, atomic_write_text
from gradgap.proofs_check.tolerances import AGREEMENT, BISECT_RTOL
from gradgap.theory import critical_step as th
from gradgap.theory import one_step_threshold as ost
from gradgap.theory.algorithms import gain_limit
from gradgap.theory.instances import GradgapValueError, SharedTokens, SoftmaxBandit, TokenSequence

__all__ = [
    "EXPERIMENTS",
    "LengthConfig",
    "RatioConfig",
    "StagnationConfig",
    "SuccessConfig",
    "SweepConfig",
    "bisect_family",
    "closed_family",
    "fit_slope",
    "no_plateau",
    "run",
    "run_length_scaling",
    "run_stagnation",
    "run_success_scaling",
    "run_threshold_ratio",
    "run_threshold_sweep",
]

LENGTHS: Final[tuple[int, ...]] = (1, 2, 4, 8, 16, 32, 64)
PLOT_RULES: Final[tuple[str, ...]] = ("gap", "dr_grpo", "grpo")


def fit_slope(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    r"""Least-squares slope of :math:`\log y` on :math:`\log x` and its standard error.

    >>> s, e = fit_slope([8, 16, 32], [1/8, 1/16, 1/32]); round(s, 12), e < 1e-12
    (-1.0, True)
    """
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    n = lx.size
    if n < 3:
        return float((ly[-1] - ly[0]) / (lx[-1] - lx[0])), float("nan")
    A = np.vstack([lx, np.ones(n)]).T
    coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
    resid = ly - A @ coef
    s2 = float(resid @ resid) / (n - 2)
    se = math.sqrt(s2 / float(np.sum((lx - lx.mean()) ** 2)))
    return float(coef[0]), se


def _model(inst: SharedTokens | SoftmaxBandit | TokenSequence) -> nd.LogLinearModel:
    return nd.LogLinearModel.from_instance(inst)


def _family(setting: str, T: int, J_star: float | None) -> SharedTokens:
    if setting == "worked":
        return th.worked_example(T)
    if setting == "fixed_success":
        return th.fixed_success_instance(J_star if J_star is not None else 0.5, T)
    if setting == "success":
        return th.success_instance(J_star if J_star is not None else 0.5, T)
    raise GradgapValueError(f"setting={setting!r}: choose worked, fixed_success or success", field="setting",
                            value=setting)


def closed_family(setting: str, rule: str, normalized: bool, T: int, J_star: float | None) -> float:
    """The SymPy law of a family evaluated at T (and J*)."""
    law = th.critical_step_law(setting, rule, normalized)
    return law.at(T, J_star if setting != "worked" else None)


def bisect_family(setting: str, rule: str, normalized: bool, Ts: Sequence[int], J_stars: Sequence[float | None],
                  closed: np.ndarray, steps: int, offset: float, points: int = 12) -> np.ndarray:
    """Simulation critical steps of several family members at once (bracket [closed/4, 4 closed])."""
    insts = [_family(setting, T, J) for T, J in zip(Ts, J_stars, strict=True)]
    model = nd.stack_models([_model(i) for i in insts])
    Jstar = np.array([float(nd.success_rate(_model(i), np.zeros(1))) for i in insts])
    # the start theta* + offset / (feature spread): the same logit perturbation in every family
    spread = np.array([max(r[0] for r in i.features) - min(r[0] for r in i.features) for i in insts])
    theta0 = (offset / spread)[:, None]
    cfg = nd.SimConfig(rule=rule, length_normalized=normalized, steps=steps)
    return nd.critical_step_bisect(model, theta0, Jstar, closed / 4, closed * 4, cfg, rtol=BISECT_RTOL,
                                   points=points)


@dataclass(frozen=True)
class LengthConfig:
    """``length-scaling``: critical step against the response length T."""

    rule: str = "gap"
    """update rule of the headline keys (gap, reinforce, dr_grpo, grpo); the figure shows gap, dr_grpo, grpo."""
    fixed_success: float | None = None
    """``None``: setting (i), the worked example (J* = 3^-T); a value J*: setting (ii), J* held fixed."""
    lengths: tuple[int, ...] = LENGTHS
    """response lengths T."""
    steps: int = 2000
    """iterations per simulation (near the threshold the contraction is slow)."""
    offset: float = 0.1
    """start theta* + offset / (feature spread), i.e. logits moved by about ``offset``."""
    fit_from: int = 8
    """slopes are fitted over T >= fit_from."""
    all_rules: bool = True
    """also run the figure's other rules (``by_rule``)."""


def run_length_scaling(cfg: LengthConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    r"""Critical step vs T, closed form (SymPy law) and simulation bisection, both normalisations.

    Source: reconstruction §4.3 (length, QUOTED-2nd/DERIVED);
    laws of :func:`gradgap.theory.critical_step.critical_step_law`.
    """
    setting = "worked" if cfg.fixed_success is None else "fixed_success"
    Ts = list(cfg.lengths)
    Js = [cfg.fixed_success] * len(Ts)
    rules = [cfg.rule] + ([r for r in PLOT_RULES if r != cfg.rule] if cfg.all_rules else [])
    by_rule: dict[str, Any] = {}
    for rule in rules:
        entry: dict[str, Any] = {}
        for normalized, key in ((False, "unnormalized"), (True, "normalized")):
            if progress:
                progress(f"{rule} {key}")
            closed = np.array([closed_family(setting, rule, normalized, T, cfg.fixed_success) for T in Ts])
            sim = bisect_family(setting, rule, normalized, Ts, Js, closed, cfg.steps, cfg.offset)
            sel = [i for i, T in enumerate(Ts) if T >= cfg.fit_from]
            slope, se = fit_slope([Ts[i] for i in sel], sim[sel])
            cslope, _ = fit_slope([Ts[i] for i in sel], closed[sel])
            law = th.critical_step_law(setting, rule, normalized)
            entry[key] = {
                "eta_crit": sim.tolist(), "eta_crit_closed": closed.tolist(),
                "rel_error": (np.abs(sim / closed - 1)).tolist(), "slope": slope, "slope_stderr": se,
                "slope_closed": cslope,
                "asymptotic_slope": None if law.asymptotic_slope is None else float(law.asymptotic_slope),
                "law": str(law.eta_crit),
            }
        by_rule[rule] = entry
    head = by_rule[cfg.rule]
    agree = max(max(by_rule[r][k]["rel_error"]) for r in by_rule for k in ("unnormalized", "normalized"))
    return {
        "experiment": "length-scaling", "setting": setting, "fixed_success": cfg.fixed_success, "rule": cfg.rule,
        "lengths": Ts,
        "J_star": [float(nd.success_rate(_model(_family(setting, T, cfg.fixed_success)), np.zeros(1)))
                   for T in Ts],
        "eta_crit_unnormalized": head["unnormalized"]["eta_crit"],
        "eta_crit_normalized": head["normalized"]["eta_crit"],
        "eta_crit_closed_unnormalized": head["unnormalized"]["eta_crit_closed"],
        "eta_crit_closed_normalized": head["normalized"]["eta_crit_closed"],
        "slope_unnormalized": head["unnormalized"]["slope"],
        "slope_unnormalized_stderr": head["unnormalized"]["slope_stderr"],
        "slope_normalized": head["normalized"]["slope"],
        "slope_normalized_stderr": head["normalized"]["slope_stderr"],
        "max_rel_error": agree, "agree_within": AGREEMENT, "agrees": bool(agree <= AGREEMENT),
        "by_rule": by_rule, "config": asdict(cfg),
    }


@dataclass(frozen=True)
class SuccessConfig:
    """``success-scaling``: critical step against 1 - J* at T = 1."""

    J_stars: tuple[float, ...] = (0.1, 0.2, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
    """optimum success rates J*."""
    rules: tuple[str, ...] = PLOT_RULES
    """update rules."""
    steps: int = 2000
    """iterations per simulation."""
    offset: float = 0.04
    """start theta* + offset / (feature spread), i.e. logits moved by about ``offset``."""
    fit_from: float = 0.9
    """exponents are fitted over J* >= fit_from."""


def run_success_scaling(cfg: SuccessConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    r"""Critical step vs :math:`1-J^\star` in two families: ``success`` (curvature of log J fixed) and
    ``fixed_success`` (features fixed); closed form, simulation, fitted and SymPy exponents.

    Source: reconstruction §4.3-§4.4 (stated dependence on 1 - J, QUOTED-2nd/DERIVED); this project.
    """
    out: dict[str, Any] = {"experiment": "success-scaling", "J_star": list(cfg.J_stars), "families": {}}
    worst = 0.0
    for family in ("success", "fixed_success"):
        fam: dict[str, Any] = {}
        for rule in cfg.rules:
            if progress:
                progress(f"{family} {rule}")
            closed = np.array([closed_family(family, rule, False, 1, J) for J in cfg.J_stars])
            sim = bisect_family(family, rule, False, [1] * len(cfg.J_stars), list(cfg.J_stars), closed, cfg.steps,
                          cfg.offset)
            u = 1 - np.array(cfg.J_stars)
            sel = np.array(cfg.J_stars) >= cfg.fit_from
            slope, se = fit_slope(u[sel], sim[sel])
            _, exponent = th.success_law(rule, family)
            err = np.abs(sim / closed - 1)
            worst = max(worst, float(np.max(err)))
            fam[rule] = {"eta_crit": sim.tolist(), "eta_crit_closed": closed.tolist(), "rel_error": err.tolist(),
                         "exponent_fit": slope, "exponent_stderr": se, "exponent_sympy": float(exponent),
                         "law": str(th.success_law(rule, family)[0])}
        out["families"][family] = fam
    out.update({"max_rel_error": worst, "agrees": bool(worst <= AGREEMENT), "config": asdict(cfg)})
    return out


@dataclass(frozen=True)
class SweepConfig:
    """``threshold-sweep``: J_k for step sizes around the critical one; stochastic thresholds."""

    T: int = 8
    """response length of the worked example."""
    rule: str = "gap"
    """update rule of the expected sweep."""
    factors: tuple[float, ...] = (0.5, 0.9, 0.98, 1.02, 1.1, 1.5, 2.0, 4.0)
    """step sizes as multiples of the closed-form critical step."""
    steps: int = 300
    """iterations of the plotted runs."""
    offset: float = 0.3
    """start theta* + offset."""
    stochastic_T: int = 4
    """length of the worked example used for the stochastic thresholds (J* = 3^-T)."""
    group_size: int = 8
    """G, responses per group."""
    chains: int = 48
    """seeded chains per step size."""
    stochastic_steps: int = 300
    """iterations of each stochastic chain."""
    seed: int = 0
    """seed of the sampler."""
    phase_lengths: tuple[int, ...] = (1, 8, 64)
    """lengths of the phase map (class of each run over eta / eta_c from 0.5 to 50)."""
    phase_points: int = 60
    """step sizes of the phase map."""
    phase_steps: int = 3000
    """iterations of each phase-map run (far above eta_c the 2-cycles are approached slowly)."""


def run_threshold_sweep(cfg: SweepConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    r"""Both sides of the threshold for expected updates, with each run's class; then, for finite groups,
    the step where half of the seeded chains collapse (tail-mean J < J*/2) against the same statistic of the
    expected dynamics and the closed-form critical step.

    Source: reconstruction §4.2 (collapse, QUOTED-2nd), §4.4; §5 (bandit simulations), INFERRED.
    """
    inst = th.worked_example(cfg.T)
    model = _model(inst)
    J_star = 3.0 ** (-cfg.T)
    eta_c = closed_family("worked", cfg.rule, False, cfg.T, None)
    etas = eta_c * np.array(cfg.factors)
    tr = nd.simulate(model, np.array([cfg.offset]), etas, nd.SimConfig(rule=cfg.rule, steps=cfg.steps))
    classes = nd.classify(tr, J_star)[:, 0].tolist()
    out: dict[str, Any] = {
        "experiment": "threshold-sweep", "T": cfg.T, "rule": cfg.rule, "J_star": J_star, "eta_crit_closed": eta_c,
        "etas": etas.tolist(), "factors": list(cfg.factors), "classes": classes,
        "J_over_Jstar": [[float(f"{x:.6g}") for x in row] for row in (tr.success[:, :, 0] / J_star).T],
        "final_J_over_Jstar": (tr.success[-1, :, 0] / J_star).tolist(),
    }
    # phase map: the class of every expected run over eta / eta_c in [0.5, 50], per rule and length
    factors = np.geomspace(0.5, 50.0, cfg.phase_points)
    phase: dict[str, Any] = {"factors": factors.tolist(), "lengths": list(cfg.phase_lengths), "rules": {}}
    for rule in ("gap", "dr_grpo", "grpo"):
        if progress:
            progress(f"phase map {rule}")
        Ts = list(cfg.phase_lengths)
        pmodel = nd.stack_models([_model(th.worked_example(T)) for T in Ts])
        ecs = np.array([closed_family("worked", rule, False, T, None) for T in Ts])
        ptr = nd.simulate(pmodel, np.full((len(Ts), 1), cfg.offset), factors[:, None] * ecs[None, :],
                          nd.SimConfig(rule=rule, steps=cfg.phase_steps))
        Jst = 3.0 ** -np.array(Ts, dtype=float)
        cls = nd.classify(ptr, Jst[None, :])
        per = nd.period(ptr)
        tailJ = ptr.success[-8:] / Jst[None, None, :]  # (8, E, B), 6 significant digits in the JSON
        tailJ = np.array([[[float(f"{x:.6g}") for x in col] for col in mat] for mat in tailJ])
        phase["rules"][rule] = {str(T): {"classes": cls[:, b].tolist(), "period": per[:, b].tolist(),
                                         "tail_J_over_Jstar": tailJ[:, :, b].T.tolist()}
                                for b, T in enumerate(Ts)}
    out["phase"] = phase
    # stochastic thresholds: fraction of chains collapsed vs eta, per rule
    Ts = cfg.stochastic_T
    sinst = th.worked_example(Ts)
    smodel = _model(sinst)
    sJ = 3.0 ** (-Ts)
    stoch: dict[str, Any] = {"T": Ts, "J_star": sJ, "group_size": cfg.group_size, "chains": cfg.chains, "rules": {}}
    G = cfg.group_size
    for rule in ("gap", "dr_grpo", "grpo"):
        if progress:
            progress(f"stochastic {rule}")
        ec = closed_family("worked", rule, False, Ts, None)
        grid = ec * np.geomspace(1e-3, 4.0, 19)
        exp_tr = nd.simulate(smodel, np.array([0.05]), grid, nd.SimConfig(rule=rule, steps=cfg.stochastic_steps))
        exp_frac = nd.collapse_fraction(exp_tr, sJ)
        st_tr = nd.simulate(smodel, np.array([0.05]), grid,
                            nd.SimConfig(rule=rule, expected=False, group_size=G, steps=cfg.stochastic_steps,
                                         seed=cfg.seed), chains=cfg.chains)
        frac = nd.collapse_fraction(st_tr, sJ)
        single = {"gap": 1.0, "dr_grpo": (G - 1) / G**2, "grpo": math.sqrt(G - 1) / G}[rule]
        stoch["rules"][rule] = {
            "etas": grid.tolist(), "eta_crit_expected_closed": ec,
            "collapsed_fraction": frac.tolist(), "collapsed_expected": exp_frac.tolist(),
            "eta_half_stochastic": _crossing(grid, frac), "eta_half_expected": _crossing(grid, exp_frac),
            "single_success_gain": single,
            "expected_gain_at_optimum": float(1 if rule == "gap" else
                                              gain_limit(rule, JJ=sp.Rational(1, 3**Ts), T=1)),
            "eta_single_success_prediction": closed_family("worked", "gap", False, Ts, None) / single,
        }
    out["stochastic"] = stoch
    out["config"] = asdict(cfg)
    return out


def _crossing(grid: np.ndarray, frac: np.ndarray) -> float | None:
    """Smallest grid step where the collapsed fraction reaches 1/2 (log-interpolated), ``None`` if never."""
    idx = np.flatnonzero(frac >= 0.5)
    if idx.size == 0:
        return None
    i = int(idx[0])
    if i == 0:
        return float(grid[0])
    f0, f1 = frac[i - 1], frac[i]
    t = (0.5 - f0) / (f1 - f0) if f1 != f0 else 1.0
    return float(math.exp(math.log(grid[i - 1]) + t * (math.log(grid[i]) - math.log(grid[i - 1]))))


@dataclass(frozen=True)
class StagnationConfig:
    """``stagnation``: tabular no-stagnation, and a plateau search over parameter-sharing families."""

    tabular_etas: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0, 100.0)
    """constant steps of the stochastic tabular GRPO runs."""
    tabular_steps: int = 6000
    """iterations of the tabular runs."""
    chains: int = 8
    """seeded chains per step size."""
    group_size: int = 8
    """G."""
    search_instances: int = 24
    """random realizable parameter-sharing instances searched (plus the hand-made ones)."""
    search_etas: tuple[float, ...] = (0.3, 3.0, 30.0)
    """constant steps tried in the search (and the same eta with the (1 - J) schedule)."""
    search_steps: int = 1000
    """iterations of each search run."""
    seed: int = 0
    """seed of the instance generator and of the samplers."""


def no_plateau(success: np.ndarray, level: float = 0.9999) -> np.ndarray:
    r"""Per step size (axis 1 of ``success``, shape ``(K+1, E, chains)``): every chain reached ``level``, or the
    chain-mean of :math:`\log(1-J)` fell by at least :math:`\log 1.5` over the second half (1 - J still
    shrinking: the stochastic updates near J = 1 come in rare jumps, so single chains can pause)."""
    reached = np.all((success >= level).any(axis=0), axis=-1)
    u = np.log(np.maximum(1 - success, 1e-300))
    falling = u[-1].mean(axis=-1) <= u[u.shape[0] // 2].mean(axis=-1) - np.log(1.5)
    return reached | falling


def _tabular_instances() -> list[tuple[str, SoftmaxBandit | TokenSequence]]:
    return [("softmax K=4, C={0}", SoftmaxBandit((0.0, 0.0, 0.0, 0.0), frozenset({0}))),
            ("softmax K=5, C={0,1}", SoftmaxBandit((0.0,) * 5, frozenset({0, 1}))),
            ("tokens T=3 V=3", TokenSequence(((0.0,) * 3,) * 3, (0, 1, 2)))]


def _realizable(model: nd.LogLinearModel, d: int, rng: np.random.Generator) -> bool:
    u = rng.normal(size=(512, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return bool(np.max(nd.success_rate(model, 60.0 * u)) >= 1 - 1e-9)


def _search_instances(cfg: StagnationConfig) -> list[tuple[str, SharedTokens]]:
    rng = np.random.default_rng(cfg.seed)
    out: list[tuple[str, SharedTokens]] = [
        ("ridge d=2: correct (0,1), wrong (+-1,0)",
         SharedTokens((0.0, 0.0), ((0.0, 1.0), (1.0, 0.0), (-1.0, 0.0)), frozenset({0}), T=4)),
        ("two correct tokens d=1", SharedTokens((0.0,), ((0.0,), (1.0,), (2.0,), (3.0,)), frozenset({1, 3}), T=4)),
        ("binary d=1", SharedTokens((0.0,), ((0.0,), (1.0,)), frozenset({1}), T=16)),
    ]
    while len(out) < cfg.search_instances + 3:
        d = int(rng.integers(1, 3))
        V = int(rng.integers(3, 5))
        T = int(rng.choice([1, 4, 16]))
        feats = np.round(rng.normal(size=(V, d)), 2)
        ncorrect = int(rng.integers(1, 3))
        correct = frozenset(int(i) for i in rng.choice(V, size=ncorrect, replace=False))
        bias = tuple(float(b) for b in np.round(rng.normal(size=V), 2))
        inst = SharedTokens((0.0,) * d, tuple(tuple(float(x) for x in r) for r in feats), correct, T=T, bias=bias)
        if _realizable(_model(inst), d, rng):
            out.append((f"random d={d} V={V} T={T} |C|={ncorrect}", inst))
    return out


def run_stagnation(cfg: StagnationConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    r"""(a) Stochastic tabular GRPO at constant steps: max and final J per step size (no stagnation).
    (b) Search: for every instance, update route (exact gap, expected GRPO, sampled GRPO, Adam on the gap) and
    step, a fixed-step plateau is a run whose J ends below 0.999 having gained less than 0.05 in
    :math:`-\log_{10}(1-J)` over its second half, while the same eta with the :math:`(1-J_k)` schedule ends
    above 0.999.

    Source: reconstruction §4.3 (stagnation, QUOTED abstract / DERIVED corollary); engines note (tabular).
    """
    out: dict[str, Any] = {"experiment": "stagnation", "tabular": [], "search": {}}
    etas = np.array(cfg.tabular_etas)
    for name, inst in _tabular_instances():
        if progress:
            progress(f"tabular {name}")
        model = _model(inst)
        tr = nd.simulate(model, np.array(inst.theta), etas,
                         nd.SimConfig(rule="grpo", expected=False, group_size=cfg.group_size, steps=cfg.tabular_steps,
                                      seed=cfg.seed), chains=cfg.chains)
        reached = tr.success >= 0.9999  # (K+1, E, chains)
        first = np.where(reached.any(axis=0), reached.argmax(axis=0), -1)  # per chain
        out["tabular"].append({"instance": name, "etas": etas.tolist(),
                               "min_over_chains_max_J": tr.success.max(axis=0).min(axis=-1).tolist(),
                               "final_J": tr.success[-1].min(axis=-1).tolist(),
                               "fraction_reached_0.9999": reached.any(axis=0).mean(axis=-1).tolist(),
                               "last_chain_first_step_0.9999": [int(f.max()) if (f >= 0).all() else None
                                                                for f in first]})
        out["tabular"][-1]["no_plateau"] = bool(np.all(no_plateau(tr.success)))
    out["tabular_all_reach_0.9999"] = bool(all(min(t["fraction_reached_0.9999"]) == 1.0 for t in out["tabular"]))
    out["tabular_no_plateau"] = bool(all(t["no_plateau"] for t in out["tabular"]))
    routes = {"gap": nd.SimConfig(rule="gap", steps=cfg.search_steps),
              "grpo-expected": nd.SimConfig(rule="grpo", steps=cfg.search_steps),
              "grpo-sampled": nd.SimConfig(rule="grpo", expected=False, group_size=cfg.group_size,
                                           steps=cfg.search_steps, seed=cfg.seed),
              "adam-gap": nd.SimConfig(rule="gap", optimizer="adam", steps=cfg.search_steps)}
    instances = _search_instances(cfg)
    found: list[dict[str, Any]] = []
    runs = 0
    final_fixed: list[float] = []
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (_, inst) in enumerate(instances):
        groups.setdefault(_model(inst).features.shape, []).append(i)
    etas_s = np.array(cfg.search_etas)
    for shape, members in groups.items():
        if progress:
            progress(f"search shape {shape}")
        model = nd.stack_models([_model(instances[i][1]) for i in members])
        theta0 = np.array([instances[i][1].theta for i in members])
        for route, scfg in routes.items():
            fixed = nd.simulate(model, theta0, etas_s, scfg)
            sched = nd.simulate(model, theta0, etas_s, nd.SimConfig(**{**asdict(scfg), "schedule": "one_minus_J"}))
            runs += 2 * fixed.success[0].size
            K = fixed.success.shape[0]
            for e, eta in enumerate(etas_s):
                for b, i in enumerate(members):
                    Jf = fixed.success[:, e, b]
                    Js = sched.success[:, e, b]
                    final_fixed.append(float(Jf[-1]))
                    gain_half = -np.log10(max(1 - Jf[-1], 1e-300)) + np.log10(max(1 - Jf[K // 2], 1e-300))
                    if Jf[-1] < 0.999 and gain_half < 0.05 and Js[-1] >= 0.999:
                        found.append({"instance": instances[i][0], "route": route, "eta": float(eta),
                                      "J_fixed": float(Jf[-1]), "J_schedule": float(Js[-1])})
    out["search"] = {
        "instances": [n for n, _ in instances], "routes": list(routes), "etas": list(cfg.search_etas),
        "runs": runs, "steps": cfg.search_steps, "plateaus_found": found,
        "fixed_runs_below_0.999": int(sum(j < 0.999 for j in final_fixed)),
    }
    out["outcome"] = "found" if found else "not reproduced"
    out["config"] = asdict(cfg)
    return out


@dataclass(frozen=True)
class RatioConfig:
    """``threshold-ratio``: how conservative Theorem 1's step is, eta_star / eta_theorem along unit directions."""

    instances: int = 40
    """random instances per family."""
    seed: int = 0
    """seed of the instance generator."""


def _random_instance(family: str, rng: np.random.Generator) -> SoftmaxBandit | TokenSequence | SharedTokens:
    if family == "softmax":
        K = int(rng.integers(2, 5))
        correct = frozenset(int(i) for i in rng.choice(K, size=int(rng.integers(1, K)), replace=False))
        return SoftmaxBandit(tuple(float(x) for x in np.round(rng.uniform(-2, 2, K), 3)), correct)
    if family == "tokens":
        T, V = int(rng.integers(1, 4)), int(rng.integers(2, 4))
        rows = tuple(tuple(float(x) for x in np.round(rng.uniform(-2, 2, V), 3)) for _ in range(T))
        return TokenSequence(rows, tuple(int(v) for v in rng.integers(0, V, T)))
    d, V, T = int(rng.integers(1, 3)), int(rng.integers(3, 5)), int(rng.integers(1, 5))
    feats = tuple(tuple(float(x) for x in np.round(rng.normal(size=d), 3)) for _ in range(V))
    correct = frozenset(int(i) for i in rng.choice(V, size=int(rng.integers(1, V)), replace=False))
    return SharedTokens(tuple(float(x) for x in np.round(rng.normal(size=d), 3)), feats, correct, T=T)


def run_threshold_ratio(cfg: RatioConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    r"""Per family: :math:`\eta^\star/\eta_{\rm thm}` along the unit Gradient Gap and along a random unit
    direction with :math:`\Delta\mu>0`, on random instances; the worst (smallest) ratio and the median.
    :math:`\eta^\star` by the numeric twin (``gradgap.numerics.one_step_threshold``), the theorem's step by
    ``gradgap.theory.one_step_threshold.eta_theorem``.

    Source: reconstruction §4.1 (Theorem 1, QUOTED-2nd).
    """

    rng = np.random.default_rng(cfg.seed)
    out: dict[str, Any] = {"experiment": "threshold-ratio", "families": {}}
    for family in ("softmax", "tokens", "shared_tokens"):
        if progress:
            progress(family)
        found: dict[str, list[float]] = {"gap": [], "random": []}
        infinite = {"gap": 0, "random": 0}
        for _ in range(cfg.instances):
            inst = _random_instance(family, rng)
            g = nd.gradient_gap(_model(inst), np.array(inst.theta))
            r = rng.normal(size=g.size)
            for kind, w in (("gap", g), ("random", r if float(r @ g) > 0 else -r)):
                norm = float(np.linalg.norm(w))
                if norm < 1e-8:
                    continue
                u = w / norm
                eta_thm, _ = ost.eta_theorem(inst, tuple(float(x) for x in u))
                star = nt.eta_star(inst, u).value
                if math.isinf(star):
                    infinite[kind] += 1
                elif eta_thm > 0:
                    found[kind].append(star / eta_thm)
        out["families"][family] = {
            kind: {"ratios": found[kind], "infinite": infinite[kind],
                   "worst_ratio": min(found[kind]) if found[kind] else None,
                   "median_ratio": float(np.median(found[kind])) if found[kind] else None}
            for kind in found}
    out["config"] = asdict(cfg)
    return out


# ---------------------------------------------------------------------------------------------------------
# figures


def _plot(name: str, data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if name == "length-scaling":
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, key in zip(axes, ("unnormalized", "normalized"), strict=True):
            for rule, entry in data["by_rule"].items():
                e = entry[key]
                line, = ax.plot(data["lengths"], e["eta_crit_closed"], "-", label=f"{rule} closed form")
                ax.plot(data["lengths"], e["eta_crit"], "o", color=line.get_color(),
                        label=f"{rule} simulation (slope {e['slope']:.2f})")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("response length T")
            ax.set_ylabel("critical step size eta_c")
            ax.set_title(f"{key} ({'J* = 3^-T' if data['setting'] == 'worked' else 'J* fixed'})")
            ax.legend(fontsize=7)
    elif name == "success-scaling":
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        u = 1 - np.array(data["J_star"])
        for ax, (family, fam) in zip(axes, data["families"].items(), strict=True):
            for rule, e in fam.items():
                line, = ax.plot(u, e["eta_crit_closed"], "-", label=f"{rule} closed (exp. {e['exponent_sympy']:g})")
                ax.plot(u, e["eta_crit"], "o", color=line.get_color(),
                        label=f"{rule} simulation (fit {e['exponent_fit']:.2f})")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("1 - J* (failure rate at the optimum)")
            ax.set_ylabel("critical step size eta_c (T = 1)")
            ax.set_title("curvature of log J fixed" if family == "success" else "features fixed")
            ax.legend(fontsize=7)
    elif name == "threshold-sweep":
        fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
        ax = axes[0]
        for f, curve, cls in zip(data["factors"], data["J_over_Jstar"], data["classes"], strict=True):
            ax.plot(np.arange(len(curve)), curve, label=f"eta = {f:g} eta_c ({cls})")
        ax.set_yscale("log")
        ax.set_xlabel("iteration k")
        ax.set_ylabel("J_k / J*")
        ax.set_title(f"{data['rule']} steps, worked example T = {data['T']}")
        ax.legend(fontsize=7, loc="lower right")
        ax = axes[1]
        st = data["stochastic"]
        for rule, e in st["rules"].items():
            x = np.array(e["etas"]) / e["eta_crit_expected_closed"]
            line, = ax.plot(x, e["collapsed_fraction"], "o-", label=f"{rule} G = {st['group_size']}")
            ax.plot(x, e["collapsed_expected"], "--", color=line.get_color(), label=f"{rule} expected update")
        ax.set_xscale("log")
        ax.set_xlabel("eta / eta_c(expected update)")
        ax.set_ylabel("fraction of chains collapsed (tail J < J*/2)")
        ax.set_title(f"stochastic vs expected, T = {st['T']}")
        ax.legend(fontsize=7)
        ax = axes[2]
        ph = data["phase"]
        T = str(data["T"]) if str(data["T"]) in ph["rules"][data["rule"]] else str(ph["lengths"][-1])
        colours = {"converged": "tab:green", "two_cycle": "tab:blue", "chaotic": "tab:red",
                   "frozen_near_0": "tab:gray", "collapsed_to_0": "black", "stalled": "tab:orange"}
        for rule, marker in (("gap", "o"), ("dr_grpo", "s"), ("grpo", "^")):
            e = ph["rules"][rule][T]
            for f, cls, tail in zip(ph["factors"], e["classes"], e["tail_J_over_Jstar"], strict=True):
                ys = np.maximum(np.array(tail), 1e-30)
                ax.plot([f] * len(ys), ys, marker, ms=2, color=colours.get(cls, "k"))
        for cls, col in colours.items():
            ax.plot([], [], "o", color=col, label=cls)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("eta / eta_c (each rule its own eta_c)")
        ax.set_ylabel("last 8 values of J_k / J* (clipped at 1e-30)")
        ax.set_ylim(1e-30, 10)
        ax.set_title(f"bifurcation diagram, T = {T} (o gap, s Dr.GRPO, ^ GRPO)")
        ax.legend(fontsize=7)
    elif name == "threshold-ratio":
        fig, ax = plt.subplots(figsize=(6, 4))
        for family, by_kind in data["families"].items():
            for kind, e in by_kind.items():
                if e["ratios"]:
                    ax.hist(np.log10(e["ratios"]), bins=15, alpha=0.5,
                            label=f"{family}, {kind} w (worst {e['worst_ratio']:.3g}, {e['infinite']} infinite)")
        ax.set_xlabel("log10(eta_star / eta_theorem) along a unit direction w")
        ax.set_ylabel("number of random instances")
        ax.set_title("how conservative Theorem 1's step is")
        ax.legend(fontsize=7)
    elif name == "stagnation":
        fig, ax = plt.subplots(figsize=(6, 4))
        for t in data["tabular"]:
            ax.plot(t["etas"], [1 - j for j in t["final_J"]], "o-", label=t["instance"])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("constant step size eta (stochastic GRPO, 1/|o|)")
        ax.set_ylabel("1 - J after the run (worst chain)")
        ax.set_title(f"tabular: no stagnation; shared-family search: {data['outcome']}")
        ax.legend(fontsize=7)
    elif name == "contextual":
        fig = plt.figure(figsize=(11, 8 if data.get("lengths") else 4))
        contextual_experiment.plot_contextual(data, fig)
    else:  # pragma: no cover - guarded by run()
        raise GradgapValueError(f"experiment={name!r}: no figure", field="experiment", value=name)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())  # a kill mid-way leaves the previous figure intact


EXPERIMENTS: Final[dict[str, tuple[type, Callable[..., dict[str, Any]]]]] = {
    "threshold-sweep": (SweepConfig, run_threshold_sweep),
    "length-scaling": (LengthConfig, run_length_scaling),
    "success-scaling": (SuccessConfig, run_success_scaling),
    "stagnation": (StagnationConfig, run_stagnation),
    "threshold-ratio": (RatioConfig, run_threshold_ratio),
    "contextual": (contextual_experiment.ContextualConfig, contextual_experiment.run_contextual),
}


def run(name: str, config: Any = None, *, out: Path | str | None = None,
        progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run experiment ``name`` (default config when ``config`` is None); write ``<name>.json`` and ``<name>.png``
    under ``out`` (``length-scaling-fixed-success.*`` for setting (ii))."""
    if name not in EXPERIMENTS:

        close = difflib.get_close_matches(name, list(EXPERIMENTS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise GradgapValueError(f"experiment={name!r}: unknown; choose one of {', '.join(EXPERIMENTS)}{hint}",
                                field="experiment", value=name)
    cls, fn = EXPERIMENTS[name]
    raw = fn(config if config is not None else cls(), progress)
    data = json_ready(raw)
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        stem = name if getattr(config, "fixed_success", None) is None else f"{name}-fixed-success"
        write_json(folder / f"{stem}.json", data)
        _plot(name, raw, folder / f"{stem}.png")
        data["files"] = [str(folder / f"{stem}.json"), str(folder / f"{stem}.png")]
    return data


def json_ready(data: Any) -> Any:
    """``data`` with numpy values as Python ones and every non-finite float as ``None`` (strict JSON has no
    NaN or Infinity); the top-level dict gets ``non_finite``: the paths of the values replaced, if any."""
    replaced: list[str] = []

    def walk(obj: Any, where: str) -> Any:
        if isinstance(obj, np.ndarray):
            obj = obj.tolist()
        elif isinstance(obj, np.generic):
            obj = obj.item()
        if isinstance(obj, float):
            if math.isfinite(obj):
                return obj
            replaced.append(where)
            return None
        if isinstance(obj, dict):
            return {str(k): walk(v, f"{where}.{k}" if where else str(k)) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [walk(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        if obj is None or isinstance(obj, bool | int | str):
            return obj
        return str(obj)

    out = walk(data, "")
    if isinstance(out, dict) and replaced:
        out["non_finite"] = replaced[:50] + ([f"... {len(replaced) - 50} more"] if len(replaced) > 50 else [])
    return out


def write_json(path: Path, data: Any) -> None:
    """Write strict JSON atomically (temporary file in the same folder, fsync, rename)."""
    atomic_write_text(path, json.dumps(json_ready(data), indent=1, allow_nan=False))



