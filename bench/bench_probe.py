"""Probe overhead: plain TRL GRPO steps vs steps with the gradgap probe, side by side in one process.

    HF_HUB_OFFLINE=1 python bench/bench_probe.py [--preset tiny] [--length 4] [--steps 40] [--rounds 2] [--threads 1]

Prints the mean step time of each arm, the overhead ratio (target <= 1.10) and the probe's peak extra memory
in parameter sizes (target <= 1), and what each part of the probe costs (gap, evaluation, constants, bookkeeping:
ms per step, ms each time, share of a plain step). Without --gap-every / --eval-every / --constants-every it
measures two settings: the probe's every field at every step, and the default cadence of a run (gap and
evaluation every 10 steps, constants every 50; the cheap fields at every step). The logic lives in
:mod:`gradgap.experiments.grpo.bench`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# the checkout this script belongs to, ahead of any installed copy of gradgap
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="tiny")
    p.add_argument("--length", type=int, default=None)
    p.add_argument("--optim", default=None)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--gap-every", type=int, default=None)
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--constants-every", type=int, default=None)
    p.add_argument("--prompts-per-step", type=int, default=None)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1: idle OpenMP threads spin and blur CPU time)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    from gradgap.experiments.grpo.bench import bench_probe
    from gradgap.experiments.grpo.presets import resolve_preset

    common = dict(length=a.length, optim=a.optim, prompts_per_step=a.prompts_per_step, cache_dir=a.cache_dir,
                  lr=1e-3 if a.optim == "adamw" else None)
    if a.gap_every is None and a.eval_every is None and a.constants_every is None:
        from gradgap.experiments.grpo.config import GrpoRunConfig

        d = {f: GrpoRunConfig.__dataclass_fields__[f].default for f in ("gap_every", "eval_every", "constants_every")}
        settings = {"every step (gap_every=eval_every=1, constants_every=10)":
                        {"gap_every": 1, "eval_every": 1, "constants_every": 10},
                    f"default cadence (gap_every={d['gap_every']}, eval_every={d['eval_every']}, "
                    f"constants_every={d['constants_every']})": {}}
    else:
        given = {"gap_every": a.gap_every, "eval_every": a.eval_every, "constants_every": a.constants_every}
        settings = {"as given": {k: v for k, v in given.items() if v is not None}}
    results = {}
    for name, kw in settings.items():
        cfg = resolve_preset(a.preset, **common, **kw)
        results[name] = bench_probe(cfg, steps=a.steps, rounds=a.rounds)
    if a.json:
        print(json.dumps({k: v.__dict__ for k, v in results.items()}, indent=1))
    else:
        for name, res in results.items():
            print(f"== probe {name}")
            print("\n".join(res.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
