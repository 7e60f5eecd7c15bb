r"""Overhead of the probe: a plain TRL ``GRPOTrainer`` step against the same step with the probe, in one process.

Both arms start from copies of the same warm-started model and run the same configuration; the rounds alternate
which arm goes first. A step is timed from ``on_step_begin`` to the end of ``on_step_end`` (the timer is the
last callback, so the probe's own work at step end — metrics, exact evaluation — is inside the time), in CPU
time of the process (``time.process_time``, all threads: robust on a shared machine; on a GPU, the synchronised
wall clock instead) and in wall time. The
first ``warmup`` steps of each arm are dropped. Reported: mean step time of each arm (the probe's cost falls on
some steps only when ``gap_every`` or ``eval_every`` > 1), their ratio (target <= 1.10),
and the probe's peak parameter-shaped memory as a multiple of the parameter size (target <= 1).

The probe also times its own parts (:attr:`~.probe.GradgapProbe.cost_s`: the Gradient Gap's extra
backward, the evaluation forward, the constants, the bookkeeping), in the same clock; the bench reports each as
milliseconds per step (averaged over every step of the arm, so a part that runs every k steps counts 1/k) and per
time it ran, and as a share of the plain step. They are timed inside the probe arm and do not sum exactly to the
measured difference of the two arms (noise, and second-order effects such as the retained graph).
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from gradgap.experiments.grpo.config import GrpoRunConfig


@dataclass
class BenchResult:
    plain_step_s: float
    probe_step_s: float
    ratio: float
    ratio_rounds: list[float]
    probe_extra_buffers: float
    parameters: int
    steps: int
    rounds: int
    plain_wall_s: float
    probe_wall_s: float
    #: part -> seconds per step of the probe arm (averaged over all its steps)
    part_step_s: dict[str, float] = field(default_factory=dict)
    #: part -> seconds per time the part ran
    part_call_s: dict[str, float] = field(default_factory=dict)
    #: part -> number of times it ran per step (0..1)
    part_rate: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [
            f"parameters            {self.parameters}",
            f"steps x rounds        {self.steps} x {self.rounds} per arm (warm-up steps dropped)",
            f"plain TRL step        {self.plain_step_s * 1e3:.2f} ms CPU time, or GPU wall (mean; wall "
            f"{self.plain_wall_s * 1e3:.2f} ms)",
            f"step with probe       {self.probe_step_s * 1e3:.2f} ms CPU time, or GPU wall (mean; wall "
            f"{self.probe_wall_s * 1e3:.2f} ms)",
            f"overhead ratio        {self.ratio:.3f}  (per round: {', '.join(f'{r:.3f}' for r in self.ratio_rounds)};"
            " target <= 1.10)",
            f"probe extra memory    {self.probe_extra_buffers:.2f} x parameter size (peak; target <= 1)",
            *(f"  part {part:<12s}    {self.part_step_s[part] * 1e3:6.2f} ms/step = "
              f"{self.part_step_s[part] / self.plain_step_s:6.1%} of a plain step  "
              f"({self.part_call_s[part] * 1e3:.2f} ms each, on {self.part_rate[part]:.0%} of the steps)"
              for part in self.part_step_s),
        ]


def bench_probe(cfg: GrpoRunConfig, *, steps: int = 30, rounds: int = 3, warmup: int = 3,
                out_dir: str = "/tmp") -> BenchResult:
    """Run both arms ``rounds`` times for ``steps`` steps each; see the module docstring."""
    import os
    import tempfile
    import warnings

    import torch
    from transformers import PrinterCallback, ProgressCallback, TrainerCallback
    from transformers.utils import logging as hf_logging
    from trl import GRPOConfig, GRPOTrainer

    from gradgap.experiments.grpo.probe import GradgapGRPOTrainer, GradgapProbe
    from gradgap.experiments.grpo.run import build, trl_options

    cuda = torch.cuda.is_available()
    hf_logging.disable_progress_bar()
    cfg = cfg.replace(steps=steps + warmup)
    built = build(cfg)

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.walls: list[float] = []
            self._t = self._w = 0.0

        def on_step_begin(self, args, state, control, **kw):
            if cuda:
                torch.cuda.synchronize()
            self._t, self._w = time.process_time(), time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if cuda:
                torch.cuda.synchronize()
            wall = time.perf_counter() - self._w
            # on a GPU the host's CPU time says nothing about the device: time the step by the (synchronised) clock
            self.times.append(wall if cuda else time.process_time() - self._t)
            self.walls.append(wall)

    def arm(with_probe: bool, tmp: str) -> tuple[list[float], list[float], GradgapProbe | None]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            args = GRPOConfig(**trl_options(cfg, output_dir=os.path.join(tmp, "trl")))
        timer = StepTimer()
        model = copy.deepcopy(built.model)
        probe = None
        if with_probe:
            probe = GradgapProbe(os.path.join(tmp, "metrics.jsonl"), optim=cfg.optim, update_route=cfg.update_route,
                                 gap_every=cfg.gap_every, eval_every=cfg.eval_every,
                                 constants_every=cfg.constants_every,
                                 constants_samples=cfg.constants_samples, temperature=cfg.temperature,
                                 evaluator=built.evaluator)
            trainer: Any = GradgapGRPOTrainer(model=model, reward_funcs=built.reward_funcs, args=args,
                                              train_dataset=built.train_dataset, processing_class=built.tokenizer,
                                              callbacks=[probe, timer])
            probe.attach(trainer)
        else:
            trainer = GRPOTrainer(model=model, reward_funcs=built.reward_funcs, args=args,
                                  train_dataset=built.train_dataset, processing_class=built.tokenizer,
                                  callbacks=[timer])
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
        trainer.train()
        if probe is not None:
            probe.close()
        return timer.times[warmup:], timer.walls[warmup:], probe

    plain_all: list[float] = []
    probe_all: list[float] = []
    walls: dict[bool, list[float]] = {False: [], True: []}
    ratios = []
    peak = 0
    part_s: dict[str, float] = {}
    part_n: dict[str, int] = {}
    probe_steps = 0
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        for r in range(rounds):
            order = (False, True) if r % 2 == 0 else (True, False)
            got: dict[bool, list[float]] = {}
            for with_probe in order:
                times, wall, probe = arm(with_probe, os.path.join(tmp, f"r{r}{int(with_probe)}"))
                got[with_probe] = times
                walls[with_probe] += wall
                if probe is not None:
                    peak = max(peak, probe.peak_extra_bytes)
                    probe_steps += len(probe.records)
                    for part, sec in probe.cost_s.items():
                        part_s[part] = part_s.get(part, 0.0) + sec
                        part_n[part] = part_n.get(part, 0) + probe.cost_calls[part]
            plain_all += got[False]
            probe_all += got[True]
            ratios.append(statistics.fmean(got[True]) / statistics.fmean(got[False]))
    params = built.model.parameters()
    n = 0
    nbytes = 0
    for p in params:
        if p.requires_grad:
            n += p.numel()
            nbytes += p.numel() * p.element_size()
    # means, not medians: with gap_every / eval_every > 1 the probe's cost falls on some steps only
    plain, probed = statistics.fmean(plain_all), statistics.fmean(probe_all)
    steps_done = max(probe_steps, 1)
    return BenchResult(plain, probed, probed / plain, ratios, peak / nbytes, n, steps, rounds,
                       statistics.fmean(walls[False]), statistics.fmean(walls[True]),
                       part_step_s={k: v / steps_done for k, v in part_s.items()},
                       part_call_s={k: v / max(part_n[k], 1) for k, v in part_s.items()},
                       part_rate={k: part_n[k] / steps_done for k in part_s})
