"""Theorem 1: the symbolic telescoping and logit inversion, and the theorem along trajectories (numerics),
with the final success rate re-evaluated by the theory side at 50 digits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradgap.numerics import algorithms as na
from gradgap.proofs_check import families
from gradgap.proofs_check.tolerances import EXACT
from gradgap.theory import algorithms as ta
from gradgap.theory.instances import SharedTokens, SoftmaxBandit, TokenSequence

STARTS = [
    SoftmaxBandit((0.5, -0.3, 1.2, 0.0), frozenset({0})),
    TokenSequence(((0.3, -0.2, 0.5), (1.0, 0.0, -1.0)), target=(0, 2)),
    SharedTokens((0.2, -0.4), ((0.0, 1.0), (1.0, 0.0), (1.0, 1.0), (-1.0, 0.5)), frozenset({0, 2}), T=2),
]


def test_logit_inversion_proved_and_wrong_exponent_rejected() -> None:
    assert ta.prove_logit_inversion().proved
    assert not ta.prove_logit_inversion(1).proved
    assert ta.prove_telescoping(4).proved
    assert not ta.prove_telescoping(4, step_factor=1).proved


def _constants(inst) -> tuple[float, float]:
    c = families.theory_module(inst).constants(inst)
    return float(c.L_o.value), float(c.G_o.value)


def _quantities(inst) -> tuple[float, np.ndarray]:
    mod = families.numerics_module(inst)
    return float(mod.success_rate(inst)), np.asarray(mod.gradient_gap(inst))


@pytest.mark.parametrize("inst", STARTS, ids=["softmax", "tokens", "shared"])
@pytest.mark.parametrize("which", ["paper", "loglinear"])
@pytest.mark.parametrize("direction", ["gap", "random"])
def test_theorem1_monotone_and_rate_bound_along_trajectory(inst, which: str, direction: str) -> None:
    L, G = _constants(inst)
    C = L + 8 * G**2 if which == "paper" else G**2 / 8
    tr = na.theorem1_trajectory(inst, C=C, steps=60, direction=direction, seed=1, quantities=_quantities)
    assert np.all(np.diff(tr.J) >= 0), f"J decreased: {np.diff(tr.J).min()}"
    assert tr.M > 0
    assert tr.J[-1] >= tr.bound(0.5), (tr.J[-1], tr.bound(0.5))
    # the final J from the theory side at 50 digits agrees with the numerics
    hp = families.theory_module(inst).success_rate(inst.with_theta(tuple(tr.thetas[-1]))).evalf(50)
    assert math.isclose(float(hp), float(tr.J[-1]), rel_tol=EXACT[0])


def test_log_odds_gain_is_at_least_half_of_M() -> None:
    inst = STARTS[0]
    _, G = _constants(inst)
    tr = na.theorem1_trajectory(inst, C=G**2 / 8, steps=8, direction="gap", seed=0, quantities=_quantities)
    mod = families.numerics_module(inst)
    ell = [mod.log_odds(inst.with_theta(tuple(t))) for t in tr.thetas]
    assert ell[-1] - ell[0] >= tr.M / 2
    assert ell[-1] - ell[0] < 2 * tr.M  # so the exponent-2 variant of the bound is refuted here


def test_steps_sixteen_times_the_sharp_threshold_can_decrease_J() -> None:
    inst = SoftmaxBandit((0.0, 0.0, 0.0, -1.0), frozenset({0}))
    _, G = _constants(inst)
    tr = na.theorem1_trajectory(inst, C=G**2 / 8 / 16, steps=40, direction="random", seed=0, quantities=_quantities)
    assert np.diff(tr.J).min() < 0


def test_theorem1_claims_in_quick_profile() -> None:
    from gradgap.proofs_check.builtin import theorem1
    from gradgap.proofs_check.claims import run_claim

    results = {c.id: run_claim(c, "quick") for c in theorem1.claims()}
    bad = {i: (r.evidence.status, r.evidence.detail) for i, r in results.items() if not r.ok}
    assert not bad, bad
    assert results["theorem1-logit-inversion"].evidence.strength.name == "PROVED"


@pytest.mark.slow
def test_theorem1_and_algorithm_mutants_all_killed() -> None:
    from gradgap.proofs_check.builtin import algorithms, theorem1
    from gradgap.proofs_check.mutants import run_mutation

    outcome = run_mutation([*theorem1.claims(), *algorithms.claims()], "quick", progress=False)
    assert outcome.score == 1.0, [r for r in outcome.rows if not r[3]]
