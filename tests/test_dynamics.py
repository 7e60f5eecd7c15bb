"""numerics.dynamics: determinism, expected vs sampled updates (Monte Carlo at a stated alpha), classes,
vectorised vs one-at-a-time runs, and the Gradient Gap against finite differences of log J."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradgap.numerics import dynamics as nd
from gradgap.proofs_check.tolerances import EXACT, FD, FD_STEP, MC_ALPHA
from gradgap.theory.instances import SharedTokens, SoftmaxBandit, TokenSequence

WORKED = SharedTokens((0.0,), ((0.0,), (1.0,), (2.0,)), frozenset({1}), T=4)


def _z(alpha: float) -> float:
    """Two-sided normal quantile by bisection on erfc (no scipy)."""
    lo, hi = 0.0, 20.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if math.erfc(mid / math.sqrt(2)) > alpha else (lo, mid)
    return hi


@pytest.mark.parametrize("inst", [
    SoftmaxBandit((0.3, -0.2, 0.5), frozenset({0, 2})),
    TokenSequence(((0.1, 0.4, -0.3), (0.0, 0.2, 0.1)), (2, 0)),
    SharedTokens((0.2, -0.1), ((0.0, 1.0), (1.0, 0.0), (-1.0, 0.5)), frozenset({0}), T=3, bias=(0.1, 0.0, -0.2)),
], ids=["softmax", "tokens", "shared"])
def test_gradient_gap_vs_fd_of_log_success_rate(inst) -> None:
    model = nd.LogLinearModel.from_instance(inst)
    theta = np.array(inst.theta)
    J = float(nd.success_rate(model, theta))
    eye = np.eye(theta.size) * FD_STEP
    fd = (nd.log_success_rate(model, theta + eye) - nd.log_success_rate(model, theta - eye)) / (2 * FD_STEP)
    want = fd / (1 - J)
    got = nd.gradient_gap(model, theta)
    rtol, atol = FD
    assert np.all(np.abs(got - want) <= atol + rtol * np.abs(want)), (got, want)


def test_gradient_gap_stays_finite_as_J_tends_to_one() -> None:
    model = nd.LogLinearModel.from_instance(SharedTokens((0.0,), ((0.0,), (1.0,)), frozenset({1}), T=16))
    g = nd.gradient_gap(model, np.array([[40.0], [60.0]]))
    rtol, atol = EXACT
    assert np.all(np.abs(g - 1.0) <= atol + rtol), g  # g -> (phi_c - phi_w) = 1 along the separating ray


@pytest.mark.parametrize("rule, factor", [("reinforce", lambda G: 1.0), ("dr_grpo", lambda G: 1 - 1 / G)])
def test_sampled_update_mean_matches_expected_update(rule: str, factor) -> None:
    inst = SharedTokens((0.3,), ((0.0,), (1.0,), (2.0,)), frozenset({1}), T=2)
    model = nd.LogLinearModel.from_instance(inst)
    G, n = 8, 40000
    theta = np.broadcast_to(np.array([0.3]), (n, 1))
    w = nd.sampled_update(model, theta, rule, G, np.random.default_rng(7))[:, 0]
    want = factor(G) * float(nd.expected_update(model, np.array([0.3]), rule)[0])
    stderr = w.std(ddof=1) / math.sqrt(n)
    assert abs(w.mean() - want) <= _z(MC_ALPHA) * stderr, (w.mean(), want, stderr)


def test_all_fail_groups_give_zero_update() -> None:
    model = nd.LogLinearModel.from_instance(SharedTokens((8.0,), ((0.0,), (1.0,), (2.0,)), frozenset({1}), T=8))
    for rule in ("gap", "dr_grpo", "grpo", "reinforce"):
        w = nd.sampled_update(model, np.zeros((16, 1)) + 8.0, rule, 8, np.random.default_rng(0))
        assert np.all(w == 0.0), rule


def test_seeded_simulation_is_deterministic() -> None:
    model = nd.LogLinearModel.from_instance(WORKED)
    cfg = nd.SimConfig(rule="grpo", expected=False, steps=60, seed=3)
    a = nd.simulate(model, np.array([0.1]), [1.0, 5.0], cfg, chains=6)
    b = nd.simulate(model, np.array([0.1]), [1.0, 5.0], cfg, chains=6)
    c = nd.simulate(model, np.array([0.1]), [1.0, 5.0], nd.SimConfig(rule="grpo", expected=False, steps=60, seed=4),
                    chains=6)
    assert np.array_equal(a.success, b.success)
    assert not np.array_equal(a.success, c.success)


def test_vectorised_runs_equal_one_at_a_time() -> None:
    insts = [SharedTokens((0.0,), ((0.0,), (1.0,), (2.0,)), frozenset({1}), T=T) for T in (1, 3, 8)]
    stacked = nd.stack_models([nd.LogLinearModel.from_instance(i) for i in insts])
    etas = np.array([[0.5, 0.3, 0.1], [3.0, 1.5, 0.6]])
    cfg = nd.SimConfig(steps=80, length_normalized=True)
    together = nd.simulate(stacked, np.full((3, 1), 0.2), etas, cfg)
    for b, inst in enumerate(insts):
        alone = nd.simulate(nd.LogLinearModel.from_instance(inst), np.array([0.2]), etas[:, b], cfg)
        rtol, atol = EXACT
        assert np.allclose(together.success[:, :, b], alone.success[:, :, 0], rtol=rtol, atol=atol)


def test_classes_on_both_sides_of_the_threshold() -> None:
    model = nd.LogLinearModel.from_instance(WORKED)
    eta_c = 3 * (1 - 3.0**-4) / 4
    J_star = 3.0**-4
    tr = nd.simulate(model, np.array([0.3]), [0.8 * eta_c, 1.5 * eta_c], nd.SimConfig(steps=400))
    assert nd.classify(tr, J_star)[:, 0].tolist() == ["converged", "two_cycle"]
    # Dr. GRPO far above its threshold overshoots to J ~ 0 where its gain J(1-J) vanishes: frozen
    eta_dr = 3 / (4 * J_star)
    tr = nd.simulate(model, np.array([0.3]), [20 * eta_dr], nd.SimConfig(rule="dr_grpo", steps=400))
    assert nd.classify(tr, J_star)[0, 0] == "frozen_near_0"


def test_bad_config_raises() -> None:
    with pytest.raises(ValueError, match="rule"):
        nd.SimConfig(rule="ppo")
    with pytest.raises(ValueError, match="min_correct"):
        nd.LogLinearModel.from_instance(TokenSequence(((0.0, 0.0), (0.0, 0.0)), (0, 1), min_correct=1))
