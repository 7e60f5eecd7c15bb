r"""Named presets (``tiny``, ``tiny-100m``, ``qwen2.5-math-7b``) and the dry-run plan of a large run.

No torch or trl import here: ``gradgap grpo run --preset qwen2.5-math-7b --dry-run`` works on the core install
and downloads nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Callable
from typing import Any, Final

from gradgap.experiments.grpo.config import GrpoRunConfig, TinyModelSpec
from gradgap.theory.instances import GradgapValueError

__all__ = ["PRESETS", "plan", "resolve_preset"]


def _tiny(**kw: Any) -> GrpoRunConfig:
    base: dict[str, Any] = dict(preset="tiny", lr=0.02, length=4, task="copy", model="tiny",
                                tiny_model=TinyModelSpec(), optim="sgd", steps=20, num_generations=8,
                                prompts_per_step=4, max_grad_norm=0.0, dtype="float32", eval_prompts=32,
                                threads=1)
    base.update(kw)
    return GrpoRunConfig(**base)


def _tiny_100m(**kw: Any) -> GrpoRunConfig:
    spec = TinyModelSpec(hidden_size=768, num_layers=16, num_heads=12, num_kv_heads=4, intermediate_size=2048)
    base: dict[str, Any] = dict(preset="tiny-100m", lr=0.05, length=8, task="copy", model="tiny", tiny_model=spec,
                                optim="sgd", steps=20, num_generations=8, prompts_per_step=16, max_grad_norm=0.0,
                                dtype="float32", eval_prompts=64, warm_start_lr=3e-4, warm_start_max_steps=2000)
    base.update(kw)
    return GrpoRunConfig(**base)


def _qwen_math_7b(**kw: Any) -> GrpoRunConfig:
    base: dict[str, Any] = dict(preset="qwen2.5-math-7b", lr=1e-6, length=1024, task="gsm8k",
                                model="Qwen/Qwen2.5-Math-7B", tiny_model=None, optim="adamw", steps=200,
                                num_generations=8, prompts_per_step=64, gradient_accumulation_steps=4,
                                max_completion_length=1024, max_grad_norm=1.0, dtype="bfloat16",
                                gradient_checkpointing=True, use_vllm=True, eval_prompts=128, gap_every=10,
                                eval_every=10, constants_every=50, constants_samples=2, report_to="none",
                                save_every=25)
    base.update(kw)
    return GrpoRunConfig(**base)


#: preset name -> factory taking field overrides
PRESETS: Final[dict[str, Callable[..., GrpoRunConfig]]] = {
    "tiny": _tiny,
    "tiny-100m": _tiny_100m,
    "qwen2.5-math-7b": _qwen_math_7b,
}

#: (parameters, layers, hidden size, vocabulary) of the hub models the presets name, for the estimates (no download)
KNOWN_SHAPES: Final[dict[str, tuple[float, int, int, int]]] = {
    "Qwen/Qwen2.5-Math-7B": (7.62e9, 28, 3584, 152064),
    "Qwen/Qwen2.5-Math-1.5B": (1.54e9, 28, 1536, 151936),
}


def _shape(cfg: GrpoRunConfig) -> tuple[float, int, int, int, int]:
    """(parameters, layers, hidden, vocabulary, prompt tokens) of the model and task of ``cfg``."""
    if cfg.model == "tiny" and cfg.tiny_model is not None:
        spec = cfg.tiny_model
        return (float(spec.approx_parameters(12)), spec.num_layers, spec.hidden_size, 12, cfg.length + 1)
    n, layers, hidden, vocab = KNOWN_SHAPES.get(cfg.model, (float("nan"), 0, 0, 0))
    return n, layers, hidden, vocab, 256


def resolve_preset(name: str, **overrides: Any) -> GrpoRunConfig:
    """The preset's :class:`GrpoRunConfig` with ``overrides`` (``None`` values are ignored).

    >>> resolve_preset("tiny", lr=0.1).lr
    0.1
    """
    if name not in PRESETS:
        close = difflib.get_close_matches(str(name), PRESETS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise GradgapValueError(f"preset={name!r}: unknown; choose one of {', '.join(PRESETS)}{hint}",
                                field="preset", value=name)
    fields = {f.name for f in dataclasses.fields(GrpoRunConfig)}
    clean = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(clean) - fields)
    if unknown:
        raise GradgapValueError(f"overrides={unknown}: not fields of GrpoRunConfig", field="overrides", value=unknown)
    return PRESETS[name](**clean)


#: TRL's fused log-prob kernel tiles (trl/kernels: TOKEN_CHUNK_SIZE, VOCAB_CHUNK_SIZE in TRL 1.16)
TOKEN_CHUNK: Final[int] = 4096
VOCAB_CHUNK: Final[int] = 32768
#: GPU types of the memory table: name -> memory in GiB
GPU_TYPES: Final[dict[str, float]] = {"A100-40GB": 40.0, "A100-80GB / H100-80GB": 80.0, "H200-141GB": 141.0}
#: vLLM colocate mode reserves this share of each GPU (``vllm_gpu_memory_utilization``)
VLLM_SHARE: Final[float] = 0.3
#: the probe's FLOP budget (share of a step) that the default cadence must meet
PROBE_BUDGET: Final[float] = 0.10
#: versions the GRPO path is built against: the llm extra's ranges, and vLLM's range as TRL 1.16 checks it
VERSION_RANGES: Final[dict[str, tuple[str, str]]] = {"trl": ("1.10", "2"), "transformers": ("5.0", "6"),
                                                     "accelerate": ("1.10", "2"), "datasets": ("4.0", "6"),
                                                     "vllm": ("0.22.0", "0.31.999")}


def environment_check(*, use_vllm: bool) -> list[str]:
    """One line per package: installed version (``importlib.metadata``, nothing imported) against its range."""
    import re
    from importlib import metadata

    def key(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", v.split("+")[0])[:3])

    lines = []
    for name, (lo, hi) in VERSION_RANGES.items():
        if name == "vllm" and not use_vllm:
            continue
        try:
            got = metadata.version(name)
        except metadata.PackageNotFoundError:
            lines.append(f"{name}: MISSING (need >= {lo}, < {hi}; pip install 'gradgap[llm]'"
                         + (" and vllm" if name == "vllm" else "") + ")")
            continue
        ok = key(lo) <= key(got) < key(hi)
        lines.append(f"{name}: {got} {'OK' if ok else 'OUT OF RANGE'} (need >= {lo}, < {hi})")
    return lines


def memory_estimate(cfg: GrpoRunConfig, *, num_processes: int, fsdp: bool = True) -> dict[str, float]:
    """GiB per GPU for weights, gradients, AdamW state, the probe's buffers, activations and completion logits.

    Mixed precision under FSDP2: fp32 master weights, fp32 gradients and AdamW moments, sharded over the
    processes; bf16 compute copies of one layer at a time are ignored. The probe adds the Gradient Gap (fp32,
    sharded) and, only with ``update_route="realised_change"``, a snapshot of the parameters (fp32, sharded).
    """
    n, layers, hidden, vocab, prompt = _shape(cfg)
    gib = 1024.0**3
    shard = num_processes if fsdp else 1
    weights = 4 * n / shard
    grads = 4 * n / shard
    adam = (8 * n if cfg.optim == "adamw" else 0.0) / shard
    snapshot = cfg.optim == "adamw" and cfg.update_route == "realised_change"
    probe = (4 * n + (4 * n if snapshot else 0.0)) / shard
    per_device_completions = cfg.batch_size // cfg.gradient_accumulation_steps // num_processes
    # activations: with checkpointing one bf16 hidden state per layer and token; without, ~16 of them
    tokens = max(per_device_completions, 1) * (cfg.effective_max_completion_length + prompt)
    act = tokens * 2 * layers * hidden * (1 if cfg.gradient_checkpointing else 16)
    # completion logits: TRL fuses the LM head with the log-softmax (trl.kernels), tiles of at most
    # TOKEN_CHUNK x VOCAB_CHUNK fp32 values exist at once, never the whole [tokens, vocabulary] matrix
    rows = min(max(per_device_completions, 1) * cfg.effective_max_completion_length, TOKEN_CHUNK)
    logits = rows * min(vocab, VOCAB_CHUNK) * 4
    vllm = 0.0  # colocated vLLM is a share of each GPU type: see memory_table
    out = {"parameters": n, "weights_gib": weights / gib, "grads_gib": grads / gib, "adamw_state_gib": adam / gib,
           "probe_buffers_gib": probe / gib, "activations_gib": act / gib, "logits_gib": logits / gib,
           "vllm_colocate_gib": vllm / gib}
    out["total_gib"] = sum(v for k, v in out.items() if k.endswith("_gib"))
    return out


def memory_table(cfg: GrpoRunConfig, *, num_processes: int, fsdp: bool = True) -> dict[str, dict[str, Any]]:
    """Per GPU type: the estimate plus vLLM's colocated share, and whether it fits."""
    mem = memory_estimate(cfg, num_processes=num_processes, fsdp=fsdp)
    out = {}
    # colocated vLLM holds the whole bf16 model on each GPU (tensor parallel 1) plus its KV cache in its share
    vllm_weights = 2 * mem["parameters"] / 1024.0**3 if cfg.use_vllm else 0.0
    for name, cap in GPU_TYPES.items():
        vllm = VLLM_SHARE * cap if cfg.use_vllm else 0.0
        need = mem["total_gib"] + vllm
        fits = need <= 0.95 * cap and vllm >= 1.2 * vllm_weights
        out[name] = {"training_gib": round(mem["total_gib"], 2), "vllm_colocate_gib": round(vllm, 1),
                     "vllm_bf16_weights_gib": round(vllm_weights, 1), "total_gib": round(need, 2), "fits": fits}
    return out


def compute_estimate(cfg: GrpoRunConfig, *, num_processes: int, tflops_per_gpu: float = 400.0,
                     fsdp: bool = True) -> dict[str, float]:
    r"""FLOPs per step and hours at ``tflops_per_gpu``: generation :math:`2N` per completion token, training
    :math:`6N` per token, the probe's gap :math:`4N` per token (DDP: one more backward) or :math:`6N` (FSDP2: one
    more forward and backward) every ``gap_every`` steps, its evaluation :math:`2N` per sampled token every
    ``eval_every`` steps. ``probe_share`` = gap / step, the figure the default cadence keeps under
    :data:`PROBE_BUDGET`."""
    n, _, _, _, prompt = _shape(cfg)
    prompt_tokens, completion_tokens = float(prompt), cfg.effective_max_completion_length * 0.6
    seqs = cfg.batch_size
    gen = 2 * n * seqs * completion_tokens
    train = 6 * n * seqs * (prompt_tokens + completion_tokens)
    per_token = 6 if fsdp and num_processes > 1 else 4
    probe = per_token * n * seqs * (prompt_tokens + completion_tokens) / cfg.gap_every
    samples = cfg.eval_samples if cfg.model != "tiny" else 0
    evaluation = 2 * n * cfg.eval_prompts * samples * (prompt_tokens + completion_tokens) / cfg.eval_every
    total = gen + train + probe + evaluation
    seconds = total / (tflops_per_gpu * 1e12 * num_processes)
    return {"flops_generation": gen, "flops_training": train, "flops_probe": probe, "flops_evaluation": evaluation,
            "flops_per_step": total, "probe_share": probe / total, "evaluation_share": evaluation / total,
            "seconds_per_step_at_peak_mix": seconds, "gpu_hours_per_run": seconds * cfg.steps * num_processes / 3600}


def plan(cfg: GrpoRunConfig, *, num_machines: int = 1, num_processes: int = 8, out: str = "runs/qwen7b") -> str:
    """The full plan of a run: the accelerate command, the configs, memory and compute estimates (text)."""
    for name, value in (("num_machines", num_machines), ("num_processes", num_processes)):
        if value < 1:
            raise GradgapValueError(f"{name}={value}: must be at least 1", field=name, value=value)
    world = num_processes * num_machines
    acc = "configs/accelerate/fsdp2_1x8.yaml" if num_machines == 1 else "configs/accelerate/fsdp2_multinode.yaml"
    mem = memory_estimate(cfg, num_processes=world, fsdp=world > 1)
    table = memory_table(cfg, num_processes=world, fsdp=world > 1)
    comp = compute_estimate(cfg, num_processes=world, fsdp=world > 1)
    args = (f"grpo run --preset {cfg.preset} --lr {cfg.lr:g} --length {cfg.length} --loss-type {cfg.loss_type} "
            f"--scale-rewards {cfg.scale_rewards} --optim {cfg.optim} --steps {cfg.steps} --out {out}")
    if world == 1:
        cmd = f"gradgap {args}"
    elif num_machines == 1:
        cmd = (f"accelerate launch --config_file {acc} --num_machines 1 --num_processes {world} "
               f"-m gradgap.proofs_check.cli {args}")
    else:  # the same command on every node: its own rank, the main node's address
        cmd = (f"accelerate launch --config_file {acc} --num_machines {num_machines} --num_processes {world} "
               "--machine_rank $MACHINE_RANK --main_process_ip $MAIN_PROCESS_IP --main_process_port 29500 "
               f"-m gradgap.proofs_check.cli {args}\n"
               f"# run it on each of the {num_machines} nodes with MACHINE_RANK=0..{num_machines - 1} (0 on the "
               "main node) and MAIN_PROCESS_IP = the main node's address, reachable from every node")
    share = comp["probe_share"]
    budget = "OK" if share <= PROBE_BUDGET else "OVER BUDGET: raise --gap-every"
    from gradgap.experiments.grpo.run import trl_options  # pure: no trl import

    lines = [
        f"# plan: preset {cfg.preset} ({cfg.model}), task {cfg.task}, {num_machines} node(s) x {num_processes} GPUs",
        "# nothing is downloaded by --dry-run; " + ("the tiny model and task are built locally" if cfg.model == "tiny"
                                                     else "the run itself needs the model and dataset in the HF "
                                                     "cache (HF_HUB_OFFLINE=1 on machines without network)"),
        "",
        "## command",
        cmd,
        "",
        f"## accelerate config: {acc} (FSDP2; DDP alternative: configs/accelerate/ddp_1x8.yaml;"
        " never DeepSpeed: it hides gradients from the probe)",
        "",
        "## GrpoRunConfig",
        json.dumps(cfg.to_dict(), indent=1, sort_keys=True),
        "",
        "## TRL GRPOConfig options set",
        json.dumps(trl_options(cfg, output_dir=f"{out}/trl", num_processes=num_processes * num_machines),
                   indent=1, sort_keys=True),
        "",
        "## memory per GPU (GiB, estimate; TRL's fused LM head: logits in tiles)",
        json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in mem.items()}, indent=1),
        "",
        "## memory per GPU type (with vLLM colocate at gpu_memory_utilization "
        f"{VLLM_SHARE if cfg.use_vllm else 0})",
        json.dumps(table, indent=1),
        "",
        "## compute (estimate; 400 TFLOP/s sustained per GPU)",
        json.dumps({k: float(f"{v:.3g}") for k, v in comp.items()}, indent=1),
        f"probe (gap every {cfg.gap_every} steps): {share:.1%} of a step's FLOPs, budget {PROBE_BUDGET:.0%}: {budget}",
        "",
        "## installed versions (checked, not imported)",
        *environment_check(use_vllm=cfg.use_vllm),
    ]
    return "\n".join(lines)
