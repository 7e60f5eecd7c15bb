r"""One frozen configuration for one GRPO measurement run, mirroring the TRL options it sets.

Notation (paper symbol -> field):

=====================  ==========================  ===============================================
paper                  here                        TRL option mirrored
=====================  ==========================  ===============================================
:math:`\eta`           ``lr``                      ``GRPOConfig.learning_rate`` (constant schedule)
:math:`T`              ``length``                  answer length of the task (tiny presets)
:math:`G`              ``num_generations``         ``GRPOConfig.num_generations``
prompts per step       ``prompts_per_step``        ``per_device_train_batch_size = P * G / world``
aggregation            ``loss_type``               ``GRPOConfig.loss_type``
std scaling            ``scale_rewards``           ``GRPOConfig.scale_rewards``
=====================  ==========================  ===============================================

This module imports neither torch nor trl: the dry run of a large preset and the command line use it on the
core install.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Final, final

from gradgap.theory.instances import GradgapTypeError, GradgapValueError

__all__ = [
    "LOSS_TYPES",
    "OPTIMS",
    "SCALE_REWARDS",
    "GrpoRunConfig",
    "TinyModelSpec",
    "config_hash",
]

#: loss aggregations the probe understands (TRL names); see docs/grpo.md for their normalisers
LOSS_TYPES: Final[tuple[str, ...]] = ("grpo", "dr_grpo", "dapo", "bnpo")
#: reward scalings (TRL names): ``group`` divides by the Bessel-corrected group std, ``none`` does not
SCALE_REWARDS: Final[tuple[str, ...]] = ("group", "none")
#: optimisers: ``sgd`` -> TRL ``optim="sgd"`` (plain SGD, no momentum); ``adamw`` -> ``optim="adamw_torch"``
OPTIMS: Final[tuple[str, ...]] = ("sgd", "adamw")
DTYPES: Final[tuple[str, ...]] = ("float32", "float64", "bfloat16")
TASKS: Final[tuple[str, ...]] = ("copy", "gsm8k", "math")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str):
        raise GradgapTypeError(f"{name}={value!r}: must be a string, one of {', '.join(choices)}",
                               field=name, value=value)
    if value not in choices:
        import difflib

        close = difflib.get_close_matches(value, choices, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise GradgapValueError(f"{name}={value!r}: unknown; choose one of {', '.join(choices)}{hint}",
                                field=name, value=value)


def _check_int(name: str, value: Any, lo: int, hi: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GradgapTypeError(f"{name}={value!r}: must be an integer", field=name, value=value)
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise GradgapValueError(f"{name}={value!r}: must be {rng}", field=name, value=value)


def _check_float(name: str, value: Any, *, lo: float, hi: float = math.inf, lo_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GradgapTypeError(f"{name}={value!r}: must be a number", field=name, value=value)
    x = float(value)
    bad = not math.isfinite(x) or x > hi or x < lo or (lo_open and x == lo)
    if bad:
        left = "(" if lo_open else "["
        raise GradgapValueError(f"{name}={value!r}: must be finite and in {left}{lo}, {hi}]", field=name, value=value)


@final
@dataclass(frozen=True)
class TinyModelSpec:
    """Size of a Qwen2-architecture model built from a config (no hub download)."""

    #: width d of the residual stream (``Qwen2Config.hidden_size``)
    hidden_size: int = 96
    #: number of decoder layers (``num_hidden_layers``)
    num_layers: int = 2
    #: attention heads (``num_attention_heads``); must divide ``hidden_size``
    num_heads: int = 4
    #: key/value heads (``num_key_value_heads``, grouped-query attention); must divide ``num_heads``
    num_kv_heads: int = 2
    #: MLP width (``intermediate_size``)
    intermediate_size: int = 256

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size"):
            _check_int(name, getattr(self, name), 1)
        if self.hidden_size % self.num_heads:
            raise GradgapValueError(f"hidden_size={self.hidden_size}: must be divisible by num_heads={self.num_heads}",
                                    field="hidden_size", value=self.hidden_size)
        if self.num_heads % self.num_kv_heads:
            raise GradgapValueError(f"num_heads={self.num_heads}: must be divisible by num_kv_heads="
                                    f"{self.num_kv_heads}", field="num_heads", value=self.num_heads)

    def approx_parameters(self, vocab_size: int) -> int:
        """Parameter count of the built model (tied embeddings), ignoring norms' few hundred weights."""
        d, f, layers = self.hidden_size, self.intermediate_size, self.num_layers
        kv = d // self.num_heads * self.num_kv_heads
        attn = d * d + 2 * d * kv + d * d + d + 2 * kv  # q, k, v, o and the q/k/v biases of Qwen2
        return vocab_size * d + layers * (attn + 3 * d * f + 2 * d) + d


@final
@dataclass(frozen=True)
class GrpoRunConfig:
    r"""One GRPO run: model, task, the TRL options that matter for the step-size question, and the probe's knobs.

    Every field documents its unit, the paper symbol and the TRL option it mirrors. Build it through
    :func:`gradgap.experiments.grpo.presets.resolve_preset` rather than by hand.

    >>> GrpoRunConfig(preset="tiny", lr=1e-3, length=4).effective_max_completion_length
    5
    """

    #: preset name the config came from (``tiny``, ``tiny-100m``, ``qwen2.5-math-7b``)
    preset: str
    #: :math:`\eta`, learning rate (``GRPOConfig.learning_rate``, constant schedule, no warmup)
    lr: float
    #: :math:`T`, answer length of the synthetic task in tokens (tiny presets). Dataset presets: the completion
    #: budget, ``max_completion_length`` (a sweep's length axis sets it per cell; the realised lengths are
    #: recorded as ``mean_response_length``)
    length: int
    #: task: ``copy`` (repeat a digit string of length T), ``gsm8k`` or ``math`` (dataset presets)
    task: str = "copy"
    #: model: ``tiny`` (built from ``tiny_model``) or a model id / local path (dataset presets)
    model: str = "tiny"
    #: size of the model built for ``model="tiny"``
    tiny_model: TinyModelSpec | None = field(default_factory=TinyModelSpec)
    #: ``GRPOConfig.loss_type``: how per-token losses are aggregated (see docs/grpo.md)
    loss_type: str = "grpo"
    #: ``GRPOConfig.scale_rewards``: ``group`` (divide advantages by the group std) or ``none`` (Dr. GRPO)
    scale_rewards: str = "group"
    #: optimiser: ``sgd`` (``optim="sgd"``, no momentum) or ``adamw`` (``optim="adamw_torch"``)
    optim: str = "sgd"
    #: number of optimisation steps (``GRPOConfig.max_steps``)
    steps: int = 20
    #: :math:`G`, completions per prompt (``GRPOConfig.num_generations``)
    num_generations: int = 8
    #: prompts per optimisation step P; the batch holds ``P * G`` completions
    prompts_per_step: int = 4
    #: ``GRPOConfig.gradient_accumulation_steps`` (one optimisation step = this many micro-batches)
    gradient_accumulation_steps: int = 1
    #: ``GRPOConfig.max_completion_length``; ``None`` means ``length + 1`` (answer + end of sequence). A sweep
    #: over lengths fixes it to ``max(lengths) + 1`` so that ``dr_grpo``'s constant normaliser is the same
    max_completion_length: int | None = None
    #: ``GRPOConfig.max_grad_norm``; 0 disables clipping (default for the tiny presets: a clipped step has
    #: norm at most ``lr * max_grad_norm`` and hides the length dependence the sweep measures)
    max_grad_norm: float = 0.0
    #: sampling temperature (``GRPOConfig.temperature``); 1 keeps the exact success probability of the tiny task
    temperature: float = 1.0
    #: ``GRPOConfig.beta`` (KL coefficient); 0 = no reference model
    beta: float = 0.0
    #: ``GRPOConfig.epsilon`` (PPO clip range; inactive on-policy with one iteration)
    epsilon: float = 0.2
    #: random seed (``GRPOConfig.seed``, task data and warm start)
    seed: int = 0
    #: parameter dtype: ``float32`` (CPU), ``float64`` (exact tests) or ``bfloat16`` (GPU, ``bf16=True``)
    dtype: str = "float32"
    #: ``GRPOConfig.gradient_checkpointing``
    gradient_checkpointing: bool = False
    #: ``GRPOConfig.use_vllm`` (large presets only; colocate mode)
    use_vllm: bool = False
    #: ``GRPOConfig.report_to`` (``none``, ``tensorboard``, ``wandb``, ...): TRL's own logging is untouched
    report_to: str = "none"
    #: ``GRPOConfig.logging_steps``
    logging_steps: int = 1
    #: number of fixed evaluation prompts on which the success rate J and log-odds are measured every step
    eval_prompts: int = 32
    #: AdamW update direction for the alignment: ``auto``, ``adam_state`` (from the moments, no extra buffer) or
    #: ``realised_change`` (parameter snapshot, one more parameter-sized buffer); SGD ignores it
    update_route: str = "auto"
    #: compute the Gradient Gap (and the alignment, the safe step) at steps 1, 1 + k, 1 + 2k, ... (1 = every step).
    #: The default 10 keeps the probe within 10% of a plain TRL step on the tiny preset (docs/grpo.md, measured
    #: figures); every step costs about 30% more there (one extra backward). Batch statistics, update norm and
    #: time are recorded at every step whatever the cadence
    gap_every: int = 10
    #: evaluate J on the fixed prompts at steps k, 2k, ... and after the last; deltas span the interval (1 = every
    #: step, about 15% of a plain step on the tiny preset)
    eval_every: int = 10
    #: constants :math:`L_o, G_o` of the safe step are measured at step 1, then on the first gap step at least this
    #: many steps after the last measurement (0 = never); about half a plain step each time on the tiny preset
    constants_every: int = 50
    #: number of sampled completions used to measure :math:`L_o, G_o` (one backward each)
    constants_samples: int = 4
    #: warm start: supervised steps stop once the mean exact success probability on held-out prompts reaches this
    warm_start_target: float = 0.5
    #: warm start: at most this many supervised steps (Adam, lr ``warm_start_lr``)
    warm_start_max_steps: int = 600
    #: warm start: learning rate of the supervised phase
    warm_start_lr: float = 3e-3
    #: collapse rule: a run is COLLAPSED when its final eval success rate is below this fraction of the initial one
    collapse_fraction: float = 0.5
    #: collapse rule, rate part: a run is also COLLAPSED when its evaluation log-odds fall at a rate (least-squares
    #: slope per step) that would take J from J_0 to ``collapse_fraction * J_0`` within this many steps; the rule
    #: then does not hinge on how many steps the run happened to have (:func:`~.run.classify`)
    collapse_horizon: int = 100
    #: checkpoint every k optimisation steps through TRL's own mechanism (``save_strategy="steps"``, the last two
    #: kept); an interrupted run started again on the same ``--out`` resumes from its last checkpoint (0 = none)
    save_every: int = 0
    #: dataset split / size cap for dataset presets (number of training prompts; 0 = all)
    dataset_size: int = 0
    #: dataset presets: a local JSON-lines / parquet file or a folder with ``train.*`` and ``test.*`` instead of the
    #: hub dataset (:func:`~.evaluation.load_local_math`), with the names of its question and answer columns
    dataset_path: str | None = None
    prompt_column: str = "prompt"
    answer_column: str = "answer"
    #: dataset presets: samples per held-out prompt of the evaluation (J and its standard error)
    eval_samples: int = 4
    #: torch intra-op CPU threads for the run (``torch.set_num_threads``); ``None`` leaves torch's default. The
    #: tiny presets use 1: their ops are too small to gain from threads, and idle OpenMP threads spin on a
    #: shared machine
    threads: int | None = None
    #: where the warm-started tiny models are cached (``None``: ``$GRADGAP_CACHE`` or ``~/.cache/gradgap``)
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        _check_float("lr", self.lr, lo=0.0, lo_open=True)
        _check_int("length", self.length, 1, 4096)
        _check_choice("task", self.task, TASKS)
        _check_choice("loss_type", self.loss_type, LOSS_TYPES)
        _check_choice("scale_rewards", self.scale_rewards, SCALE_REWARDS)
        _check_choice("optim", self.optim, OPTIMS)
        _check_choice("dtype", self.dtype, DTYPES)
        _check_choice("update_route", self.update_route, ("auto", "adam_state", "realised_change"))
        _check_int("steps", self.steps, 1)
        _check_int("num_generations", self.num_generations, 2)
        _check_int("prompts_per_step", self.prompts_per_step, 1)
        _check_int("gradient_accumulation_steps", self.gradient_accumulation_steps, 1)
        if (self.prompts_per_step * self.num_generations) % self.gradient_accumulation_steps:
            raise GradgapValueError(
                f"gradient_accumulation_steps={self.gradient_accumulation_steps}: must divide prompts_per_step * "
                f"num_generations={self.prompts_per_step * self.num_generations}",
                field="gradient_accumulation_steps", value=self.gradient_accumulation_steps)
        if self.max_completion_length is not None:
            _check_int("max_completion_length", self.max_completion_length, 1)
            if self.task == "copy" and self.max_completion_length < self.length + 1:
                raise GradgapValueError(
                    f"max_completion_length={self.max_completion_length}: must be >= length + 1 = {self.length + 1}"
                    " (the answer and the end-of-sequence token)", field="max_completion_length",
                    value=self.max_completion_length)
        _check_float("max_grad_norm", self.max_grad_norm, lo=0.0)
        _check_float("temperature", self.temperature, lo=0.0, lo_open=True)
        _check_float("beta", self.beta, lo=0.0)
        _check_float("epsilon", self.epsilon, lo=0.0, hi=1.0)
        _check_int("seed", self.seed, 0)
        _check_int("logging_steps", self.logging_steps, 1)
        _check_int("eval_prompts", self.eval_prompts, 1)
        _check_int("gap_every", self.gap_every, 1)
        _check_int("eval_every", self.eval_every, 1)
        _check_int("constants_every", self.constants_every, 0)
        _check_int("constants_samples", self.constants_samples, 1)
        _check_float("warm_start_target", self.warm_start_target, lo=0.0, hi=1.0, lo_open=True)
        if self.warm_start_target >= 1.0:
            raise GradgapValueError("warm_start_target=1.0: must be < 1 (the success rate must start below 1)",
                                    field="warm_start_target", value=self.warm_start_target)
        _check_int("warm_start_max_steps", self.warm_start_max_steps, 0)
        _check_float("warm_start_lr", self.warm_start_lr, lo=0.0, lo_open=True)
        _check_float("collapse_fraction", self.collapse_fraction, lo=0.0, hi=1.0)
        _check_int("collapse_horizon", self.collapse_horizon, 1)
        _check_int("dataset_size", self.dataset_size, 0)
        _check_int("eval_samples", self.eval_samples, 1)
        _check_int("save_every", self.save_every, 0)
        if self.threads is not None:
            _check_int("threads", self.threads, 1)
        if self.model == "tiny" and self.tiny_model is None:
            raise GradgapValueError("tiny_model=None: model='tiny' needs a TinyModelSpec", field="tiny_model",
                                    value=None)
        if self.task == "copy" and self.model != "tiny":
            raise GradgapValueError(f"model={self.model!r}: the copy task needs model='tiny' (its tokenizer is "
                                    "built locally)", field="model", value=self.model)

    @property
    def effective_max_completion_length(self) -> int:
        """The ``max_completion_length`` handed to TRL."""
        return self.max_completion_length if self.max_completion_length is not None else self.length + 1

    @property
    def batch_size(self) -> int:
        """Completions per optimisation step, ``P * G``."""
        return self.prompts_per_step * self.num_generations

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GrpoRunConfig:
        data = dict(data)
        spec = data.get("tiny_model")
        if isinstance(spec, dict):
            data["tiny_model"] = TinyModelSpec(**spec)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise GradgapValueError(f"config={unknown}: unknown fields of GrpoRunConfig", field="config",
                                    value=unknown)
        return cls(**data)

    def replace(self, **changes: Any) -> GrpoRunConfig:
        return dataclasses.replace(self, **changes)


def config_hash(data: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able mapping (sorted keys)."""
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
