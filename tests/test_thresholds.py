"""theory.critical_step / theory.one_step_threshold against their numeric twins and numerics.dynamics."""

from __future__ import annotations

import json
import math
import random
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

from gradgap.numerics import critical_step as ncs
from gradgap.numerics import dynamics as nd
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


# ---------------------------------------------------------------------------------------------------------
# Arb certificates against independent 50-digit evaluations of J along the line


def _J_mp(inst, point):
    """J at ``point`` straight from the family definitions, at the current mpmath precision (independent)."""
    import mpmath

    def softmax_p(logits, correct):
        top = max(logits)
        ex = [mpmath.exp(z - top) for z in logits]
        return mpmath.fsum(ex[v] for v in correct) / mpmath.fsum(ex)

    if isinstance(inst, SoftmaxBandit):
        return softmax_p(point, inst.correct)
    if isinstance(inst, TokenSequence):
        V = inst.V
        ps = [softmax_p(point[t * V:(t + 1) * V], {inst.target[t]}) for t in range(inst.T)]
        dist = [mpmath.mpf(1)] + [mpmath.mpf(0)] * len(ps)
        for p in ps:
            dist = [dist[k] * (1 - p) + (dist[k - 1] * p if k else 0) for k in range(len(dist))]
        return mpmath.fsum(dist[inst.m:])
    logits = [mpmath.mpf(b) + mpmath.fsum(mpmath.mpf(f) * x for f, x in zip(row, point, strict=True))
              for row, b in zip(inst.features, inst.biases, strict=True)]
    return softmax_p(logits, inst.correct) ** inst.T


def _line_gap_mp(inst, w, s):
    """J(theta + s w) - J(theta) at 50 digits (exact rational w and s)."""
    import mpmath

    mpmath.mp.dps = 50
    th_ = [mpmath.mpf(x) for x in inst.theta]
    wv = [mpmath.mpf(Fraction(x).numerator) / Fraction(x).denominator for x in w]
    sv = mpmath.mpf(Fraction(s).numerator) / Fraction(s).denominator
    return _J_mp(inst, [t + sv * x for t, x in zip(th_, wv, strict=True)]) - _J_mp(inst, th_)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("max_degree", [ost.MAX_DEGREE, 0], ids=["polynomial", "ball"])
def test_certified_enclosure_vs_direct_50_digit_J(seed: int, max_degree: int) -> None:
    inst, w = _random_case(seed)
    res = ost.eta_star(inst, w, max_degree=max_degree)
    if not res.certified or res.value in (0.0, math.inf):
        return
    assert res.lo <= res.value <= res.hi and res.hi - res.lo <= 1e-4 * res.hi
    # J above its start at 40 points of (0, lo], below it at hi: evaluated directly, at 50 digits
    for k in range(1, 41):
        assert _line_gap_mp(inst, w, Fraction(res.lo) * k / 40) > 0, (inst, w, k)
    assert _line_gap_mp(inst, w, Fraction(res.hi)) < 0


@pytest.mark.parametrize("seed", [0, 2, 3, 5])
def test_ball_route_vs_numeric_twin(seed: int) -> None:
    inst, w = _random_case(seed)
    ball = ost.eta_star(inst, [float(x) for x in w], max_degree=0)
    twin = nt.eta_star(inst, [float(x) for x in w])
    assert ball.route == "ball"
    if math.isinf(ball.value) or math.isinf(twin.value):
        assert ball.value == twin.value
    else:
        assert close(twin.value, ball.value, EXACT), (inst, w, ball, twin)


@pytest.mark.parametrize("inst", [SoftmaxBandit((0.3, -0.2, 0.1), frozenset({0, 2})),
                                  TokenSequence(((0.1, 0.2, 0.3), (1.0, 0.0, -1.0)), (1, 0)),
                                  TokenSequence(((0.1, -0.4), (0.0, 2.0), (0.5, 0.5)), (1, 0, 1), min_correct=2)])
def test_unit_feature_reading_matches_the_dense_structure(inst, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sparse reading of the tabular families (``UNIT_FEATURES``) gives what their ``structure()`` says."""
    from gradgap.theory import _loglinear as ll

    w = tuple(Fraction(k % 5 - 2, 3) for k in range(len(inst.theta)))
    sparse = ll.line_types(inst, w)
    monkeypatch.setattr(ll, "UNIT_FEATURES", {})
    assert ll.line_types(inst, w) == sparse


def test_certificate_of_a_wrong_enclosure_fails() -> None:
    from gradgap.theory import _loglinear as ll
    from gradgap.theory import intervals

    inst = SharedTokens((0.2,), ((0.0,), (1.0,), (2.0,)), frozenset({1}), T=4)  # eta* = 0.4 along w = -1
    lines, m = ll.line_types(inst, (Fraction(-1),))
    line = intervals.BallLine(lines, m)
    assert intervals.certify_first_root(line, Fraction(39, 100), Fraction(41, 100)).certified
    assert not intervals.certify_first_root(line, Fraction(41, 100), Fraction(42, 100)).certified  # lo past root
    assert not intervals.certify_first_root(line, Fraction(30, 100), Fraction(35, 100)).certified  # hi before it


@pytest.mark.parametrize("inst", [SoftmaxBandit((0.3, -0.2, 0.1), frozenset({0, 2})),
                                  TokenSequence(((0.5, -0.5, 0.0), (0.0, 1.0, 0.2)), target=(0, 1)),
                                  TokenSequence(((0.5, -0.5), (0.0, 1.0), (1.0, 0.0)), target=(0, 1, 1), min_correct=2),
                                  SharedTokens((0.3, -0.2), ((0.0, 1.0), (1.0, 0.0), (1.0, 1.0)), frozenset({0}), T=3)],
                         ids=["softmax", "tokens", "tokens-m2", "shared"])
def test_gradient_gap_direction_vs_finite_difference_of_direct_J(inst) -> None:
    import mpmath

    g = ost.gradient_gap_direction(inst, "gap", 40)
    mpmath.mp.dps = 50
    th_ = [mpmath.mpf(x) for x in inst.theta]
    J0 = _J_mp(inst, th_)
    h = mpmath.mpf(10) ** -15
    for i in range(len(th_)):
        up = list(th_)
        dn = list(th_)
        up[i] += h
        dn[i] -= h
        dJ = (_J_mp(inst, up) - _J_mp(inst, dn)) / (2 * h)
        assert abs(dJ / (J0 * (1 - J0)) - g[i]) < mpmath.mpf(10) ** -20, (i, dJ, g[i])


def test_one_step_box_certificate_is_sharp_at_one_quarter() -> None:
    from gradgap.theory import intervals

    assert intervals.certify_softmax3_one_step(Fraction(3, 2), Fraction(4), Fraction(10)).certified
    assert intervals.certify_softmax3_one_step(Fraction(26, 100), Fraction(4), Fraction(10)).certified
    assert not intervals.certify_softmax3_one_step(Fraction(24, 100), Fraction(4), Fraction(10)).certified


def test_one_step_box_certificate_vs_direct_50_digit_margins() -> None:
    # the certified statement for C = 0.26, checked directly (no reduction) at random points of the box; and
    # C = 0.24 (below the sharp 1/4) violated at theta = 0 along (0, 1, -1)/sqrt(2), as the reduction predicts
    import mpmath

    mpmath.mp.dps = 50
    rng = random.Random(7)

    def ell(t):
        return t[0] - mpmath.log(mpmath.exp(t[1]) + mpmath.exp(t[2]))

    def margin(theta, w, eta, C):
        g = [mpmath.mpf(1), -mpmath.exp(theta[1]) / (mpmath.exp(theta[1]) + mpmath.exp(theta[2])),
             -mpmath.exp(theta[2]) / (mpmath.exp(theta[1]) + mpmath.exp(theta[2]))]
        nxt = [a + eta * b for a, b in zip(theta, w, strict=True)]
        return ell(nxt) - ell(theta) - eta * mpmath.fsum(a * b for a, b in zip(w, g, strict=True)) + eta**2 * C

    for _ in range(300):
        theta = [mpmath.mpf(rng.uniform(-4, 4)) for _ in range(3)]
        w = [mpmath.mpf(rng.gauss(0, 1)) for _ in range(3)]
        n = mpmath.sqrt(mpmath.fsum(x * x for x in w))
        w = [x / n for x in w]
        eta = mpmath.mpf(10) ** rng.uniform(-4, 1)
        assert margin(theta, w, eta, mpmath.mpf("0.26")) >= 0
    r = 1 / mpmath.sqrt(2)
    assert margin([0, 0, 0], [0, r, -r], mpmath.mpf("0.01"), mpmath.mpf("0.24")) < 0


def test_certified_builtin_claims_and_their_mutants() -> None:
    from gradgap.proofs_check.builtin import certified
    from gradgap.proofs_check.claims import Status, Strength, get_profile, run_claim

    profile = get_profile("ci")
    for claim in certified.claims():
        res = run_claim(claim, profile)
        assert (res.evidence.status, res.evidence.strength) == (Status.HOLDS, Strength.CERTIFIED), res.evidence
        assert "CERTIFIED on" in res.evidence.detail
        for mutant in claim.mutants():
            assert run_claim(mutant, profile).evidence.status is Status.FAILS, mutant.id


# ---------------------------------------------------------------------------------------------------------
# the command on hostile directions and sizes: bounded CPU time and memory, an answer or one clean line

#: CPU seconds the command may take for any direction and K <= 1e4 (the budget of the threshold command)
CLI_CPU_SECONDS = 5.0
_CLI_MEMORY = 2 << 30


def _run_cli(argv: list[str]) -> tuple[int, str, str, float]:
    import resource
    import subprocess
    import sys

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (_CLI_MEMORY, _CLI_MEMORY))
        resource.setrlimit(resource.RLIMIT_CPU, (60, 60))

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-c", "import sys; from gradgap.proofs_check.cli import main; "
                           "sys.exit(main(sys.argv[1:]))", *argv], capture_output=True, text=True, timeout=120,
                          preexec_fn=limits, env={**__import__("os").environ, "OPENBLAS_NUM_THREADS": "1"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return proc.returncode, proc.stdout, proc.stderr, cpu


_SOFT = ["threshold", "softmax", "--logits=0.3,-0.2,0.1", "--correct", "0"]
_LOGITS_1E4 = ",".join(f"{((i * 7919) % 4001) / 1000 - 2:.3f}" for i in range(10_000))
_DIR_1E4 = ",".join(f"{((i * 104729) % 2001) / 1000 - 1:.3f}" for i in range(10_000))


@pytest.mark.parametrize("argv, finite", [
    ([*_SOFT, "--direction=0.30000000000000004,-0.19999999999999998,0.1"], None),
    ([*_SOFT, "--direction=0,1,-1.000001"], True),
    ([*_SOFT, "--direction=0,1,-1.000000000001"], True),
    ([*_SOFT, "--direction=1e400,1,1"], False),
    ([*_SOFT, "--direction=1e-300,1,1"], None),
    ([*_SOFT, "--direction=0,1,-399"], True),
    (["threshold", "shared_tokens", "--theta", "0.2", "--features", "0;1;2", "--correct", "1", "--T", "1000000",
      "--direction=-1"], True),
    (["threshold", "shared_tokens", "--theta", "0.2", "--features", "0;1;2", "--correct", "1", "--T", "1000000"],
     None),
    (["threshold", "softmax", "--logits=" + _LOGITS_1E4, "--correct", "0,1"], None),
    (["threshold", "softmax", "--logits=" + ",".join(_LOGITS_1E4.split(",")[:1000]), "--correct", "0",
      "--direction=grad"], None),
    (["threshold", "softmax", "--logits=1e16,1e16,0", "--correct", "0"], None),
    (["threshold", "softmax", "--logits=" + _LOGITS_1E4, "--correct", "0", "--direction=" + _DIR_1E4], True),
], ids=["17-digits", "1.000001", "1.000000000001", "1e400", "1e-300", "degree-400", "T=1e6-w=-1", "T=1e6-gap",
        "K=1e4-gap", "K=1000-grad", "logits-1e16", "K=1e4-random"])
def test_threshold_command_answers_hostile_directions_within_budget(argv: list[str], finite: bool | None) -> None:
    rc, out, err, cpu = _run_cli([*argv, "--json"])
    assert rc == 0, err
    assert cpu <= CLI_CPU_SECONDS, (argv[:3], cpu)
    res = json.loads(out)
    if finite is not None:
        assert (res["eta_star"] is not None) is finite, res
    if res["eta_star"] is not None:
        lo, hi = res["eta_star_interval"]
        assert lo <= res["eta_star"] <= hi


def test_threshold_command_certified_interval_vs_direct_J() -> None:
    rc, out, err, _ = _run_cli([*_SOFT, "--direction=0,1,-1.000001", "--json"])
    res = json.loads(out)
    assert rc == 0 and res["certified"], err
    inst = SoftmaxBandit((0.3, -0.2, 0.1), frozenset({0}))
    w = (Fraction(0), Fraction(1), Fraction("-1.000001"))
    norm = math.sqrt(sum(float(x) ** 2 for x in w))
    lo, hi = (Fraction(x) / Fraction(norm) for x in res["eta_star_interval"])
    assert _line_gap_mp(inst, w, lo * Fraction(999, 1000)) > 0 and _line_gap_mp(inst, w, hi * Fraction(1001, 1000)) < 0
    twin = nt.eta_star(inst, [float(x) for x in w]).value * norm
    assert close(twin, res["eta_star"], EXACT)


@pytest.mark.parametrize("argv", [
    ["threshold", "tokens", "--logits", "0,1;1,0", "--target", "0,0", "--min-correct", "abc"],
    ["threshold", "shared_tokens", "--theta", "0.2", "--features", "0;1;2", "--correct", "1", "--T", "abc"],
    [*_SOFT, "--direction=nan,1,1"],
    [*_SOFT, "--direction=inf,1,1"],
    [*_SOFT, "--direction=1/0,1,1"],
    [*_SOFT, "--direction=0,0,0"],
    [*_SOFT, "--direction=1,2"],
    [*_SOFT, "--direction=1e99999999,1,1"],
    ["threshold", "softmax", "--logits=1e300,-1e300,0", "--correct", "1", "--direction=0,1,-1"],
    ["threshold", "tokens", "--logits=" + ";".join(["0.1,-0.2"] * 2000), "--target", ",".join(["0"] * 2000),
     "--min-correct", "1000"],
    ["threshold", "shared_tokens", "--theta", "0", "--features", "0;1;2", "--correct", "1", "--T", "3"],
], ids=["min-correct-abc", "T-abc", "nan", "inf", "1/0", "zero", "short", "huge-exponent", "J-underflows",
        "dp-budget", "gap-at-optimum"])
def test_threshold_command_bad_input_one_line_exit_2(argv: list[str]) -> None:
    rc, out, err, cpu = _run_cli(argv)
    assert rc == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) < 200 and "Traceback" not in err, err
    assert cpu <= CLI_CPU_SECONDS
