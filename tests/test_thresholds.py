"""theory.critical_step / theory.one_step_threshold against their numeric twins and numerics.dynamics."""

from __future__ import annotations

import json
import math
import random
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from gradgap.numerics import dynamics as nd
from gradgap.numerics import critical_step as ncs
from gradgap.numerics import one_step_threshold as nt
from gradgap.proofs_check import cli
from gradgap.proofs_check.tolerances import EXACT, FD, close
from gradgap.theory import critical_step as th
from gradgap.theory import one_step_threshold as ost
from gradgap.theory.instances import SharedTokens, SoftmaxBandit, TokenSequence


def _random_case(seed: int):
    rng = random.Random(seed)
    kind = seed % 3
    if kind == 0:
        K = rng.randint(2, 4)
        inst = SoftmaxBandit(tuple(round(rng.uniform(-2, 2), 3) for _ in range(K)), frozenset({0}))
        n = K
    elif kind == 1:
        T = rng.randint(1, 3)
        inst = TokenSequence(tuple(tuple(round(rng.uniform(-2, 2), 3) for _ in range(2)) for _ in range(T)),
                             tuple(rng.randrange(2) for _ in range(T)))
        n = 2 * T
    else:
        inst = SharedTokens((round(rng.uniform(-1, 1), 3),), ((0.0,), (1.0,), (2.0,)), frozenset({1}),
                            T=rng.randint(1, 6))
        n = 1
    w = tuple(Fraction(rng.randint(-4, 4), rng.randint(1, 3)) for _ in range(n))
    return inst, w


@pytest.mark.parametrize("seed", range(15))
def test_eta_star_polynomial_vs_numeric_root_finder(seed: int) -> None:
    inst, w = _random_case(seed)
    exact = ost.eta_star(inst, w)
    numeric = nt.eta_star(inst, [float(x) for x in w])
    assert exact.route == "polynomial"
    if math.isinf(exact.value) or math.isinf(numeric.value):
        assert exact.value == numeric.value, (inst, w, exact, numeric)
    else:
        assert close(numeric.value, exact.value, EXACT), (inst, w, exact, numeric)
        if exact.value > 0:
            assert exact.certified, exact


def test_eta_star_symmetric_shared_instance_is_twice_theta() -> None:
    # J is even in theta for features (0,1,2), C={1}: stepping from 0.2 along -1 returns to J(0.2) at s = 0.4
    inst = SharedTokens((0.2,), ((0.0,), (1.0,), (2.0,)), frozenset({1}), T=4)
    assert close(ost.eta_star(inst, (Fraction(-1),)).value, 0.4, EXACT)


@pytest.mark.parametrize("seed", [0, 1, 2, 4])
def test_threshold_command_vs_numeric_root_finder(seed: int, capsys: pytest.CaptureFixture[str]) -> None:
    inst, w = _random_case(seed)
    text = ",".join(str(x) for x in w)
    if isinstance(inst, SoftmaxBandit):
        argv = ["threshold", "softmax", "--logits=" + ",".join(map(str, inst.logits)), "--correct", "0"]
    elif isinstance(inst, TokenSequence):
        argv = ["threshold", "tokens", "--logits=" + ";".join(",".join(map(str, r)) for r in inst.logits),
                "--target", ",".join(map(str, inst.target))]
    else:
        argv = ["threshold", "shared_tokens", f"--theta={inst.theta[0]}", "--features", "0;1;2", "--correct", "1",
                "--T", str(inst.T)]
    assert cli.main([*argv, f"--direction={text}", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    norm = math.sqrt(sum(float(x) ** 2 for x in w))
    numeric = nt.eta_star(inst, [float(x) / norm for x in w]).value
    if out["eta_star"] is None:
        assert math.isinf(numeric)
    else:
        assert close(out["eta_star"], numeric, EXACT)
        assert out["ratio"] is None or close(out["ratio"], out["eta_star"] / out["eta_theorem"], EXACT)


def test_threshold_command_bad_input_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["threshold", "softmax", "--logits", "a,b", "--correct", "0"]) == 2
    assert "logits" in capsys.readouterr().err


@pytest.mark.parametrize("rule", ["gap", "dr_grpo", "grpo"])
@pytest.mark.parametrize("inst", [th.worked_example(1), th.worked_example(3), th.fixed_success_instance(0.5, 4),
                                  th.success_instance(0.9)], ids=["worked1", "worked3", "fixed4", "success0.9"])
def test_critical_step_symbolic_vs_fd_jacobian(inst: SharedTokens, rule: str) -> None:
    sym = th.critical_step(inst, rule).value()
    num = ncs.critical_step(inst, rule)
    assert close(num, sym, FD), (rule, inst, sym, num)


@pytest.mark.parametrize("setting", ["worked", "fixed_success", "success"])
def test_critical_step_law_matches_instance_derivation(setting: str) -> None:
    T, J = 3, 0.5
    law = th.critical_step_law(setting, "gap").at(T, None if setting == "worked" else J)
    inst = {"worked": th.worked_example(T), "fixed_success": th.fixed_success_instance(J, T),
            "success": th.success_instance(J, T)}[setting]
    assert close(th.critical_step(inst).value(), law, FD)


def test_worked_example_law_is_three_over_T() -> None:
    law = th.critical_step_law("worked", "gap")
    assert sp.simplify(law.eta_crit - 3 * (1 - sp.Integer(3) ** -th.T_SYM) / th.T_SYM) == 0
    assert law.asymptotic_slope == -1


@pytest.mark.parametrize("rule", ["gap", "dr_grpo", "grpo"])
@pytest.mark.parametrize("normalized", [False, True])
def test_critical_step_closed_form_vs_simulation_bisection(rule: str, normalized: bool) -> None:
    Ts = (1, 4, 16)
    closed = np.array([th.critical_step_law("worked", rule, normalized).at(T) for T in Ts])
    model = nd.stack_models([nd.LogLinearModel.from_instance(th.worked_example(T)) for T in Ts])
    Jstar = 3.0 ** -np.array(Ts, dtype=float)
    sim = nd.critical_step_bisect(model, np.full((3, 1), 0.05), Jstar, closed / 4, closed * 4,
                                  nd.SimConfig(rule=rule, length_normalized=normalized, steps=1500), rtol=0.01)
    assert np.all(np.abs(sim / closed - 1) <= 0.05), (rule, normalized, sim, closed)


def test_critical_step_rejects_non_stationary_point() -> None:
    with pytest.raises(ValueError, match="stationary"):
        th.critical_step(SharedTokens((0.3,), ((0.0,), (1.0,), (2.0,)), frozenset({1}), T=2))


def test_success_law_exponents() -> None:
    assert th.success_law("gap")[1] == 1
    assert th.success_law("grpo")[1] == sp.Rational(1, 2)
    assert th.success_law("dr_grpo")[1] == 0
    assert th.tabular_gap_progress() == 2 * th.ETA
    assert th.separating_ray_gap_limit() == 1  # numerics side: test_dynamics (g -> 1 along the ray)


@pytest.mark.parametrize("seed", range(6))
def test_eta_star_polynomial_vs_bracket_for_at_least_m_correct(seed: int) -> None:
    # no numeric twin for min_correct < T: compare the polynomial route with the ball route (floats)
    rng = random.Random(100 + seed)
    inst = TokenSequence(tuple(tuple(round(rng.uniform(-2, 2), 3) for _ in range(2)) for _ in range(3)),
                         tuple(rng.randrange(2) for _ in range(3)), min_correct=2)
    w = [Fraction(rng.randint(-4, 4), rng.randint(1, 3)) for _ in range(6)]
    poly = ost.eta_star(inst, w)
    scan = ost.eta_star(inst, [float(x) for x in w], max_degree=0)
    assert (poly.route, scan.route) == ("polynomial", "ball")
    if math.isinf(poly.value) or math.isinf(scan.value):
        assert poly.value == scan.value
    else:
        assert close(scan.value, poly.value, EXACT)
