"""Hostile input to every subcommand: one clear stderr line (< 200 characters), exit 2, never a traceback, quickly.

- ``HOSTILE``: a table of argument vectors built from bad values per option of every subcommand (gap, derive,
  check, latex, simulate, threshold, grpo), run in-process through ``cli.main`` with stderr captured, each
  bounded in wall time.
- ``BOMBS``: inputs that used to hang or exhaust memory, run in a subprocess under an address-space limit and a
  timeout, with the child's peak resident memory checked.
- ``test_argv_fuzz_never_tracebacks``: a Hypothesis strategy that builds argument vectors for every subcommand.
- kill -9 tests: for every writer (``check --json``, ``check --junit``, ``latex``, ``simulate --out``), a
  second writer is killed mid-way and the previous file must still be complete and valid.
- regressions for the conventions: ``--logits -1,2``, ``check --json -``, ``--mutants --junit``,
  ``--only ID FILE``, ``simulate --fixed-success 1e-300 --json``, a claim true at ``exp(exp(exp(1000)))``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pathlib
import resource
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradgap.proofs_check.cli import MAX_ERROR_LINE, main

#: the slowest a refusal may be, in process (seconds of wall time on a shared 2-core machine)
REFUSAL_SECONDS = 10.0
#: the most resident memory a refused bomb may reach in its subprocess (bytes; the interpreter with numpy,
#: sympy and mpmath loaded is about 150 MB)
BOMB_RSS = 1 << 30
#: the address-space limit of a bomb's subprocess: a runaway allocation fails instead of swapping
BOMB_AS_LIMIT = 6 << 30


def run_cli(argv: list[str]) -> tuple[int, str, str, float]:
    """``main(argv)`` in process: exit code, stdout, stderr, seconds. An exception escaping ``main`` fails."""
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue(), time.perf_counter() - start


def assert_one_line_error(code: int, err: str) -> None:
    lines = err.strip("\n").splitlines()
    assert code == 2, f"exit {code}, stderr {err[-300:]!r}"
    assert len(lines) == 1, f"{len(lines)} stderr lines: {err[-400:]!r}"
    assert "Traceback" not in err
    assert len(lines[0]) < 200 and len(lines[0]) <= MAX_ERROR_LINE + 1, lines[0]
    assert "error" in lines[0]


# ------------------------------------------------------------------------------------- the hostile table

BAD_NUMBERS = ["abc", "nan", "inf", "-inf", "1e400", "", "1,,2", "[1,", "[[1, 2]]", "[true, 1]", "[null]",
               "[" * 100 + "]" * 100, "0x1g", "1e999999", "[NaN, 1]", "--", "1;2", "9" * 400, '{"a": 1}', "[\"x\"]"]
BAD_INDICES = ["abc", "1.5", "", "-1", "99", "[0.5]", "[[0]]", "0,,1", "1e3", "9" * 100]
BAD_TABLES = ["abc", "[1, 2]", "[[1, 2], [1]]", "[[]]", "[]", "[[1, NaN]]", "[[1, 2]", "[" * 5000 + "]" * 5000,
              '{"a": [1]}', "[[1e400, 0]]", "[[true, 1]]", '[["a", 1]]']
BAD_INTS = ["abc", "1.5", "", "-3", "0", "1e3", "9" * 50, "nan"]

SOFTMAX = ["gap", "softmax", "--logits", "0.5,-1,2", "--correct", "0"]
TOKENS = ["gap", "tokens", "--logits", "[[0.1, 0.2, 0.3], [1, 0, -1]]", "--target", "1,0"]
SHARED = ["gap", "shared_tokens", "--theta", "0.5", "--features", "[[0], [1], [2]]", "--correct", "1", "--T", "3"]


def _with(base: list[str], option: str, value: str) -> list[str]:
    """``base`` with ``option`` set to ``value`` (written ``--option=value`` so that any value is a value)."""
    out, skip = [], False
    for i, word in enumerate(base):
        if skip:
            skip = False
            continue
        if word == option:
            skip = i + 1 < len(base)
            continue
        out.append(word)
    return [*out, f"{option}={value}"]


def _hostile() -> list[list[str]]:
    cases: list[list[str]] = []
    cases += [_with(SOFTMAX, "--logits", v) for v in BAD_NUMBERS]
    cases += [_with(SOFTMAX, "--correct", v) for v in [*BAD_INDICES, "0,1,2"]]
    cases += [_with(TOKENS, "--logits", v) for v in BAD_TABLES]
    cases += [_with(TOKENS, "--target", v) for v in [*BAD_INDICES, "1", "1,0,0"]]
    cases += [[*TOKENS, f"--min-correct={v}"] for v in [*BAD_INTS, "3"]]
    cases += [_with(SHARED, "--theta", v) for v in BAD_NUMBERS[:12]]
    cases += [_with(SHARED, "--features", v) for v in BAD_TABLES]
    cases += [_with(SHARED, "--correct", v) for v in [*BAD_INDICES, "0,1,2"]]
    cases += [_with(SHARED, "--T", v) for v in BAD_INTS]
    cases += [[*SHARED, f"--bias={v}"] for v in ["abc", "1,2", "nan", "[1e400, 0, 0]"]]
    cases += [[*SOFTMAX, "--method", m] for m in ["exact", "", "MC"]]
    cases += [[*SOFTMAX, "--method", "mc", f"--n={v}"] for v in ["abc", "3", "-1", "1e3", "1000000000000",
                                                                   "100000000"]]
    cases += [[*SOFTMAX, "--method", "mc", f"--seed={v}"] for v in ["-1", "abc", "1.5", str(2**64)]]
    cases += [[*SOFTMAX, "--n", "100"], [*SOFTMAX, "--seed", "1"], [*SOFTMAX, "--max-cost=abc"],
              [*SOFTMAX, "--max-cost=0"], [*SOFTMAX, "--bogus"], ["gap", "softmax"], ["gap", "nofamily"]]
    cases += [[*_with(SHARED, "--T", "1000000000"), "--method", "autograd"],
              [*_with(SHARED, "--T", "10000"), "--method", "enumerate"],
              [*_with(TOKENS, "--logits", json.dumps([[0.0, 1.0]] * 40)), "--target=" + ",".join("0" * 40),
               "--method", "enumerate"]]
    derive = ["derive"]
    cases += [[*derive, "softmax", f"--size={v}"] for v in ["K=3,K=4", "K=1", "K=99", "K=abc", "T=3", "K", "=3",
                                                           "K=3,", "K=" + "9" * 50, "K=-2"]]
    cases += [[*derive, "tokens", f"--size={v}"] for v in ["T=2,T=3", "T=0", "V=1", "K=3"]]
    cases += [[*derive, "shared_tokens", "--size=d=1,T=3,V=3", f"--features={v}"]
              for v in ["[" * 60000 + "]" * 60000, "abc", "[[0], [1]]", "[[0, 1], [1, 0], [2, 2]]",
                        "[[NaN], [1], [2]]"]]
    cases += [[*derive, "softmax", f"--correct={v}"] for v in ["abc", "5", "-1", "0,1,2"]]
    cases += [[*derive, "tokens", f"--target={v}"] for v in ["abc", "9,9", "0"]]
    cases += [[*derive, "tokens", f"--min-correct={v}"] for v in ["abc", "0", "7"]]
    cases += [[*derive, "shared_tokens", f"--bias={v}"] for v in ["abc", "[1]", "[" * 1000]]
    cases += [[*derive, "softmaxx"], [*derive, "softmax", "--bogus"]]
    cases += [["check", f"--json={v}", "--only=nope"] for v in ["/", "/missing/dir/x.json", ""]]
    cases += [["check", f"--junit={v}", "--only=nope"] for v in ["/", "/missing/dir/x.xml", ""]]
    cases += [["check", "--only", v] for v in ["nope", "score-mean-zer", "a" * 5000]]
    cases += [["check", "--profile", v] for v in ["fast", "", "CI"]]
    cases += [["check", "/missing/file.toml"], ["check", "/"], ["check", "--bogus"]]
    cases += [["latex", "-o", v, "--no-evidence"] for v in ["", "/proc/version", "/proc/none/x"]]
    cases += [["latex", "--no-evidence"], ["latex", "-o"], ["latex", "-o", "/tmp", "--profile", "nope"]]
    cases += [["simulate", v] for v in ["nope", "", "threshold_sweep", "x" * 3000]]
    cases += [["simulate", "threshold-ratio", f"--seed={v}"] for v in ["-1", "abc", str(2**70), "1.5"]]
    cases += [["simulate", "length-scaling", f"--fixed-success={v}"] for v in ["0", "1", "2", "-1e-300", "abc",
                                                                                "nan", "inf"]]
    cases += [["simulate", "threshold-ratio", "--fixed-success=0.5"], ["simulate", "stagnation", "--rule=nope"],
              ["simulate", "threshold-ratio", "--out="], ["simulate", "threshold-ratio", "--out=/proc/version"]]
    thr = ["threshold", "softmax", "--logits", "0.3,-0.2,0.1", "--correct", "0"]
    cases += [_with(thr, "--logits", v) for v in ["abc", "nan", "", "1"]]
    cases += [_with(thr, "--correct", v) for v in ["abc", "5", "0,1,2"]]
    cases += [[*thr, f"--direction={v}"] for v in ["x", "1,2", "0,0,0", "1/0,1,1", "nan,1,1"]]
    cases += [["threshold", "tokens", "--logits", "0,1;1,0", "--target", "0,1", "--min-correct", "abc"],
              ["threshold", "shared_tokens", "--theta", "0", "--features", "0;1;2", "--correct", "1", "--T", "abc"],
              ["threshold", "nofamily"], ["threshold", "softmax"]]
    cases += [["grpo", "run", "--preset", "nope", "--dry-run"], ["grpo", "run", "--lr", "abc"],
              ["grpo", "run", "--dry-run", "--steps", "-5"], ["grpo", "run", "--dry-run", "--num-processes", "0"],
              ["grpo", "run", "--dry-run", "--num-machines=-1"], ["grpo", "run", "--dry-run", "--num-processes=65"],
              ["grpo", "sweep", "--lrs", "abc", "--lengths", "1", "--out", "/tmp/never-made"],
              ["grpo", "sweep", "--lrs", "0.1", "--lengths", "x", "--out", "/tmp/never-made"],
              ["grpo", "report", "/nonexistent/dir"], ["grpo", "nope"]]
    cases += [["nope"], ["--bogus"], []]
    return cases


HOSTILE = _hostile()
def test_hostile_table_is_large_and_covers_every_subcommand() -> None:
    assert len(HOSTILE) >= 200
    assert {c[0] for c in HOSTILE if c} >= {"gap", "derive", "check", "latex", "simulate", "threshold", "grpo"}


def _id(argv: list[str]) -> str:
    text = " ".join(argv)
    return text if len(text) <= 70 else f"{text[:60]}...[{len(text)}]"


@pytest.mark.parametrize("argv", HOSTILE, ids=_id)
def test_hostile_input_is_one_line_exit_2(argv: list[str]) -> None:
    code, _, err, seconds = run_cli(argv)
    assert_one_line_error(code, err)
    assert seconds < REFUSAL_SECONDS, f"{seconds:.1f} s"


# ------------------------------------------------------------------------- bombs: memory and time bounded

def _claim_file(folder: pathlib.Path, expr: str, sizes: str = "{ K = [2, 3] }") -> str:
    path = folder / f"c{abs(hash((expr, sizes)))}.toml"
    path.write_text(f'[[claim]]\nid = "x"\nfamily = "softmax"\nsizes = {sizes}\nclaim = {json.dumps(expr)}\n')
    return str(path)


def _nested_toml(folder: pathlib.Path) -> str:
    path = folder / "deep.toml"
    path.write_text('[[claim]]\nid = "x"\nfamily = "softmax"\nclaim = "J >= 0"\nsizes = { K = '
                    + "[" * 5000 + "]" * 5000 + " }\n")
    return str(path)


BOMBS = {
    "tower-exponent": lambda d: ["check", _claim_file(d, "J >= 9**9**9**9"), "--profile", "quick"],
    "huge-power-latex": lambda d: ["check", _claim_file(d, "J <= 2**(64**64)"), "--profile", "quick"],
    "nested-unary-minus": lambda d: ["check", _claim_file(d, "J >= " + "-" * 2000 + "J"), "--profile", "quick"],
    "plus-chain": lambda d: ["check", _claim_file(d, "J >= " + "+".join(["1"] * 1000)), "--profile", "quick"],
    "literal-1500-digits": lambda d: ["check", _claim_file(d, "J >= " + "7" * 1500), "--profile", "quick"],
    "power-of-powers": lambda d: ["check", _claim_file(d, "J <= (((10.0**64)**64)**64)**64"), "--profile", "quick"],
    "toml-nested-5000": lambda d: ["check", _nested_toml(d), "--profile", "quick"],
    "size-million": lambda d: ["check", _claim_file(d, "J >= 0", "{ K = [1000000, 1000000] }"), "--profile", "quick"],
    "autograd-T-1e9": lambda d: [*_with(SHARED, "--T", "1000000000"), "--method", "autograd"],
    "mc-n-1e8": lambda d: [*SOFTMAX, "--method", "mc", "--n", "100000000"],
    "mc-n-1e12": lambda d: [*SOFTMAX, "--method", "mc", "--n", "1000000000000"],
    "enumerate-T-1e4": lambda d: [*_with(SHARED, "--T", "10000"), "--method", "enumerate"],
    "derive-features-60000-deep": lambda d: ["derive", "shared_tokens", "--features", "[" * 60000 + "]" * 60000],
}

_CHILD = ("import resource, sys\nfrom gradgap.proofs_check.cli import main\ncode = main(sys.argv[1:])\n"
          "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)\nsys.exit(code)\n")


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (BOMB_AS_LIMIT, BOMB_AS_LIMIT))


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bomb_is_refused_fast_with_bounded_memory(name: str, tmp_path: pathlib.Path) -> None:
    argv = BOMBS[name](tmp_path)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, *argv], capture_output=True, text=True, timeout=60,
                          preexec_fn=_limits, check=False)
    seconds = time.perf_counter() - start
    assert_one_line_error(proc.returncode, proc.stderr)
    assert int(proc.stdout.split()[-1]) < BOMB_RSS
    assert seconds < 30


def test_true_claim_at_a_triple_exponential_holds(tmp_path: pathlib.Path) -> None:
    """exp(exp(exp(1000))) overflows mpmath's integer exponent; the evaluator saturates to +inf: HOLDS."""
    code, out, err, _ = run_cli(["check", _claim_file(tmp_path, "exp(exp(exp(1000))) >= J"), "--profile", "quick",
                                 "--no-progress"])
    assert code == 0, out + err
    assert "HOLDS" in out and "ERROR" not in out


# ------------------------------------------------------------------------------------------ conventions


def test_negative_first_value_is_a_value() -> None:
    code, out, err, _ = run_cli(["gap", "softmax", "--logits", "-1,2", "--correct", "1", "--json"])
    assert code == 0, err
    assert json.loads(out)["J"] == pytest.approx(1 / (1 + 2.718281828459045**-3), rel=1e-12)


def test_negative_direction_is_a_value() -> None:
    code, _, err, _ = run_cli(["threshold", "softmax", "--logits", "-1,2", "--correct", "1", "--direction",
                               "-1,1", "--json"])
    assert code == 0, err


def test_check_json_dash_keeps_stdout_json_only() -> None:
    code, out, err, _ = run_cli(["check", "--only", "gap-grad-log-odds", "--profile", "quick", "--json", "-",
                                 "--no-progress"])
    assert code == 0, err
    assert json.loads(out)["summary"]["ok"] is True  # the whole of stdout parses
    assert "gap-grad-log-odds" in err  # the table went to stderr


def test_size_given_twice_is_an_error() -> None:
    code, _, err, _ = run_cli(["derive", "softmax", "--size", "K=3,K=4", "--no-proofs"])
    assert_one_line_error(code, err)
    assert "twice" in err


FALSE_CLAIM = """
[[claim]]
id = "variance-too-small"
family = "softmax"
sizes = { K = [2, 3] }
claim = "J*(1 - J) <= 0.2"
expect = "fails"

[[claim]]
id = "other"
family = "softmax"
claim = "J >= 0"
"""


def test_only_id_then_file_reads_the_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(FALSE_CLAIM)
    code, out, err, _ = run_cli(["check", "--only", "variance-too-small", str(path), "--profile", "quick",
                                 "--no-progress"])
    assert code == 0, out + err
    assert "variance-too-small" in out and "\nother " not in out


def test_files_after_options_are_files(tmp_path: pathlib.Path) -> None:
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(FALSE_CLAIM)
    b.write_text('[[claim]]\nid = "third"\nfamily = "softmax"\nclaim = "J <= 1"\n')
    code, out, err, _ = run_cli(["check", str(a), "--profile", "quick", str(b), "--no-progress"])
    assert code == 0, out + err
    assert "third" in out


def test_mutants_junit_is_written(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "claims.toml"
    path.write_text('[[claim]]\nid = "bounded"\nfamily = "softmax"\nsizes = { K = [2, 3] }\n'
                    'claim = "J*(1 - J) <= 0.25"\n')
    xml = tmp_path / "m.xml"
    code, out, err, _ = run_cli(["check", str(path), "--mutants", "--junit", str(xml), "--profile", "quick",
                                 "--no-progress"])
    root = ET.parse(xml).getroot()
    cases = root.findall(".//testcase")
    assert cases and all(c.get("name", "").startswith("bounded~") for c in cases)
    survived = int(root.get("failures", "-1"))
    assert survived == len([c for c in cases if c.find("failure") is not None])
    assert code == (0 if survived == 0 else 1), out + err


@pytest.mark.slow
def test_fixed_success_tiny_gives_strict_json() -> None:
    code, out, err, _ = run_cli(["simulate", "length-scaling", "--fixed-success", "1e-300", "--json"])
    assert code == 0, err[-500:]
    data = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    assert data["non_finite"], "the values that are not finite are listed"


def test_json_ready_replaces_non_finite_and_lists_them() -> None:
    from gradgap.experiments.bandits import json_ready

    data = json_ready({"a": [1.0, float("nan")], "b": {"c": float("inf")}, "d": 2})
    assert data == {"a": [1.0, None], "b": {"c": None}, "d": 2, "non_finite": ["a[1]", "b.c"]}
    json.dumps(data, allow_nan=False)


def test_claim_sizes_beyond_a_search_are_a_load_error(tmp_path: pathlib.Path) -> None:
    code, _, err, _ = run_cli(["check", _claim_file(tmp_path, "J >= 0", "{ K = [1000000, 1000000] }")])
    assert_one_line_error(code, err)
    assert "sizes.K" in err


def test_error_lines_are_cut_below_200_characters(tmp_path: pathlib.Path) -> None:
    long_name = "x" * 3000
    code, _, err, _ = run_cli(["check", "--only", long_name])
    assert_one_line_error(code, err)
    code, _, err, _ = run_cli(["check", _claim_file(tmp_path, "J >= " + " + ".join(["J"] * 300))])
    assert_one_line_error(code, err)


# -------------------------------------------------------------------------------------- argv fuzzing

VALUES = st.sampled_from(["0", "1", "-1", "-1,2", "0,1", "0.5,-1,2", "[[0, 1], [1, 0]]", "[[0], [1], [2]]",
                          "abc", "", "nan", "1e400", "[", "[[", "K=3", "K=3,K=4", "T=2,V=3", "d=1,T=2,V=3",
                          "1/2,1", "-", "--", "9" * 40, "[" * 200, "/", "/missing/x", "gap", "grad", "mc", "x" * 300])
OPTIONS = {
    "gap": ["--logits", "--correct", "--target", "--min-correct", "--theta", "--features", "--T", "--bias",
            "--method", "--n", "--seed", "--max-cost", "--json"],
    "derive": ["--size", "--correct", "--target", "--min-correct", "--features", "--bias", "--json"],
    "threshold": ["--logits", "--correct", "--target", "--min-correct", "--theta", "--features", "--T",
                  "--direction", "--json"],
    "check": ["--only", "--profile", "--json", "--junit"],
    "latex": ["-o", "--only", "--profile"],
    "simulate": ["--seed", "--rule", "--fixed-success", "--out", "--json"],
    "grpo": ["--preset", "--lr", "--steps", "--lrs", "--lengths", "--out", "--seeds"],
}
FAMILIES = st.sampled_from(["softmax", "tokens", "shared_tokens", "softmaxx", ""])
#: an always-invalid word that keeps a generated vector from starting an expensive valid run
POISON = {"check": "--only=no-such-claim", "latex": "--only=no-such-claim", "simulate": "--seed=-1",
          "grpo": "--preset=no-such-preset", "threshold": "--direction=no-such-direction", "derive": "--no-proofs"}


@st.composite
def argv_vectors(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(OPTIONS)))
    argv = [command]
    if command in ("gap", "derive", "threshold"):
        argv.append(draw(FAMILIES))
    elif command == "simulate":
        argv.append(draw(st.sampled_from(["threshold-ratio", "nope", "length-scaling"])))
    elif command == "grpo":
        argv.append(draw(st.sampled_from(["run", "sweep", "report", "nope"])))
    for _ in range(draw(st.integers(0, 6))):
        option = draw(st.sampled_from(OPTIONS[command]))
        value = draw(VALUES)
        argv.append(option if option == "--json" else draw(st.sampled_from([f"{option}={value}", option])))
        if not argv[-1].startswith(f"{option}=") and option != "--json":
            argv.append(value)
    if command in POISON:
        argv.append(POISON[command])
    if command == "derive" and argv[1] == "softmax" and not any(a.startswith("--size") for a in argv):
        argv.append("--size=K=2")
    if command == "grpo" and argv[1] == "run":
        argv.append("--dry-run")
    return argv


_FUZZ_DIR = tempfile.mkdtemp(prefix="gradgap-fuzz-")


@given(argv_vectors())
def test_argv_fuzz_never_tracebacks(argv: list[str]) -> None:
    here = os.getcwd()
    os.chdir(_FUZZ_DIR)  # relative output paths the vectors name land in a scratch folder
    try:
        code, _, err, _ = run_cli(argv)  # an exception escaping main fails the test
    finally:
        os.chdir(here)
    assert code in (0, 1, 2)
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err[-400:]
        assert len(err.strip()) <= MAX_ERROR_LINE


# ------------------------------------------------------------------------------- kill -9 on every writer

#: runs in the child: make one step of the writer announce itself (a marker file) and then block forever,
#: so that the parent kills it at exactly that point
_STALL = textwrap.dedent("""
    import os, sys, time, json
    marker, where = sys.argv[1], sys.argv[2]

    def stall():
        open(marker, "w").close()
        time.sleep(600)

    if where == "fsync":  # after the temporary file is written, before the rename
        os.fsync = lambda fd: stall()
    elif where == "json":  # while the JSON text is being produced (a streaming writer has opened the target)
        import json.encoder
        original = json.encoder.JSONEncoder.iterencode
        def iterencode(self, o, _one_shot=False):
            it = original(self, o, _one_shot)
            yield next(it)
            stall()
        json.encoder.JSONEncoder.iterencode = iterencode
    elif where == "latex":
        from gradgap.proofs_check import latex
        latex.document = lambda *a, **k: stall()
    elif where == "junit":
        from gradgap.proofs_check import report
        report.junit_xml = lambda *a, **k: stall()
    elif where == "png":
        import io, matplotlib
        matplotlib.use("Agg")
        import matplotlib.figure
        original = matplotlib.figure.Figure.savefig
        def savefig(self, fname, **kw):
            buf = io.BytesIO()
            original(self, buf, **{**kw, "format": "png"})
            data = buf.getvalue()
            if hasattr(fname, "write"):
                fname.write(data[: len(data) // 2])
            else:
                with open(fname, "wb") as fh:
                    fh.write(data[: len(data) // 2])
            stall()
        matplotlib.figure.Figure.savefig = savefig
    from gradgap.proofs_check.cli import main
    sys.exit(main(sys.argv[3:]))
""")

CLAIM = '[[claim]]\nid = "bounded"\nfamily = "softmax"\nsizes = { K = [2, 2] }\nclaim = "J <= 1"\n'


def _kill_mid_write(tmp_path: pathlib.Path, where: str, argv: list[str]) -> None:
    marker = tmp_path / f"marker-{where}"
    proc = subprocess.Popen([sys.executable, "-c", _STALL, str(marker), where, *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"the writer finished before the stall point {where!r}: "
                            f"{proc.stderr.read().decode()[-500:] if proc.stderr else ''}")
            if time.monotonic() > deadline:
                pytest.fail("the writer did not reach the stall point in 120 s")
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stderr:
            proc.stderr.close()


def _good_check(tmp_path: pathlib.Path, flag: str, target: pathlib.Path) -> list[str]:
    claims = tmp_path / "claims.toml"
    claims.write_text(CLAIM)
    argv = ["check", str(claims), "--profile", "quick", "--no-progress", flag, str(target)]
    code, out, err, _ = run_cli(argv)
    assert code == 0, out + err
    return argv


@pytest.mark.parametrize("where", ["json", "fsync"])
def test_kill_9_during_check_json_keeps_the_old_report(tmp_path: pathlib.Path, where: str) -> None:
    target = tmp_path / "report.json"
    argv = _good_check(tmp_path, "--json", target)
    before = target.read_bytes()
    _kill_mid_write(tmp_path, where, argv)
    assert target.read_bytes() == before
    assert json.loads(before)["summary"]["ok"] is True


def test_kill_9_leftover_is_removed_by_the_next_writer(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "report.json"
    argv = _good_check(tmp_path, "--json", target)
    _kill_mid_write(tmp_path, "fsync", argv)
    hidden = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".report.json."))
    assert len(hidden) == 1 and hidden[0].endswith(".tmp")  # the killed writer's temporary file
    live = tmp_path / f".report.json.{os.getpid()}.keepme.tmp"  # a live writer's file is not touched
    live.write_text("in progress")
    code, out, err, _ = run_cli(argv)
    assert code == 0, out + err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".report.json.")) == [live.name]
    assert json.loads(target.read_text())["summary"]["ok"] is True


@pytest.mark.parametrize("where", ["junit", "fsync"])
def test_kill_9_during_check_junit_keeps_the_old_report(tmp_path: pathlib.Path, where: str) -> None:
    target = tmp_path / "report.xml"
    argv = _good_check(tmp_path, "--junit", target)
    before = target.read_bytes()
    _kill_mid_write(tmp_path, where, argv)
    assert target.read_bytes() == before
    ET.fromstring(before)


@pytest.mark.parametrize("where", ["latex", "fsync"])
def test_kill_9_during_latex_keeps_the_old_document(tmp_path: pathlib.Path, where: str) -> None:
    claims = tmp_path / "claims.toml"
    claims.write_text(CLAIM)
    argv = ["latex", str(claims), "-o", str(tmp_path / "tex"), "--no-evidence"]
    code, out, err, _ = run_cli(argv)
    assert code == 0, err
    target = pathlib.Path(out.strip())
    before = target.read_bytes()
    assert before.rstrip().endswith(rb"\end{document}")
    _kill_mid_write(tmp_path, where, argv)
    assert target.read_bytes() == before


def test_kill_9_during_grpo_report_keeps_the_old_report(tmp_path: pathlib.Path) -> None:
    from gradgap.experiments.grpo.sweep import append_record

    folder = tmp_path / "sweep"
    folder.mkdir()
    for t in (2, 4):
        for lr in (0.01, 0.02, 0.04):
            append_record(folder, {"key": f"{t}-{lr}", "lr": lr, "length": t, "loss_type": "grpo",
                                   "scale_rewards": "group", "optim": "sgd", "seed": 0, "reason": "",
                                   "status": "COLLAPSED" if lr > 0.03 / t else "OK", "summary": {}})
    argv = ["grpo", "report", str(folder), "--no-plots"]
    code, _, err, _ = run_cli(argv)
    assert code in (0, 1), err
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.name.startswith("report.")}
    assert set(before) == {"report.md", "report.json"}
    _kill_mid_write(tmp_path, "fsync", argv)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.name.startswith("report.")} == before


@pytest.mark.slow
@pytest.mark.parametrize("where", ["json", "png", "fsync"])
def test_kill_9_during_simulate_out_keeps_the_old_files(tmp_path: pathlib.Path, where: str) -> None:
    out = tmp_path / "figs"
    argv = ["simulate", "threshold-ratio", "--out", str(out)]
    code, _, err, _ = run_cli(argv)
    assert code == 0, err
    files = {p: p.read_bytes() for p in out.iterdir()}
    assert len(files) == 2
    _kill_mid_write(tmp_path, where, argv)
    for path, data in files.items():
        assert path.read_bytes() == data, path.name
    json.loads(files[out / "threshold-ratio.json"])


# ------------------------------------------------------------------- the limits keep legitimate input


LEGITIMATE = ["J <= 10**64", "(J + 1)**64 >= 1", "J**eta <= 1", "exp(-1000) <= J + 1", "J >= -(-(-(-(J))))",
              "2**(2**5) >= 1", "J*(1 - J) <= 0.25", "ell_next - ell >= eta*Delta_mu - eta**2*(L_o + 8*G_o**2) - 1e9",
              " + ".join(["J"] * 50) + " >= 0", "J >= " + "9" * 100 + " - 10**64"]


@pytest.mark.parametrize("text", LEGITIMATE)
def test_expression_limits_keep_legitimate_relations(text: str) -> None:
    from gradgap.proofs_check import expressions

    expressions.parse_relation(text)
    expressions.relation_latex(text)


@pytest.mark.parametrize(("a", "b", "want"), [("2", "1e20", "+inf"), ("0.5", "1e20", "0.0"), ("-2", "1e20", "+inf"),
                                             ("-2", "100000000000000000001", "-inf"), ("-2", "0.5", "nan"),
                                             ("0", "-1", "+inf"), ("3", "2", "9.0")])
def test_mp_power_saturates_instead_of_building_a_huge_integer(a: str, b: str, want: str) -> None:
    import mpmath

    from gradgap.proofs_check import expressions

    with mpmath.workdps(expressions.HP_DIGITS):
        env = {"J": mpmath.mpf(a), "eta": mpmath.mpf(b)}
    value = expressions.evaluate(expressions.parse_expression("J**eta"), env, precision="mp")
    assert str(value) == want


def test_route_cost_refuses_the_issue_examples_and_keeps_the_defaults() -> None:
    from gradgap.proofs_check import quantities
    from gradgap.theory.instances import SharedTokens, SoftmaxBandit

    shared = SharedTokens(theta=(0.5,), features=((0.0,), (1.0,), (2.0,)), correct={1}, T=1_000_000_000)
    small = SoftmaxBandit(logits=(0.0, 1.0), correct={0})
    budget = quantities.DEFAULT_BUDGET
    assert quantities.route_cost(shared, "autograd") > budget
    assert quantities.route_cost(shared, "structured") < budget
    assert quantities.route_cost(small, "mc", 100_000_000) > budget
    assert quantities.route_cost(small, "mc") < budget  # the default sample size stays allowed
    for method in ("enumerate", "structured", "autograd", "fd"):
        assert quantities.route_cost(small, method) < 100


def test_atomic_write_replaces_and_keeps_the_mode(tmp_path: pathlib.Path) -> None:
    from gradgap.proofs_check.atomic import atomic_write_text, check_writable_file

    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary file left behind
    assert check_writable_file(tmp_path) is not None and check_writable_file(tmp_path / "x" / "y") is not None
    assert check_writable_file(tmp_path / "fine.json") is None
