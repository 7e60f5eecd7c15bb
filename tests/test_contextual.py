"""Contextual log-linear bandit: theory/contextual.py against every numeric twin, the per-prompt decomposition,
the group updates across prompts, and ``gradgap gap contextual`` against a plain-Python enumeration."""

from __future__ import annotations

import contextlib
import io
import json
import math
from typing import Any

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from gradgap.numerics import contextual as nc
from gradgap.proofs_check.cli import main
from gradgap.proofs_check.tolerances import EXACT
from gradgap.theory import contextual as tc
from gradgap.theory.instances import ContextualBandit, GradgapError
from tests.strategies import contextual_instances
from tests.twins import assert_close, sym_scalar, sym_vector, twin_tests

CLI_EXAMPLE = ContextualBandit(theta=(0.1, -0.2), features=(((1, 0), (0, 1), (1, 1)), ((0, 0), (1, 0), (0, 1))),
                               correct=((0,), (1, 2)))
WEIGHTED = ContextualBandit(theta=(0.4, -0.3), features=(((1, 0), (0, 1)), ((0, 0), (1, 1)), ((2, 0), (0, 0))),
                            correct=((0,), (1,), (0,)), weights=(1.0, 2.0, 3.0))
NEAR_ONE = ContextualBandit(theta=(25.0,), features=(((1.0,), (0.0,)), ((0.0,), (-1.0,))),
                            correct=(frozenset({0}), frozenset({0})))
TIES_1E16 = ContextualBandit(theta=(1e16,), features=(((1.0,), (1.0,)), ((1.0,), (1.0,))),
                             correct=(frozenset({0}), frozenset({1})))
#: GRPO's expected update descends J here (found by search, re-verified exactly in the claims)
GRPO_DESCENT = ContextualBandit(theta=(0.75,), features=(((1.0,), (0.0,)), ((0.0,), (-4.0,))),
                                correct=(frozenset({0}), frozenset({1})))

TestContextualTwins = twin_tests(
    "contextual", contextual_instances(), examples=(CLI_EXAMPLE, WEIGHTED),
    hessian=contextual_instances(P=(1, 2), A=(2, 2)), near_deterministic=contextual_instances(bound=20.0),
    near_examples=(NEAR_ONE,),
    monte_carlo=(CLI_EXAMPLE, WEIGHTED))
for _name in dir(TestContextualTwins):  # the symbolic side is the cost: fewer examples than the one-prompt families
    _test = getattr(TestContextualTwins, _name)
    if _name.startswith("test_") and hasattr(_test, "hypothesis"):
        setattr(TestContextualTwins, _name, settings(max_examples=8)(_test))


@settings(max_examples=10)
@given(contextual_instances())
def test_per_prompt_success_rate_and_gradient_gap_symbolic_vs_structured_vs_one_prompt_enumeration(
        inst: ContextualBandit) -> None:
    J_sym = [sym_scalar(j) for j in tc.per_prompt_success_rate(inst)]
    g_sym = [sym_vector(g) for g in tc.per_prompt_gradient_gap(inst)]
    assert_close("per_prompt_J", "symbolic vs structured", inst, nc.per_prompt_success_rate(inst), J_sym, EXACT)
    assert_close("per_prompt_g", "symbolic vs structured", inst, nc.per_prompt_gradient_gap(inst), g_sym, EXACT)
    for x in range(inst.P):  # each prompt's own finite policy, conditional averages of its scores
        fp = nc.prompt_policy(inst, x)
        assert_close("J_x", "symbolic vs one-prompt enumeration", inst, fp.J, J_sym[x], EXACT)
        assert_close("g_x", "symbolic vs one-prompt enumeration", inst, fp.gap(), g_sym[x], EXACT)


@settings(max_examples=15)
@given(contextual_instances())
def test_grad_success_rate_equals_weighted_sum_of_per_prompt_variance_times_gap(inst: ContextualBandit) -> None:
    rho = np.asarray(inst.prompt_weights)
    J_x, g_x = nc.per_prompt_success_rate(inst), nc.per_prompt_gradient_gap(inst)
    want = (rho * J_x * (1 - J_x)) @ g_x
    assert_close("grad_J vs sum_x rho_x J_x(1-J_x) g_x", "autograd vs per-prompt structured", inst,
                 nc.grad_success_rate(inst, method="autograd"), want, EXACT)


@settings(max_examples=8)
@given(contextual_instances(P=(1, 2), A=(2, 3), d=(1, 2)), st.sampled_from(["reinforce", "rloo", "grpo", "dr_grpo",
                                                                            "dapo"]), st.integers(2, 4))
def test_expected_group_update_symbolic_gain_vs_enumerated_groups(inst: ContextualBandit, algorithm: str,
                                                                   G: int) -> None:
    want = sym_vector(tc.expected_group_update(inst, algorithm, G))
    assert_close(f"E[w] {algorithm} G={G}", "sum_x rho_x gamma(J_x,G) g_x vs enumerated groups", inst,
                 nc.expected_group_update(inst, algorithm, G), want, EXACT)


def test_reinforce_group_update_is_the_policy_gradient() -> None:
    for inst in (CLI_EXAMPLE, WEIGHTED, GRPO_DESCENT):
        assert_close("E[w] reinforce", "enumerated groups vs autograd grad J", inst,
                     nc.expected_group_update(inst, "reinforce", 3), nc.grad_success_rate(inst, method="autograd"),
                     EXACT)


def test_grpo_expected_update_descends_success_rate_at_the_counterexample() -> None:
    grad_J = nc.grad_success_rate(GRPO_DESCENT, method="autograd")
    grpo = float(nc.expected_group_update(GRPO_DESCENT, "grpo", 8) @ grad_J)
    reinforce = float(nc.expected_group_update(GRPO_DESCENT, "reinforce", 8) @ grad_J)
    assert grpo < 0 < reinforce, (grpo, reinforce)
    with mpmath.workdps(40):
        exact = tc.update_alignment(GRPO_DESCENT, "grpo", 8).evalf(40)
    assert exact < 0 and abs(float(exact) - grpo) <= EXACT[0] * abs(grpo), (exact, grpo)


def test_extreme_logits_ties_at_1e16_give_one_half_on_every_exact_route() -> None:
    for method in ("enumerate", "structured", "autograd"):
        assert nc.success_rate(TIES_1E16, method=method) == 0.5
    assert sym_scalar(tc.success_rate(TIES_1E16)) == 0.5


def test_bad_contextual_input_is_one_line() -> None:
    bad: list[dict[str, Any]] = [
        {"theta": (0.0,), "features": (((1.0,),),), "correct": ((0,),)},  # one action
        {"theta": (0.0,), "features": (((1.0,), (0.0,)),), "correct": ((0, 1),)},  # every action correct
        {"theta": (0.0,), "features": (((1.0,), (0.0,)),), "correct": ((0,), (1,))},  # P mismatch
        {"theta": (0.0,), "features": (((1.0,), (0.0,)),), "correct": ((0,),), "weights": (0.0,)},
        {"theta": (0.0,), "features": (((1.0,), (0.0,)), ((1.0,),)), "correct": ((0,), (0,))},  # ragged
    ]
    for kwargs in bad:
        with pytest.raises(GradgapError) as info:
            ContextualBandit(**kwargs)
        assert "\n" not in str(info.value) and len(str(info.value)) < 200


# ------------------------------------------------------------------ the command line against a plain enumeration


def _reference(inst: ContextualBandit) -> dict[str, Any]:
    """J, grad J, the joint gap and per-prompt J_x by summing over every pair with mpmath (no project code)."""
    with mpmath.workdps(40):
        total_w = sum(inst.weights) if inst.weights else inst.P
        J = mpmath.mpf(0)
        win = [mpmath.mpf(0)] * inst.d
        lose = [mpmath.mpf(0)] * inst.d
        per_J = []
        for x, rows in enumerate(inst.features):
            rho = mpmath.mpf(inst.weights[x] if inst.weights else 1) / total_w
            z = [mpmath.fsum(mpmath.mpf(t) * f for t, f in zip(inst.theta, row, strict=True)) for row in rows]
            e = [mpmath.exp(v - max(z)) for v in z]
            pi = [v / mpmath.fsum(e) for v in e]
            bar = [mpmath.fsum(p * row[i] for p, row in zip(pi, rows, strict=True)) for i in range(inst.d)]
            per_J.append(mpmath.fsum(pi[a] for a in inst.correct[x]))
            for a, row in enumerate(rows):
                s = [row[i] - bar[i] for i in range(inst.d)]
                if a in inst.correct[x]:
                    J += rho * pi[a]
                    win = [w + rho * pi[a] * si for w, si in zip(win, s, strict=True)]
                else:
                    lose = [w + rho * pi[a] * si for w, si in zip(lose, s, strict=True)]
        gap = [w / J - v / (1 - J) for w, v in zip(win, lose, strict=True)]
        return {"J": float(J), "grad_J": [float(w) for w in win], "gradient_gap": [float(g) for g in gap],
                "log_odds": float(mpmath.log(J / (1 - J))), "per_prompt_J": [float(j) for j in per_J]}


def _cli(inst: ContextualBandit, method: str = "structured") -> dict[str, Any]:
    argv = ["gap", "contextual", "--theta", ",".join(repr(t) for t in inst.theta),
            "--features", json.dumps([[list(r) for r in rows] for rows in inst.features]),
            "--correct", json.dumps([sorted(c) for c in inst.correct]), "--method", method, "--json"]
    if inst.weights is not None:
        argv += ["--weights", ",".join(repr(w) for w in inst.weights)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return json.loads(out.getvalue())


def _assert_matches(inst: ContextualBandit, got: dict[str, Any], want: dict[str, Any]) -> None:
    for key in ("J", "grad_J", "gradient_gap", "log_odds", "per_prompt_J"):
        assert_close(key, "gradgap gap vs plain enumeration", inst, got[key], want[key], EXACT)
    assert math.isclose(got["gradient_gap_norm"], math.hypot(*want["gradient_gap"]), rel_tol=EXACT[0],
                        abs_tol=EXACT[1])


def test_cli_gap_contextual_example_matches_plain_enumeration() -> None:
    got = _cli(CLI_EXAMPLE)
    _assert_matches(CLI_EXAMPLE, got, _reference(CLI_EXAMPLE))
    assert np.asarray(got["per_prompt_gradient_gap"]).shape == (2, 2)


@settings(max_examples=10)
@given(inst=contextual_instances(), method=st.sampled_from(["structured", "enumerate", "autograd"]))
def test_cli_gap_contextual_random_instances_match_plain_enumeration(inst: ContextualBandit, method: str) -> None:
    _assert_matches(inst, _cli(inst, method), _reference(inst))


def test_symbolic_identities_are_proved_on_two_prompts() -> None:
    results = tc.prove_identities(CLI_EXAMPLE)
    assert [r.name for r in results if not r.proved] == []
    assert "grad J = sum_x rho_x J_x(1-J_x) g_x" in {r.name for r in results}
    # the closed form really is the mixture (not a copy of a one-prompt form)
    cf = tc.closed_forms(CLI_EXAMPLE)
    assert sp.simplify(cf.success_rate.subs(dict.fromkeys(cf.theta, 0)) - sp.Rational(1, 2) * (
        sp.Rational(1, 3) + sp.Rational(2, 3))) == 0


# ------------------------------------------------------------------ dynamics, derive and threshold

WORKED = ContextualBandit(theta=(0.05,), features=(((0.0,), (1.0,), (2.0,)), ((0.0,), (1.0,), (3.0,))),
                          correct=(frozenset({1}), frozenset({1})))


@pytest.mark.parametrize("algorithm", ["reinforce", "rloo", "grpo", "dr_grpo", "dapo"])
def test_group_gain_numeric_vs_symbolic_gain(algorithm: str) -> None:
    from gradgap.theory import algorithms as ta

    for G in (2, 5, 8):
        for J in (0.03, 0.5, 0.97):
            want = float(sp.N(ta.gain(algorithm, G).subs(ta.J, sp.Rational(J)), 30))
            assert_close(f"gain {algorithm} G={G}", "binomial sum of group advantages vs SymPy", WORKED,
                         nc.group_gain(J, algorithm, G), want, EXACT)


@pytest.mark.parametrize("rule", ["gap", "grpo"])
def test_fixed_point_symbolic_root_zeroes_the_numeric_field(rule: str) -> None:
    fp = tc.fixed_point(WORKED, rule, 8, start=-0.1)
    at = WORKED.with_theta((float(fp["theta"]),))
    assert abs(float(nc.rule_update(at, rule, 8)[0])) <= EXACT[1] * 100, nc.rule_update(at, rule, 8)
    h = 1e-5  # the numeric field's slope (central differences) against the closed form's derivative
    slope = (nc.rule_update(at.with_theta((at.theta[0] + h,)), rule, 8)[0]
             - nc.rule_update(at.with_theta((at.theta[0] - h,)), rule, 8)[0]) / (2 * h)
    from gradgap.proofs_check.tolerances import FD

    assert_close("F'(theta_r)", "fd of numeric field vs SymPy derivative", at, slope, float(fp["slope"]), FD)


@settings(max_examples=10)
@given(contextual_instances())
def test_per_prompt_log_odds_and_gap_weights_symbolic_vs_numeric(inst: ContextualBandit) -> None:
    """l_x and omega_x (numerics, log-sum-exp) against the closed forms; sum_x omega_x g_x is the joint gap, and
    the potential bound of aligned steps lies above <theta, g> (numerics both sides)."""
    ell_sym = [sym_scalar(sp.log(j / (1 - j))) for j in tc.per_prompt_success_rate(inst)]
    omega_sym = [sym_scalar(w) for w in tc.potential_weights(inst)]
    assert_close("l_x", "symbolic vs log-sum-exp", inst, nc.per_prompt_log_odds(inst), ell_sym, EXACT)
    omega = nc.prompt_gap_weights(inst)
    assert_close("omega_x", "symbolic vs log-space", inst, omega, omega_sym, EXACT)
    assert_close("g", "sum_x omega_x g_x vs joint gap", inst, omega @ nc.per_prompt_gradient_gap(inst),
                 nc.gradient_gap(inst), EXACT)
    assert float(np.sum(omega)) <= 1 + 1e-12
    bound = omega @ (nc.per_prompt_log_odds(inst) + np.log([inst.A - len(c) for c in inst.correct]))
    assert float(np.dot(inst.theta, nc.gradient_gap(inst))) <= bound + 1e-9 * (1 + abs(bound))
    assert_close("B", "symbolic vs numeric", inst, bound, sym_scalar(tc.potential_bound(inst)), EXACT)


def test_aligned_steps_on_the_worked_1d_example_end_in_a_near_2_cycle_with_mean_log_J_minus_eta_over_2() -> None:
    """Features (0, 1, 2), C = {1}: g = -tanh(theta) and J(theta) = J(-theta) = 1/(e^-theta + 1 + e^theta), so
    theta -> theta - eta tanh(theta) settles into near 2-cycles (a, a - eta) with 0 < a < eta (tanh = +-1 up to
    e^{-2|theta|}); log J(a) + log J(a - eta) = -eta - O(e^{-a} + e^{a - eta}): J falls low but stays bounded
    away from 0 (no collapse), the mean of log J over a cycle is -eta/2."""
    inst = ContextualBandit((0.3,), (((0.0,), (1.0,), (2.0,)),), (frozenset({1}),))
    assert abs(float(nc.gradient_gap(inst)[0]) + math.tanh(0.3)) <= 1e-12
    eta = 20.0
    log_J = nc.simulate(inst, [eta], rule="gap", steps=200)["log_J"][:, 0]
    a, b = sorted(log_J[-2:])  # the two points of the last cycle
    assert b - a > 5  # a genuine 2-cycle, not a fixed point
    assert abs((a + b) / 2 + eta / 2) <= math.exp(b) + 1e-9, (a, b)
    assert log_J.min() >= -eta - 1


def test_threshold_contextual_is_a_certified_first_crossing_of_the_numeric_success_rate() -> None:
    out = io.StringIO()
    argv = ["threshold", "contextual", "--theta", "0.05", "--features", "[[[0],[1],[2]],[[0],[1],[3]]]",
            "--correct", "[[1],[1]]", "--json"]
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    res = json.loads(out.getvalue())
    eta = res["eta_star"]
    assert res["certified"] and res["route"] == "ball"
    lo, hi = res["eta_star_interval"]
    assert lo <= eta <= hi
    u = float(np.sign(nc.gradient_gap(WORKED)[0]))
    J0 = nc.success_rate(WORKED)
    assert nc.success_rate(WORKED.with_theta((0.05 + 0.99 * eta * u,))) >= J0
    assert nc.success_rate(WORKED.with_theta((0.05 + 1.01 * eta * u,))) < J0
    grid = np.linspace(1e-6, 0.99 * eta, 200)
    assert all(nc.success_rate(WORKED.with_theta((0.05 + s * u,))) >= J0 for s in grid)


def _random_threshold_case(seed: int) -> tuple[ContextualBandit, tuple[Any, ...]]:
    """A random contextual instance and rational direction; for two seeds in three, redrawn (up to 200 times) until
    the numeric twin finds a finite positive eta* (prompts competing along w), the case that needs a certificate."""
    from fractions import Fraction

    from gradgap.numerics import one_step_threshold as nt

    rng = np.random.default_rng(seed)
    for _ in range(200):
        P, A, d = (int(x) for x in (rng.integers(1, 4), rng.integers(2, 4), rng.integers(1, 3)))
        feats = tuple(tuple(tuple(float(v) for v in rng.integers(-2, 3, d)) for _ in range(A)) for _ in range(P))
        correct = tuple(frozenset(int(a) for a in rng.choice(A, int(rng.integers(1, A)), replace=False))
                        for _ in range(P))
        weights = None if seed % 2 else tuple(float(v) for v in rng.integers(1, 5, P))
        inst = ContextualBandit(tuple(float(v) for v in rng.uniform(-3, 3, d)), feats, correct, weights=weights)
        w = tuple(Fraction(int(v), 4) for v in rng.integers(-4, 5, d))
        if not any(w):
            continue
        if seed % 3 == 0 or 0 < nt.eta_star(inst, [float(x) for x in w], scan=2000).value < math.inf:
            break
    return inst, w


def _line_gap_50(inst: ContextualBandit, w: tuple[Any, ...], s: Any) -> Any:
    """J(theta + s w) - J(theta) at 50 digits, from the features and correct sets directly."""
    with mpmath.workdps(50):
        rho = [mpmath.mpf(1)] * inst.P if inst.weights is None else [mpmath.mpf(x) for x in inst.weights]

        def J(step: Any) -> Any:
            th = [mpmath.mpf(t) + step * mpmath.mpf(x.numerator) / x.denominator
                  for t, x in zip(inst.theta, w, strict=True)]
            total = mpmath.mpf(0)
            for r, rows, c in zip(rho, inst.features, inst.correct, strict=True):
                ex = [mpmath.exp(mpmath.fsum(t * f for t, f in zip(th, row, strict=True))) for row in rows]
                total += r * mpmath.fsum(ex[a] for a in c) / mpmath.fsum(ex)
            return total / mpmath.fsum(rho)

        return J(mpmath.mpf(s.numerator) / s.denominator) - J(mpmath.mpf(0))


@pytest.mark.parametrize("seed", range(24))
def test_certified_eta_star_vs_numeric_twin_and_direct_50_digit_J(seed: int) -> None:
    """The Arb enclosure of the mixture route (theory) against the numerics' scan and mpmath bisection, and
    its two certified facts re-read from J itself: J above its start on (0, lo], below it at hi."""
    from fractions import Fraction

    from gradgap.numerics import one_step_threshold as nt
    from gradgap.theory import one_step_threshold as ost

    inst, w = _random_threshold_case(seed)
    exact = ost.eta_star(inst, w)
    twin = nt.eta_star(inst, [float(x) for x in w])
    if math.isinf(exact.value) or math.isinf(twin.value):
        assert exact.value == twin.value, (inst, w, exact, twin)
        return
    assert exact.certified, (inst, w, exact)
    assert exact.lo <= twin.value <= exact.hi or math.isclose(twin.value, exact.value, rel_tol=1e-9), (exact, twin)
    if exact.value == 0:  # certified slope of J at 0 below 0: J drops at once
        assert _line_gap_50(inst, w, Fraction(1, 10**20)) < 0, (inst, w)
        return
    for k in range(1, 21):
        assert _line_gap_50(inst, w, Fraction(exact.lo) * k / 20) > 0, (inst, w, k)
    assert _line_gap_50(inst, w, Fraction(exact.hi)) < 0


@pytest.mark.parametrize("theta", [800.0, -700.0, 1e16, 40.0, -35.0, 0.05])
def test_eta_star_at_extreme_parameters_agrees_with_the_numeric_twin(theta: float) -> None:
    """Masses below e^-700 per prompt: the float sign works in log space (p_0 and 1 - p_0 from their own
    log-sum-exps, rounding bounds that grow with the size of the logs), so no crossing is invented where the
    twin (mpmath bisection of log J) finds none (at theta = 800 one once was, at s ~ 29)."""
    from gradgap.numerics import one_step_threshold as nt
    from gradgap.theory import one_step_threshold as ost

    inst = ContextualBandit((theta,), (((0.0,), (1.0,), (2.0,)), ((0.0,), (1.0,), (3.0,))),
                            (frozenset({1}), frozenset({1})))
    for w in (-1.0, 1.0):
        exact, twin = ost.eta_star(inst, (w,)), nt.eta_star(inst, [w])
        if math.isinf(exact.value) or math.isinf(twin.value):
            assert exact.value == twin.value, (theta, w, exact, twin)
        else:
            assert math.isclose(exact.value, twin.value, rel_tol=1e-9, abs_tol=1e-12), (theta, w, exact, twin)


def test_eta_star_is_infinite_where_two_prompts_cancel_exactly() -> None:
    """Prompts 1 and 2 have opposite logit gaps along w, so p_1 + p_2 = 1 on the whole line and J is constant:
    rounding noise of the two per-prompt differences must not be read as a crossing (it once was, at s ~ 3)."""
    from fractions import Fraction

    from gradgap.numerics import one_step_threshold as nt
    from gradgap.theory import one_step_threshold as ost

    inst = ContextualBandit((-0.07155878409374083, 1.091358723291255),
                            (((-2.0, 2.0), (-2.0, 2.0)), ((-2.0, 0.0), (-1.0, 2.0)), ((1.0, 2.0), (0.0, 0.0))),
                            (frozenset({1}), frozenset({1}), frozenset({1})))
    w = (Fraction(1), Fraction(-3, 4))
    assert _line_gap_50(inst, w, Fraction(3)) == 0 or abs(_line_gap_50(inst, w, Fraction(3))) < 1e-45
    assert ost.eta_star(inst, w).value == math.inf
    assert nt.eta_star(inst, [1.0, -0.75]).value == math.inf


def test_derive_contextual_proves_its_identities() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["derive", "contextual", "--size", "P=2,A=2,d=1", "--json"]) == 0
    report = json.loads(out.getvalue())
    assert report["all_proved"] and len(report["identities"]) == 5


def test_bad_threshold_and_gap_contextual_input_exit_2() -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["gap", "contextual", "--theta", "0", "--features", "[[[0],[1]]]", "--correct", "[[0,1]]"]) == 2
        assert main(["gap", "contextual", "--theta", "0", "--features", "[[[0],[1]]]", "--correct", "0"]) == 2
    assert all(len(line) < 200 for line in err.getvalue().splitlines())


def test_user_claim_file_with_family_contextual_parses_with_its_sizes() -> None:
    import pathlib

    from gradgap.proofs_check.userclaims import load_file

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "contextual" / "claims.toml"
    claims = load_file(str(path))
    assert [c.relation.family for c in claims] == ["contextual", "contextual"]
    assert dict(claims[0].relation.sizes) == {"A": (2, 3), "P": (1, 2), "d": (1, 2)}
    with pytest.raises(GradgapError):  # a size the family does not have
        from gradgap.proofs_check.userclaims import parse_claim

        parse_claim({"id": "x", "family": "contextual", "sizes": {"V": [2, 3]}, "claim": "J >= 0"})
