r"""One GRPO run with the probe: build model, task and TRL trainer from a :class:`GrpoRunConfig`, train, classify.

Reads top to bottom: options -> model and data -> trainer with probe -> train -> summary and status.

**Collapse rule** (:func:`classify`). With :math:`J_0` the evaluation success rate before step 1, :math:`J_k`
the evaluated ones, :math:`c` = ``collapse_fraction`` (1/2) and :math:`H` = ``collapse_horizon`` (100 steps), a
finished run is ``COLLAPSED`` when either

- **drop**: :math:`\min_k J_k < c\,J_0` at any evaluation (not only the last: a run that fell and recovered is
  unstable), or
- **rate**: the least-squares slope :math:`r` of the evaluation log-odds :math:`\ell_k` against the step is
  negative and :math:`(\ell(J_0) - \ell(cJ_0))/|r| \le H`, i.e. at the rate the run lost success it would have
  fallen below :math:`cJ_0` within :math:`H` steps.

The rate part makes the rule independent of the run's length: a 20-step run that lost 43 % is losing at a rate
that halves :math:`J` in about 25 steps, and counts unstable; a run drifting down by 1 % is not. For dataset
presets without an exact evaluation, the per-step batch success rates stand in for :math:`J_k` (first quarter's
mean for :math:`J_0`).
A NaN or infinite loss, a reward function that raises, or a bad dataset stops the run with a
:class:`~gradgap.theory.instances.GradgapError`
(a sweep records it ``FAILED`` with the reason; for bracketing, the report
counts a non-finite loss as unstable).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

from gradgap.experiments.grpo.config import GrpoRunConfig
from gradgap.proofs_check.atomic import atomic_write_text
from gradgap.theory.instances import GradgapError, GradgapValueError

__all__ = ["RunResult", "classify", "copy_reward", "math_reward", "require_llm", "run_one", "trl_options"]

STATUSES = ("OK", "COLLAPSED", "FAILED")


class MissingExtraError(GradgapError):
    """The optional ``llm`` extra (trl, transformers, accelerate, datasets) is not installed."""


def require_llm() -> None:
    """Raise a one-line :class:`MissingExtraError` unless trl and its companions import."""
    import importlib.util

    missing = [m for m in ("trl", "transformers", "accelerate", "datasets", "tokenizers")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(f"modules={missing}: the grpo commands need the optional extra; install it with "
                                "pip install 'gradgap[llm]'", field="modules", value=missing)


def trl_options(cfg: GrpoRunConfig, *, output_dir: str, num_processes: int = 1) -> dict[str, Any]:
    """The ``trl.GRPOConfig`` keyword arguments for ``cfg`` (plain dict; no trl import)."""
    per_device = cfg.batch_size // cfg.gradient_accumulation_steps // max(num_processes, 1)
    return {
        "output_dir": output_dir,
        "learning_rate": cfg.lr,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "max_steps": cfg.steps,
        "per_device_train_batch_size": max(per_device, 1),
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "num_generations": cfg.num_generations,
        "max_completion_length": cfg.effective_max_completion_length,
        "loss_type": cfg.loss_type,
        "scale_rewards": cfg.scale_rewards,
        "optim": {"sgd": "sgd", "adamw": "adamw_torch"}[cfg.optim],
        "weight_decay": 0.0,
        "max_grad_norm": cfg.max_grad_norm,
        "temperature": cfg.temperature,
        "top_p": 1.0,
        "top_k": 0,
        "beta": cfg.beta,
        "epsilon": cfg.epsilon,
        "num_iterations": 1,
        "seed": cfg.seed,
        "bf16": cfg.dtype == "bfloat16",
        "fp16": False,
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "use_vllm": cfg.use_vllm,
        **({"vllm_mode": "colocate"} if cfg.use_vllm else {}),
        "report_to": cfg.report_to,
        "logging_steps": cfg.logging_steps,
        **({"save_strategy": "steps", "save_steps": cfg.save_every, "save_total_limit": 2}
           if cfg.save_every else {"save_strategy": "no"}),
        "disable_tqdm": True,
        "log_completions": False,
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": False,  # the batches are strings; pinning buys nothing
    }


# -- rewards ----------------------------------------------------------------------------------------------------
def copy_reward(prompts: Sequence[str], completions: Sequence[str], completion_ids: Sequence[Sequence[int]],
                answer: Sequence[str], **_: Any) -> list[float]:
    """1.0 iff the completion is exactly the answer digits followed by the end of sequence."""
    from gradgap.experiments.grpo.tiny import CopyTask

    return CopyTask.reward(prompts, completions, completion_ids, answer)


_BOXED = re.compile(r"\\boxed\{")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")


def extract_answer(text: str) -> str | None:
    r"""The last ``\boxed{...}`` content (braces balanced), else the last number in ``text``.

    >>> extract_answer(r"so \boxed{\frac{1}{2}} done"), extract_answer("it is 1,024.")
    ('\\frac{1}{2}', '1024')
    """
    starts = [m.end() for m in _BOXED.finditer(text)]
    if starts:
        i, depth, j = starts[-1], 1, starts[-1]
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        if depth == 0:
            return text[i : j - 1].strip()
    nums = _NUMBER.findall(text)
    return nums[-1].replace(",", "") if nums else None


def _as_number(s: str) -> Fraction | None:
    s = s.replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    m = re.fullmatch(r"\\[dt]?frac\{(-?\d+)\}\{(\d+)\}", s)
    if m:
        return Fraction(int(m.group(1)), int(m.group(2)))
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def answers_match(predicted: str | None, reference: str) -> bool:
    """Exact rational equality when both parse as numbers, else whitespace-free string equality."""
    if predicted is None:
        return False
    a, b = _as_number(predicted), _as_number(reference)
    if a is not None and b is not None:
        return a == b
    return predicted.replace(" ", "") == reference.replace(" ", "")


def math_reward(prompts: Sequence[str], completions: Sequence[str], answer: Sequence[str], **_: Any) -> list[float]:
    """Binary math verification: the extracted final answer equals the reference answer."""
    return [1.0 if answers_match(extract_answer(c), a) else 0.0 for c, a in zip(completions, answer, strict=True)]


# -- data ---------------------------------------------------------------------------------------------------------
REQUIRED_COLUMNS = ("prompt", "answer")


def check_columns(dataset: Any) -> None:
    """Raise unless the dataset has the ``prompt`` and ``answer`` columns the reward functions need."""
    cols = list(getattr(dataset, "column_names", None) or [])
    missing = [c for c in REQUIRED_COLUMNS if c not in cols]
    if missing:
        raise GradgapValueError(f"dataset columns={cols}: missing {missing}; a GRPO dataset needs 'prompt' (text) "
                                "and 'answer' (reference for the verifier)", field="dataset", value=cols)


#: hub datasets of the dataset presets: (path, config, train split, test split, question column, answer column).
#: MATH trains on the 7.5k training problems and evaluates on MATH-500 (a subset of MATH's test split), never
#: training on the test split
HUB_DATASETS: Final[dict[str, tuple[tuple[str, str | None, str, str, str], tuple[str, str | None, str, str, str]]]] = {
    "gsm8k": (("openai/gsm8k", "main", "train", "question", "answer"), ("openai/gsm8k", "main", "test", "question",
                                                                          "answer")),
    "math": (("DigitalLearningGmbH/MATH-lighteval", None, "train", "problem", "solution"),
             ("HuggingFaceH4/MATH-500", None, "test", "problem", "answer")),
}


def load_math_dataset(cfg: GrpoRunConfig):
    """``{"train", "test"}`` with ``prompt`` / ``answer``: ``cfg.dataset_path`` (local) or the hub datasets of
    :data:`HUB_DATASETS` (they must be in the HF cache: no download where there is no network)."""
    from gradgap.experiments.grpo.evaluation import INSTRUCTION, _reference, load_local_math

    if cfg.dataset_path:
        splits = load_local_math(cfg.dataset_path, prompt_column=cfg.prompt_column, answer_column=cfg.answer_column)
    else:
        from datasets import load_dataset

        splits = {}
        try:
            for name, (path, conf, split, qcol, acol) in zip(("train", "test"), HUB_DATASETS[cfg.task], strict=True):
                raw = load_dataset(path, conf, split=split)
                extract = (lambda t: t) if acol == "answer" and path.endswith("MATH-500") else _reference
                if acol == "solution":  # MATH solutions: the reference is the last boxed answer
                    extract = _boxed_or_text
                splits[name] = raw.map(lambda r, q=qcol, a=acol, f=extract: {"prompt": r[q] + INSTRUCTION,
                                                                             "answer": f(r[a])},
                                       remove_columns=raw.column_names)
        except Exception as exc:
            raise GradgapValueError(f"task={cfg.task!r}: dataset could not be loaded ({type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0][:120]})", field="task", value=cfg.task) from exc
    if cfg.dataset_size:
        splits["train"] = splits["train"].select(range(min(cfg.dataset_size, len(splits["train"]))))
    return splits


def _boxed_or_text(text: str) -> str:
    got = extract_answer(text)
    return got if got is not None else text


@dataclass
class Built:
    """Model, tokenizer, data, rewards and evaluator of a run."""

    model: Any
    tokenizer: Any
    train_dataset: Any
    reward_funcs: list[Callable[..., list[float]]]
    evaluator: Callable[[Any], Any] | None
    info: dict[str, Any] = field(default_factory=dict)


def build(cfg: GrpoRunConfig, *, log: Callable[[str], None] | None = None) -> Built:
    """Model, tokenizer, data, reward and exact evaluator for ``cfg`` (tiny: local; dataset presets: HF cache)."""
    from datasets import Dataset

    if cfg.model == "tiny":
        from gradgap.experiments.grpo.tiny import CopyTask, success_probability, warm_started_model

        model, tok, info = warm_started_model(cfg, log=log)
        task = CopyTask(cfg.length, cfg.seed)
        n_train = max(64, cfg.steps * cfg.prompts_per_step * 2)
        ds = Dataset.from_list(task.rows(n_train, split="train"))
        eval_ids, plen = task.encode(tok, task.rows(cfg.eval_prompts, split="eval"))

        def evaluator(m):
            return success_probability(m, eval_ids.to(m.device), plen, temperature=cfg.temperature)

        return Built(model, tok, ds, [copy_reward], evaluator, info)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}[cfg.dtype]
    try:
        tok = AutoTokenizer.from_pretrained(cfg.model)
        model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=dtype)
    except Exception as exc:
        raise GradgapValueError(f"model={cfg.model!r}: could not be loaded ({type(exc).__name__}); is it in the HF "
                                "cache (HF_HUB_OFFLINE) or a local path?", field="model", value=cfg.model) from exc
    from gradgap.experiments.grpo.evaluation import math_verify_reward, sampled_evaluator

    splits = load_math_dataset(cfg)
    evaluator = sampled_evaluator(tok, splits["test"], n=cfg.eval_samples,
                                  max_new_tokens=cfg.effective_max_completion_length,
                                  temperature=cfg.temperature, max_prompts=cfg.eval_prompts, seed=cfg.seed)
    return Built(model, tok, splits["train"], [math_verify_reward], evaluator, {})


# -- one run ------------------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    """Outcome of one run: status ``OK`` / ``COLLAPSED`` / ``FAILED``, the reason, summary figures."""

    status: str
    reason: str
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "summary": self.summary}


#: record fields that must stay finite: a NaN there (``nan < x`` is false) must never classify a run as OK
FINITE_FIELDS = ("success_rate", "eval_success_rate", "grad_norm_clipped", "update_norm", "gradient_gap_norm")


def non_finite(records: Sequence[dict[str, Any]]) -> str | None:
    """The first ``step:field=value`` of a non-finite figure in the records, or ``None``."""
    for r in records:
        for key in FINITE_FIELDS:
            v = r.get(key)
            if isinstance(v, float) and not math.isfinite(v):
                return f"step {r.get('step')}: {key}={v}"
    return None


def _log_odds(j: float) -> float:
    j = min(max(j, 1e-12), 1 - 1e-12)
    return math.log(j) - math.log1p(-j)


def classify(records: Sequence[dict[str, Any]], collapse_fraction: float,
             initial_eval: float | None = None, *, horizon: int = 100) -> tuple[str, str]:
    """Apply the collapse rule (module docstring) to a run's metric records; ``initial_eval`` is J before step 1.

    A non-finite figure anywhere (the loss, the gradient or the evaluation turned NaN, also at the last step) is
    ``FAILED`` with a reason starting ``NonFiniteLossError`` (counted unstable by the report).

    >>> classify([{"step": k, "eval_success_rate": 0.6 - 0.013 * k} for k in range(1, 21)], 0.5, 0.6)[0]
    'COLLAPSED'
    >>> classify([{"step": k, "eval_success_rate": 0.6 - 0.0003 * k} for k in range(1, 21)], 0.5, 0.6)[0]
    'OK'
    """
    if not records:
        return "FAILED", "no optimisation step finished"
    bad = non_finite(records)
    if bad is not None:
        return "FAILED", f"NonFiniteLossError: non-finite training ({bad})"
    points = [(0, initial_eval)] if initial_eval is not None else []
    points += [(r["step"], r["eval_success_rate"]) for r in records
               if isinstance(r.get("eval_success_rate"), int | float)]
    what = "eval success"
    if initial_eval is None or len(points) < 2:
        q = max(1, len(records) // 4)
        j0 = sum(r.get("success_rate", 0.0) for r in records[:q]) / q
        points = [(r["step"], r.get("success_rate", 0.0)) for r in records]
        what = "batch success"
    else:
        j0 = initial_eval
    jmin = min(j for _, j in points)
    jk = points[-1][1]
    if jmin < collapse_fraction * j0:
        return "COLLAPSED", f"{what} {j0:.3g} -> min {jmin:.3g} < {collapse_fraction:g} x initial (drop)"
    if len(points) >= 2 and 0 < j0 < 1 and collapse_fraction > 0:
        xs = [float(k) for k, _ in points]
        ys = [_log_odds(j) for _, j in points]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        rate = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx > 0 else 0.0
        if rate < 0:
            steps_to_drop = (_log_odds(j0) - _log_odds(collapse_fraction * j0)) / -rate
            if steps_to_drop <= horizon:
                return "COLLAPSED", (f"{what} {j0:.3g} -> {jk:.3g}; log-odds fall {rate:.3g}/step: below "
                                     f"{collapse_fraction:g} x initial in {steps_to_drop:.0f} <= {horizon} steps "
                                     "(rate)")
    return "OK", f"{what} {j0:.3g} -> {jk:.3g}"


def summarise(records: Sequence[dict[str, Any]], info: dict[str, Any],
              initial_eval: float | None = None) -> dict[str, Any]:
    """Summary figures of a run for ``runs.jsonl`` and the report."""
    def vals(key: str) -> list[float]:
        return [r[key] for r in records if isinstance(r.get(key), int | float)]

    ev = vals("eval_success_rate")
    first = records[0] if records else {}
    j0 = initial_eval
    gaps, aligns, safe = vals("gradient_gap_norm"), vals("alignment"), vals("predicted_safe_lr")
    times = vals("time_s")
    return {
        "steps_done": len(records),
        "initial_eval_success": j0,
        "final_eval_success": ev[-1] if ev else None,
        "min_eval_success": min(ev) if ev else None,
        "initial_batch_success": first.get("success_rate"),
        "mean_gradient_gap_norm": sum(gaps) / len(gaps) if gaps else None,
        "mean_alignment": sum(aligns) / len(aligns) if aligns else None,
        "first_predicted_safe_lr": safe[0] if safe else None,
        "seconds_per_step": (times[-1] / len(times)) if times else None,
        "warm_start": {k: info.get(k) for k in ("warm_start_steps", "warm_start_success", "cache_hit")},
    }


def _write_json_atomic(path: Path, data: Any) -> None:
    """Atomic JSON write (unique temporary name: pid + random, fsync, rename)."""

    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True, default=str))


def _is_main_process() -> bool:
    """Rank 0 of accelerate's state (``PartialState``): the only process that writes a run's files."""
    from accelerate import PartialState

    return bool(PartialState().is_main_process)


def _num_processes() -> int:
    """Processes the trainer will use, from accelerate's state (not ``WORLD_SIZE``)."""
    from accelerate import PartialState

    return int(PartialState().num_processes)


PROBE_STATE = "probe_state.json"


def _last_complete_checkpoint(trl: Path) -> str | None:
    """The newest ``checkpoint-<step>`` in ``trl`` whose ``trainer_state.json`` parses. TRL writes that file last,
    so a run killed while saving leaves a newer folder without it, or with it torn: such a folder is skipped
    (``transformers``' ``get_last_checkpoint`` would pick it, and resuming from it fails)."""
    steps = sorted(((int(m.group(1)), d) for d in trl.iterdir()
                    if d.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", d.name))), reverse=True)
    for _, d in steps:
        try:
            json.loads((d / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        return str(d)
    return None


def _resume_point(cfg: GrpoRunConfig, out: Path) -> tuple[str | None, int | None, list[dict[str, Any]], Any]:
    """``(checkpoint, step, metric records up to it, initial eval)`` of an interrupted run in ``out``, or Nones.

    A run resumes when checkpoints are on, TRL left a complete ``checkpoint-<step>`` in ``out/trl``
    (:func:`_last_complete_checkpoint`) and the probe's initial evaluation was saved (``probe_state.json``)."""
    if not cfg.save_every or not (out / "trl").is_dir():
        return None, None, [], None
    ckpt = _last_complete_checkpoint(out / "trl")
    state = out / PROBE_STATE
    if ckpt is None or not state.is_file():
        return None, None, [], None
    step = int(Path(ckpt).name.rsplit("-", 1)[-1])
    kept = []
    metrics = out / "metrics.jsonl"
    if metrics.is_file():
        for line in metrics.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line
            if isinstance(rec.get("step"), int) and rec["step"] <= step:
                kept.append(rec)
    if [r["step"] for r in kept] != list(range(1, step + 1)):
        return None, None, [], None  # the metrics do not cover the checkpoint: start again from scratch
    initial = json.loads(state.read_text()).get("initial_eval")
    return ckpt, step, kept, initial


def run_one(cfg: GrpoRunConfig, out: str | os.PathLike, *, reward_funcs: list[Callable] | None = None,
            train_dataset: Any = None, on_gap: Callable[..., None] | None = None,
            progress: Callable[[dict], None] | None = None, log: Callable[[str], None] | None = None,
            quiet: bool = False) -> RunResult:
    """Train ``cfg`` with TRL's ``GRPOTrainer`` and the probe; write ``OUT/metrics.jsonl``, ``config.json``,
    ``summary.json``. Raises :class:`~gradgap.theory.instances.GradgapError` for bad input or a failed run (NaN loss,
    raising reward function); returns the status (``OK`` or ``COLLAPSED``) otherwise.

    ``reward_funcs`` / ``train_dataset`` replace the task's (tests use them to check the error paths);
    ``quiet`` silences TRL's console printer and transformers' progress bars (sweeps), not ``report_to``.
    """
    require_llm()
    import torch
    from transformers.utils import logging as hf_logging

    threads_before, bars_before = torch.get_num_threads(), hf_logging.is_progress_bar_enabled()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if quiet:
        hf_logging.disable_progress_bar()
    try:
        return _train(cfg, Path(out), reward_funcs=reward_funcs, train_dataset=train_dataset, on_gap=on_gap,
                      progress=progress, log=log, quiet=quiet)
    finally:  # leave the process as it was (tests run many configurations in one process)
        torch.set_num_threads(threads_before)
        if bars_before:
            hf_logging.enable_progress_bar()


def _train(cfg: GrpoRunConfig, out: Path, *, reward_funcs, train_dataset, on_gap, progress, log,
           quiet: bool) -> RunResult:
    import warnings

    import torch
    from transformers import PrinterCallback, ProgressCallback
    from trl import GRPOConfig

    from gradgap.experiments.grpo.probe import GradgapGRPOTrainer, GradgapProbe

    out = Path(out)
    main = _is_main_process()
    if not main:  # one voice per run: the other processes neither print nor write
        log = progress = None
    metrics = out / "metrics.jsonl"
    checkpoint, resume_step, kept, initial = _resume_point(cfg, out)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(out / "config.json", cfg.to_dict())
        if checkpoint is None and metrics.exists():
            metrics.unlink()
        elif checkpoint is not None:  # keep the steps up to the checkpoint; later ones are trained again

            atomic_write_text(metrics, "".join(json.dumps(r, allow_nan=False) + "\n" for r in kept))
        if log is not None and checkpoint is not None:
            log(f"resuming from {Path(checkpoint).name} (step {resume_step})")
    t0 = time.perf_counter()
    built = build(cfg, log=log)
    ds = train_dataset if train_dataset is not None else built.train_dataset
    check_columns(ds)
    rewards = reward_funcs if reward_funcs is not None else built.reward_funcs
    num_processes = _num_processes()
    with warnings.catch_warnings():  # transformers 5 renames gradient_checkpointing; TRL still sets the old name
        warnings.simplefilter("ignore", FutureWarning)
        args = GRPOConfig(**trl_options(cfg, output_dir=str(out / "trl"), num_processes=num_processes))
    probe = GradgapProbe(metrics, optim=cfg.optim, update_route=cfg.update_route, gap_every=cfg.gap_every,
                         eval_every=cfg.eval_every,
                         constants_every=cfg.constants_every, constants_samples=cfg.constants_samples,
                         temperature=cfg.temperature, evaluator=built.evaluator, on_gap=on_gap, progress=progress,
                         state_path=out / PROBE_STATE)
    if checkpoint is not None:
        probe.resume(kept, initial)
    torch.manual_seed(cfg.seed)
    trainer = GradgapGRPOTrainer(model=built.model, reward_funcs=rewards, args=args, train_dataset=ds,
                                 processing_class=built.tokenizer, callbacks=[probe])
    probe.attach(trainer)
    if quiet:
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
    t_train = time.perf_counter()
    try:
        if resume_step is None or resume_step < cfg.steps:  # a checkpoint at the last step: nothing left to train
            trainer.train(resume_from_checkpoint=checkpoint)
    finally:
        probe.close()
    records = probe.records
    j0 = probe.initial_eval[0] if probe.initial_eval is not None else None
    status, reason = classify(records, cfg.collapse_fraction, j0, horizon=cfg.collapse_horizon)
    summary = summarise(records, built.info, j0)
    summary["setup_seconds"] = t_train - t0
    summary["train_seconds"] = time.perf_counter() - t_train
    summary["resumed_from_step"] = resume_step
    result = RunResult(status, reason, summary)
    if main:
        _write_json_atomic(out / "summary.json", result.to_dict())
    return result
