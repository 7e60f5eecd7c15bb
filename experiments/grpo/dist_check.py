r"""The probe on one fixed global batch, in one process or several: the harness of the multi-process tests.

    python -m gradgap.experiments.grpo.dist_check --mode single --out A.json
    torchrun --nproc_per_node 2 -m gradgap.experiments.grpo.dist_check --mode ddp --out B.json
    torchrun --nproc_per_node 2 -m gradgap.experiments.grpo.dist_check --mode fsdp2 --out C.json

A tiny Qwen2 model, a fixed global batch of :math:`P` prompt groups of :math:`G` completions (fixed successes,
variable completion lengths, one group without a success), and a GRPO loss
:math:`-\frac1B\sum_i A_i\log\pi(o_i)` driven through accelerate (``prepare``, ``backward``, ``no_sync`` on
every micro-batch but the last, as transformers' ``Trainer`` does), with the :class:`~.probe.GradgapProbe`
hooks called where TRL calls them. Process ``r`` of ``W`` holds global rows ``[rB/W, (r+1)B/W)``; the loss of
a process is scaled by ``W`` so that the processes' average is the single-process gradient. The records of the
main process go to ``--out`` (JSON; temporary file with a unique name, then rename): the tests compare the gap,
alignment, update and constants of every mode against ``single``.

Accelerate prepares FSDP only on accelerator devices; on CPU (``--mode fsdp2``) the harness sets accelerate's
state to FSDP with an FSDP2 plugin before ``prepare``, so accelerate's own FSDP2 preparation (``fully_shard`` of
the decoder layers and of the root, over gloo) is what runs. Test use only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from types import SimpleNamespace
from typing import Any

import torch

from gradgap.proofs_check.atomic import atomic_write_text

#: P prompts x G completions; successes per group: mixed, mixed, none, mixed
SUCCESS = [[1, 0, 0, 1], [1, 1, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]]
PROMPT_LEN, COMPLETION_LEN, VOCAB = 3, 4, 12
KEYS = ("gradient_gap_norm", "alignment", "delta_mu", "grad_norm_clipped", "update_norm", "L_o", "G_o",
        "predicted_safe_step", "gap_groups", "update_route")
#: (optimiser, AdamW update route) pairs the harness runs, each in float32 and float64
VARIANTS = (("sgd", "auto"), ("adamw", "adam_state"), ("adamw", "realised_change"))


def global_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """The fixed global batch: ids, masks (completion lengths 2..4), successes, advantages (group-centred)."""
    g = torch.Generator().manual_seed(seed)
    p, k = len(SUCCESS), len(SUCCESS[0])
    b = p * k
    success = torch.tensor(SUCCESS, dtype=torch.float64).reshape(-1)
    prompt_ids = torch.randint(1, VOCAB, (b, PROMPT_LEN), generator=g)
    completion_ids = torch.randint(1, VOCAB, (b, COMPLETION_LEN), generator=g)
    lengths = 2 + torch.arange(b) % (COMPLETION_LEN - 1)
    completion_mask = (torch.arange(COMPLETION_LEN)[None, :] < lengths[:, None]).long()
    r = success.reshape(p, k)
    adv = (r - r.mean(1, keepdim=True)).reshape(-1)
    return {"prompt_ids": prompt_ids, "prompt_mask": torch.ones_like(prompt_ids), "completion_ids": completion_ids,
            "completion_mask": completion_mask, "success": success, "advantage": adv, "lengths": lengths}


def _simulate_fsdp2(mode: str) -> None:
    """On CPU, tell accelerate's state it is FSDP2 (accelerate prepares FSDP on accelerator devices only)."""
    if mode != "fsdp2":
        return
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    state = AcceleratorState()
    if getattr(state, "fsdp_plugin", None) is None:
        state.fsdp_plugin = FullyShardedDataParallelPlugin(
            fsdp_version=2, auto_wrap_policy="transformer_based_wrap",
            transformer_cls_names_to_wrap=["Qwen2DecoderLayer"], reshard_after_forward=True)
    state.distributed_type = DistributedType.FSDP


def _accelerator(mode: str):
    from accelerate import Accelerator

    acc = Accelerator(cpu=not torch.cuda.is_available())
    _simulate_fsdp2(mode)
    return acc


def run(mode: str, optim: str, *, update_route: str = "auto", steps: int = 2, micro_batches: int = 2,
        dtype: torch.dtype = torch.float32, out_dir: str = ".") -> list[dict[str, Any]]:
    """``steps`` optimisation steps of the harness; the probe's records (every process has them)."""
    from gradgap.experiments.grpo.config import TinyModelSpec
    from gradgap.experiments.grpo.probe import GapBatch, GradgapProbe, completion_token_log_probs, gap_coefficients
    from gradgap.experiments.grpo.tiny import build_model

    acc = _accelerator(mode)
    model = build_model(TinyModelSpec(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                                      intermediate_size=64), vocab_size=VOCAB, max_positions=64, seed=0, dtype=dtype)
    opt: torch.optim.Optimizer = (torch.optim.SGD(model.parameters(), lr=0.05) if optim == "sgd" else
                                  torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0))
    model, opt = acc.prepare(model, opt)
    _simulate_fsdp2(mode)  # prepare() on CPU sets the state back to MULTI_CPU
    world, rank = acc.num_processes, acc.process_index
    batch = global_batch()
    b = batch["success"].numel()
    g = len(SUCCESS[0])
    coef, p_mix = gap_coefficients(batch["success"], g)
    lo, hi = rank * b // world, (rank + 1) * b // world
    name = f"metrics-{mode}-{optim}-{update_route}-{str(dtype)[6:]}.jsonl"
    probe = GradgapProbe(os.path.join(out_dir, name), optim=optim, update_route=update_route, gap_every=1,
                         eval_every=1, constants_every=1, constants_samples=2)
    trainer = SimpleNamespace(accelerator=acc, model=model, optimizer=opt)
    probe.attach(trainer)
    state = SimpleNamespace(max_steps=steps, global_step=0)
    probe.on_train_begin(None, state, None)
    rows = torch.arange(lo, hi)
    chunks = rows.chunk(micro_batches)
    for _ in range(steps):
        probe.on_batch(GapBatch(batch["success"], batch["lengths"], g), p_mix)
        for j, idx in enumerate(chunks):
            inputs = {k: batch[k][idx].to(acc.device) for k in ("prompt_ids", "prompt_mask", "completion_ids",
                                                                  "completion_mask")}
            inputs["gradgap_coef"] = coef[idx].to(acc.device)
            ctx = acc.no_sync(model) if j < len(chunks) - 1 else contextlib.nullcontext()
            with ctx:
                logps = completion_token_log_probs(model, inputs["prompt_ids"], inputs["prompt_mask"],
                                                   inputs["completion_ids"], inputs["completion_mask"])
                probe.accumulate_gap(trainer, model, inputs, logps)
                lp = (logps * inputs["completion_mask"]).sum(-1)
                loss = -(world / b) * (batch["advantage"][idx].to(acc.device, lp.dtype) * lp).sum()
                acc.backward(loss)
        probe.on_pre_optimizer_step(None, state, None)
        opt.step()
        probe.on_optimizer_step(None, state, None)
        state.global_step += 1
        probe.on_step_end(None, state, None)
        opt.zero_grad(set_to_none=True)
    probe.close()
    return probe.records


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("single", "ddp", "fsdp2"), required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    out_dir = os.path.dirname(os.path.abspath(a.out))
    result: dict[str, Any] = {}
    for dtype in (torch.float32, torch.float64):
        for optim, route in VARIANTS:
            recs = run(a.mode, optim, update_route=route, dtype=dtype, out_dir=out_dir)
            result[f"{optim}-{route}-{str(dtype)[6:]}"] = [{k: r.get(k) for k in KEYS} for r in recs]
    from accelerate import PartialState

    state = PartialState()
    result["topology"] = {"num_processes": state.num_processes, "distributed_type": str(state.distributed_type)}
    if state.is_main_process:

        atomic_write_text(a.out, json.dumps(result, indent=1))
    state.wait_for_everyone()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
