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

Under DeepSpeed the optimizer step runs inside ``backward`` and gradients are gone before any callback: use DDP
or FSDP2 (docs/grpo.md). Multi-process runs sum the gap across processes (untested on more than one process).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from typing import Any

import torch
from gradgap.theory.instances import GradgapValueError
from transformers import TrainerCallback
from trl import GRPOTrainer

__all__ = [
    "GapBatch",
    "GradgapGRPOTrainer",
    "GradgapProbe",
    "NonFiniteLossError",
    "RewardFunctionError",
    "completion_log_probs",
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


class NonFiniteLossError(GradgapValueError):
    """The GRPO loss became NaN or infinite (recorded FAILED by a sweep)."""


def gap_coefficients(success: torch.Tensor, num_generations: int) -> tuple[torch.Tensor, int]:
    r"""Per-completion weights :math:`c_i` of the signed objective, and the number of mixed groups.

    ``success`` is the flat 0/1 vector of a generation batch laid out group after group (TRL's layout).

    >>> c, p = gap_coefficients(torch.tensor([1., 0., 0., 1., 1., 1.]), 3)
    >>> [round(float(x), 3) for x in c], p
    ([1.0, -0.5, -0.5, 0.0, 0.0, 0.0], 1)
    """
    r = success.reshape(-1, num_generations).double()
    k = r.sum(1, keepdim=True)
    mixed = (k > 0) & (k < num_generations)
    p_mix = int(mixed.sum())
    pos = r / k.clamp(min=1)
    neg = (1 - r) / (num_generations - k).clamp(min=1)
    c = torch.where(mixed, pos - neg, torch.zeros_like(r)) / max(p_mix, 1)
    return c.reshape(-1), p_mix


class GapBatch:
    """What the probe keeps of one generation batch (the statistics of the sampled completions)."""

    def __init__(self, success: torch.Tensor, lengths: torch.Tensor, num_generations: int) -> None:
        groups = success.reshape(-1, num_generations)
        self.success_rate = float(success.mean())
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


def completion_log_probs(model, prompt_ids, prompt_mask, completion_ids, completion_mask,
                         *, temperature: float = 1.0, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    r""":math:`\log\pi(o_i\mid q_i)` per row: completion token log-probabilities (masked) summed.

    Computed independently of TRL's code (a plain forward pass); ``params`` evaluates at other parameter values
    through ``torch.func.functional_call``.
    """
    ids = torch.cat([prompt_ids, completion_ids], dim=1)
    att = torch.cat([prompt_mask, completion_mask], dim=1)
    if params is None:
        logits = model(input_ids=ids, attention_mask=att).logits
    else:
        logits = torch.func.functional_call(model, params, (), {"input_ids": ids, "attention_mask": att}).logits
    n = completion_ids.shape[1]
    logits = logits[:, -n - 1 : -1, :]
    logits = (logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits) / temperature
    logp = torch.log_softmax(logits, dim=-1).gather(-1, completion_ids[..., None]).squeeze(-1)
    return (logp * completion_mask).sum(-1)


class GradgapGRPOTrainer(GRPOTrainer):
    """``trl.GRPOTrainer`` plus the probe's three hooks (private TRL API, pinned by the ``llm`` extra's range).

    1. ``_calculate_rewards``: keeps the gathered rewards of the generation batch;
    2. ``_generate_and_score_completions``: adds ``gradgap_coef`` / ``gradgap_success`` / ``gradgap_group`` per
       completion to the batch dict (TRL shuffles and splits it consistently);
    3. ``_compute_loss``: after TRL's loss, one ``autograd.grad`` of the signed objective into the probe's buffer,
       and a non-finite loss raises :class:`NonFiniteLossError`.
    """

    gradgap_probe: GradgapProbe | None = None

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
        rewards = (self._gradgap_rewards * self.reward_weights.to(self._gradgap_rewards.device)).nansum(dim=1)
        success = (rewards > 0.5).double()  # binary verifiable rewards: success iff the reward is 1
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
                 on_gap: Callable[..., None] | None = None, progress: Callable[[dict], None] | None = None) -> None:
        self.out_path = os.fspath(out_path)
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

    def _tick(self, part: str, t0: float) -> None:
        dt = self._clock() - t0
        self.cost_s[part] += dt
        self.cost_calls[part] += 1
        self._inner += dt

    def _book(self, t0: float, inner0: float) -> None:
        """Add the time since ``t0``, less the parts timed inside it, to ``bookkeeping``."""
        self.cost_s["bookkeeping"] += (self._clock() - t0) - (self._inner - inner0)

    # -- wiring -------------------------------------------------------------------------------------------------
    def attach(self, trainer: GradgapGRPOTrainer) -> None:
        self.trainer = trainer
        self._param_list = None
        trainer.gradgap_probe = self

    def _note(self, *groups: list[torch.Tensor] | None) -> None:
        held = sum(sum(t.numel() * t.element_size() for t in g) for g in groups if g is not None)
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
    def accumulate_gap(self, trainer, model, inputs, logps: torch.Tensor) -> None:
        t0 = self._clock()
        coef = inputs["gradgap_coef"].to(logps.dtype)
        if bool(coef.any()):  # a micro-batch without a mixed group adds nothing: no backward at all
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
        rows stashed by :meth:`accumulate_gap`, at :math:`\theta_k` (before the optimizer step).

        One forward pass of the rows with autograd serves both: its values are the centre of the second
        difference, and its graph gives each row's score by one backward (``retain_graph``; rows of a batch are
        independent, so the gradient of row i's log-probability is that row's score alone). With
        ``destructive`` the gap buffer itself is turned into the shifted parameters
        :math:`\theta \pm h\,g/\|g\|` (the gap is no longer needed: its norm and its dot product with the update
        are already recorded), so the probe never holds more than one parameter-sized buffer; the per-sample scores
        come after, one at a time, once that buffer is released.
        """
        t0 = self._clock()
        rows = self._const_rows
        self._const_rows = None
        params = self._params()
        names = self._param_names
        unwrapped = self.trainer.accelerator.unwrap_model(self.trainer.model)
        lp = completion_log_probs(unwrapped, *rows, temperature=self.temperature)  # at theta_k, with its graph
        l_o = None
        gap = self._gap
        gnorm = _flat_norm(gap) if gap is not None else 0.0
        if gap is not None and gnorm > 0:
            h = CURVATURE_STEP
            with torch.no_grad():
                base = lp.detach().double()
                if destructive:
                    for g, p in zip(gap, params, strict=True):
                        g.mul_(h / gnorm).add_(p)  # theta + h v
                    plus = dict(zip(names, gap, strict=True))
                else:
                    plus = {nm: p + (h / gnorm) * g for nm, p, g in zip(names, params, gap, strict=True)}
                    self._note(gap, list(plus.values()))
                f_plus = completion_log_probs(unwrapped, *rows, temperature=self.temperature, params=plus).double()
                if destructive:
                    for g, p in zip(gap, params, strict=True):
                        g.mul_(-1.0).add_(p, alpha=2.0)  # 2 theta - (theta + h v) = theta - h v
                    minus = plus
                else:
                    minus = {nm: p - (h / gnorm) * g for nm, p, g in zip(names, params, gap, strict=True)}
                    del plus
                f_minus = completion_log_probs(unwrapped, *rows, temperature=self.temperature,
                                               params=minus).double()
                l_o = float(((f_plus - 2 * base + f_minus) / h**2).abs().max())
                del minus
        if destructive:  # the gap's norm and dot products are recorded: release it before the per-sample scores
            self._gap = gap = None
        g_o = 0.0
        n = lp.shape[0]
        for i in range(n):
            score = torch.autograd.grad(lp[i], params, retain_graph=i < n - 1, allow_unused=True)
            score = [s for s in score if s is not None]
            self._note(gap, score)
            g_o = max(g_o, _flat_norm(score))
            del score
        del lp
        self._constants = {"L_o": l_o, "G_o": g_o, "constants_step": self._step + 1}
        self._tick("constants", t0)

    # -- callback events ----------------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        self._param_list = None  # listed again now that accelerate has prepared (possibly sharded) the model
        if self.trainer is None or self.trainer.accelerator.is_main_process:  # one writer per run
            os.makedirs(os.path.dirname(self.out_path) or ".", exist_ok=True)
            self._file = open(self.out_path, "a", buffering=1, encoding="utf-8")
        self._eval_prev = self.initial_eval = self._evaluate()
        self.cost_s = dict.fromkeys(COST_PARTS, 0.0)  # the costs count the optimisation steps only
        self.cost_calls = dict.fromkeys(COST_PARTS, 0)
        self._t0 = time.perf_counter()

    def _reduce_gap(self) -> None:
        """Sum the gap over processes (its weights c_i are normalised by the global number of mixed groups)."""
        if not torch.distributed.is_available() or not torch.distributed.is_initialized():
            return
        if torch.distributed.get_world_size() > 1 and self.wants_gap() and self._p_mix > 0:
            if self._gap is None:  # no mixed group in this process's rows: it adds zeros, but takes part
                self._gap = [torch.zeros_like(p) for p in self._params()]
            for g in self._gap:
                torch.distributed.all_reduce(g)

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
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
        grad_norm = _flat_norm(grads)
        rec["grad_norm_clipped"] = grad_norm
        if self.optim == "sgd":
            # plain SGD (no momentum, no weight decay): the update is exactly -lr * grad
            rec["update_norm"] = lr * grad_norm
            rec["update_route"] = "post_clip_gradient"
            if self._gap is not None:
                g_dot = -_flat_dot(grads, self._gap)
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
                self._snapshot = [p.detach().clone() for p in params]
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
                    g = p.grad.double()
                    m = g * (1 - b1) if "exp_avg" not in st else st["exp_avg"].double() * b1 + g * (1 - b1)
                    v = g * g * (1 - b2) if "exp_avg_sq" not in st else (
                        st["exp_avg_sq"].double() * b2 + g * g * (1 - b2))
                    u = -(lr / (1 - b1**t)) * m / (v.sqrt() / math.sqrt(1 - b2**t) + eps) - lr * wd * p.double()
                    sq += float((u * u).sum())
                    if self._gap is not None and id(p) in index:
                        dot += float((u * self._gap[index[id(p)]].double()).sum())
        return dot, math.sqrt(sq)

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
        delta = [p.detach() - s for p, s in zip(params, self._snapshot, strict=True)]
        self._snapshot = None
        dnorm = _flat_norm(delta)
        self._record["update_norm"] = dnorm
        if self._gap is not None:
            self._alignment(self._record, _flat_dot(delta, self._gap), dnorm)

    def _alignment(self, rec: dict[str, Any], dot: float, unorm: float) -> None:
        gnorm = _flat_norm(self._gap)
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
            rec["gradient_gap_norm"] = None if self._gap is None else _flat_norm(self._gap)
        if self._p_mix == 0:  # no group with both a success and a failure: the gap is undefined
            rec.update(gradient_gap_norm=None, alignment=None, delta_mu=None)
        rec.setdefault("alignment", None)
        rec.setdefault("delta_mu", None)
        rec["gap_route"] = "signed_objective"
        rec["gap_groups"] = self._p_mix
        b = self._batch
        if b is not None:
            rec.update(success_rate=b.success_rate, per_prompt_success=b.per_prompt_success,
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
        if self.trainer is not None:  # TRL's own logging (report_to) sees the probe's scalars too
            for key in ("gradient_gap_norm", "alignment", "predicted_safe_step", "eval_success_rate"):
                if isinstance(rec.get(key), float):
                    self.trainer._metrics["train"][f"gradgap/{key}"].append(rec[key])
        if self.progress is not None:
            self.progress(rec)

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
        mean = float(j.double().mean())
        from gradgap.experiments.grpo.tiny import log_odds

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
