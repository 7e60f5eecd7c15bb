"""The GRPO sweep: ``kill -9`` and restart loses and repeats no finished run; a failing run is recorded FAILED
and the sweep goes on. Real TRL runs of the tiny preset (CPU), marked ``llm``.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("trl")

from gradgap.experiments.grpo.presets import resolve_preset
from gradgap.experiments.grpo.report import brackets
from gradgap.experiments.grpo.run import run_one
from gradgap.experiments.grpo.sweep import read_records, sweep

pytestmark = pytest.mark.llm

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("gradgap-cache"))


def _sweep_cmd(out: Path, cache: str) -> list[str]:
    return [sys.executable, "-m", "gradgap.proofs_check.cli", "grpo", "sweep", "--preset", "tiny",
            "--lrs", "0.01,0.02,0.04", "--lengths", "2", "--loss-types", "grpo", "--steps", "2",
            "--prompts-per-step", "2", "--cache-dir", cache, "--out", str(out), "--no-progress"]


def test_sweep_killed_with_sigkill_resumes_without_losing_or_repeating_runs(tmp_path, cache_dir):
    out = tmp_path / "sweep"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(_sweep_cmd(out, cache_dir), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    runs = out / "runs.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if runs.is_file() and runs.read_bytes().count(b"\n") >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"sweep ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = read_records(out)
    assert 1 <= len(before) < 3
    with open(runs, "ab") as fh:  # a torn line, as a kill in the middle of a write would leave
        fh.write(b'{"key": "torn')
    done = subprocess.run(_sweep_cmd(out, cache_dir), cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-800:]
    assert b"resuming: " in done.stderr
    after = read_records(out)
    keys = [r["key"] for r in after]
    assert len(keys) == 3 and len(set(keys)) == 3, keys
    assert after[: len(before)] == before  # finished runs kept as they were
    assert sorted(r["lr"] for r in after) == [0.01, 0.02, 0.04]
    assert runs.read_bytes().endswith(b"\n") and b"torn" not in runs.read_bytes()
    for r in after:
        assert r["status"] in ("OK", "COLLAPSED"), r
        assert (out / "runs" / r["key"] / "metrics.jsonl").is_file()


def test_failing_runs_are_recorded_failed_and_the_sweep_goes_on(tmp_path, cache_dir):
    def flaky(cfg, out):
        if cfg.lr == 0.02:
            def broken(prompts, completions, **_):
                raise KeyError("answer")

            return run_one(cfg, out, reward_funcs=[broken], quiet=True)
        if cfg.lr == 0.03:
            raise RuntimeError("CUDA error: device-side assert triggered\nmore lines")
        return run_one(cfg, out, quiet=True)

    base = resolve_preset("tiny", steps=1, prompts_per_step=2, cache_dir=cache_dir)
    recs = sweep(base, tmp_path, lrs=[0.01, 0.02, 0.03, 0.04], lengths=[2], loss_types=["grpo"], run_fn=flaky,
                 log=None, show_progress=False)
    by_lr = {r["lr"]: r for r in recs}
    assert by_lr[0.02]["status"] == "FAILED"
    assert by_lr[0.02]["reason"].startswith("RewardFunctionError: reward_funcs=['broken']: raised KeyError")
    assert by_lr[0.03]["status"] == "FAILED"
    assert by_lr[0.03]["reason"] == "RuntimeError: CUDA error: device-side assert triggered"
    assert by_lr[0.01]["status"] in ("OK", "COLLAPSED") and by_lr[0.04]["status"] in ("OK", "COLLAPSED")
    assert len(read_records(tmp_path)) == 4


def test_a_run_whose_loss_turns_nan_at_its_last_step_is_failed_and_unstable(tmp_path, cache_dir, monkeypatch):
    """TRL's loss is made NaN at the last optimisation step (as a too large learning rate would): the real run is
    recorded FAILED (non-finite) and the report brackets the critical lr below it."""
    import trl

    steps = 2
    original = trl.GRPOTrainer._compute_loss

    def nan_at_last_step(self, model, inputs):
        loss = original(self, model, inputs)
        return loss * math.nan if self.state.global_step == steps - 1 else loss

    monkeypatch.setattr(trl.GRPOTrainer, "_compute_loss", nan_at_last_step)
    base = resolve_preset("tiny", steps=steps, prompts_per_step=2, cache_dir=cache_dir)
    (rec,) = sweep(base, tmp_path, lrs=[0.01], lengths=[2], loss_types=["grpo"], log=None, show_progress=False,
                   run_fn=lambda cfg, out: run_one(cfg, out, quiet=True))
    assert rec["status"] == "FAILED" and rec["reason"].startswith("NonFiniteLossError"), rec
    assert f"step {steps}" in rec["reason"], rec["reason"]
    stable = {**rec, "key": "stable", "lr": 0.005, "status": "OK", "reason": ""}
    (bracket,) = brackets([stable, rec])
    assert (bracket.lo, bracket.hi) == (0.005, 0.01)
