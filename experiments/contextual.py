r"""The contextual-bandit experiment (``gradgap simulate contextual``): learning curves around the critical step,
GRPO's biased fixed point, and the searches for fixed-step stagnation and aligned collapse.

Setting (reconstruction §5, "Contextual Bandit Experiments", INFERRED): two prompts share one parameter,
:math:`\phi_0=(0,1,2)`, :math:`\phi_1=(0,1,3)`, the middle action correct at both, so :math:`J` has an interior
maximum :math:`J^\star<1` (not realizable). For an update rule r with expected field :math:`F_r(\theta)` the
fixed-step iteration :math:`\theta_{k+1}=\theta_k+\eta F_r(\theta_k)` has the fixed point :math:`\theta_r`
(:math:`F_r(\theta_r)=0`) and, by linearisation, the critical step :math:`\eta_{crit}=2/|F_r'(\theta_r)|`
(``theory.contextual.fixed_point``, 50 digits). The curves are :math:`J_k` at
:math:`\eta\in\{0.5, 0.9, 1.1, 2\}\,\eta_{crit}` for the joint-gap rule and for GRPO (one group of G = 8 per
prompt, exact expected update). Responses have one action, so length normalisation is the identity here
(:math:`1/|o|=1`); the length law is the ``length-scaling`` experiment's and the autoregressive family's.

Searches (DERIVED outcome stated in the README): random contextual instances, realizable or not, with the
rules gap / GRPO (SGD) and Adam on both, at fixed steps, looking for runs that settle strictly below the best
success rate reached on that instance; random two-feature instances with large aligned steps (:math:`w=g`),
looking for :math:`J_k` decreasing at every step towards 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from gradgap.numerics import contextual as nc
from gradgap.theory import contextual as tc
from gradgap.theory.instances import ContextualBandit

__all__ = ["WORKED", "ContextualConfig", "bisect_critical_step", "bisect_length_critical_step", "run_contextual"]

#: the worked contextual instance: two prompts, one shared parameter, the middle action correct
WORKED: Final[ContextualBandit] = ContextualBandit(
    theta=(0.05,), features=(((0.0,), (1.0,), (2.0,)), ((0.0,), (1.0,), (3.0,))),
    correct=(frozenset({1}), frozenset({1})))


@dataclass(frozen=True)
class ContextualConfig:
    """Configuration of :func:`run_contextual`."""

    rules: tuple[str, ...] = ("gap", "grpo")
    """update rules: ``gap`` (joint Gradient Gap) and algorithms with one group per prompt."""
    group_size: int = 8
    """G, responses per prompt and step (TRL ``num_generations``); the expected update is exact."""
    factors: tuple[float, ...] = (0.5, 0.9, 1.1, 2.0)
    """step sizes of the curves, as multiples of the closed-form critical step."""
    steps: int = 300
    """iterations per curve."""
    bisect_iters: int = 14
    """bisection steps of the simulated critical step."""
    bisect_steps: int = 2000
    """iterations per bisection run (near eta_crit the contraction factor 1 - eta|F'| tends to -1)."""
    search_instances: int = 12
    """random instances of the stagnation search."""
    search_etas: tuple[float, ...] = (0.3, 3.0)
    """fixed step sizes of the stagnation search."""
    search_steps: int = 300
    """iterations per search run."""
    collapse_instances: int = 40
    """random two-feature instances of the collapse search."""
    collapse_etas: tuple[float, ...] = (3.0, 10.0, 30.0, 100.0)
    """large aligned steps of the collapse search."""
    seed: int = 0
    """seed of the random instances."""
    length_cases: tuple[tuple[int, int], ...] = ((1, 1), (2, 2), (4, 4), (8, 8), (1, 4))
    """response lengths (T_0, T_1) of the token-response runs (each token drawn from the prompt's policy)."""
    curve_lengths: tuple[int, int] = (1, 4)
    """the lengths of the learning curves with and without length normalisation."""


def _settles(r: dict[str, Any], target: float) -> bool:
    """Whether the single simulated run ``r`` ended within 1e-6 of ``target``."""
    return bool(abs(float(r["theta"][0, 0]) - target) < 1e-6)


def _converged(inst: ContextualBandit, eta: float, rule: str, G: int, steps: int, target: float) -> bool:
    return _settles(nc.simulate(inst, [eta], rule=rule, G=G, steps=steps), target)


def _converged_lengths(inst: ContextualBandit, lengths: tuple[int, ...], update: str, eta: float, steps: int,
                       target: float) -> bool:
    return _settles(nc.simulate_lengths(inst, lengths, [eta], update=update, steps=steps), target)


def _bisect(converges: Callable[[float], bool], lo: float, hi: float, iters: int) -> float:
    """The largest step that still converges (bisection between ``lo`` and ``hi``)."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if converges(mid) else (lo, mid)
    return 0.5 * (lo + hi)


def bisect_critical_step(inst: ContextualBandit, rule: str, G: int, target: float, lo: float, hi: float,
                         steps: int, iters: int) -> float:
    """The largest simulated step that still converges to ``target`` (bisection between ``lo`` and ``hi``)."""
    return _bisect(lambda eta: _converged(inst, eta, rule, G, steps, target), lo, hi, iters)


def bisect_length_critical_step(inst: ContextualBandit, lengths: tuple[int, ...], update: str, target: float,
                                lo: float, hi: float, steps: int, iters: int) -> float:
    """:func:`bisect_critical_step` for responses of ``lengths`` tokens (``update``: summed, normalised, gap)."""
    return _bisect(lambda eta: _converged_lengths(inst, lengths, update, eta, steps, target), lo, hi, iters)


def _length_runs(cfg: ContextualConfig) -> dict[str, Any]:
    r"""Responses of :math:`T_x` tokens at the worked instance: per length pair and update (REINFORCE summed over
    tokens or divided by :math:`|o|`, the joint Gradient Gap), the closed-form fixed point and :math:`\eta_{crit}`
    against the simulated one; learning curves at ``cfg.curve_lengths`` for the two REINFORCE updates."""
    cases = []
    for lengths in cfg.length_cases:
        for update in tc.LENGTH_UPDATES:
            fp = tc.length_fixed_point(WORKED, lengths, update=update, start=-0.1)
            theta_r, eta_c = float(fp["theta"]), float(fp["eta_crit"])
            sim = bisect_length_critical_step(WORKED, lengths, update, theta_r, 0.5 * eta_c, 2.0 * eta_c,
                                              cfg.bisect_steps, cfg.bisect_iters)
            cases.append({"lengths": list(lengths), "update": update, "theta_fixed": theta_r,
                          "J_fixed": float(fp["J"]), "eta_crit_closed": eta_c, "eta_crit_simulated": sim,
                          "rel_error": abs(sim - eta_c) / eta_c})
    curves = {}
    for update in ("summed", "normalised"):
        fp = tc.length_fixed_point(WORKED, cfg.curve_lengths, update=update, start=-0.1)
        eta_c = float(fp["eta_crit"])
        r = nc.simulate_lengths(WORKED, cfg.curve_lengths, [f * eta_c for f in cfg.factors], update=update,
                                steps=cfg.steps)
        entry: dict[str, Any] = {
            "eta_crit_closed": eta_c, "J_fixed": float(fp["J"]), "curves": r["J"].T.tolist(),
            "converged": [bool(abs(float(t[0]) - float(fp["theta"])) < 1e-6) for t in r["theta"]]}
        for c in cases:
            if tuple(c["lengths"]) == tuple(cfg.curve_lengths) and c["update"] == update:
                entry["eta_crit_simulated"] = c["eta_crit_simulated"]
        curves[update] = entry
    return {"cases": cases, "curve_lengths": list(cfg.curve_lengths), "curves": curves}


def _random_instance(rng: np.random.Generator, d_max: int = 2) -> ContextualBandit:
    P, A, d = int(rng.integers(2, 4)), int(rng.integers(2, 4)), int(rng.integers(1, d_max + 1))
    while True:
        feats = tuple(tuple(tuple(float(v) for v in rng.integers(-2, 3, d)) for _ in range(A)) for _ in range(P))
        if all(len(set(rows)) > 1 for rows in feats):
            break
    corr = tuple(frozenset({int(rng.integers(0, A))}) for _ in range(P))
    return ContextualBandit(tuple(float(v) for v in rng.uniform(-0.5, 0.5, d)), feats, corr)


def _stagnation_search(cfg: ContextualConfig) -> dict[str, Any]:
    rng = np.random.default_rng(cfg.seed)
    routes = [("gap", "sgd"), ("grpo", "sgd"), ("gap", "adam"), ("grpo", "adam")]
    rows, plateaus = [], []
    for _ in range(cfg.search_instances):
        inst = _random_instance(rng)
        runs = {}
        for rule, opt in routes:
            r = nc.simulate(inst, cfg.search_etas, rule=rule, G=cfg.group_size, steps=cfg.search_steps,
                            optimizer=opt)
            runs[f"{rule}-{opt}"] = r["J"]
        best = max(float(J.max()) for J in runs.values())
        realizable = best >= 0.999
        for name, J in runs.items():
            for j, eta in enumerate(cfg.search_etas):
                tail = J[-20:, j]
                settled = float(tail.max() - tail.min()) < 1e-7
                if settled and tail[-1] < best - 1e-3:
                    plateaus.append({"instance": inst.as_dict(), "route": name, "eta": eta, "J_final": float(tail[-1]),
                                     "best_J": best, "realizable": realizable})
        rows.append({"instance": inst.describe(), "best_J": best, "realizable": realizable})
    real = [p for p in plateaus if p["realizable"]]
    return {"instances": rows, "routes": [f"{r}-{o}" for r, o in routes], "etas": list(cfg.search_etas),
            "steps": cfg.search_steps, "plateaus_realizable": real[:5], "n_plateaus_realizable": len(real),
            "plateaus_not_realizable": [p for p in plateaus if not p["realizable"]][:5],
            "n_plateaus_not_realizable": len(plateaus) - len(real),
            "n_realizable": sum(r["realizable"] for r in rows)}


def _collapse_search(cfg: ContextualConfig) -> dict[str, Any]:
    rng = np.random.default_rng(cfg.seed + 1)
    found, tried, low = [], 0, 0
    for _ in range(cfg.collapse_instances):
        P, A = int(rng.integers(1, 3)), int(rng.integers(3, 5))
        feats = tuple(tuple(tuple(float(v) for v in rng.integers(-3, 4, 2)) for _ in range(A)) for _ in range(P))
        if not all(len(set(rows)) > 1 for rows in feats):
            continue
        inst = ContextualBandit(tuple(float(v) for v in rng.uniform(-1, 1, 2)), feats,
                                tuple(frozenset({int(rng.integers(0, A))}) for _ in range(P)))
        tried += 1
        r = nc.simulate(inst, cfg.collapse_etas, rule="gap", steps=60)
        for j, eta in enumerate(cfg.collapse_etas):
            log_J = r["log_J"][:, j]
            low += int(log_J.min() < -20)
            if np.all(np.diff(log_J) < 0) and log_J[-1] < -20:
                found.append({"instance": inst.as_dict(), "eta": eta, "log_J_final": float(log_J[-1])})
    return {"instances": tried, "etas": list(cfg.collapse_etas), "steps": 60, "witnesses": found[:3],
            "n_witnesses": len(found), "n_runs_below_exp_-20": low}


def run_contextual(cfg: ContextualConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Curves, critical steps (closed form vs bisection), GRPO's fixed point, and the two searches."""
    inst = WORKED
    by_rule: dict[str, Any] = {}
    for rule in cfg.rules:
        fp = tc.fixed_point(inst, rule, cfg.group_size, start=-0.1)
        theta_r, eta_c = float(fp["theta"]), float(fp["eta_crit"])
        etas = [f * eta_c for f in cfg.factors]
        r = nc.simulate(inst, etas, rule=rule, G=cfg.group_size, steps=cfg.steps)
        sim = bisect_critical_step(inst, rule, cfg.group_size, theta_r, 0.5 * eta_c, 2.0 * eta_c, cfg.bisect_steps,
                                   cfg.bisect_iters)
        by_rule[rule] = {"theta_fixed": theta_r, "J_fixed": float(fp["J"]), "eta_crit_closed": eta_c,
                         "eta_crit_simulated": sim, "rel_error": abs(sim - eta_c) / eta_c, "etas": etas,
                         "curves": r["J"].T.tolist(),
                         "converged": [bool(abs(float(t[0]) - theta_r) < 1e-6) for t in r["theta"]]}
        if progress:
            progress(rule)
    search = _stagnation_search(cfg)
    if progress:
        progress("stagnation search")
    collapse = _collapse_search(cfg)
    if progress:
        progress("collapse search")
    lengths = _length_runs(cfg)
    if progress:
        progress("token responses")
    gap, grpo = by_rule.get("gap"), by_rule.get("grpo")
    return {"instance": inst.as_dict(), "factors": list(cfg.factors), "G": cfg.group_size, "by_rule": by_rule,
            "grpo_plateau_below_max": None if not (gap and grpo) else gap["J_fixed"] - grpo["J_fixed"],
            "search": search, "collapse": collapse, "lengths": lengths}


def plot_contextual(data: dict[str, Any], fig: Any) -> None:
    """Learning curves J_k for the step sizes around the critical one: one panel per rule (one-action responses),
    then, when present, the token responses of ``curve_lengths`` summed over tokens and length-normalised."""
    panels = [("joint gap g" if rule == "gap" else f"{rule}, G={data['G']} per prompt", e)
              for rule, e in data["by_rule"].items()]
    lengths = data.get("lengths")
    if lengths:
        T = tuple(lengths["curve_lengths"])
        panels += [(f"T = {T}, {'1/|o|-normalised' if key == 'normalised' else 'summed over tokens'}", e)
                   for key, e in lengths["curves"].items()]
    axes = np.atleast_1d(fig.subplots(2, 2) if len(panels) == 4 else fig.subplots(1, len(panels))).reshape(-1)
    for ax, (name, e) in zip(axes, panels, strict=True):
        for f, curve, ok in zip(data["factors"], e["curves"], e["converged"], strict=True):
            ax.plot(np.arange(len(curve)), curve, label=f"eta = {f:g} eta_c ({'converges' if ok else 'no'})")
        ax.axhline(e["J_fixed"], color="k", lw=0.6, ls=":")
        ax.set_xlabel("step k")
        ax.set_ylabel("J_k")
        sim = f" (sim. {e['eta_crit_simulated']:.4g})" if "eta_crit_simulated" in e else ""
        ax.set_title(f"{name}: eta_c = {e['eta_crit_closed']:.4g}{sim}", fontsize=9)
        ax.legend(fontsize=7)
