"""``gradgap gap``: output against an independent plain-Python enumeration, the extreme-logit example, bad input.

The reference here is written in the test with ``math`` and ``itertools`` only (no numerics/, no numpy): every
response is enumerated, and J, grad J, E+[s] - E-[s] and log(J/(1-J)) are summed directly.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import subprocess
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings

from gradgap.proofs_check.cli import main
from gradgap.proofs_check.tolerances import EXACT, close
from gradgap.theory.instances import SharedTokens, SoftmaxBandit, TokenSequence
from tests.strategies import shared_instances, softmax_instances, token_instances

# ------------------------------------------------------------------------- the independent reference


def _softmax(z: list[float]) -> list[float]:
    m = max(z)
    e = [math.exp(x - m) for x in z]
    return [x / sum(e) for x in e]


def _reference(inst: Any) -> dict[str, Any]:
    """J, grad_J, gradient_gap, log_odds by summing over every response (moderate logits only)."""
    if isinstance(inst, SoftmaxBandit):
        pis, L, n = [_softmax(list(inst.logits))], 1, inst.K
    elif isinstance(inst, TokenSequence):
        pis, L, n = [_softmax(list(row)) for row in inst.logits], inst.T, inst.T * inst.V
    else:
        z = [sum(t * f for t, f in zip(inst.theta, phi, strict=True)) + b for phi, b in zip(inst.features,
                                                                                             inst.biases, strict=True)]
        pis, L, n = [_softmax(z)] * inst.T, inst.T, inst.d
    A = len(pis[0])
    mass = [0.0, 0.0]
    weighted = [[0.0] * n, [0.0] * n]
    for o in itertools.product(range(A), repeat=L):
        p = math.prod(pis[t][o[t]] for t in range(L))
        if isinstance(inst, SoftmaxBandit):
            r = int(o[0] in inst.correct)
            s = [(1.0 if a == o[0] else 0.0) - pis[0][a] for a in range(A)]
        elif isinstance(inst, TokenSequence):
            r = int(sum(o[t] == inst.target[t] for t in range(L)) >= inst.m)
            s = [(1.0 if v == o[t] else 0.0) - pis[t][v] for t in range(L) for v in range(A)]
        else:
            r = int(all(v in inst.correct for v in o))
            mu = [sum(pis[0][v] * inst.features[v][k] for v in range(A)) for k in range(n)]
            s = [sum(inst.features[v][k] for v in o) - L * mu[k] for k in range(n)]
        mass[r] += p
        weighted[r] = [w + p * x for w, x in zip(weighted[r], s, strict=True)]
    J = mass[1]
    gap = [a / mass[1] - b / mass[0] for a, b in zip(weighted[1], weighted[0], strict=True)]
    return {"J": J, "grad_J": weighted[1], "gradient_gap": gap, "log_odds": math.log(mass[1] / mass[0]),
            "gradient_gap_norm": math.sqrt(sum(x * x for x in gap))}


# ------------------------------------------------------------------------------------- the command

#: capsys is read (and so reset) after every example, which makes sharing it across examples safe
CAPSYS_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _nums(xs: Any) -> str:
    return ",".join(repr(float(x)) for x in xs)


def argv(inst: Any) -> list[str]:
    if isinstance(inst, SoftmaxBandit):
        correct = ",".join(map(str, sorted(inst.correct)))
        return ["gap", "softmax", f"--logits={_nums(inst.logits)}", "--correct", correct]
    if isinstance(inst, TokenSequence):
        out = ["gap", "tokens", "--logits", json.dumps([list(r) for r in inst.logits]),
               "--target", ",".join(map(str, inst.target))]
        return out + ([] if inst.min_correct is None else ["--min-correct", str(inst.min_correct)])
    out = ["gap", "shared_tokens", f"--theta={_nums(inst.theta)}", "--features",
           json.dumps([list(r) for r in inst.features]), "--correct", ",".join(map(str, sorted(inst.correct))),
           "--T", str(inst.T)]
    return out + ([] if inst.bias is None else [f"--bias={_nums(inst.bias)}"])


def _strict_json(text: str) -> dict[str, Any]:
    def refuse(name: str) -> None:
        raise AssertionError(f"invalid JSON constant {name} in output")

    return json.loads(text, parse_constant=refuse)


def run_json(capsys: pytest.CaptureFixture[str], args: list[str]) -> dict[str, Any]:
    assert main([*args, "--json"]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    return _strict_json(out.out)


def assert_report_matches(report: dict[str, Any], want: dict[str, Any], inst: Any) -> None:
    for key in ("J", "log_odds", "gradient_gap_norm"):
        got = report[key]
        assert close(got, want[key], EXACT), f"{key}: gap CLI {got!r} vs enumeration {want[key]!r} on {inst}"
    for key in ("grad_J", "gradient_gap"):
        assert len(report[key]) == len(want[key]), key
        for i, (a, b) in enumerate(zip(report[key], want[key], strict=True)):
            assert close(a, b, EXACT), f"{key}[{i}]: gap CLI {a!r} vs enumeration {b!r} on {inst}"


@CAPSYS_OK
@given(softmax_instances())
@example(SoftmaxBandit(logits=(0.3, -1.2, 2.0, 0.5), correct=frozenset({0, 2})))
def test_gap_softmax_json_vs_plain_python_enumeration(capsys: pytest.CaptureFixture[str], inst: SoftmaxBandit
                                                      ) -> None:
    assert_report_matches(run_json(capsys, argv(inst)), _reference(inst), inst)


@CAPSYS_OK
@given(token_instances())
@example(TokenSequence(logits=((0.1, 0.2, 0.3), (1.0, 0.0, -1.0), (0.5, 0.5, 0.0)), target=(1, 0, 2)))
def test_gap_tokens_json_vs_plain_python_enumeration(capsys: pytest.CaptureFixture[str], inst: TokenSequence) -> None:
    assert_report_matches(run_json(capsys, argv(inst)), _reference(inst), inst)


@CAPSYS_OK
@given(shared_instances())
def test_gap_shared_tokens_json_vs_plain_python_enumeration(capsys: pytest.CaptureFixture[str], inst: SharedTokens
                                                            ) -> None:
    assert_report_matches(run_json(capsys, argv(inst)), _reference(inst), inst)


@pytest.mark.parametrize("method", ["enumerate", "structured", "autograd"])
def test_gap_extreme_logits_give_log_odds_1000_and_gap_1_0_minus1(capsys: pytest.CaptureFixture[str],
                                                                  method: str) -> None:
    report = run_json(capsys, ["gap", "softmax", "--logits=1000,-1000,0", "--correct", "0", "--method", method])
    assert report["log_odds"] == 1000.0
    assert report["gradient_gap"] == [1.0, 0.0, -1.0]
    assert report["J"] == 1.0 and "J" in report["notes"]


def test_gap_table_lists_every_quantity(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gap", "tokens", "--logits", "[[0.1, 0.2, 0.3], [1, 0, -1]]", "--target", "1,0"]) == 0
    out = capsys.readouterr().out
    for key in ("J", "log_odds", "gradient_gap_norm", "grad_J", "gradient_gap", "1,2"):
        assert key in out


def test_gap_mc_reports_stderr_and_nulls_with_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(capsys, ["gap", "softmax", "--logits", "0.3,-1.2,2.0,0.5", "--correct", "0,2",
                               "--method", "mc", "--n", "2000", "--seed", "7"])
    assert report["n"] == 2000 and len(report["gradient_gap_stderr"]) == 4
    assert report["log_odds"] is None and "mc" in report["notes"]["log_odds"]
    fd = run_json(capsys, ["gap", "softmax", "--logits", "0.3,-1.2,2.0,0.5", "--correct", "0,2", "--method", "fd"])
    assert fd["J"] is None and "fd" in fd["notes"]["J"]


BAD = [
    "gap softmax --logits 1,x --correct 0",
    "gap softmax --logits 1,2,3 --correct 0,1,2",
    "gap softmax --logits 1,2 --correct 5",
    "gap softmax --logits 1,2 --correct ,",
    "gap softmax --logits 1,2 --correct 0.5",
    "gap softmax --logits 1,nan --correct 0",
    "gap softmax --logits 1,1e999 --correct 0",
    "gap softmax --logits 1 --correct 0",
    "gap softmax --logits [1,true] --correct 0",
    "gap softmax --logits 1,2 --correct 0 --n 10",
    "gap softmax --logits 1,2 --correct 0 --method magic",
    "gap softmax --logits 1,2",
    "gap tokens --logits [[1,2],[3]] --target 0,0",
    "gap tokens --logits [[1,2] --target 0",
    "gap tokens --logits [1,2] --target 0",
    "gap tokens --logits [[1,2],[3,4]] --target 0",
    "gap tokens --logits [[1,2],[3,4]] --target 0,2",
    "gap tokens --logits [[1,2],[3,4]] --target 0,1 --min-correct 3",
    "gap tokens --logits [[1,2],[3,4]] --target 0,1 --min-correct two",
    "gap tokens --logits [[1,2]]]]] --target 0",
    "gap tokens --logits [[1,2]]*21 --target 0",
    "gap tokens --logits [[0,0]] --target 0 --method mc --n 3",
    "gap shared_tokens --theta 1 --features [[1],[2]] --correct 0 --T 0",
    "gap shared_tokens --theta 1,2 --features [[1],[2]] --correct 0 --T 2",
    "gap shared_tokens --theta 1 --features [[1],[2]] --correct 0,1 --T 2",
    "gap shared_tokens --theta 1 --features [[1],[2]] --correct 0 --T x",
    "gap shared_tokens --theta 1 --features [[1],[2]] --correct 0 --T 2 --bias 1",
    "gap shared_tokens --theta 1 --features {} --correct 0 --T 2",
    "gap",
    "gap softmax --logits=30,-30 --correct 0 --method mc --n 100 --seed 0",  # no failure drawn: no estimate
    "gap tokens --logits " + json.dumps([[0, 0]] * 21).replace(" ", "") + " --target " + ",".join(["0"] * 21)
    + " --method enumerate",  # 2^21 responses: too many to enumerate
]


@pytest.mark.parametrize("call", BAD, ids=lambda c: c[:70])
def test_gap_bad_input_exits_2_with_one_stderr_line(capsys: pytest.CaptureFixture[str], call: str) -> None:
    try:
        code = main(call.split())
    except SystemExit as exc:  # argparse-level errors (missing argument, bad choice)
        code = exc.code
    out = capsys.readouterr()
    assert code == 2, f"{call}: exit {code}"
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, f"{call}: stderr {out.err!r}"
    assert "Traceback" not in out.err and out.out == ""


def test_gap_real_script_prints_valid_json() -> None:
    exe = shutil.which("gradgap")
    if exe is None:
        pytest.skip("the gradgap console script is not installed")
    done = subprocess.run([exe, "gap", "softmax", "--logits=1000,-1000,0", "--correct", "0", "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    report = _strict_json(done.stdout)
    assert report["log_odds"] == 1000.0 and report["gradient_gap"] == [1.0, 0.0, -1.0]
    bad = subprocess.run([exe, "gap", "softmax", "--logits", "1,2", "--correct", "0,1"], capture_output=True,
                         text=True, timeout=120, check=False)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
