r"""The probe: the theory's quantities measured on real TRL GRPO steps, one JSON line per optimisation step.

Notation (paper symbol -> record key):

===============================  ==============================  ====================================================
paper                            key                             how it is measured
===============================  ==============================  ====================================================
:math:`\hat J` (batch)           ``success_rate``                mean binary reward of the step's completions
:math:`\hat p_q`                 ``per_prompt_success``          successes / G per prompt group
:math:`\|\hat g\|`               ``gradient_gap_norm``           one backward of the signed objective (below)
:math:`\cos(\Delta\theta, g)`    ``alignment``                   SGD: post-clipping gradient; AdamW: realised change
:math:`\Delta\mu`                ``delta_mu``                    :math:`\langle \Delta\theta/\|\Delta\theta\|, g\rangle`
:math:`L_o, G_o`                 ``L_o``, ``G_o``                measured on a few completions (below)
:math:`\eta_{safe}`              ``predicted_safe_step``         :math:`[\Delta\mu]_+ / (2(L_o + 8G_o^2))`
:math:`J, \ell` (eval set)       ``eval_success_rate``, ...      exact, teacher-forced, on fixed prompts (tiny task)
===============================  ==============================  ====================================================

**Gradient Gap route (``gap_route = "signed_objective"``).** For each prompt group with :math:`k` successes,
:math:`0<k<G`, the empirical Gradient Gap is :math:`\hat g_q = \bar s_+ - \bar s_-` with
:math:`s_i = \nabla_\theta \log\pi_\theta(o_i\mid q)` the score of the whole completion (token log-probabilities
summed, no length normalisation). The batch gap is the mean over the :math:`P_{mix}` mixed groups,

.. math:: \hat g = \frac1{P_{mix}}\sum_q \Big(\frac1k\sum_{r_i=1}s_i - \frac1{G-k}\sum_{r_i=0}s_i\Big)
          = \nabla_\theta \sum_i c_i \log\pi_\theta(o_i),

so it costs one extra backward of the signed objective through the forward pass TRL already made
(``torch.autograd.grad(..., retain_graph=True)``), into one parameter-sized buffer. Groups with
:math:`k\in\{0,G\}` have no gap and are left out; a micro-batch without a mixed group costs no backward. The test
suite checks it against per-sample scores, and checks TRL's own update against the group identity
:math:`\sum_i A_i s_i = \tfrac{G\hat p(1-\hat p)}{\hat\sigma + 10^{-4}}(\bar s_+-\bar s_-)`, i.e.
:math:`\sqrt{G(G-1)}\sqrt{\hat p(1-\hat p)}(\bar s_+-\bar s_-)` up to TRL's :math:`10^{-4}`.

*Why a second backward.* TRL's gradient and the gap are two different linear combinations of the same scores,
:math:`-\frac1B\sum_i \frac{A_i}{|o_i|}s_i` (``grpo``) and :math:`\sum_i c_i s_i`. Within a mixed group
:math:`c_i = A_i(\hat\sigma_q+10^{-4})\,G/(k_q(G-k_q))/P_{mix}`, a factor that changes from group to group (and
``grpo`` divides by each length), so one backward cannot give both except in special batches. Both vector-Jacobian
products in one batched backward (``autograd.grad(..., is_grads_batched=True)``) is exact but was slower on CPU
(11.6 vs 10.8 ms for forward + both products on the tiny model) and bypasses DDP's gradient hooks: not used.

**Constants.** :math:`G_o` is the largest score norm over ``constants_samples`` completions of the batch (one
backward each); :math:`L_o` the largest curvature :math:`|v^\top\nabla^2\log\pi(o)v|` along the unit gap
direction :math:`v`, by a central second difference of :math:`\log\pi` (forward passes only, step
:data:`CURVATURE_STEP`). Both are measured lower bounds of the suprema in Theorem 1, so the predicted safe step
is optimistic (too large). They are measured at step 1 and then on the first gap step at least
``constants_every`` steps after the last measurement, just before the optimizer step, turning the gap buffer
itself into the shifted parameters: the probe never holds more than one parameter-sized buffer (SGD, and AdamW's
``adam_state`` route). One forward pass of the rows with autograd gives the centre of the second difference and,
one backward per row, the scores.

**Cadence and cost.** The gap (an extra backward), the evaluation (a forward over the fixed prompts) and the
constants run every ``gap_every`` / ``eval_every`` / about ``constants_every`` steps (defaults 10, 10, 50; see
:class:`~.config.GrpoRunConfig`); the batch statistics, the update norm and the time are recorded at
every step. :attr:`GradgapProbe.cost_s` times each part; ``bench/bench_probe.py`` reports them.

Source: safe step, Theorem 1 of the paper (QUOTED-2nd, reconstruction §4.1); group identity, §4.4 (DERIVED).

**Several processes.** What is distributed is read from accelerate's state (``accelerator.distributed_type``,
``num_processes``), never from the existence of a process group. Under DDP every process holds whole parameters:
the gap of its rows (``autograd.grad``, outside DDP's hooks) is summed over processes by one all-reduce. Under
FSDP2 ``autograd.grad`` against sharded parameters returns nothing, so the micro-batch rows are kept (ids and
masks, a few kB) and, in ``on_pre_optimizer_step`` once TRL's gradients are reduced and clipped, each micro-batch
gets one more forward and a backward of :math:`W\sum_i c_i\log\pi(o_i)` (``W`` processes; FSDP2's
reduce-scatter averages): the gradients FSDP2 writes into the sharded ``.grad`` are moved into the probe's sharded
buffer and TRL's gradients are put back. Memory: the buffer is one parameter shard per process (``4N/W`` bytes in
float32), plus FSDP2's own transient unsharded gradient of one layer group. Norms and dot products are summed
over shards. The constants are measured on rank 0's rows, broadcast, so every process evaluates the same rows (an
FSDP2 forward is collective); the curvature shifts the parameters in place (swapping values with the buffer) and
restores them exactly. DeepSpeed is refused in one line: it steps inside ``backward`` and no callback sees
gradients (docs/grpo.md). Only the main process writes ``metrics.jsonl``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

import torch
from transformers import TrainerCallback
from trl import GRPOTrainer

from gradgap.proofs_check.atomic import atomic_write_text
from gradgap.theory.instances import GradgapValueError

__all__ = [
    "GapBatch",
    "GradgapGRPOTrainer",
    "GradgapProbe",
    "GradgapTrainerMixin",
    "NonFiniteLossError",
    "RewardFunctionError",
    "completion_log_probs",
    "completion_token_log_probs",
    "gap_coefficients",
]

#: how the update direction of an AdamW step is obtained: ``adam_state`` computes it before the step from the
#: gradient and torch.optim.AdamW's moments (no extra buffer); ``realised_change`` snapshots the parameters and
#: differences them after the step (one more parameter-sized buffer); ``auto`` = ``adam_state`` when the optimiser
#: is a plain ``torch.optim.AdamW`` (no amsgrad, no maximize), else ``realised_change``. SGD always uses the
#: post-clipping gradient (the update is exactly ``-lr * grad``).
UPDATE_ROUTES = ("auto", "adam_state", "realised_change")

#: the parts of the probe's cost that :attr:`GradgapProbe.cost_s` times
COST_PARTS = ("gap", "eval", "constants", "bookkeeping")

#: central second-difference step for the curvature of log pi along the unit gap direction
CURVATURE_STEP = 1e-2


class UnsupportedTopologyError(GradgapValueError):
    """A distributed setting the probe cannot measure in (DeepSpeed, FSDP1)."""


def topology(accelerator: Any) -> tuple[str, int]:
    """``(kind, processes)`` from accelerate's state: kind ``single``, ``ddp`` or ``fsdp2``; refuses the rest.

    Reads ``accelerator.distributed_type`` and ``num_processes`` only (a process group that exists without a
    distributed accelerator, e.g. ``torchrun`` around an undistributed trainer, is not distributed training).
    """
    from accelerate.utils import DistributedType

    dt = getattr(accelerator, "distributed_type", DistributedType.NO)
    n = int(getattr(accelerator, "num_processes", 1) or 1)
    if dt == DistributedType.DEEPSPEED:
        raise UnsupportedTopologyError("distributed_type=DEEPSPEED: the gradgap probe cannot see gradients under "
                                       "DeepSpeed (it steps inside backward); use DDP or FSDP2",
                                       field="distributed_type", value="DEEPSPEED")
    if dt == DistributedType.FSDP:
        if not getattr(accelerator, "is_fsdp2", False):
            raise UnsupportedTopologyError("distributed_type=FSDP (version 1): the gradgap probe supports FSDP2 "
                                           "only (fsdp_version: 2)", field="distributed_type", value="FSDP1")
        return "fsdp2", n
    if dt == DistributedType.NO or n == 1:
        return "single", 1
    if str(dt).split(".")[-1].startswith("MULTI_"):
        return "ddp", n
    raise UnsupportedTopologyError(f"distributed_type={dt}: not supported by the gradgap probe (DDP or FSDP2)",
                                   field="distributed_type", value=str(dt))


def _local(t: torch.Tensor) -> torch.Tensor:
    """The local shard of a DTensor (FSDP2), the tensor itself otherwise."""
    to_local = getattr(t, "to_local", None)
    return to_local() if to_local is not None else t


class NonFiniteLossError(GradgapValueError):
    """The GRPO loss became NaN or infinite (recorded FAILED by a sweep)."""


def gap_coefficients(success: torch.Tensor, num_generations: int) -> tuple[torch.Tensor, int]:
    r"""Per-completion weights :math:`c_i` of the signed objective, and the number of mixed groups.

    ``success`` is the flat 0/1 vector of a generation batch laid out group after group (TRL's layout); NaN marks
    a completion no reward function could score (all returned ``None``). A group with an unscorable completion is
    left out, as a group without a success or a failure is.

    >>> c, p = gap_coefficients(torch.tensor([1., 0., 0., 1., 1., 1.]), 3)
    >>> [round(float(x), 3) for x in c], p
    ([1.0, -0.5, -0.5, 0.0, 0.0, 0.0], 1)
    >>> gap_coefficients(torch.tensor([1., float("nan"), 0.]), 3)[1]
    0
    """
    raw = success.reshape(-1, num_generations).double()
    scorable = ~torch.isnan(raw).any(1, keepdim=True)
    r = torch.nan_to_num(raw, nan=0.0)
    k = r.sum(1, keepdim=True)
    mixed = (k > 0) & (k < num_generations) & scorable
    p_mix = int(mixed.sum())
    pos = r / k.clamp(min=1)
    neg = (1 - r) / (num_generations - k).clamp(min=1)
    c = torch.where(mixed, pos - neg, torch.zeros_like(r)) / max(p_mix, 1)
    return c.reshape(-1), p_mix


class GapBatch:
    """What the probe keeps of one generation batch (the statistics of the sampled completions)."""

    def __init__(self, success: torch.Tensor, lengths: torch.Tensor, num_generations: int) -> None:
        groups = torch.nan_to_num(success.reshape(-1, num_generations), nan=0.0)
        self.unscorable = int(torch.isnan(success).sum())
        self.success_rate = float(groups.mean())  # unscorable completions count as failures, as TRL scores them
        self.per_prompt_success = [float(x) for x in groups.mean(1)]
        k = groups.sum(1)
        self.frac_zero_variance_groups = float(((k == 0) | (k == num_generations)).double().mean())
        self.mean_response_length = float(lengths.double().mean())


def _flat_dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Dot product of two parameter-shaped tensor lists (per-tensor in the native dtype, summed in float64)."""
    parts = [torch.dot(x.reshape(-1), y.reshape(-1).to(x.dtype)) for x, y in zip(a, b, strict=True)]
    return float(torch.stack(parts).double().sum()) if parts else 0.0


def _flat_norm(a: list[torch.Tensor]) -> float:
    """Euclidean norm of a parameter-shaped tensor list (``torch._foreach_norm``, combined in float64)."""
    if not a:
        return 0.0
    norms = torch._foreach_norm(a)
    return float(torch.stack(norms).double().norm())


def completion_token_log_probs(model, prompt_ids, prompt_mask, completion_ids, completion_mask,
                               *, temperature: float = 1.0) -> torch.Tensor:
    r""":math:`\log\pi(o_{i,t}\mid q_i, o_{i,<t})` per completion token (unmasked), from a plain forward pass:
    computed independently of TRL's code."""
    ids = torch.cat([prompt_ids, completion_ids], dim=1)
    att = torch.cat([prompt_mask, completion_mask], dim=1)
    logits = model(input_ids=ids, attention_mask=att).logits
    n = completion_ids.shape[1]
    logits = logits[:, -n - 1 : -1, :]
    logits = (logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits) / temperature
    return torch.log_softmax(logits, dim=-1).gather(-1, completion_ids[..., None]).squeeze(-1)


def completion_log_probs(model, prompt_ids, prompt_mask, completion_ids, completion_mask,
                         *, temperature: float = 1.0) -> torch.Tensor:
    r""":math:`\log\pi(o_i\mid q_i)` per row: completion token log-probabilities (masked) summed."""
    logp = completion_token_log_probs(model, prompt_ids, prompt_mask, completion_ids, completion_mask,
                                      temperature=temperature)
    return (logp * completion_mask).sum(-1)


class GradgapTrainerMixin:
    """The probe's hooks on ``trl.GRPOTrainer`` (private TRL API, pinned by the ``llm`` extra's range); mixed in
    by :class:`GradgapGRPOTrainer` or, on a user's own trainer instance, by :func:`~.callback.add_gradgap`.

    1. ``_calculate_rewards``: keeps the gathered rewards of the generation batch;
    2. ``_generate_and_score_completions``: adds ``gradgap_coef`` / ``gradgap_success`` / ``gradgap_group`` per
       completion to the batch dict (TRL shuffles and splits it consistently);
    3. ``_compute_loss``: after TRL's loss, one ``autograd.grad`` of the signed objective into the probe's buffer,
       and a non-finite loss raises :class:`NonFiniteLossError`.
    """

    gradgap_probe: GradgapProbe | None = None
    #: a completion is a success when its weighted total reward exceeds this (binary verifiable rewards: 0 or 1)
    gradgap_success_threshold: float = 0.5

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        try:
            rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        except GradgapValueError:
            raise
        except Exception as exc:  # a user reward function raised: one line naming it
            first = (str(exc).splitlines() or [""])[0][:200]
            raise RewardFunctionError(f"reward_funcs={self.reward_func_names}: raised {type(exc).__name__}: {first}",
                                      field="reward_funcs", value=self.reward_func_names) from exc
        self._gradgap_rewards = rewards
        return rewards

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        probe = self.gradgap_probe
        if probe is None or not self.model.training:
            return out
        t0, inner0 = probe._clock(), probe._inner
        raw = self._gradgap_rewards
        rewards = (raw * self.reward_weights.to(raw.device)).nansum(dim=1)
        success = (rewards > self.gradgap_success_threshold).double()  # binary verifiable rewards
        # TRL: a completion every reward function returned None for gets a zero reward, and a group of them zero
        # advantage; the probe marks it unscorable and leaves its group out of the gap
        success[torch.isnan(raw).all(dim=1)] = float("nan")
        coef, p_mix = gap_coefficients(success, self.num_generations)
        n_local = out["completion_ids"].shape[0]
        lo = self.accelerator.process_index * n_local
        device = out["completion_ids"].device
        out["gradgap_coef"] = coef[lo : lo + n_local].to(device)
        out["gradgap_success"] = success[lo : lo + n_local].to(device)
        out["gradgap_group"] = (torch.arange(lo, lo + n_local) // self.num_generations).to(device)
        lengths = self.accelerator.gather(out["completion_mask"].sum(1).to(torch.float64))
        probe.on_batch(GapBatch(success.cpu(), lengths.cpu(), self.num_generations), p_mix)
        probe._book(t0, inner0)
        return out

    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        result = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if getattr(self, "_gradgap_capture", False):
            self._gradgap_logps = result[0]
            self._gradgap_capture = False
        return result

    def _compute_loss(self, model, inputs):
        probe = self.gradgap_probe
        want = probe is not None and "gradgap_coef" in inputs and probe.wants_gap()
        self._gradgap_capture = want
        loss = super()._compute_loss(model, inputs)
        self._gradgap_capture = False
        if not torch.isfinite(loss).all():
            value = float(loss.detach())
            raise NonFiniteLossError(f"loss={value}: non-finite GRPO loss at step {self.state.global_step + 1}"
                                     " (learning rate too large, or a NaN reward)", field="loss", value=value)
        if want:
            logps = self._gradgap_logps
            self._gradgap_logps = None
            probe.accumulate_gap(self, model, inputs, logps)
        return loss


class GradgapGRPOTrainer(GradgapTrainerMixin, GRPOTrainer):
    """``trl.GRPOTrainer`` with the probe's hooks (:class:`GradgapTrainerMixin`)."""


class RewardFunctionError(GradgapValueError):
    """A reward function raised during a GRPO step."""


class GradgapProbe(TrainerCallback):
    r"""Writes ``OUT/metrics.jsonl``: one flushed JSON object per optimisation step (see the module table).

    ``evaluator(model) -> tensor of per-prompt success probabilities`` (or ``None``) measures :math:`J` on a fixed
    prompt set; ``on_gap`` (tests) is called as ``on_gap(trainer, model, inputs, gap)`` at :math:`\theta_k`.
    """

    def __init__(self, out_path: str | os.PathLike, *, optim: str, update_route: str = "auto", gap_every: int = 10,
                 eval_every: int = 10, constants_every: int = 50,
                 constants_samples: int = 4, temperature: float = 1.0,
                 evaluator: Callable[[Any], torch.Tensor | None] | None = None,
                 on_gap: Callable[..., None] | None = None, progress: Callable[[dict], None] | None = None,
                 state_path: str | os.PathLike | None = None) -> None:
        self.out_path = os.fspath(out_path)
        self.state_path = None if state_path is None else os.fspath(state_path)
        self._resumed = False
        self.optim = optim
        if update_route not in UPDATE_ROUTES:
            raise GradgapValueError(f"update_route={update_route!r}: choose one of {', '.join(UPDATE_ROUTES)}",
                                    field="update_route", value=update_route)
        self.update_route = update_route
        self.gap_every = gap_every
        self.eval_every = eval_every
        self.constants_every = constants_every
        self.constants_samples = constants_samples
        self.temperature = temperature
        self.evaluator = evaluator
        self.on_gap = on_gap
        self.progress = progress
        self.trainer: GradgapGRPOTrainer | None = None
        self._file = None
        self._step = 0  # optimisation steps finished
        self._gap: list[torch.Tensor] | None = None
        self._batch: GapBatch | None = None
        self._p_mix = 0
        self._snapshot: list[torch.Tensor] | None = None
        self._const_rows: tuple[torch.Tensor, ...] | None = None
        self._record: dict[str, Any] = {}
        self._constants: dict[str, Any] = {"L_o": None, "G_o": None, "constants_step": None}
        self._eval_prev: tuple[float, float] | None = None
        self._eval_step = 0
        #: (J, log-odds) on the evaluation prompts before the first step
        self.initial_eval: tuple[float, float] | None = None
        self._t0 = time.perf_counter()
        self.records: list[dict[str, Any]] = []
        #: largest number of bytes the probe held at once in parameter-shaped tensors (gap, snapshot, shifted copy)
        self.peak_extra_bytes = 0
        #: seconds the probe spent per part (``gap``, ``eval``, ``constants``, ``bookkeeping``) and how many times
        #: each ran: CPU time of the process (``time.process_time``) on CPU, host wall clock on a GPU (no sync)
        self.cost_s: dict[str, float] = dict.fromkeys(COST_PARTS, 0.0)
        self.cost_calls: dict[str, int] = dict.fromkeys(COST_PARTS, 0)
        self._clock = time.perf_counter if torch.cuda.is_available() else time.process_time
        self._inner = 0.0  # time of parts nested inside a bookkeeping interval
        self._param_list: list[torch.nn.Parameter] | None = None
        self._param_names: list[str] = []
        #: ``single``, ``ddp`` or ``fsdp2`` and the number of processes, from accelerate's state (:func:`topology`)
        self.kind, self.world = "single", 1
        self._fsdp_rows: list[tuple[torch.Tensor, ...]] = []
        self._eval_extra: dict[str, Any] = {}  # FSDP2: micro-batch rows of the deferred gap pass

    def _tick(self, part: str, t0: float) -> None:
        dt = self._clock() - t0
        self.cost_s[part] += dt
        self.cost_calls[part] += 1
        self._inner += dt

    def _book(self, t0: float, inner0: float) -> None:
        """Add the time since ``t0``, less the parts timed inside it, to ``bookkeeping``."""
        self.cost_s["bookkeeping"] += (self._clock() - t0) - (self._inner - inner0)

    # -- wiring -------------------------------------------------------------------------------------------------
    def attach(self, trainer: Any) -> None:
        """Wire the probe to ``trainer`` (a :class:`GradgapGRPOTrainer`, or any object with ``accelerator``,
        ``model`` and ``optimizer``); refuses DeepSpeed and FSDP1 in one line."""
        self.kind, self.world = topology(trainer.accelerator)
        self.trainer = trainer
        self._param_list = None
        trainer.gradgap_probe = self

    @property
    def is_main(self) -> bool:
        return self.trainer is None or bool(self.trainer.accelerator.is_main_process)

    def _allsum(self, values: list[float]) -> list[float]:
        """Sum per-shard partial sums over the processes (FSDP2); identity when parameters are whole."""
        if self.kind != "fsdp2" or self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.trainer.accelerator.device)
        torch.distributed.all_reduce(t)
        return [float(x) for x in t.cpu()]

    def _norm(self, a: list[torch.Tensor]) -> float:
        """Euclidean norm of a parameter-shaped list, over every shard."""
        if not a:
            return 0.0
        sq = float(torch.stack([n.double() ** 2 for n in torch._foreach_norm([_local(x) for x in a])]).sum())
        return math.sqrt(max(self._allsum([sq])[0], 0.0))

    def _dot(self, a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
        """Dot product of two parameter-shaped lists, over every shard."""
        return self._allsum([_flat_dot([_local(x) for x in a], [_local(y) for y in b])])[0]

    def _note(self, *groups: list[torch.Tensor] | None) -> None:
        held = sum(sum(_local(t).numel() * t.element_size() for t in g) for g in groups if g is not None)
        self.peak_extra_bytes = max(self.peak_extra_bytes, held)

    def wants_gap(self) -> bool:
        return (self._step % self.gap_every) == 0

    def _params(self) -> list[torch.nn.Parameter]:
        """The trainable parameters, listed once per run (walking the modules every step costs ~0.15 ms)."""
        assert self.trainer is not None
        if self._param_list is None:
            named = [(n, p) for n, p in self.trainer.model.named_parameters() if p.requires_grad]
            self._param_names = [n for n, _ in named]
            self._param_list = [p for _, p in named]
        return self._param_list

    # -- generation batch ---------------------------------------------------------------------------------------
    def on_batch(self, batch: GapBatch, p_mix: int) -> None:
        self._batch = batch
        self._p_mix = p_mix
        self._gap = None

    # -- the signed objective -----------------------------------------------------------------------------------
    def accumulate_gap(self, trainer, model, inputs, logps: torch.Tensor | None) -> None:
        t0 = self._clock()
        coef = inputs["gradgap_coef"]
        if self.kind == "fsdp2":  # deferred to on_pre_optimizer_step (every process, every micro-batch: collective)
            mask = inputs["completion_mask"]
            if "tool_mask" in inputs:
                mask = mask * inputs["tool_mask"]
            self._fsdp_rows.append((inputs["prompt_ids"].detach(), inputs["prompt_mask"].detach(),
                                    inputs["completion_ids"].detach(), mask.detach(), coef.detach()))
        elif bool(coef.any()):
            coef = coef.to(logps.dtype)  # a micro-batch without a mixed group adds nothing: no backward at all
            params = self._params()
            mask = inputs["completion_mask"]
            if "tool_mask" in inputs:
                mask = mask * inputs["tool_mask"]
            signed = (coef[:, None] * logps * mask).sum()
            grads = torch.autograd.grad(signed, params, retain_graph=True, allow_unused=True)
            grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
            if self._gap is None:
                self._gap = grads
            else:
                torch._foreach_add_(self._gap, grads)
            del grads
            self._note(self._gap)
        if self._constants_due() and self._const_rows is None:
            n = min(self.constants_samples, inputs["completion_ids"].shape[0])
            self._const_rows = tuple(inputs[k][:n].detach().clone()
                                     for k in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask"))
        self._tick("gap", t0)
        if self.on_gap is not None and self._gap is not None:
            self.on_gap(trainer, model, inputs, self._gap)

    def _constants_due(self) -> bool:
        """At step 1, then on the first gap step at least ``constants_every`` steps after the last measurement
        (the constants need the gap direction, so they are measured on gap steps only)."""
        if not self.constants_every:
            return False
        last = self._constants.get("constants_step")
        return last is None or self._step + 1 - last >= self.constants_every

    def _measure_constants(self, *, destructive: bool) -> None:
        r""":math:`L_o` = max |curvature of log pi along the unit gap|, then :math:`G_o` = max score norm, on the
        rows stashed by :meth:`accumulate_gap` (rank 0's, broadcast), at :math:`\theta_k` (before the step).

        The curvature is a central second difference of :math:`\log\pi` along :math:`v = g/\|g\|` with the
        parameters shifted in place. With ``destructive`` the gap buffer (already recorded) is turned into
        :math:`\theta + h v` and its values swapped with the parameters' (one parameter tensor of scratch at a
        time), so the buffer holds :math:`\theta` and restores it exactly: the probe never holds more than one
        parameter-sized buffer. Without (AdamW's ``realised_change``: the gap is still needed) a copy of the
        parameters is the second buffer. Then each row's score by one backward (``autograd.grad`` on whole
        parameters; under FSDP2 a forward and ``backward`` per row into the sharded ``.grad``, put back after).
        """
        t0 = self._clock()
        rows = self._shared_rows(self._const_rows)
        self._const_rows = None
        params = self._params()
        locs = [_local(p) for p in params]
        model = self.trainer.accelerator.unwrap_model(self.trainer.model)
        l_o = None
        gap = self._gap
        gnorm = self._norm(gap) if gap is not None else 0.0
        if gap is not None and gnorm > 0:
            h = CURVATURE_STEP
            with torch.no_grad():
                base = completion_log_probs(model, *rows, temperature=self.temperature).double()
                if destructive:
                    for g, p in zip(gap, locs, strict=True):
                        g.mul_(h / gnorm).add_(p)  # theta + h v
                        tmp = p.clone()
                        p.copy_(g)
                        g.copy_(tmp)  # now p = theta + h v, g = theta
                        del tmp
                    keep = gap
                else:
                    keep = [p.clone() for p in locs]
                    self._note(gap, keep)
                    for g, p in zip(gap, locs, strict=True):
                        p.add_(g, alpha=h / gnorm)
                try:
                    self._reshard(model)
                    f_plus = completion_log_probs(model, *rows, temperature=self.temperature).double()
                    for g, p, k in zip(gap, locs, keep, strict=True):
                        if destructive:
                            p.mul_(-1.0).add_(k, alpha=2.0)  # 2 theta - (theta + h v) = theta - h v
                        else:
                            p.copy_(k).add_(g, alpha=-h / gnorm)
                    self._reshard(model)
                    f_minus = completion_log_probs(model, *rows, temperature=self.temperature).double()
                finally:
                    for p, k in zip(locs, keep, strict=True):
                        p.copy_(k)  # theta, exactly
                    self._reshard(model)
                l_o = float(((f_plus - 2 * base + f_minus) / h**2).abs().max())
                del keep
        if destructive:  # the gap's norm and dot products are recorded: release it before the per-sample scores
            self._gap = gap = None
        g_o = 0.0
        n = rows[0].shape[0]
        if self.kind == "fsdp2":
            stash = [p.grad for p in params]
            try:
                for i in range(n):
                    for p in params:
                        p.grad = None
                    lp = completion_log_probs(self.trainer.model, *(r[i : i + 1] for r in rows),
                                              temperature=self.temperature)
                    lp.sum().backward()  # every process, the same row: FSDP2's average is the row's score
                    score = [p.grad for p in params if p.grad is not None]
                    self._note(gap, score)
                    g_o = max(g_o, self._norm(score))
                    del score, lp
            finally:
                for p, g in zip(params, stash, strict=True):
                    p.grad = g
        else:
            lp = completion_log_probs(model, *rows, temperature=self.temperature)  # at theta_k, with its graph
            for i in range(n):
                score = torch.autograd.grad(lp[i], params, retain_graph=i < n - 1, allow_unused=True)
                score = [s for s in score if s is not None]
                self._note(gap, score)
                g_o = max(g_o, self._norm(score))
                del score
            del lp
        self._constants = {"L_o": l_o, "G_o": g_o, "constants_step": self._step + 1}
        self._tick("constants", t0)

    def _reshard(self, model) -> None:
        """FSDP2: drop every cached unsharded parameter, so the next forward all-gathers the (shifted) shards
        (groups with ``reshard_after_forward=False`` keep theirs between forwards)."""
        if self.kind != "fsdp2":
            return
        for m in model.modules():
            reshard = getattr(m, "reshard", None)
            if reshard is not None and type(m).__name__.startswith("FSDP"):
                reshard()

    def _shared_rows(self, rows: tuple[torch.Tensor, ...] | None) -> tuple[torch.Tensor, ...]:
        """Rank 0's constant rows on every process (one broadcast; identity in a single process)."""
        if self.world == 1:
            return rows  # type: ignore[return-value]
        from accelerate.utils import broadcast_object_list

        box = [None if rows is None else tuple(r.cpu() for r in rows)]
        broadcast_object_list(box, from_process=0)
        device = self.trainer.accelerator.device
        return tuple(r.to(device) for r in box[0])

    def _fsdp2_gap(self) -> None:
        r"""FSDP2: the gap from one more forward and backward per kept micro-batch, through the sharded ``.grad``.

        TRL's (reduced, clipped) gradients are set aside, the backward of :math:`W\sum_i c_i\log\pi(o_i)` writes
        the gap's shards into ``.grad`` (FSDP2 averages over the ``W`` processes, hence the factor), they are moved
        into the probe's buffer and TRL's gradients are put back before the optimizer step.
        """
        rows, self._fsdp_rows = self._fsdp_rows, []
        if not rows or self._p_mix == 0:
            return
        params = self._params()
        stash = [p.grad for p in params]
        try:
            for p in params:
                p.grad = None
            for prompt_ids, prompt_mask, completion_ids, mask, coef in rows:
                lp = completion_log_probs(self.trainer.model, prompt_ids, prompt_mask, completion_ids, mask,
                                          temperature=self.temperature)
                (self.world * (coef.to(lp.dtype) * lp).sum()).backward()
                del lp
            self._gap = [_local(p.grad).detach() if p.grad is not None else torch.zeros_like(_local(p))
                         for p in params]
            self._note(self._gap)
        finally:
            for p, g in zip(params, stash, strict=True):
                p.grad = g

    # -- callback events ----------------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        self._param_list = None  # listed again now that accelerate has prepared (possibly sharded) the model
        if self.is_main:  # one writer per run
            os.makedirs(os.path.dirname(self.out_path) or ".", exist_ok=True)
            self._file = open(self.out_path, "a", buffering=1, encoding="utf-8")
        if not self._resumed:
            self._eval_prev = self.initial_eval = self._evaluate()
            if self.state_path is not None and self.is_main:  # what a resumed run needs of the start

                atomic_write_text(self.state_path, json.dumps({"initial_eval": self.initial_eval}))
        self.cost_s = dict.fromkeys(COST_PARTS, 0.0)  # the costs count the optimisation steps only
        self.cost_calls = dict.fromkeys(COST_PARTS, 0)
        self._t0 = time.perf_counter()

    def _reduce_gap(self) -> None:
        """DDP: sum the gap over processes (its weights c_i are normalised by the global number of mixed groups).
        Distributed-ness comes from accelerate's state (:func:`topology`), not from a process group existing."""
        if self.kind == "fsdp2":
            self._fsdp2_gap()
            return
        if self.kind == "ddp" and self.world > 1 and self.wants_gap() and self._p_mix > 0:
            if self._gap is None:  # no mixed group in this process's rows: it adds zeros, but takes part
                self._gap = [torch.zeros_like(p) for p in self._params()]
            for g in self._gap:
                torch.distributed.all_reduce(g)

    def resume(self, records: list[dict[str, Any]], initial_eval: Any) -> None:
        """Continue a run from its checkpoint: the records so far, J before step 1, the last evaluation and
        constants (the optimisation state itself is TRL's checkpoint)."""
        self._resumed = True
        self.records = list(records)
        self._step = records[-1]["step"] if records else 0
        self.initial_eval = tuple(initial_eval) if initial_eval is not None else None
        self._eval_prev, self._eval_step = self.initial_eval, 0
        for r in records:
            if r.get("eval_success_rate") is not None:
                self._eval_prev, self._eval_step = (r["eval_success_rate"], r["eval_log_odds"]), r["step"]
            if r.get("constants_step") is not None:
                self._constants = {k: r.get(k) for k in ("L_o", "G_o", "constants_step")}

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        t0, inner0 = self._clock(), self._inner
        try:
            self._pre_optimizer_step()
        finally:
            self._book(t0, inner0)

    def _pre_optimizer_step(self) -> None:
        self._reduce_gap()
        params = self._params()
        lr = float(self.trainer.optimizer.param_groups[0]["lr"])
        rec: dict[str, Any] = {"step": self._step + 1, "learning_rate": lr}
        grads = [torch.zeros_like(_local(p)) if p.grad is None else _local(p.grad) for p in params]
        grad_norm = self._norm(grads)
        rec["grad_norm_clipped"] = grad_norm
        if self.optim == "sgd":
            # plain SGD (no momentum, no weight decay): the update is exactly -lr * grad
            rec["update_norm"] = lr * grad_norm
            rec["update_route"] = "post_clip_gradient"
            if self._gap is not None:
                g_dot = -self._dot(grads, self._gap)
                self._alignment(rec, g_dot, grad_norm)
            self._constants_now(destructive=True)
        else:
            adam = None if self.update_route == "realised_change" else self._adam_update(params)
            if adam is not None:
                dot, unorm = adam
                rec["update_norm"] = unorm
                rec["update_route"] = "adam_state"
                if self._gap is not None:
                    self._alignment(rec, dot, unorm)
                self._constants_now(destructive=True)
            elif self.update_route == "adam_state":
                raise GradgapValueError("update_route='adam_state': the optimiser is not a plain torch.optim.AdamW;"
                                        " use 'realised_change'", field="update_route", value=self.update_route)
            else:
                self._constants_now(destructive=False)  # the gap is still needed after the step
                self._snapshot = [_local(p).detach().clone() for p in params]
                self._note(self._gap, self._snapshot)
                rec["update_route"] = "realised_change"
        self._record = rec

    def _constants_now(self, *, destructive: bool) -> None:
        if self._const_rows is not None:
            self._measure_constants(destructive=destructive)

    def _adam_update(self, params: list[torch.Tensor]) -> tuple[float, float] | None:
        r"""``(<Δθ, g>, ‖Δθ‖)`` of the coming ``torch.optim.AdamW`` step, from the gradient and the moments:
        :math:`\Delta\theta = -\eta\lambda\theta - \frac{\eta}{1-\beta_1^t}\,
        m_t / (\sqrt{v_t/(1-\beta_2^t)} + \epsilon)`; one parameter tensor at a time, no full-size buffer."""
        opt = self.trainer.optimizer
        inner = getattr(opt, "optimizer", opt)
        if type(inner) is not torch.optim.AdamW:
            return None
        index = {id(p): i for i, p in enumerate(params)}
        dot, sq = 0.0, 0.0
        with torch.no_grad():
            for group in inner.param_groups:
                if group.get("amsgrad") or group.get("maximize") or group.get("capturable"):
                    return None
                lr, wd, eps = float(group["lr"]), float(group["weight_decay"]), float(group["eps"])
                b1, b2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    st = inner.state.get(p, {})
                    t = float(st["step"]) + 1 if "step" in st else 1.0
                    g = _local(p.grad).double()
                    m = g * (1 - b1) if "exp_avg" not in st else _local(st["exp_avg"]).double() * b1 + g * (1 - b1)
                    v = g * g * (1 - b2) if "exp_avg_sq" not in st else (
                        _local(st["exp_avg_sq"]).double() * b2 + g * g * (1 - b2))
                    u = -(lr / (1 - b1**t)) * m / (v.sqrt() / math.sqrt(1 - b2**t) + eps) - lr * wd * _local(p).double()
                    sq += float((u * u).sum())
                    if self._gap is not None and id(p) in index:
                        dot += float((u * self._gap[index[id(p)]].double()).sum())
        dot, sq = self._allsum([dot, sq])
        return dot, math.sqrt(max(sq, 0.0))

    def on_optimizer_step(self, args, state, control, **kwargs):
        t0, inner0 = self._clock(), self._inner
        try:
            self._after_optimizer_step()
        finally:
            self._book(t0, inner0)

    def _after_optimizer_step(self) -> None:
        if self._snapshot is None:
            return
        params = self._params()
        delta = [_local(p).detach() - s for p, s in zip(params, self._snapshot, strict=True)]
        self._snapshot = None
        dnorm = self._norm(delta)
        self._record["update_norm"] = dnorm
        if self._gap is not None:
            self._alignment(self._record, self._dot(delta, self._gap), dnorm)

    def _alignment(self, rec: dict[str, Any], dot: float, unorm: float) -> None:
        gnorm = self._norm(self._gap)
        rec["gradient_gap_norm"] = gnorm
        cos = dot / (unorm * gnorm) if unorm > 0 and gnorm > 0 else None
        if cos is not None:  # float32 dot products overshoot +-1 by rounding when the update is parallel to g
            cos = max(-1.0, min(1.0, cos))
        rec["alignment"] = cos
        rec["delta_mu"] = None if cos is None else cos * gnorm

    def on_step_end(self, args, state, control, **kwargs):
        t0, inner0 = self._clock(), self._inner
        try:
            self._step_end(state)
        finally:
            self._book(t0, inner0)
            self.cost_calls["bookkeeping"] += 1

    def _step_end(self, state) -> None:
        self._step += 1
        rec = self._record
        self._record = {}
        rec.setdefault("step", self._step)
        if "gradient_gap_norm" not in rec:
            rec["gradient_gap_norm"] = None if self._gap is None else self._norm(self._gap)
        if self._p_mix == 0:  # no group with both a success and a failure: the gap is undefined
            rec.update(gradient_gap_norm=None, alignment=None, delta_mu=None)
        rec.setdefault("alignment", None)
        rec.setdefault("delta_mu", None)
        rec["gap_route"] = "signed_objective"
        rec["gap_groups"] = self._p_mix
        b = self._batch
        if b is not None:
            rec.update(success_rate=b.success_rate, per_prompt_success=b.per_prompt_success, unscorable=b.unscorable,
                       frac_zero_variance_groups=b.frac_zero_variance_groups,
                       mean_response_length=b.mean_response_length)
        rec.update(self._constants)
        self._safe_step(rec)
        last = state.max_steps > 0 and state.global_step >= state.max_steps
        if self._step % self.eval_every == 0 or last:
            before, span = self._eval_prev, self._step - self._eval_step
            after = self._evaluate()
            self._eval_prev, self._eval_step = after, self._step
            if after is not None:
                rec["eval_success_rate"], rec["eval_log_odds"] = after
                rec.update(self._eval_extra)
                if before is not None:
                    # realised change since the previous evaluation, ``eval_span`` optimisation steps ago
                    rec["delta_eval_success_rate"] = after[0] - before[0]
                    rec["delta_eval_log_odds"] = after[1] - before[1]
                    rec["eval_span"] = span
        rec["time_s"] = time.perf_counter() - self._t0
        self._gap = None
        self.records.append(rec)
        if self._file is not None:
            self._file.write(json.dumps(_finite(rec), allow_nan=False, default=_json_default) + "\n")
            self._file.flush()
        self._log_to_trainer(rec)
        if self.progress is not None and self.is_main:
            self.progress(rec)

    def _log_to_trainer(self, rec: dict[str, Any]) -> None:
        """Every numeric field of the record into TRL's metric buffer as ``gradgap/<key>``, so ``report_to``
        (tensorboard, wandb, trackio) logs it with TRL's own metrics (averaged over the logging interval)."""
        metrics = getattr(self.trainer, "_metrics", None)
        if metrics is None:
            return
        for key, value in rec.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                metrics["train"][f"gradgap/{key}"].append(float(value))

    def _safe_step(self, rec: dict[str, Any]) -> None:
        l_o, g_o, dmu = rec.get("L_o"), rec.get("G_o"), rec.get("delta_mu")
        if l_o is None or g_o is None or dmu is None:
            rec["predicted_safe_step"] = None
            return
        safe = max(dmu, 0.0) / (2.0 * (l_o + 8.0 * g_o**2))
        rec["predicted_safe_step"] = safe
        unorm, lr = rec.get("update_norm"), rec.get("learning_rate")
        rec["step_over_safe"] = unorm / safe if safe > 0 and unorm is not None else None
        # the same bound as a learning rate: the step is lr * |w| with w the update per unit learning rate
        per_lr = unorm / lr if unorm and lr else None
        rec["predicted_safe_lr"] = safe / per_lr if per_lr else None

    def _evaluate(self) -> tuple[float, float] | None:
        if self.evaluator is None or self.trainer is None:
            return None
        t0 = self._clock()
        with torch.inference_mode():  # a float comes out; no autograd state is kept
            j = self.evaluator(self.trainer.model)
        self._tick("eval", t0)
        if j is None:
            return None
        from gradgap.experiments.grpo.tiny import log_odds

        j = j.double().reshape(-1)
        mean = float(j.mean())
        n = getattr(self.evaluator, "samples_per_prompt", None)
        if n:  # sampled estimates k/n: Jeffreys-smoothed per-prompt log-odds, finite at 0 and n
            k = j * n
            per_prompt = torch.log((k + 0.5) / (n - k + 0.5))
        else:  # exact per-prompt probabilities (tiny task)
            per_prompt = torch.tensor([log_odds(float(x)) for x in j], dtype=torch.float64)
        se = float(j.std(unbiased=True) / math.sqrt(j.numel())) if j.numel() > 1 else None
        self._eval_extra = {"eval_success_se": se, "eval_mean_prompt_log_odds": float(per_prompt.mean()),
                            "eval_prompts": int(j.numel()), "eval_samples_per_prompt": n}
        return mean, log_odds(mean)

    def on_train_end(self, args, state, control, **kwargs):
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _finite(x: Any) -> Any:
    """Non-finite floats become ``None`` (JSON has no NaN); containers are walked."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def _json_default(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.tolist()
    raise TypeError(type(x).__name__)
