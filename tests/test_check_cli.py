"""``gradgap check``: table, exit codes, JSON and JUnit reports, --only, expected failures."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

from gradgap.proofs_check.cli import main

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples" / "claims"
FAST_BUILTINS = ["--only", "score-mean-zero", "gap-grad-log-odds"]


def _claims_file(tmp_path, body):
    path = tmp_path / "claims.toml"
    path.write_text(textwrap.dedent(body))
    return str(path)


FALSE_CLAIM = """
[[claim]]
id = "variance-too-small"
family = "softmax"
sizes = { K = [2, 3] }
claim = "J*(1 - J) <= 0.2"
expect = "{expect}"
"""


def test_builtins_subset_exit_0_with_json_and_junit(tmp_path, capsys):
    js, xml = tmp_path / "r.json", tmp_path / "r.xml"
    code = main(["check", *FAST_BUILTINS, "--profile", "quick", "--json", str(js), "--junit", str(xml),
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "score-mean-zero" in out and "PROVED" in out
    report = json.loads(js.read_text())
    assert set(report) == {"claims", "summary"}
    assert [c["id"] for c in report["claims"]] == ["score-mean-zero", "gap-grad-log-odds"]
    for rec in report["claims"]:
        assert set(rec) == {"id", "status", "expected", "strength", "required", "scope", "checked_on", "regression",
                            "evidence",
                            "counterexample", "seconds"}
        assert rec["status"] == rec["expected"] == "HOLDS"
        assert rec["strength"] == "PROVED"
        assert rec["seconds"] >= 0
    assert report["summary"]["ok"] is True
    assert report["summary"]["total"] == 2
    root = ET.parse(xml).getroot()
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["score-mean-zero", "gap-grad-log-odds"]
    assert root.get("failures") == "0" and root.get("errors") == "0"


def test_false_claim_exits_1_with_counterexample(tmp_path, capsys):
    path = _claims_file(tmp_path, FALSE_CLAIM.replace("{expect}", "holds"))
    js, xml = tmp_path / "r.json", tmp_path / "r.xml"
    code = main(["check", path, "--profile", "quick", "--json", str(js), "--junit", str(xml), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILS" in out and "(!)" in out
    rec = json.loads(js.read_text())["claims"][0]
    assert rec["status"] == "FAILS" and rec["expected"] == "HOLDS"
    cx = rec["counterexample"]
    assert cx["family"] == "softmax" and float(cx["margin"]) < 0
    failure = ET.parse(xml).getroot().find(".//testcase/failure")
    assert failure is not None and "expected HOLDS, got FAILS" in failure.get("message")


def test_expected_failure_is_reported_refuted_and_exits_0(tmp_path, capsys):
    path = _claims_file(tmp_path, FALSE_CLAIM.replace("{expect}", "fails"))
    assert main(["check", path, "--profile", "quick", "--no-progress"]) == 0
    assert "REFUTED" in capsys.readouterr().out


def test_expected_failure_that_holds_goes_red(tmp_path, capsys):
    body = FALSE_CLAIM.replace("{expect}", "fails").replace("0.2", "0.25")
    path = _claims_file(tmp_path, body)
    assert main(["check", path, "--profile", "quick", "--no-progress"]) == 1
    assert "expected FAILS, got HOLDS" in capsys.readouterr().out


def test_only_unknown_id_exits_2_with_did_you_mean(capsys):
    assert main(["check", "--only", "score-mean-zer", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'score-mean-zero'" in err


def test_bad_profile_is_a_usage_error(capsys):
    assert main(["check", "--profile", "fast"]) == 2
    assert "invalid choice: 'fast'" in capsys.readouterr().err


def test_json_to_stdout(capsys):
    assert main(["check", "--only", "gap-grad-log-odds", "--profile", "quick", "--json", "-",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    start = out.index('{\n  "claims"')
    assert json.loads(out[start:])["summary"]["ok"] is True


def test_examples_pass_as_expected(capsys):
    """At the ci profile: the refuted example (``overshoot.toml``) is found within 120 examples, while 50 (quick)
    depend on the draw order, which Hypothesis seeds with the literals of every local module (any edit moves it)."""
    files = sorted(str(p) for p in EXAMPLES.glob("*.toml"))
    assert main(["check", *files, "--profile", "ci", "--no-progress"]) == 0


def test_cli_and_its_command_modules_import_no_sympy_or_torch():
    code = ("import sys, gradgap.proofs_check.cli; "
            "print('sympy' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.slow
def test_gradgap_check_with_no_arguments_exits_0(tmp_path):
    """The README's main job: every built-in claim as expected (quick profile here; CI runs the ci profile)."""
    js = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "gradgap.proofs_check.cli", "check", "--profile", "quick", "--json",
                           str(js)], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = json.loads(js.read_text())["summary"]
    assert summary["ok"] and summary["strength"].get("PROVED", 0) >= 3


TRUE_CLAIM = """
[[claim]]
id = "variance-at-most-a-quarter"
family = "softmax"
sizes = { K = [2, 3] }
claim = "J*(1 - J) <= 0.25"
"""


def test_fail_fast_stops_at_the_first_claim_not_as_expected(tmp_path, capsys):
    """``--fail-fast`` runs the cheap claims first and stops at the first mismatch: the true claim listed after
    the false one is never run; the exit code is 1 as in a full run."""
    path = _claims_file(tmp_path, FALSE_CLAIM.replace("{expect}", "holds") + TRUE_CLAIM)
    assert main(["check", path, "--profile", "quick", "--fail-fast", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "fail-fast: stopped at variance-too-small (1 of 2 claims run)" in out
    assert "variance-at-most-a-quarter" not in out


def test_fail_fast_green_run_matches_the_default_verdict(capsys):
    assert main(["check", *FAST_BUILTINS, "--profile", "quick", "--fail-fast", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "2/2 claims as expected" in out and "fail-fast: stopped" not in out


def test_fail_fast_does_not_combine_with_mutants(capsys):
    assert main(["check", *FAST_BUILTINS, "--fail-fast", "--mutants", "--no-progress"]) == 2
    assert "does not combine with --mutants" in capsys.readouterr().err


def test_fail_fast_runs_the_cross_checks_first(monkeypatch):
    """A theory-vs-numerics disagreement is reported before any claim's own checks run."""
    from gradgap.proofs_check import consistency, report
    from gradgap.proofs_check.builtin import builtin_claims

    claims = [c for c in builtin_claims() if c.id in ("score-mean-zero", "gap-grad-log-odds")]
    monkeypatch.setattr(consistency, "cross_check_family",
                        lambda fam, n, seed: (1, {"family": fam, "quantity": "log_odds", "route": "structured"}))
    results, _ = report.run_fail_fast(claims, "quick", progress=False)
    assert len(results) == 1 and not results[0].ok
    assert [name for name, _ in results[0].checks] == ["theory-vs-numerics"]
