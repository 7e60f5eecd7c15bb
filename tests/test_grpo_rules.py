"""Rules of the GRPO layer that need no training: the collapse rule (drop or rate, not run length), a NaN at
the last step is FAILED and unstable, the sweep folder lock, and the report's verdict (claims' evidence types,
AdamW apart, unmatched warm starts, Theorem 1's safe lr against the critical lr).
"""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pytest

from gradgap.experiments.grpo.presets import resolve_preset
from gradgap.experiments.grpo.report import brackets, build_report, write_report
from gradgap.experiments.grpo.run import RunResult, classify
from gradgap.experiments.grpo.sweep import SweepLockedError, append_record, sweep
from gradgap.proofs_check.claims import Evidence, Status, Strength
from gradgap.proofs_check.cli import main


def _recs(js, start=1):
    return [{"step": k, "eval_success_rate": j, "success_rate": 0.5} for k, j in enumerate(js, start=start)]


# -- collapse rule -----------------------------------------------------------------------------------------------
def test_a_run_that_lost_43_percent_in_20_steps_is_collapsed_by_its_rate():
    js = [0.6 * math.exp(-0.028 * k) for k in range(1, 21)]  # 0.6 -> 0.343: lost 43 %, never below 0.3
    assert min(js) > 0.3
    status, reason = classify(_recs(js), 0.5, 0.6)
    assert status == "COLLAPSED" and "(rate)" in reason


def test_the_same_small_drift_is_ok_whatever_the_run_length():
    for n in (20, 200):
        js = [0.6 - 0.00005 * k for k in range(1, n + 1)]
        assert classify(_recs(js), 0.5, 0.6)[0] == "OK", n


def test_a_run_that_fell_and_recovered_is_collapsed_by_its_minimum():
    js = [0.55, 0.2, 0.5, 0.62, 0.65]
    status, reason = classify(_recs(js), 0.5, 0.6)
    assert status == "COLLAPSED" and "(drop)" in reason


def test_the_rate_part_depends_on_the_horizon_not_on_the_number_of_steps():
    js = [0.6 * math.exp(-0.005 * k) for k in range(1, 21)]  # would halve J in ~160 steps
    assert classify(_recs(js), 0.5, 0.6, horizon=100)[0] == "OK"
    assert classify(_recs(js), 0.5, 0.6, horizon=200)[0] == "COLLAPSED"


@pytest.mark.parametrize("field", ["eval_success_rate", "grad_norm_clipped", "update_norm"])
def test_nan_at_the_last_step_is_failed_and_counts_unstable(field, tmp_path):
    recs = _recs([0.6, 0.61, 0.62])
    recs[-1][field] = float("nan")
    status, reason = classify(recs, 0.5, 0.6)
    assert status == "FAILED" and reason.startswith("NonFiniteLossError") and field in reason
    runs = [{"lr": 0.1, "length": 2, "loss_type": "grpo", "status": "OK", "reason": "", "summary": {}},
            {"lr": 0.2, "length": 2, "loss_type": "grpo", "status": status, "reason": reason, "summary": {}}]
    (b,) = brackets(runs)
    assert (b.lo, b.hi) == (0.1, 0.2)


# -- sweep lock --------------------------------------------------------------------------------------------------
HOLD = """
import sys, time
from gradgap.experiments.grpo.sweep import folder_lock
with folder_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_sweep_on_the_same_folder_exits_2_naming_the_first(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"locked"
        called = []
        with pytest.raises(SweepLockedError, match=f"pid {holder.pid}"):
            sweep(resolve_preset("tiny"), tmp_path, lrs=[0.1], lengths=[2], loss_types=["grpo"],
                  run_fn=lambda cfg, out: called.append(cfg) or RunResult("OK", "", {}), log=None,
                  show_progress=False)
        assert called == []  # the second sweep ran nothing
        pytest.importorskip("trl")
        argv = ["grpo", "sweep", "--preset", "tiny", "--lrs", "0.1", "--lengths", "2", "--out", str(tmp_path),
                "--no-progress"]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and f"pid {holder.pid}" in err and len(err) < 200
    finally:
        holder.kill()
        holder.wait()
    t0 = time.monotonic()  # killed holder: the kernel released the lock, the folder is free again
    recs = sweep(resolve_preset("tiny"), tmp_path, lrs=[0.1], lengths=[2], loss_types=["grpo"],
                 run_fn=lambda cfg, out: RunResult("OK", "", {}), log=None, show_progress=False)
    assert len(recs) == 1 and time.monotonic() - t0 < 10


# -- report ------------------------------------------------------------------------------------------------------
LRS = [2.0**k for k in range(-10, 1)]


def _write(tmp_path, law, *, optims=("sgd",), j0=lambda t: 0.6, safe=None, lengths=(2, 4, 8, 16)):
    for optim in optims:
        for lt in ("grpo", "dr_grpo"):
            for t in lengths:
                for s in (0, 1):
                    for lr in LRS:
                        status = "COLLAPSED" if lr > law(lt, t, s) else "OK"
                        summary = {"initial_eval_success": j0(t)}
                        if safe is not None:
                            summary["first_predicted_safe_lr"] = safe
                        append_record(tmp_path, {"key": f"{optim}-{lt}-{t}-{s}-{lr}", "lr": lr, "length": t,
                                                 "loss_type": lt, "scale_rewards": "group", "optim": optim,
                                                 "seed": s, "status": status, "reason": "", "summary": summary})


def _theory(lt, t, s):
    return 0.05 * (1.0 if lt == "grpo" else 2.0 / t) * (1.1 if s else 0.95)


def test_verdict_is_the_claims_evidence_and_adamw_is_kept_out_of_it(tmp_path):
    # SGD follows the prediction; AdamW follows the opposite law: it must not change the verdict
    _write(tmp_path, lambda lt, t, s, law=_theory: law(lt, t, s), optims=("sgd",))
    _write(tmp_path, lambda lt, t, s: 0.05 * (t / 2.0) * (1.1 if s else 0.95), optims=("adamw",))
    report, md = write_report(tmp_path, plots=False)
    assert isinstance(report.evidence, Evidence)
    assert report.evidence.status is Status.HOLDS and report.evidence.strength is Strength.TESTED
    assert report.verdict == "HOLDS"
    adam = [f for f in report.fits if f.group[2] == "adamw"]
    assert adam and all(f.predicted is None and f.verdict == "UNDECIDED" for f in adam)
    assert "AdamW, apart" in md.read_text()


def test_failing_sgd_law_is_fails_with_a_counterexample(tmp_path):
    _write(tmp_path, lambda lt, t, s: 0.05 * (2.0 / t) * (1.1 if s else 0.95))
    report = build_report(tmp_path)
    assert report.evidence.status is Status.FAILS and report.evidence.counterexample["loss_type"] == "grpo"


def test_unmatched_warm_starts_leave_the_group_undecided(tmp_path):
    _write(tmp_path, _theory, j0=lambda t: 0.6 + 0.01 * t)  # J0 from 0.62 to 0.76
    report = build_report(tmp_path)
    assert report.verdict == "UNDECIDED" and "warm starts not matched" in report.reason


def test_theorem1_safe_lr_is_set_against_the_critical_lr_per_cell(tmp_path):
    _write(tmp_path, _theory, safe=1e-4)
    report, md = write_report(tmp_path, plots=False)
    cells = [b for b in report.brackets if b.closed]
    assert cells and all(b.safe_lr == 1e-4 for b in cells)
    text = md.read_text()
    assert "Theorem 1 safe lr" in text and "critical / safe" in text
    ratio = cells[0].critical / 1e-4
    assert f"{ratio:.3g}" in text


# -- dry run and the length axis ---------------------------------------------------------------------------------
def test_dry_run_is_complete_multinode_versions_memory_and_probe_budget(capsys):
    assert main(["grpo", "run", "--preset", "qwen2.5-math-7b", "--dry-run", "--num-machines", "2"]) == 0
    text = capsys.readouterr().out
    for needle in ("--machine_rank $MACHINE_RANK", "--main_process_ip $MAIN_PROCESS_IP", "--main_process_port 29500",
                   "-m gradgap.proofs_check.cli", "H200-141GB", "A100-80GB", "trl: ", "accelerate: ", "vllm: ",
                   "budget 10%: OK"):
        assert needle in text, needle


def test_the_7b_default_cadence_keeps_the_probe_within_10_percent_of_a_step():
    from gradgap.experiments.grpo.presets import PROBE_BUDGET, compute_estimate

    cfg = resolve_preset("qwen2.5-math-7b")
    for world in (8, 16):
        share = compute_estimate(cfg, num_processes=world)["probe_share"]
        assert 0 < share <= PROBE_BUDGET
    # the same accounting at every step is far over budget: the check can fail
    assert compute_estimate(cfg.replace(gap_every=1), num_processes=8)["probe_share"] > PROBE_BUDGET


def test_dataset_presets_sweep_the_completion_budget_copy_keeps_one_budget():
    from gradgap.experiments.grpo.sweep import grid

    cells = grid(resolve_preset("qwen2.5-math-7b"), lrs=[1e-6], lengths=[256, 512, 1024], loss_types=["dr_grpo"])
    assert [c.effective_max_completion_length for c in cells] == [256, 512, 1024]
    tiny = grid(resolve_preset("tiny"), lrs=[0.1], lengths=[2, 4], loss_types=["dr_grpo"])
    assert {c.effective_max_completion_length for c in tiny} == {5}
