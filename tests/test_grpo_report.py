"""The GRPO layer that needs no trl: configs and presets (bad input), the dry-run plan, the CLI's one-line errors,
``runs.jsonl`` writing, and the report's bracketing, length law and verdict on synthetic sweeps.
"""

from __future__ import annotations

import json
import math

import pytest

from gradgap.experiments.grpo.config import GrpoRunConfig, TinyModelSpec  # noqa: F401 (used by the eval table)
from gradgap.experiments.grpo.presets import resolve_preset
from gradgap.experiments.grpo.report import brackets, build_report, predicted_slope, write_report
from gradgap.experiments.grpo.sweep import append_record, read_records
from gradgap.proofs_check.cli import main
from gradgap.theory.instances import GradgapError, GradgapTypeError, GradgapValueError

INVALID = [
    ("resolve_preset('tinny')", "preset", GradgapValueError),
    ("resolve_preset('tiny', lr=0.0)", "lr", GradgapValueError),
    ("resolve_preset('tiny', lr=float('nan'))", "lr", GradgapValueError),
    ("resolve_preset('tiny', lr='big')", "lr", GradgapTypeError),
    ("resolve_preset('tiny', loss_type='dr_grop')", "loss_type", GradgapValueError),
    ("resolve_preset('tiny', scale_rewards='batch')", "scale_rewards", GradgapValueError),
    ("resolve_preset('tiny', optim='adam')", "optim", GradgapValueError),
    ("resolve_preset('tiny', length=0)", "length", GradgapValueError),
    ("resolve_preset('tiny', num_generations=1)", "num_generations", GradgapValueError),
    ("resolve_preset('tiny', length=4, max_completion_length=4)", "max_completion_length", GradgapValueError),
    ("resolve_preset('tiny', warm_start_target=1.0)", "warm_start_target", GradgapValueError),
    ("resolve_preset('tiny', gradient_accumulation_steps=3)", "gradient_accumulation_steps", GradgapValueError),
    ("resolve_preset('tiny', model='Qwen/Qwen2.5-0.5B')", "model", GradgapValueError),
    ("resolve_preset('tiny', bogus=1)", "overrides", GradgapValueError),
    ("TinyModelSpec(hidden_size=10, num_heads=4)", "hidden_size", GradgapValueError),
    ("GrpoRunConfig.from_dict({'preset': 'tiny', 'lr': 1.0, 'length': 2, 'extra': 1})", "config",
     GradgapValueError),
]


@pytest.mark.parametrize(("call", "field", "cls"), INVALID, ids=[c[0] for c in INVALID])
def test_bad_config_raises_one_line_error_naming_the_field(call, field, cls):
    with pytest.raises(cls) as info:
        eval(call)  # the table holds trusted literal calls
    assert info.value.field == field
    assert "\n" not in str(info.value) and str(info.value).startswith(f"{field}=")


def test_config_round_trips_through_json():
    cfg = resolve_preset("tiny", lr=0.1, length=3)
    assert GrpoRunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_unknown_preset_suggests_the_close_name():
    with pytest.raises(GradgapValueError, match="did you mean 'tiny'"):
        resolve_preset("tiyn")


def test_dry_run_of_the_7b_preset_prints_the_full_plan(capsys):
    assert main(["grpo", "run", "--preset", "qwen2.5-math-7b", "--dry-run"]) == 0
    text = capsys.readouterr().out
    for needle in ("accelerate launch --config_file configs/accelerate/fsdp2_1x8.yaml", "Qwen/Qwen2.5-Math-7B",
                   '"loss_type": "grpo"', "memory per GPU", "total_gib", "gpu_hours_per_run", "DeepSpeed"):
        assert needle in text, needle
    assert main(["grpo", "run", "--preset", "qwen2.5-math-7b", "--dry-run", "--num-machines", "4"]) == 0
    assert "fsdp2_multinode.yaml --num_machines 4 --num_processes 32" in capsys.readouterr().out


def _section(text, title):
    """The JSON block under the ``## title`` heading of a plan."""
    body = text.split(f"## {title}", 1)[1].split("\n", 1)[1]
    return json.loads(body.split("\n\n", 1)[0].rsplit("}", 1)[0] + "}")


def test_dry_run_plan_is_complete_for_a_multi_node_7b_run(capsys):
    from gradgap.experiments.grpo.presets import GPU_TYPES, PROBE_BUDGET, compute_estimate

    assert main(["grpo", "run", "--preset", "qwen2.5-math-7b", "--dry-run", "--num-machines", "2"]) == 0
    text = capsys.readouterr().out
    command = text.split("## command\n", 1)[1].split("\n", 1)[0]
    for flag in ("--num_machines 2", "--num_processes 16", "--machine_rank $MACHINE_RANK",
                 "--main_process_ip $MAIN_PROCESS_IP", "--main_process_port"):
        assert flag in command, flag
    versions = text.split("## installed versions", 1)[1]
    for package in ("trl", "vllm", "accelerate"):
        assert f"\n{package}: " in versions, package
    table = _section(text, "memory per GPU type")
    assert set(table) == set(GPU_TYPES) and all("total_gib" in row and "fits" in row for row in table.values())
    share = float(text.split("of a step's FLOPs")[0].rsplit(": ", 1)[1].strip().rstrip("%")) / 100
    assert share <= PROBE_BUDGET == 0.10 and "budget 10%: OK" in text
    cfg = resolve_preset("qwen2.5-math-7b")
    assert compute_estimate(cfg, num_processes=16)["probe_share"] <= 0.10
    every_step = resolve_preset("qwen2.5-math-7b", gap_every=1)  # the cadence is what keeps it in budget
    assert compute_estimate(every_step, num_processes=16)["probe_share"] > 0.10


@pytest.mark.parametrize("argv", [
    ["grpo", "run", "--preset", "tinny", "--out", "x"],
    ["grpo", "sweep", "--preset", "tiny", "--lrs", "0.1,big", "--lengths", "2", "--out", "x"],
    ["grpo", "sweep", "--preset", "tiny", "--lrs", "0.1", "--lengths", "2", "--loss-types", "ppo", "--out", "x"],
    ["grpo", "run", "--preset", "tiny"],
    ["grpo", "report", "no/such/dir"],
], ids=lambda a: " ".join(a))
def test_cli_bad_input_is_one_line_and_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gradgap grpo: error: ") and "\n" not in err


def test_missing_llm_extra_is_a_clear_one_line_error(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trl" else real(name, *a))
    assert main(["grpo", "run", "--preset", "tiny", "--out", "x"]) == 2
    assert "pip install 'gradgap[llm]'" in capsys.readouterr().err


def test_append_record_writes_whole_lines_and_a_torn_tail_is_dropped(tmp_path):
    for i in range(3):
        append_record(tmp_path, {"key": f"k{i}", "status": "OK"})
    with open(tmp_path / "runs.jsonl", "ab") as fh:
        fh.write(b'{"key": "k3", "sta')
    assert [r["key"] for r in read_records(tmp_path)] == ["k0", "k1", "k2"]
    read_records(tmp_path, repair=True)
    append_record(tmp_path, {"key": "k3", "status": "OK"})
    assert [r["key"] for r in read_records(tmp_path)] == ["k0", "k1", "k2", "k3"]


# -- the report on synthetic sweeps ----------------------------------------------------------------------------
LRS = [2.0**k for k in range(-10, 1)]


def _write_sweep(tmp_path, law, *, lengths=(2, 4, 8, 16), seeds=(0, 1), loss_types=("grpo", "dr_grpo")):
    """runs.jsonl where the run collapses iff lr > law(loss_type, T, seed)."""
    for lt in loss_types:
        for t in lengths:
            for s in seeds:
                for lr in LRS:
                    crit = law(lt, t, s)
                    status = "COLLAPSED" if lr > crit else "OK"
                    append_record(tmp_path, {"key": f"{lt}-{t}-{s}-{lr}", "lr": lr, "length": t, "loss_type": lt,
                                             "scale_rewards": "group", "optim": "sgd", "seed": s,
                                             "status": status, "reason": "", "summary":
                                             {"initial_eval_success": 0.6}})


def _theory_law(lt, t, s):
    return 0.05 * (1.0 if lt == "grpo" else 2.0 / t) * (1.1 if s else 0.95)


def test_report_passes_when_critical_lr_follows_the_predicted_length_law(tmp_path):
    _write_sweep(tmp_path, _theory_law)
    report, md = write_report(tmp_path)
    assert report.verdict == "HOLDS", report.reason
    fits = {f.group[0]: f for f in report.fits}
    assert fits["dr_grpo"].interval[0] <= -1 <= fits["dr_grpo"].interval[1]
    assert fits["grpo"].interval[0] <= 0 <= fits["grpo"].interval[1]
    text = md.read_text()
    assert "# GRPO sweep report: HOLDS" in text
    for png in ("critical_lr_vs_length.png", "success_trajectories.png"):
        assert (tmp_path / png).stat().st_size > 1000
    assert main(["grpo", "report", str(tmp_path), "--no-plots"]) == 0


def test_report_fails_when_the_normalised_loss_still_depends_on_length(tmp_path):
    _write_sweep(tmp_path, lambda lt, t, s: 0.05 * (2.0 / t) * (1.1 if s else 0.95))
    report = build_report(tmp_path)
    assert report.verdict == "FAILS" and "grpo" in report.reason


def test_report_is_inconclusive_with_one_length_or_open_brackets(tmp_path):
    _write_sweep(tmp_path, _theory_law, lengths=(4,))
    report = build_report(tmp_path)
    assert report.verdict == "UNDECIDED" and "need at least 2" in report.reason
    assert main(["grpo", "report", str(tmp_path), "--no-plots"]) == 1


def test_brackets_treat_nan_loss_as_unstable_and_skip_other_failures():
    runs = [
        {"lr": 0.1, "length": 2, "loss_type": "grpo", "status": "OK", "reason": "", "summary": {}},
        {"lr": 0.2, "length": 2, "loss_type": "grpo", "status": "FAILED", "reason": "RewardFunctionError: x",
         "summary": {}},
        {"lr": 0.4, "length": 2, "loss_type": "grpo", "status": "FAILED",
         "reason": "NonFiniteLossError: loss=nan", "summary": {}},
        {"lr": 0.8, "length": 2, "loss_type": "grpo", "status": "OK", "reason": "", "summary": {}},
    ]
    (b,) = brackets(runs)
    assert (b.lo, b.hi, b.non_monotone) == (0.1, 0.4, True)
    assert b.critical == pytest.approx(math.sqrt(0.04))


def test_predicted_slopes():
    assert predicted_slope("dr_grpo") == -1.0
    assert [predicted_slope(x) for x in ("grpo", "dapo", "bnpo")] == [0.0, 0.0, 0.0]


def test_grpo_errors_are_gradgap_errors():
    from gradgap.experiments.grpo.run import MissingExtraError

    assert issubclass(MissingExtraError, GradgapError)


@pytest.mark.parametrize(("completion", "answer", "reward"), [
    (r"... so the total is \boxed{72}.", "72", 1.0),
    (r"\boxed{\frac{3}{4}}", "0.75", 1.0),
    (r"\boxed{\dfrac{3}{4}}", "3/4", 1.0),
    ("The answer is 1,024", "1024", 1.0),
    (r"\boxed{71}", "72", 0.0),
    ("no number at all", "5", 0.0),
    (r"\boxed{x^2 + 1}", "x^2+1", 1.0),
])
def test_math_reward_is_a_binary_final_answer_check(completion, answer, reward):
    from gradgap.experiments.grpo.run import math_reward

    assert math_reward(["q"], [completion], [answer]) == [reward]
