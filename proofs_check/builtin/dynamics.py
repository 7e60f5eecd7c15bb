r"""Built-in claims of the dynamics (reconstruction §4.2-§5): collapse threshold, length and success-rate laws,
stagnation.

Closed forms are PROVED when SymPy derives them (limits, simplification to an identity); every statement about
trajectories is SIMULATED (``gradgap.numerics.dynamics``). The two are separate claims, so that no simulated statement
borrows the strength of a proof: ``<id>-closed-form`` holds the SymPy derivation (PROVED) and ``<id>`` the
simulated trajectories that follow it (SIMULATED). Each claim has a mutant: a wrong constant or exponent that
its check must refute. Source: reconstruction §4.2-§4.4, DERIVED by this project (docs/thresholds.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from gradgap.experiments import bandits as ex
from gradgap.numerics import critical_step as numeric_step
from gradgap.numerics import dynamics as nd
from gradgap.proofs_check.claims import Check, Claim, Evidence, Profile, Strength, named_check
from gradgap.proofs_check.tolerances import AGREEMENT, BISECT_RTOL, PREASYMPTOTIC_SLACK, SLOPE_SLACK
from gradgap.theory import critical_step as th

__all__ = ["claims"]



def _light(profile: Profile) -> bool:
    """The gate profiles (quick, ci) run lighter simulations; ``thorough`` runs the full experiments."""
    return profile.name in ("quick", "ci")


def _collapse_proved(factor: float) -> Callable[[Profile], Evidence]:
    def check(profile: Profile) -> Evidence:
        law = th.critical_step_law("worked", "gap", False)
        claimed = factor * 3 * (1 - sp.Integer(3) ** (-th.T_SYM)) / th.T_SYM
        diff = sp.simplify(law.eta_crit - claimed)
        optima = {T: th.worked_example(T) for T in (1, 2, 3)}
        steps = {(rule, T): th.critical_step(inst, rule).eta_crit for rule in th.RULES for T, inst in optima.items()}
        ok_T = all(sp.simplify(steps["gap", T] - claimed.subs(th.T_SYM, T)) == 0 for T in optima)
        # the numeric twin (central-difference Jacobian of the simulator's expected update) at the same optima,
        # for every update rule (the rules other than the Gradient Gap carry a gain c(J*) != 1)
        for (rule, T), v in steps.items():
            twin = numeric_step.critical_step(optima[T], rule)
            if not abs(twin - float(v)) <= 1e-6 * float(v):
                return Evidence.error(f"eta_c of {rule} at T={T}: theory {float(v)!r}, numerics' Jacobian {twin!r}")
        if diff == 0 and ok_T:
            return Evidence.holds(Strength.PROVED, {"law": str(law.eta_crit)}, "local stability, symbolic T")
        return Evidence.fails(Strength.PROVED, {"claimed": str(claimed), "derived": str(law.eta_crit)},
                              detail="the derived critical step differs")
    return check


def _collapse_simulated(factor: float) -> Callable[[Profile], Evidence]:
    def check(profile: Profile) -> Evidence:
        Ts = (2, 8, 32)
        closed = np.array([factor * 3 * (1 - 3.0 ** -T) / T for T in Ts])
        model = nd.stack_models([nd.LogLinearModel.from_instance(th.worked_example(T)) for T in Ts])
        Jstar = 3.0 ** -np.array(Ts, dtype=float)
        theta0 = np.full((len(Ts), 1), 0.05)
        cfg = nd.SimConfig(rule="gap", steps=1200 if _light(profile) else 2000)
        sim = nd.critical_step_bisect(model, theta0, Jstar, closed / 4, closed * 4, cfg, rtol=BISECT_RTOL,
                                      points=8 if _light(profile) else 12)
        err = np.abs(sim / closed - 1)
        sides = nd.simulate(model, theta0, np.stack([0.8 * closed, 1.5 * closed]), nd.SimConfig(steps=600))
        cls = nd.classify(sides, Jstar[None, :])
        below_ok = bool(np.all(cls[0] == "converged"))
        above_drop = sides.success[-1, 1] / Jstar
        above_ok = bool(np.all(cls[1] != "converged") and np.all(above_drop < 0.5))
        figs = {"T": list(Ts), "eta_closed": closed.tolist(), "eta_sim": sim.tolist(), "rel_error": err.tolist(),
                "classes_below": cls[0].tolist(), "classes_above": cls[1].tolist(),
                "J_over_Jstar_above": above_drop.tolist()}
        if np.all(err <= AGREEMENT) and below_ok and above_ok:
            return Evidence.holds(Strength.SIMULATED, figs)
        return Evidence.fails(Strength.SIMULATED, {"T": list(Ts), "rel_error": err.tolist()}, figs,
                              "simulation disagrees with the closed form or a side of the threshold")
    return check


def _length_proved(setting: str, norm: bool, declared: float) -> Callable[[Profile], Evidence]:
    def check(profile: Profile) -> Evidence:
        law = th.critical_step_law(setting, "gap", norm)
        if law.asymptotic_slope is None:
            return Evidence.undecided("SymPy could not take the limit")
        ok = sp.simplify(law.asymptotic_slope - sp.nsimplify(declared)) == 0
        figs = {"setting": setting, "normalized": norm, "asymptotic_slope": str(law.asymptotic_slope)}
        if ok:
            return Evidence.holds(Strength.PROVED, figs, "limit T d log(eta_c)/dT")
        return Evidence.fails(Strength.PROVED, {"declared": declared, "derived": str(law.asymptotic_slope)}, figs)
    return check


def _length_simulated(setting: str, norm: bool, declared: float) -> Callable[[Profile], Evidence]:
    def check(profile: Profile) -> Evidence:
        J = None if setting == "worked" else 0.5
        Ts = [8, 16, 32, 64] if _light(profile) else list(ex.LENGTHS)
        closed = np.array([ex.closed_family(setting, "gap", norm, T, J) for T in Ts])
        sim = ex.bisect_family(setting, "gap", norm, Ts, [J] * len(Ts), closed, 1200 if _light(profile) else 2000,
                               0.1, points=8 if _light(profile) else 12)
        sel = [i for i, T in enumerate(Ts) if T >= 8]
        slope, se = ex.fit_slope([Ts[i] for i in sel], sim[sel])
        err = np.abs(sim / closed - 1)
        band = 3 * se + SLOPE_SLACK
        figs = {"setting": setting, "normalized": norm, "T": Ts, "slope": slope, "stderr": se, "band": band,
                "max_rel_error": float(err.max())}
        if abs(slope - declared) <= band and err.max() <= AGREEMENT:
            return Evidence.holds(Strength.SIMULATED, figs)
        return Evidence.fails(Strength.SIMULATED, {"declared": declared, "slope": slope}, figs)
    return check


def _success_proved(exponents: dict[str, float]) -> Callable[[Profile], Evidence]:
    def check(profile: Profile) -> Evidence:
        got = {r: th.success_law(r, "success")[1] for r in exponents}
        figs = {f"exponent_{r}": str(v) for r, v in got.items()}
        if all(sp.simplify(got[r] - sp.nsimplify(e)) == 0 for r, e in exponents.items()):
            return Evidence.holds(Strength.PROVED, figs, "lim d log eta_c / d log(1-J*) as J* -> 1")
        return Evidence.fails(Strength.PROVED, {"declared": exponents, "derived": figs}, figs)
    return check


def _success_simulated(exponents: dict[str, float]) -> Callable[[Profile], Evidence]:
    def check(profile: Profile) -> Evidence:
        Js = (0.9, 0.97, 0.99, 0.999) if _light(profile) else (0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
        u = 1 - np.array(Js)
        figs: dict[str, Any] = {}
        ok = True
        for rule, declared in exponents.items():
            closed = np.array([ex.closed_family("success", rule, False, 1, J) for J in Js])
            sim = ex.bisect_family("success", rule, False, [1] * len(Js), list(Js), closed,
                                   1200 if _light(profile) else 2000, 0.04, points=8 if _light(profile) else 12)
            fit, se = ex.fit_slope(u, sim)
            err = float(np.max(np.abs(sim / closed - 1)))
            band = 3 * se + SLOPE_SLACK + PREASYMPTOTIC_SLACK
            figs[rule] = {"fit": fit, "stderr": se, "declared": declared, "max_rel_error": err}
            ok &= abs(fit - declared) <= band and err <= AGREEMENT
        if ok:
            return Evidence.holds(Strength.SIMULATED, figs)
        return Evidence.fails(Strength.SIMULATED, {"declared": exponents}, figs)
    return check


def _tabular_proved(factor: int) -> Callable[[Profile], Evidence]:
    def check(profile: Profile) -> Evidence:
        gain = th.tabular_gap_progress()
        if sp.simplify(gain - factor * th.ETA) == 0:
            return Evidence.holds(Strength.PROVED, {"log_odds_gain_per_gap_step": str(gain)}, "2-arm bandit, exact")
        return Evidence.fails(Strength.PROVED, {"gain": str(gain), "claimed": str(factor * th.ETA)})
    return check


def _tabular_simulated(plateau_claimed: bool) -> Callable[[Profile], Evidence]:
    def check(profile: Profile) -> Evidence:
        light = _light(profile)
        cfg = ex.StagnationConfig(chains=max(4, profile.trajectories), search_instances=0,
                                  tabular_etas=(1.0, 10.0, 100.0) if light else (1.0, 3.0, 10.0, 30.0, 100.0),
                                  tabular_steps=4000 if light else 6000)
        out = _tabular_only(cfg)
        no_plateau = out["no_plateau"]
        figs = {"instances": out["rows"], "etas": list(cfg.tabular_etas), "steps": cfg.tabular_steps}
        holds = no_plateau if not plateau_claimed else not no_plateau
        if holds:
            return Evidence.holds(Strength.SIMULATED, figs)
        return Evidence.fails(Strength.SIMULATED, {"no_plateau": no_plateau}, figs)
    return check


def _tabular_only(cfg: ex.StagnationConfig) -> dict[str, Any]:
    rows = []
    ok = True
    etas = np.array(cfg.tabular_etas)
    for name, inst in ex._tabular_instances():
        tr = nd.simulate(nd.LogLinearModel.from_instance(inst), np.array(inst.theta), etas,
                         nd.SimConfig(rule="grpo", expected=False, group_size=cfg.group_size, steps=cfg.tabular_steps,
                                      seed=cfg.seed), chains=cfg.chains)
        reached = (tr.success >= 0.9999).any(axis=0)
        ok &= bool(np.all(ex.no_plateau(tr.success)))
        rows.append({"instance": name, "fraction_reached_0.9999": reached.mean(axis=-1).tolist(),
                     "worst_final_J": tr.success[-1].min(axis=-1).tolist()})
    return {"rows": rows, "no_plateau": ok}


def _stagnation_search(profile: Profile) -> Evidence:
    n = 6 if profile.name in ("quick", "ci") else 24
    cfg = ex.StagnationConfig(search_instances=n, tabular_etas=(1.0,), tabular_steps=10, chains=1,
                              search_steps=400 if profile.name in ("quick", "ci") else 1500)
    data = ex.run_stagnation(cfg)
    s = data["search"]
    figs = {"outcome": data["outcome"], "instances": len(s["instances"]), "routes": s["routes"], "etas": s["etas"],
            "runs": s["runs"], "steps": s["steps"], "fixed_runs_below_0.999": s["fixed_runs_below_0.999"]}
    if data["outcome"] == "not reproduced":
        return Evidence.holds(Strength.SIMULATED, figs, "no fixed-step plateau that a (1-J) schedule escapes")
    return Evidence.fails(Strength.SIMULATED, {"plateau": s["plateaus_found"][0]}, figs,
                          "a plateau was found: derive J'(eta, T) and replace this claim")


def _binary_plateau_mutant(profile: Profile) -> Evidence:
    """Mutant: 'exact gap steps at eta = 3 plateau below 0.999 on the binary shared family' (false)."""
    inst = th.SharedTokens((0.0,), ((0.0,), (1.0,)), frozenset({1}), T=16)
    tr = nd.simulate(nd.LogLinearModel.from_instance(inst), np.zeros(1), [3.0], nd.SimConfig(steps=300))
    J = float(tr.success[-1, 0, 0])
    if J < 0.999:
        return Evidence.holds(Strength.SIMULATED, {"J_final": J})
    return Evidence.fails(Strength.SIMULATED, {"J_final": J, "eta": 3.0})


def _stochastic(profile: Profile, *, expected_like: bool = False) -> Evidence:
    cfg = ex.SweepConfig(T=2, factors=(0.5, 2.0), steps=50, chains=max(16, 8 * profile.trajectories),
                         phase_lengths=(1,), phase_points=2, phase_steps=10)
    data = ex.run_threshold_sweep(cfg)
    figs: dict[str, Any] = {}
    ok = True
    for rule in ("dr_grpo", "grpo"):
        e = data["stochastic"]["rules"][rule]
        half, pred, expc = e["eta_half_stochastic"], e["eta_single_success_prediction"], e["eta_crit_expected_closed"]
        if expected_like:  # mutant: "finite groups collapse where the expected update does"
            pred = e["eta_half_expected"] or expc
        figs[rule] = {"eta_half_stochastic": half, "single_success_prediction": pred, "expected_closed": expc}
        ok &= half is not None and abs(math.log(half / pred)) <= math.log(1.5)
        ok &= expected_like or (half is not None and half < 0.5 * expc)
    if ok:
        return Evidence.holds(Strength.SIMULATED, figs)
    return Evidence.fails(Strength.SIMULATED, figs, figs)


def _claim(cid: str, title: str, statement: str, source: str, check: Check, mutant: tuple[str, Check], *,
           family: str = "shared_tokens") -> Claim:
    """A claim with one check, and one mutant: the claim with the check of a wrong constant or exponent."""
    base = Claim(id=cid, title=title, family=family, statement=statement, source=source, checks=(check,))
    suffix, wrong = mutant
    return base.with_changes(mutants=lambda: [base.with_changes(id=f"{cid}--{suffix}", checks=(wrong,))])


#: a check factory: the declared value (a constant factor, an exponent, exponents per rule) -> the check
CheckFactory = Callable[[Any], Callable[[Profile], Evidence]]


def _law_and_dynamics(cid: str, title: str, source: str, law: tuple[str, str, CheckFactory],
                      dynamics: tuple[str, str, CheckFactory], right: Any, wrong: tuple[str, Any]) -> list[Claim]:
    r"""Two claims that share a closed form: ``<cid>-closed-form`` (its derivation in SymPy, PROVED) and ``<cid>``
    (simulated trajectories follow it, SIMULATED). ``law`` and ``dynamics`` are (statement, check name, check
    factory); each factory takes the declared value (``right``) or the mutant's (``wrong``)."""
    suffix, bad = wrong
    out = []
    for claim_id, claim_title, (statement, name, factory) in ((f"{cid}-closed-form", f"{title} (closed form)", law),
                                                               (cid, title, dynamics)):
        out.append(_claim(claim_id, claim_title, statement, source, named_check(name, factory(right)),
                          (suffix, named_check(name, factory(bad)))))
    return out


def claims() -> list[Claim]:
    r"""The dynamics claims (reconstruction §4.2-§5). Each closed form (PROVED) and each statement about trajectories
    (SIMULATED) is a claim of its own: ``<id>-closed-form`` and ``<id>``."""
    out: list[Claim] = []

    worked = r"\theta\in\mathbb R,\ \phi=(0,1,2),\ C=\{1\}:\ \theta^\star=0,\ J^\star=3^{-T},\ "
    eta_c = r"\eta_c=\tfrac{2}{|\ell''(0)|}=\tfrac{3(1-3^{-T})}{T}"
    out += _law_and_dynamics(
        "collapse-threshold-worked-example", "Sharp collapse threshold of Gradient-Gap steps",
        "§4.2 (collapse, QUOTED-2nd), local stability DERIVED by this project",
        (worked + eta_c + r":\ \text{the Gradient-Gap map }\theta\mapsto\theta+\eta g(\theta)\text{ is locally "
         r"stable at }\theta^\star\text{ iff }\eta<\eta_c\ (\text{symbolic }T)",
         "sympy-local-stability", _collapse_proved),
        (worked + eta_c + r";\ \text{simulated from }\theta_0=0.05\ (T=2,8,32)\text{: }"
         r"\eta<\eta_c\Rightarrow J_k\to J^\star,\ \eta>\eta_c\Rightarrow\text{2-cycle with }J<J^\star/2,\ "
         r"\text{bisected threshold within 5\%\ of }\eta_c",
         "simulation-bisection", _collapse_simulated),
        1.0, ("eta-times-1.2", 1.2))

    for setting, norm, declared, cid in (("worked", False, -1.0, "length-law-worked-unnormalized"),
                                         ("worked", True, 0.0, "length-law-worked-normalized"),
                                         ("fixed_success", False, 0.0, "length-law-fixed-success-unnormalized"),
                                         ("fixed_success", True, 1.0, "length-law-fixed-success-normalized")):
        what = "J^\\star=3^{-T}" if setting == "worked" else "J^\\star=1/2\\ \\text{fixed}"
        out += _law_and_dynamics(
            cid, f"Critical step vs length ({setting}, {'1/T' if norm else 'no'} normalisation)",
            "§4.3 (length, QUOTED-2nd); law DERIVED by this project",
            (rf"{what}:\ \lim_{{T\to\infty}} \frac{{d\log\eta_c}}{{d\log T}} = {declared:g}"
             r"\ \text{(}\eta_c\text{ the local-stability threshold of Gradient-Gap steps, symbolic }T)",
             "sympy-limit", lambda d, s=setting, n=norm: _length_proved(s, n, d)),
            (rf"{what}:\ \text{{simulated critical steps of Gradient-Gap steps, }}T=8,\dots,64\text{{: within 5\%\ "
             rf"of the law, fitted slope of }}\log\eta_c\text{{ vs }}\log T = {declared:g}"
             r"\pm(3\,\mathrm{se}+0.02)",
             "simulation-slope", lambda d, s=setting, n=norm: _length_simulated(s, n, d)),
            declared, ("exponent-plus-half", declared + 0.5))

    out += _law_and_dynamics(
        "success-rate-law", "Critical step vs success rate at fixed curvature",
        "§4.3-§4.4 (1-J dependence, QUOTED-2nd); law DERIVED by this project",
        (r"\eta_c = \frac{2(1-J^\star)}{c(J^\star)\,\kappa}\ \Rightarrow\ "
         r"\lim_{J^\star\to1}\frac{d\log\eta_c}{d\log(1-J^\star)}=e,\ "
         r"e_{\rm gap}=1,\ e_{\rm GRPO}=\tfrac12,\ e_{\rm Dr.GRPO}=0",
         "sympy-limit", _success_proved),
        (r"\text{simulated critical steps at }J^\star\in[0.9,0.999]\text{: within 5\%\ of }"
         r"\eta_c=\frac{2(1-J^\star)}{c(J^\star)\,\kappa},\ \text{fitted slope vs }\log(1-J^\star)=e"
         r"\pm(3\,\mathrm{se}+0.07),\ e_{\rm gap}=1,\ e_{\rm GRPO}=\tfrac12,\ e_{\rm Dr.GRPO}=0",
         "simulation-slope", _success_simulated),
        {"gap": 1.0, "grpo": 0.5, "dr_grpo": 0.0}, ("gap-exponent-2", {"gap": 2.0, "grpo": 0.5, "dr_grpo": 0.0}))

    tab_source = "§4.3 (stagnation, QUOTED abstract); engines note (tabular bandits); DERIVED"
    out.append(_claim(
        "tabular-no-stagnation-closed-form", "One exact Gradient-Gap step of a 2-arm bandit",
        r"\text{2-arm softmax bandit: } \ell(\theta+\eta g)-\ell(\theta)=2\eta\ \text{for every }\theta,\ \eta",
        tab_source, named_check("sympy-exact-gap-step", _tabular_proved(2)),
        ("gain-eta", named_check("sympy-exact-gap-step", _tabular_proved(1))), family="softmax"))
    out.append(_claim(
        "tabular-no-stagnation", "Tabular families do not stagnate at a constant step",
        r"\text{tabular softmax / tokens: stochastic GRPO with }\eta\in[1,100]\text{ drives }1-J\to0",
        tab_source, named_check("stochastic-grpo", _tabular_simulated(False)),
        ("plateau", named_check("stochastic-grpo", _tabular_simulated(True))), family="all"))

    out.append(_claim(
        "stagnation-shared-not-reproduced", "Fixed-step stagnation below 100%: searched, not reproduced",
        r"\text{no realizable shared family searched has a fixed-}\eta\text{ plateau } J^\dagger<1"
        r"\text{ that } \eta_k\propto 1-J_k \text{ escapes}",
        "§4.3 (stagnation, QUOTED abstract; DERIVED corollary)", named_check("plateau-search", _stagnation_search),
        ("binary-plateau", named_check("binary-plateau", _binary_plateau_mutant))))

    out.append(_claim(
        "stochastic-threshold-single-success", "Finite groups collapse far below the expected threshold",
        r"G\text{ samples, }J^\star\ll1/G:\ \eta_{1/2}\approx\eta_c^{\rm gap}/c_1,\ "
        r"c_1=\tfrac{G-1}{G^2}\ (\text{Dr.GRPO}),\ \tfrac{\sqrt{G-1}}{G}\ (\text{GRPO})"
        r"\ \ll\ \eta_c^{\rm expected}",
        "§4.4 (gains, DERIVED); §5 (bandit simulations, INFERRED)", named_check("stochastic-chains", _stochastic),
        ("expected-threshold", named_check("stochastic-chains", lambda p: _stochastic(p, expected_like=True)))))
    return out
