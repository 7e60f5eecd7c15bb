"""Long runs resume: a tiny run killed with SIGKILL after a TRL checkpoint starts again on the same ``--out``
from that checkpoint (TRL's own mechanism), keeps the probe's records up to it, and ends with every step exactly
once. Also inside a sweep: the interrupted cell resumes instead of starting over. Real TRL runs (CPU), ``llm``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("trl")

pytestmark = pytest.mark.llm
ROOT = Path(__file__).resolve().parents[1]
STEPS = 8


def _cmd(sub: str, out: Path, cache: str) -> list[str]:
    common = ["--preset", "tiny", "--steps", str(STEPS), "--prompts-per-step", "2", "--save-every", "1",
              "--gap-every", "1", "--eval-every", "1", "--cache-dir", cache, "--out", str(out)]
    if sub == "run":
        return [sys.executable, "-m", "gradgap.proofs_check.cli", "grpo", "run", "--length", "2", *common]
    return [sys.executable, "-m", "gradgap.proofs_check.cli", "grpo", "sweep", "--lrs", "0.02", "--lengths", "2",
            "--loss-types", "grpo", "--no-progress", *common]


def _kill_after_checkpoint(cmd: list[str], trl_dir_of, env) -> None:
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            d = trl_dir_of()
            if d is not None and _parses(d / "checkpoint-2" / "trainer_state.json"):
                break  # TRL writes it last: checkpoint-2 is complete (an existing file may still be torn)
            time.sleep(0.05)
        assert proc.poll() is None, f"ended before the kill: {proc.stderr.read().decode()[-800:]}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL  # killed, not ended on its own


def _parses(path: Path) -> bool:
    try:
        json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return True


def _steps(metrics: Path) -> list[int]:
    return [json.loads(x)["step"] for x in metrics.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("gradgap-cache"))


@pytest.fixture(scope="module")
def env():
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_a_run_killed_with_sigkill_resumes_from_its_last_checkpoint(tmp_path, cache_dir, env):
    out = tmp_path / "run"
    _kill_after_checkpoint(_cmd("run", out, cache_dir), lambda: out / "trl", env)
    done = subprocess.run(_cmd("run", out, cache_dir), cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr.decode()[-1500:]
    assert b"resuming from checkpoint-" in done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert 2 <= summary["summary"]["resumed_from_step"] < STEPS
    assert summary["summary"]["steps_done"] == STEPS
    assert _steps(out / "metrics.jsonl") == list(range(1, STEPS + 1))


def test_an_interrupted_run_resumes_inside_a_sweep(tmp_path, cache_dir, env):
    out = tmp_path / "sweep"

    def trl_dir():
        runs = list((out / "runs").glob("*/trl")) if (out / "runs").is_dir() else []
        return runs[0] if runs else None

    _kill_after_checkpoint(_cmd("sweep", out, cache_dir), trl_dir, env)
    assert not (out / "runs.jsonl").is_file() or not (out / "runs.jsonl").read_text().strip()
    done = subprocess.run(_cmd("sweep", out, cache_dir), cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-1500:]
    (rec,) = [json.loads(x) for x in (out / "runs.jsonl").read_text().splitlines()]
    assert 2 <= rec["summary"]["resumed_from_step"] < STEPS and rec["summary"]["steps_done"] == STEPS
    assert _steps(trl_dir().parent / "metrics.jsonl") == list(range(1, STEPS + 1))


def test_resume_skips_a_checkpoint_killed_while_it_was_saved(tmp_path):
    """The newest checkpoint whose trainer_state.json parses is taken, by step number (10 after 9): a torn state
    file or a folder without one (a kill during TRL's save) is skipped."""
    from gradgap.experiments.grpo.run import _last_complete_checkpoint

    for step, text in [(1, "{}"), (2, '{"global_step": 2}'), (9, '{"global_st'), (10, None), (3, "")]:
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        if text is not None:
            (d / "trainer_state.json").write_text(text)
    (tmp_path / "checkpoint-x").mkdir()
    assert _last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
    (tmp_path / "checkpoint-10" / "trainer_state.json").write_text('{"global_step": 10}')
    assert _last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    for d in tmp_path.iterdir():
        (d / "trainer_state.json").unlink(missing_ok=True)
    assert _last_complete_checkpoint(tmp_path) is None
