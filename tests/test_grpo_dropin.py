"""Drop-in use and real rewards: math-verify scoring, local datasets with a column mapping and a clean split, the
example script (TRL conventions + ``add_gradgap``) end to end on the tiny preset, and on a local JSON-lines math
set with math-verify rewards and a sampled held-out evaluation. CPU, no hub access.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("math_verify")

from gradgap.experiments.grpo.evaluation import load_local_math, math_verify_reward, score_answer
from gradgap.theory.instances import GradgapValueError

pytestmark = pytest.mark.llm
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("completion", "reference", "score"), [
    (r"so the answer is \boxed{\$18}", "18", 1.0),
    (r"The total is $18 \text{ dollars}$.", "18", 1.0),
    (r"\boxed{\frac12}", "0.5", 1.0),
    (r"we get $x = 3$", "3", 1.0),
    (r"\boxed{90^\circ}", "90", 1.0),
    (r"\boxed{10\%}", "10", 1.0),
    (r"\boxed{17}", "18", 0.0),
    ("no answer here", "5", 0.0),
])
def test_math_verify_scores_gsm8k_and_math_answers(completion, reference, score):
    assert score_answer(completion, reference) == score


def test_an_unparseable_reference_is_unscorable_as_in_trl():
    assert math_verify_reward([r"\boxed{3}", r"\boxed{3}"], ["", "3"]) == [None, 1.0]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_local_jsonl_with_column_mapping_is_split_without_overlap(tmp_path):
    rows = [{"question": f"What is {i} + {i}?", "solution": f"{i} + {i} = {2 * i}\n#### {2 * i:,}"}
            for i in range(200)]
    splits = load_local_math(_jsonl(tmp_path / "gsm.jsonl", rows), prompt_column="question",
                             answer_column="solution")
    train, test = splits["train"], splits["test"]
    assert len(train) + len(test) == 200 and 5 <= len(test) <= 40
    assert not set(train["prompt"]) & set(test["prompt"])
    assert train.column_names == ["prompt", "answer"] and "\\boxed{}" in train[0]["prompt"]
    assert {r["answer"] for r in test} <= {str(2 * i) for i in range(200)}  # '#### 1,024' -> '1024'


def test_a_folder_with_train_and_test_parquet_keeps_its_splits(tmp_path):
    from datasets import Dataset

    Dataset.from_list([{"problem": "1+1", "answer": "2"}] * 3).to_parquet(str(tmp_path / "train.parquet"))
    Dataset.from_list([{"problem": "2+2", "answer": "4"}] * 2).to_parquet(str(tmp_path / "test.parquet"))
    splits = load_local_math(tmp_path, prompt_column="problem")
    assert (len(splits["train"]), len(splits["test"])) == (3, 2)


def test_missing_columns_are_one_line_errors(tmp_path):
    with pytest.raises(GradgapValueError, match="prompt_column") as info:
        load_local_math(_jsonl(tmp_path / "x.jsonl", [{"q": "a", "answer": "1"}]))
    assert "\n" not in str(info.value)


def _example():
    spec = importlib.util.spec_from_file_location("grpo_gradgap_example", ROOT / "examples" / "grpo_gradgap.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve the annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


def _parse(mod, argv):
    from trl import GRPOConfig, ScriptArguments, TrlParser

    return TrlParser((ScriptArguments, GRPOConfig, mod.GradgapArguments)).parse_args_and_config(args=argv)


COMMON = ["--max_steps", "2", "--per_device_train_batch_size", "8", "--num_generations", "4",
          "--learning_rate", "0.02", "--optim", "sgd", "--lr_scheduler_type", "constant", "--bf16", "false",
          "--report_to", "none", "--logging_steps", "1", "--save_strategy", "no", "--disable_tqdm", "true",
          "--gradgap_gap_every", "1", "--gradgap_eval_every", "1", "--gradgap_constants_every", "1",
          "--dataloader_num_workers", "0", "--beta", "0.0", "--seed", "0"]


def test_example_script_runs_the_tiny_preset_with_the_callback(tmp_path):
    mod = _example()
    out = tmp_path / "run"
    trainer = mod.main(*_parse(mod, ["--output_dir", str(out), "--max_completion_length", "3",
                                     "--cache_dir", str(tmp_path / "cache"), *COMMON]))
    logged = {k for entry in trainer.state.log_history for k in entry}
    recs = [json.loads(x) for x in (out / "gradgap" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [1, 2]
    numeric = {k for r in recs for k, v in r.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    assert {"gradient_gap_norm", "alignment", "L_o", "G_o", "eval_success_rate", "update_norm"} <= numeric
    assert {f"gradgap/{k}" for k in numeric} <= logged, sorted({f"gradgap/{k}" for k in numeric} - logged)


def test_example_script_on_a_local_jsonl_math_set_with_math_verify_and_held_out_eval(tmp_path):
    from gradgap.experiments.grpo.presets import resolve_preset
    from gradgap.experiments.grpo.tiny import warm_started_model

    cfg = resolve_preset("tiny", length=2, cache_dir=str(tmp_path / "cache"))
    model, tok, _ = warm_started_model(cfg)
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    import random

    rng = random.Random(0)
    rows = []
    for _ in range(300):  # a "math set" the tiny model can read: the question is the digits, the answer them
        d = f"{rng.randrange(10)}{rng.randrange(10)}"
        rows.append({"question": d + "=", "solution": f"#### {d}"})
    data = _jsonl(tmp_path / "math.jsonl", rows)
    mod = _example()
    out = tmp_path / "run"
    trainer = mod.main(*_parse(mod, ["--output_dir", str(out), "--max_completion_length", "3",
                                     "--dataset_name", str(data), "--model", str(model_dir),
                                     "--prompt_column", "question", "--answer_column", "solution",
                                     "--instruction", "", "--eval_samples", "4", *COMMON]))
    recs = [json.loads(x) for x in (out / "gradgap" / "metrics.jsonl").read_text().splitlines()]
    assert len(recs) == 2 and trainer.state.global_step == 2
    last = recs[-1]
    assert all(0 < r["success_rate"] <= 1 for r in recs)  # math-verify scores the warm-started model's answers
    assert 0 <= last["eval_success_rate"] <= 1 and last["eval_samples_per_prompt"] == 4
    assert last["eval_success_se"] is not None and last["eval_success_se"] >= 0
    assert last["eval_prompts"] >= 5 and isinstance(last["eval_mean_prompt_log_odds"], float)
