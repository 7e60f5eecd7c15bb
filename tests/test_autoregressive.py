"""Tabular autoregressive policy: the symbolic closed forms (theory/autoregressive.py) against every numeric route,
extreme logits, the end-of-sequence convention and ``gradgap gap autoregressive``.

The plain-Python reference below (``math``/``mpmath`` and ``itertools`` only, written from the definition) walks every
length-T tuple, ends it at its first eos, skips the tuples that are not eos-padded, and sums J, E[r s], E[(1-r) s].
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings

from gradgap.numerics import autoregressive as na
from gradgap.proofs_check.cli import main
from gradgap.proofs_check.tolerances import EXACT, FD, HESSIAN_ROUTES, close
from gradgap.theory import autoregressive as ta
from gradgap.theory.instances import Autoregressive, GradgapError
from tests.strategies import EXTREME, autoregressive_instances
from tests.twins import assert_close, sym_vector, twin_tests

# ------------------------------------------------------------------------------------------------ examples


def _table(T: int, V: int, fill: Any) -> tuple:
    return tuple(tuple(tuple(fill(t, p, v) for v in range(V)) for p in range(V**t)) for t in range(T))


AT_LEAST_TWO_EOS = Autoregressive(logits=_table(3, 2, lambda t, p, v: 0.3 * (t + 1) * (v - p % 2) + 0.1 * p),
                                  target=(1, 0, 1), min_correct=2, eos=0)
WIDE = Autoregressive(logits=_table(2, 3, lambda t, p, v: math.sin(1 + t + 3 * p + v)), target=(2, 0))
NEAR_CERTAIN = Autoregressive(logits=_table(2, 2, lambda t, p, v: 40.0 * (v == 1) - 40.0 * (p == 0 and v == 1)),
                              target=(1, 1))

TestAutoregressiveTwins = twin_tests(
    "autoregressive", autoregressive_instances(max_params=6), examples=(AT_LEAST_TWO_EOS, WIDE),
    near_deterministic=autoregressive_instances(bound=EXTREME, max_params=6), near_examples=(NEAR_CERTAIN,),
    hessian=autoregressive_instances(T=(1, 2), V=(2, 2)),
    monte_carlo=(AT_LEAST_TWO_EOS, Autoregressive(logits=_table(2, 2, lambda t, p, v: 0.5 * v - 0.3 * p),
                                                  target=(1, 0), eos=1)))


# ---------------------------------------------------------------------------- the independent reference


def _ended(o: tuple[int, ...], eos: int | None) -> int:
    return next((t + 1 for t, x in enumerate(o) if x == eos), len(o)) if eos is not None else len(o)


def reference(inst: Autoregressive, dps: int = 50) -> dict[str, Any]:
    """J, grad J, g and log-odds by summing over every eos-padded response, in mpmath at ``dps`` digits."""
    T, V, eos = inst.T, inst.V, inst.eos
    with mpmath.workdps(dps):
        rows = [list(map(mpmath.mpf, row)) for table in inst.logits for row in table]
        pis = []
        for row in rows:
            top = max(row)
            e = [mpmath.exp(x - top) for x in row]
            pis.append([x / mpmath.fsum(e) for x in e])
        n = len(rows) * V
        mass = [mpmath.mpf(0), mpmath.mpf(0)]
        weighted = [[mpmath.mpf(0)] * n, [mpmath.mpf(0)] * n]
        Lstar = _ended(inst.target, eos)
        for o in itertools.product(range(V), repeat=T):
            L = _ended(o, eos)
            if any(x != eos for x in o[L:]):
                continue
            if inst.min_correct is None:
                r = int(L == Lstar and o[:L] == inst.target[:L])
            else:
                r = int(sum(o[t] == inst.target[t] for t in range(L)) >= inst.min_correct)
            p, s = mpmath.mpf(1), [mpmath.mpf(0)] * n
            for t in range(L):
                code = 0
                for x in o[:t]:
                    code = code * V + x
                u = (V**t - 1) // (V - 1) + code
                p *= pis[u][o[t]]
                for v in range(V):
                    s[u * V + v] += (1 if v == o[t] else 0) - pis[u][v]
            mass[r] += p
            weighted[r] = [w + p * x for w, x in zip(weighted[r], s, strict=True)]
        J = mass[1]
        gap = [a / mass[1] - b / mass[0] for a, b in zip(weighted[1], weighted[0], strict=True)]
        return {"J": float(J), "grad_J": [float(x) for x in weighted[1]], "gradient_gap": [float(x) for x in gap],
                "log_odds": float(mpmath.log(mass[1]) - mpmath.log(mass[0])),
                "gradient_gap_norm": float(mpmath.sqrt(mpmath.fsum(x * x for x in gap)))}


# ------------------------------------------------------------------------- numeric routes, larger sizes


@given(autoregressive_instances(max_params=39))
@example(Autoregressive(logits=_table(3, 3, lambda t, p, v: math.cos(2 * t + p - v)), target=(0, 2, 1), eos=1))
def test_gradient_gap_structured_autograd_fd_vs_independent_enumeration(inst: Autoregressive) -> None:
    want = reference(inst)
    for method in ("structured", "enumerate", "autograd", "fd"):
        tol = FD if method == "fd" else EXACT
        assert_close("gradient_gap", f"reference vs {method}", inst, na.gradient_gap(inst, method=method),
                     want["gradient_gap"], tol)
    assert_close("log_odds", "reference vs structured", inst, na.log_odds(inst), want["log_odds"], EXACT)


@given(autoregressive_instances(T=(2, 3), max_params=14))
def test_hessian_log_odds_enumerate_vs_autograd_vs_fd(inst: Autoregressive) -> None:
    """The enumeration adds E+[Hess log pi] - E-[Hess log pi] (here Hess log pi(o) depends on o)."""
    auto = na.hessian_log_odds(inst, method="autograd")
    tol = (HESSIAN_ROUTES, HESSIAN_ROUTES)
    assert_close("hessian_log_odds", "autograd vs enumerate", inst, na.hessian_log_odds(inst, method="enumerate"),
                 auto, tol)
    assert_close("hessian_log_odds", "autograd vs fd", inst, na.hessian_log_odds(inst, method="fd"), auto, tol)


# -------------------------------------------------------------------------------------- extreme logits


@pytest.mark.parametrize("big", [1e16, -1e16, 1e300])
def test_tied_huge_logits_match_the_zero_logit_symbolic_values(big: float) -> None:
    """Rows (big, big) tie: every route must see the differences (0), so the values are those of zero logits."""
    huge = Autoregressive(logits=_table(2, 2, lambda t, p, v: big), target=(1, 0), eos=0)
    zero = huge.with_theta((0.0,) * len(huge.theta))
    want_g = sym_vector(ta.gradient_gap(zero))
    want_j = float(ta.success_rate(zero))
    for method in ("structured", "enumerate", "autograd", "fd"):
        tol = FD if method == "fd" else EXACT
        assert_close("gradient_gap", f"symbolic(zero) vs {method}", huge, na.gradient_gap(huge, method=method),
                     want_g, tol)
    for method in ("structured", "enumerate", "autograd"):
        assert_close("success_rate", f"symbolic(zero) vs {method}", huge, na.success_rate(huge, method=method),
                     want_j, EXACT)


@pytest.mark.parametrize("scale", [30.0, 300.0, 1000.0])
def test_structured_log_space_vs_mpmath_when_J_rounds_to_0_or_1(scale: float) -> None:
    for sign in (1.0, -1.0):
        inst = Autoregressive(logits=_table(3, 2, lambda t, p, v, sg=sign: sg * scale * (2 * v - 1) * (1 + p % 2)),
                              target=(1, 1, 1), min_correct=2)
        want = reference(inst, dps=3000 if scale > 100 else 80)
        assert close(na.log_odds(inst), want["log_odds"], EXACT), (inst, na.log_odds(inst), want["log_odds"])
        assert_close("gradient_gap", "mpmath vs structured", inst, na.gradient_gap(inst), want["gradient_gap"],
                     EXACT)


# --------------------------------------------------------------------------------- the eos convention


def test_eos_responses_are_padded_and_probabilities_sum_to_one() -> None:
    inst = Autoregressive(logits=_table(2, 2, lambda t, p, v: 0.4 * v + p), target=(0, 1), eos=1)
    assert inst.responses() == [(0, 0), (0, 1), (1, 1)]
    assert [inst.reward(o) for o in inst.responses()] == [0, 1, 0]
    lp = na.FAMILY.log_probs(inst, np.array([[0, 0], [0, 1], [1, 0], [1, 1]]))
    assert lp[2] == -np.inf  # (1, 0) is not eos-padded
    assert close(float(np.exp(lp).sum()), 1.0, EXACT)
    R = na.sample_responses(inst, 500, np.random.default_rng(0))
    assert not np.any((R[:, 0] == 1) & (R[:, 1] == 0))
    # the rows after an eos are never used: their gradient is exactly zero on every route
    row = inst.row_index(1, (1,)) * inst.V
    for method in ("structured", "enumerate", "autograd"):
        assert np.all(na.gradient_gap(inst, method=method)[row:row + 2] == 0.0), method


def test_length_one_target_ending_at_eos_is_exact_match_of_the_ended_response() -> None:
    inst = Autoregressive(logits=_table(3, 3, lambda t, p, v: 0.0), target=(2, 0, 1), eos=2)
    assert inst.unique_correct_response() == (2, 2, 2)
    assert math.isclose(na.success_rate(inst), 1 / 3)
    assert math.isclose(reference(inst)["J"], 1 / 3)


# ---------------------------------------------------------------------------------------------- the CLI

CAPSYS_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def argv(inst: Autoregressive) -> list[str]:
    out = ["gap", "autoregressive", "--logits", json.dumps([[list(r) for r in tb] for tb in inst.logits]),
           "--target", ",".join(map(str, inst.target)), "--json"]
    out += [] if inst.min_correct is None else ["--min-correct", str(inst.min_correct)]
    return out + ([] if inst.eos is None else ["--eos", str(inst.eos)])


@CAPSYS_OK
@given(autoregressive_instances(max_params=39))
@example(AT_LEAST_TWO_EOS)
def test_gap_autoregressive_json_vs_independent_enumeration(capsys: pytest.CaptureFixture[str],
                                                            inst: Autoregressive) -> None:
    assert main(argv(inst)) == 0
    report = json.loads(capsys.readouterr().out)
    want = reference(inst)
    for key in ("J", "log_odds", "gradient_gap_norm"):
        assert close(report[key], want[key], EXACT), (key, report[key], want[key], inst)
    for key in ("grad_J", "gradient_gap"):
        assert_close(key, "gap CLI vs reference", inst, report[key], want[key], EXACT)


@pytest.mark.parametrize("args, needle", [
    (["--logits", "[[[0,1]],[[0,0]]]", "--target", "1,0"], "logits[1]"),
    (["--logits", "[[0,1]]", "--target", "1"], "logits"),
    (["--logits", "[[[0,1]]]", "--target", "2"], "target"),
    (["--logits", "[[[0,1]]]", "--target", "1", "--eos", "5"], "eos"),
    (["--logits", "[[[0,1,2]]]", "--target", "0,1"], "target"),
    (["--logits", "[[[0,null]]]", "--target", "0"], "logits"),
])
def test_gap_autoregressive_bad_input_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], args: list[str],
                                                         needle: str) -> None:
    assert main(["gap", "autoregressive", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err and len(err) < 250, err


def test_autoregressive_instance_errors_are_gradgap_errors() -> None:
    with pytest.raises(GradgapError, match="V\\^2 = 4 rows"):
        Autoregressive(logits=(*_table(2, 2, lambda t, p, v: 0.0), ((0.0, 0.0),)), target=(0, 0, 0))
    with pytest.raises(GradgapError, match="fixed-position"):
        Autoregressive(logits=_table(1, 2, lambda t, p, v: 0.0), target=(0,)).structure()


def test_example_claim_file_runs_on_the_autoregressive_family(capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "claims" / "autoregressive.toml"
    args = ["check", str(path), "--only", "autoregressive-variance-times-gap", "--profile", "quick", "--no-progress"]
    assert main(args) == 0
    assert "1/1 claims as expected" in capsys.readouterr().out


def test_length_weighted_gap_is_g_over_T_at_fixed_length_and_turns_with_eos() -> None:
    from gradgap.experiments import eos_length

    fixed = eos_length.worked(3, eos=False)
    assert_close("h", "length-weighted gap vs g/T", fixed, eos_length.length_weighted_gap(fixed),
                 np.asarray(na.gradient_gap(fixed)) / 3, EXACT)
    row = eos_length._row(fixed)
    assert close(row["ratio"], 3.0, (1e-6, 0.0))
    assert eos_length.angle(eos_length.worked(3)) > 1.0
