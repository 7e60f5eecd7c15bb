r"""Built-in claims on Theorem 1 (reconstruction §4.1, QUOTED-2nd): monotone improvement and the rate bound.

.. math::  0\le\eta_k\le\frac{[\Delta\mu_k]_+}{2(L_o+8G_o^2)}\ \Longrightarrow\ J_{k+1}\ge J_k,\quad
           J_K\ge\frac{J_0}{J_0+(1-J_0)e^{-M_K/2}},\quad M_K=\sum_{k<K}\eta_k[\Delta\mu_k]_+.

===================================  ========================================================================
id                                   statement / evidence
===================================  ========================================================================
``theorem1-logit-inversion``         one-step bound => :math:`\ell_K\ge\ell_0+M_K/2` => the J bound (PROVED:
                                     the per-step form for every step, the telescoped sum for the K in the
                                     figures, 1..3, or 1..7 with ``thorough``)
``theorem1-step-paper-<family>``     :math:`\Delta\ell\ge\eta\Delta\mu/2` under the paper's step condition
                                     (TESTED; with :math:`\Delta\mu>0` it gives :math:`J_{k+1}>J_k`)
``theorem1-step-sharp-<family>``     the same with :math:`C=G_o^2/8` in the step condition (TESTED)
``theorem1-trajectories-<family>``   monotone J and the bound along gap-direction and random-direction
                                     trajectories with the largest allowed steps (SIMULATED)
===================================  ========================================================================

The per-step claim is the only analytic ingredient of Theorem 1 besides algebra: with it, the telescoping
and the logit inversion are symbolic identities (``theorem1-logit-inversion``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Final

import numpy as np
import sympy as sp

from gradgap.numerics import algorithms as na
from gradgap.proofs_check import families
from gradgap.proofs_check.builtin.one_step import relation_with_pins
from gradgap.proofs_check.claims import Claim, Evidence, Profile, Relation, Strength, mutant_claim, named_check
from gradgap.theory import algorithms as ta
from gradgap.theory.instances import ContextualBandit, Instance, SharedTokens, SoftmaxBandit, TokenSequence

__all__ = ["claims"]

_FAMILIES: Final[tuple[str, ...]] = families.LOG_LINEAR_FAMILIES
#: Theorem 1's constant as stated (reconstruction §4.1); ``certified.py`` checks ``eta_theorem`` against it
PAPER_CONSTANT: Final[str] = "(L_o + 8*G_o**2)"
_PAPER_C: Final[str] = PAPER_CONSTANT
_SHARP_C: Final[str] = "G_o**2/8"
_STEP: Final[str] = "ell_next - ell >= eta*Delta_mu/2"
#: step fractions of the pinned points: the theorem's largest allowed step and below
_PIN_FRACTIONS: Final[tuple[float, ...]] = (0.25, 0.5, 1.0)
_SOURCE: Final[str] = "reconstruction §4.1 (Theorem 1 QUOTED-2nd; mechanism DERIVED)"


# ------------------------------------------------------------------ PROVED: telescoping and logit inversion


def _inversion_check(exponent: Any, step_factor: Any) -> Callable[[Profile], Evidence]:
    def run(profile: Profile) -> Evidence:
        steps = list(range(1, 4 if profile.name != "thorough" else 8))
        res = [ta.prove_logit_inversion(exponent)]
        res += [ta.prove_telescoping(K, step_factor) for K in steps]
        bad = [r for r in res if not r.proved]
        figures = {"identities": len(res), "K": steps}
        if bad:
            return Evidence.fails(Strength.PROVED, {"identity": bad[0].name, "detail": bad[0].detail}, figures,
                                  detail="the symbolic step does not hold")
        return Evidence.holds(Strength.PROVED, figures,
                              detail="per-step slack eta(dmu - 2 eta C)/2 >= 0, telescoping to M/2, and "
                                     "sigma(ell_0 + M/2) = J_0/(J_0 + (1-J_0) e^{-M/2})")

    return run


# ------------------------------------------------------------------ SIMULATED: trajectories


def _start_instances(family: str, n: int, seed: int) -> list[Instance]:
    rng = np.random.default_rng(seed)
    out: list[Instance] = []
    for _ in range(n):
        if family == "softmax":
            out.append(SoftmaxBandit(tuple(rng.uniform(-2, 2, 4)), frozenset({0})))
        elif family == "tokens":
            rows = tuple(tuple(r) for r in rng.uniform(-1.5, 1.5, (2, 3)))
            out.append(TokenSequence(rows, target=(0, 1)))
        elif family == "contextual":
            feats = (((1.0, 0.0), (0.0, 1.0), (1.0, 1.0)), ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0)))
            out.append(ContextualBandit(tuple(rng.uniform(-1, 1, 2)), feats, (frozenset({0}), frozenset({1, 2}))))
        else:
            feats = ((0.0, 1.0), (1.0, 0.0), (1.0, 1.0), (-1.0, 0.5))
            out.append(SharedTokens(tuple(rng.uniform(-1, 1, 2)), feats, frozenset({0, 2}), T=2))
    return out


def _constant(inst: Instance, which: str) -> float:
    c = families.theory_module(inst).constants(inst)
    L, G = float(c.L_o.value), float(c.G_o.value)
    return L + 8 * G**2 if which == "paper" else G**2 / 8


def _hp_J(inst: Instance) -> Any:
    return families.theory_module(inst).success_rate(inst).evalf(50)


def _trajectory_check(family: str, exponent: float, step_scale: float = 1.0) -> Callable[[Profile], Evidence]:
    r"""Run trajectories; a float violation of monotonicity or of the bound is re-evaluated at 50 digits
    (theory: :math:`J` at the exact float parameters) before it counts."""

    def run(profile: Profile) -> Evidence:
        mod = families.numerics_module(family)

        def quantities(inst: Instance) -> tuple[float, np.ndarray]:
            return float(mod.success_rate(inst)), np.asarray(mod.gradient_gap(inst), dtype=float)

        runs = 0
        min_step_gain = math.inf
        min_bound_slack = math.inf
        for seed in profile.seeds:
            for inst in _start_instances(family, max(1, profile.trajectories // 2), seed):
                for which in ("paper", "sharp"):
                    C = _constant(inst, which) / step_scale
                    for direction in ("gap", "random"):
                        tr = na.theorem1_trajectory(inst, C=C, steps=profile.steps, direction=direction,
                                                    seed=seed, fraction=(1.0, 0.5), quantities=quantities)
                        runs += 1
                        diffs = np.diff(tr.J)
                        min_step_gain = min(min_step_gain, float(diffs.min()))
                        bound = tr.bound(exponent)
                        min_bound_slack = min(min_bound_slack, float(tr.J[-1] - bound))
                        bad = [int(k) for k in np.nonzero(diffs < 0)[0]]
                        for k in bad:
                            a = _hp_J(inst.with_theta(tuple(tr.thetas[k])))
                            b = _hp_J(inst.with_theta(tuple(tr.thetas[k + 1])))
                            if b < a:
                                return Evidence.fails(Strength.SIMULATED, {
                                    "family": family, "start": repr(inst), "constant": which, "C": C,
                                    "direction": direction, "step": k, "J_k": str(a)[:24], "J_k+1": str(b)[:24]},
                                    detail="J decreased (re-checked at 50 digits)")
                        if tr.J[-1] < bound:
                            JK = _hp_J(inst.with_theta(tuple(tr.thetas[-1])))
                            J0 = _hp_J(inst)
                            hp_bound = J0 / (J0 + (1 - J0) * math.exp(-exponent * tr.M))
                            if JK < hp_bound:
                                return Evidence.fails(Strength.SIMULATED, {
                                    "family": family, "start": repr(inst), "constant": which, "C": C,
                                    "direction": direction, "K": profile.steps, "M_K": tr.M, "J_0": str(J0)[:24],
                                    "J_K": str(JK)[:24], "bound": str(hp_bound)[:24]},
                                    detail="J_K below the bound (re-checked at 50 digits)")
        return Evidence.holds(Strength.SIMULATED, {"trajectories": runs, "steps": profile.steps,
                                                   "min_step_gain": min_step_gain,
                                                   "min_bound_slack": min_bound_slack},
                              detail=f"{runs} trajectories (gap and random directions, paper and G_o^2/8 "
                                     "constants, largest allowed steps)")

    return run


def _step_claim(family: str, C: str, which: str) -> Claim:
    fid = family.replace("_", "-")
    given = ("Delta_mu > 0", f"eta <= Delta_mu/(2*{C})")
    rel = Relation(claim=_STEP, family=family, direction="random", given=given)
    c_tex = r"(L_o+8G_o^2)" if which == "paper" else r"G_o^2/8"
    mutants: Sequence[tuple[str, str, tuple[str, ...]]] = (
        ("flip", "ell_next - ell <= eta*Delta_mu/2", given),
        ("drop_half", "ell_next - ell >= eta*Delta_mu", given),
        ("step_bound_with_G_o**2/32", _STEP, ("Delta_mu > 0", "eta <= Delta_mu/(2*G_o**2/32)")),
    )
    cid = f"theorem1-step-{which}-{fid}"
    statement = (rf"If $\Delta\mu>0$ and $0\le\eta\le\Delta\mu/(2{c_tex})$ then "
                 r"$\ell(\theta+\eta w)-\ell(\theta)\ge\eta\Delta\mu/2$ (so $J$ increases).")

    def mutant_claims() -> list[Claim]:
        out = []
        for kind, text, giv in mutants:
            r = Relation(claim=text, family=family, direction="random", given=giv)
            out.append(relation_with_pins(f"{cid}~{kind}", r, title="mutant", statement=" ",
                                          source=f"mutant of {cid}", mutants=lambda: [],
                                          pin_fractions=_PIN_FRACTIONS))
        return out

    return relation_with_pins(cid, rel, title=f"Theorem 1 per-step progress ({which} constant, {family})",
                              statement=statement, source=_SOURCE, mutants=mutant_claims,
                              pin_fractions=_PIN_FRACTIONS)


def claims() -> list[Claim]:
    """The built-in claims of this module."""

    half = sp.Rational(1, 2)
    out = [Claim(
        id="theorem1-logit-inversion",
        title="Theorem 1: telescoping and logit inversion",
        family="all",
        statement=(r"If $\Delta\ell_k\ge\eta_k\Delta\mu_k-\eta_k^2C$ and $0\le\eta_k\le[\Delta\mu_k]_+/(2C)$ then "
                   r"$\Delta\ell_k\ge\eta_k[\Delta\mu_k]_+/2$, $\ell_K\ge\ell_0+M_K/2$ and "
                   r"$J_K\ge J_0/(J_0+(1-J_0)e^{-M_K/2})$."),
        source=_SOURCE,
        checks=(named_check("symbolic", _inversion_check(half, 2)),),
        mutants=lambda: [
            mutant_claim("theorem1-logit-inversion", "exponent_1", named_check("symbolic", _inversion_check(1, 2))),
            mutant_claim("theorem1-logit-inversion", "exponent_2", named_check("symbolic", _inversion_check(2, 2))),
            mutant_claim("theorem1-logit-inversion", "step_dmu/C",
                         named_check("symbolic", _inversion_check(half, 1))),
        ],
    )]
    for fam in _FAMILIES:
        out.append(_step_claim(fam, _PAPER_C, "paper"))
        out.append(_step_claim(fam, _SHARP_C, "sharp"))
    for fam in _FAMILIES:
        fid = fam.replace("_", "-")
        out.append(Claim(
            id=f"theorem1-trajectories-{fid}",
            title=f"Theorem 1 along trajectories ({fam})",
            family=fam,
            statement=(r"Along $\theta_{k+1}=\theta_k+\eta_kw_k$ with $\eta_k=u_k[\Delta\mu_k]_+/(2C)$, "
                       r"$u_k\in\{1,\frac12\}$, $C\in\{L_o+8G_o^2,\ G_o^2/8\}$, $w_k$ the unit gap or a random "
                       r"unit vector: $J_{k+1}\ge J_k$ and $J_K\ge J_0/(J_0+(1-J_0)e^{-M_K/2})$."),
            source=_SOURCE,
            checks=(named_check("trajectories", _trajectory_check(fam, 0.5)),),
            mutants=lambda fam=fam, fid=fid: [
                mutant_claim(f"theorem1-trajectories-{fid}", "exponent_2",
                             named_check("trajectories", _trajectory_check(fam, 2.0)), family=fam),
                mutant_claim(f"theorem1-trajectories-{fid}", "step_16x",
                             named_check("trajectories", _trajectory_check(fam, 0.5, step_scale=16.0)), family=fam),
            ],
        ))
    return out
