"""Every input once reported as a silent wrong answer, a hang, a traceback or an unbounded computation, replayed
literally: each gives the right answer (checked against the value worked out by hand) or one clean stderr line
with exit 2. Run in process; the time and memory bounds of the same inputs are checked in subprocesses by
``tests/test_hostile_input.py`` (bombs) and ``tests/test_thresholds.py`` (threshold budget)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from gradgap.proofs_check.tolerances import EXACT, FD, close
from tests.test_hostile_input import assert_one_line_error, run_cli

#: the most wall time one replayed input may take in process, on a shared 2-core machine
WALL_SECONDS = 30.0

SOFT = ["threshold", "softmax", "--logits=0.3,-0.2,0.1", "--correct", "0"]
SHARED_T = ["--theta", "0.2", "--features", "[[0], [1], [2]]", "--correct", "1"]


def _claim(folder: pathlib.Path, expr: str, sizes: str = "{ K = [2, 3] }") -> str:
    path = folder / f"c{abs(hash((expr, sizes)))}.toml"
    path.write_text(f'[[claim]]\nid = "x"\nfamily = "softmax"\nsizes = {sizes}\nclaim = {json.dumps(expr)}\n')
    return str(path)


def _deep_toml(folder: pathlib.Path) -> str:
    path = folder / "deep.toml"
    path.write_text('[[claim]]\nid = "x"\nfamily = "softmax"\nclaim = "J >= 0"\nsizes = { K = '
                    + "[" * 5000 + "]" * 5000 + " }\n")
    return str(path)


def _a_file(folder: pathlib.Path) -> str:
    path = folder / "plain-file"
    path.write_text("x")
    return str(path)


#: inputs that must be refused with one line and exit 2: name -> argv built in a fresh folder
REFUSED: dict[str, Callable[[pathlib.Path], list[str]]] = {
    "claim-tower-exponent": lambda d: ["check", _claim(d, "J >= 9**9**9**9"), "--profile", "quick"],
    "claim-huge-power": lambda d: ["check", _claim(d, "J <= 2**(64**64)"), "--profile", "quick"],
    "claim-2000-unary-minus": lambda d: ["check", _claim(d, "J >= " + "-" * 2000 + "J"), "--profile", "quick"],
    "claim-1000-term-plus": lambda d: ["check", _claim(d, "J >= " + "+".join(["1"] * 1000)), "--profile", "quick"],
    "claim-1500-digit-literal": lambda d: ["check", _claim(d, "J <= " + "9" * 1500), "--profile", "quick"],
    "claim-toml-5000-deep": lambda d: ["check", _deep_toml(d), "--profile", "quick"],
    "claim-sizes-beyond-a-search": lambda d: ["check", _claim(d, "J >= 0", "{ K = [1000000, 1000000] }"),
                                              "--profile", "quick"],
    "gap-mc-seed-negative": lambda d: ["gap", "softmax", "--logits=0,1", "--correct", "0", "--method", "mc",
                                       "--seed=-1"],
    "gap-mc-n-1e12": lambda d: ["gap", "softmax", "--logits=0,1", "--correct", "0", "--method", "mc", "--n",
                                "1000000000000"],
    "gap-mc-n-1e8": lambda d: ["gap", "softmax", "--logits=0,1", "--correct", "0", "--method", "mc", "--n",
                               "100000000"],
    "gap-shared-T-1e4-enumerate": lambda d: ["gap", "shared_tokens", *SHARED_T, "--T", "10000", "--method",
                                             "enumerate"],
    "gap-shared-T-1e9-autograd": lambda d: ["gap", "shared_tokens", *SHARED_T, "--T", "1000000000", "--method",
                                            "autograd"],
    "derive-features-60000-deep": lambda d: ["derive", "shared_tokens", "--features", "[" * 60000 + "]" * 60000],
    "derive-size-twice": lambda d: ["derive", "softmax", "--size", "K=3,K=4", "--no-proofs"],
    "threshold-min-correct-abc": lambda d: ["threshold", "tokens", "--logits", "0,1;1,0", "--target", "0,1",
                                            "--min-correct", "abc"],
    "threshold-T-abc": lambda d: ["threshold", "shared_tokens", "--theta", "0", "--features", "0;1;2", "--correct",
                                  "1", "--T", "abc"],
    "grpo-num-processes-0": lambda d: ["grpo", "run", "--dry-run", "--num-processes", "0"],
    "grpo-num-machines-negative": lambda d: ["grpo", "run", "--dry-run", "--num-machines=-1"],
    "grpo-sweep-out-file": lambda d: ["grpo", "sweep", "--lrs", "0.1", "--lengths", "1", "--out", _a_file(d)],
    "grpo-run-cache-dir-file": lambda d: ["grpo", "run", "--cache-dir", _a_file(d), "--out", str(d / "run")],
    "check-json-dir": lambda d: ["check", "--only", "gap-grad-log-odds", "--json", str(d)],
    "check-json-missing-dir": lambda d: ["check", "--only", "gap-grad-log-odds", "--json", "/missing/dir/x.json"],
    "check-junit-dir": lambda d: ["check", "--only", "gap-grad-log-odds", "--junit", str(d)],
    "latex-o-file": lambda d: ["latex", "-o", _a_file(d), "--no-evidence"],
    "latex-o-empty": lambda d: ["latex", "-o", "", "--no-evidence"],
    "latex-o-unwritable": lambda d: ["latex", "-o", "/proc/none/x", "--no-evidence"],
    "simulate-out-file": lambda d: ["simulate", "threshold-ratio", "--out", _a_file(d)],
    "simulate-seed-negative": lambda d: ["simulate", "threshold-ratio", "--seed=-1"],
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_reported_input_is_refused_in_one_line(name: str, tmp_path: pathlib.Path) -> None:
    code, _, err, seconds = run_cli(REFUSED[name](tmp_path))
    assert_one_line_error(code, err)
    assert seconds < WALL_SECONDS, f"{seconds:.1f} s"
    assert "check-json" not in name or not list(tmp_path.glob("*.json"))  # refused before any work or output


def _json(argv: list[str]) -> dict[str, Any]:
    code, out, err, seconds = run_cli(argv)
    assert code == 0, err
    assert seconds < WALL_SECONDS, f"{seconds:.1f} s"
    return json.loads(out)


@pytest.mark.parametrize("method", ["structured", "enumerate", "autograd", "fd"])
def test_tied_huge_logits_give_one_half_on_every_route(method: str) -> None:
    """Logits (1e16, 1e16), arm 0 correct: J = 1/2 and grad J = J(1 - J)(1, -1) = (1/4, -1/4) by symmetry
    (``fd`` differentiates only: it reports no J, and says so)."""
    res = _json(["gap", "softmax", "--logits=1e16,1e16", "--correct", "0", "--method", method, "--json"])
    if method == "fd":
        assert res["J"] is None and "no method='fd' route" in res["notes"]["J"]
    else:
        assert res["J"] == 0.5 and not res["notes"]
    tol = FD if method == "fd" else EXACT
    assert all(close(got, want, tol) for got, want in zip(res["grad_J"], (0.25, -0.25), strict=True)), res


def test_two_huge_ties_and_a_zero_give_one_half() -> None:
    """Logits (1e12, 1e12, 0): J = e^z / (2 e^z + 1) = 1/2 - O(e^{-10^12}), i.e. 1/2 in float64."""
    res = _json(["gap", "softmax", "--logits=1e12,1e12,0", "--correct", "0", "--json"])
    assert res["J"] == 0.5 and not res["notes"]


def test_tokens_enumerate_with_huge_ties_gives_one_sixth() -> None:
    """Rows (1e16, 1e16, 0) and (0, 0, 0), target (0, 0): J = 1/2 * 1/3."""
    res = _json(["gap", "tokens", "--logits", "[[1e16, 1e16, 0], [0, 0, 0]]", "--target", "0,0", "--method",
                 "enumerate", "--json"])
    assert close(res["J"], 1 / 6, EXACT), res["J"]


@pytest.mark.parametrize("argv, finite", [
    ([*SOFT, "--direction=0.30000000000000004,-0.19999999999999998,0.1"], None),
    (["threshold", "softmax", "--logits=0.3,-0.2", "--correct", "0",
      "--direction=0.30000000000000004,-0.19999999999999998"], None),
    ([*SOFT, "--direction=0,1,-1.000001"], True),
    ([*SOFT, "--direction=0,1,-1.000000000001"], True),
    ([*SOFT, "--direction=1e400,1,1"], False),
    ([*SOFT, "--direction=1e-300,1,1"], None),
    (["threshold", "shared_tokens", "--theta", "0.2", "--features", "0;1;2", "--correct", "1", "--T", "1000000"],
     None),
    (["threshold", "softmax", "--logits=" + ",".join(f"{(i % 17) / 8 - 1:.3f}" for i in range(1000)),
      "--correct", "0"], None),
], ids=["17-digits-K3", "17-digits-K2", "1.000001", "1.000000000001", "1e400", "1e-300", "T=1e6", "K=1000"])
def test_threshold_once_hanging_directions_answer(argv: list[str], finite: bool | None) -> None:
    res = _json([*argv, "--json"])
    if finite is not None:
        assert (res["eta_star"] is not None) is finite, res
    if res["eta_star"] is not None:
        lo, hi = res["eta_star_interval"]
        assert 0 <= lo <= res["eta_star"] <= hi


# ``exp(exp(exp(1000))) >= J`` and ``--logits -1,2`` are replayed by tests/test_hostile_input.py
# (test_true_claim_at_a_triple_exponential_holds, test_negative_first_value_is_a_value).


def test_tiny_fixed_success_prints_valid_json() -> None:
    code, out, err, _ = run_cli(["simulate", "length-scaling", "--fixed-success", "1e-300", "--json"])
    assert code in (0, 2), err
    if code == 0:
        json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    else:
        assert_one_line_error(code, err)


def test_a_closed_pipe_ends_quietly() -> None:
    """``gradgap ... | head -1``: the reader goes away; no traceback on stderr."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from gradgap.proofs_check.cli import main; "
                             "sys.exit(main(sys.argv[1:]))", "derive", "tokens", "--size", "T=3,V=3", "--no-proofs"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) in (0, 141)
    assert "Traceback" not in err, err[-500:]
