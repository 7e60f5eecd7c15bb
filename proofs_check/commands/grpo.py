r"""``gradgap grpo run|sweep|report``: measure the Gradient Gap on real TRL GRPO runs and test the length law.

- ``run --preset P [--lr --length --loss-type --scale-rewards --optim --steps] --out DIR``: one run;
  ``DIR/metrics.jsonl`` gets one line per optimisation step. ``--dry-run`` prints the plan (accelerate command,
  configs, memory and compute estimates) and downloads nothing. Exit 0 (OK), 1 (COLLAPSED).
- ``sweep --preset P --lrs ... --lengths ... [--loss-types grpo,dr_grpo] --out DIR``: the grid, resumable
  (``DIR/runs.jsonl``). Exit 0.
- ``report DIR``: critical learning rates, length law, verdict (HOLDS / FAILS / UNDECIDED, the claims' evidence
  vocabulary); ``DIR/report.md`` + PNGs. Exit 0 (HOLDS), 1 (FAILS or UNDECIDED, so that scripts notice).

The core install runs ``--dry-run`` and ``report``; ``run`` and ``sweep`` need the optional extra
(``pip install 'gradgap[llm]'``), imported lazily, with a one-line error when missing. No torch, trl or
matplotlib at import time.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gradgap.proofs_check.atomic import check_folder
from gradgap.proofs_check.commands import parsing
from gradgap.theory.instances import GradgapValueError

#: the dry run's plan covers up to this many nodes and processes (GPUs) per node
MAX_MACHINES, MAX_PROCESSES = 1024, 64


def _numbers(field: str, text: str, kind: type = float) -> list[Any]:
    """A comma-separated list of numbers of type ``kind`` (the shared parser's; a one-line error naming
    ``field`` otherwise)."""
    return parsing.parse_indices(field, text) if kind is int else parsing.parse_numbers(field, text)


def _strs(text: str | list[str]) -> list[str]:
    text = " ".join(text) if isinstance(text, list) else text  # argparse hands ``--x=--`` over as a list
    return [p.strip() for p in text.split(",") if p.strip()]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="tiny", help="tiny (CPU default), tiny-100m (GPU), qwen2.5-math-7b")
    p.add_argument("--scale-rewards", dest="scale_rewards", help="group | none")
    p.add_argument("--optim", help="sgd | adamw")
    p.add_argument("--steps", type=int, help="optimisation steps per run")
    p.add_argument("--model", help="model id or local path (dataset presets)")
    p.add_argument("--num-generations", dest="num_generations", type=int, help="G, completions per prompt")
    p.add_argument("--prompts-per-step", dest="prompts_per_step", type=int, help="prompts per optimisation step")
    p.add_argument("--max-grad-norm", dest="max_grad_norm", type=float, help="gradient clipping (0 = off)")
    p.add_argument("--gap-every", dest="gap_every", type=int,
                   help="compute the Gradient Gap and alignment every k steps (default 10; 1 = every step)")
    p.add_argument("--eval-every", dest="eval_every", type=int,
                   help="evaluate J and log-odds on the fixed prompts every k steps (default 10)")
    p.add_argument("--constants-every", dest="constants_every", type=int,
                   help="measure L_o, G_o at step 1, then every k steps (default 50; 0 = never: no safe step)")
    p.add_argument("--save-every", dest="save_every", type=int,
                   help="checkpoint every k steps (TRL's save_steps); a rerun on the same --out resumes (0 = off)")
    p.add_argument("--report-to", dest="report_to", help="TRL report_to (none, tensorboard, wandb, ...)")
    p.add_argument("--cache-dir", dest="cache_dir",
                    help="warm-start cache (default: $GRADGAP_CACHE, else ~/.cache/gradgap)")
    p.add_argument("--out", required=False, help="output directory")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("grpo", help="measure the Gradient Gap on real TRL GRPO runs (run, sweep, report)",
                              description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="grpo_command", metavar="{run,sweep,report}", parser_class=type(p))

    r = sub.add_parser("run", help="one GRPO run with the probe")
    _common(r)
    r.add_argument("--lr", type=float, help="learning rate")
    r.add_argument("--length", type=int, help="answer length T")
    r.add_argument("--loss-type", dest="loss_type", help="grpo | dr_grpo | dapo | bnpo")
    r.add_argument("--seed", type=int)
    r.add_argument("--dry-run", action="store_true", help="print the plan and exit (downloads nothing)")
    r.add_argument("--num-machines", type=int, default=1, help="dry run: nodes")
    r.add_argument("--num-processes", type=int, default=8, help="dry run: GPUs per node")
    r.add_argument("--json", action="store_true", help="print the summary as JSON")
    r.set_defaults(func=_run)

    s = sub.add_parser("sweep", help="a resumable grid of runs into DIR/runs.jsonl")
    _common(s)
    s.add_argument("--lrs", required=True, help="comma-separated learning rates")
    s.add_argument("--lengths", required=True, help="comma-separated answer lengths T")
    s.add_argument("--loss-types", dest="loss_types", default="grpo,dr_grpo", help="comma-separated loss types")
    s.add_argument("--seeds", default="0", help="comma-separated seeds")
    s.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    s.set_defaults(func=_sweep)

    q = sub.add_parser("report", help="critical lr, length law and verdict of a sweep directory")
    q.add_argument("dir", help="sweep directory (holds runs.jsonl)")
    q.add_argument("--out", help="where report.md and the PNGs go (default: DIR)")
    q.add_argument("--no-plots", dest="plots", action="store_false")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=_report)
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


def _overrides(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    return {n: getattr(args, n, None) for n in names}


_COMMON = ("scale_rewards", "optim", "steps", "model", "num_generations", "prompts_per_step", "max_grad_norm",
           "report_to", "cache_dir", "gap_every", "eval_every", "constants_every", "save_every")


def _need_out(args: argparse.Namespace) -> str:
    """``--out``, checked (with ``--cache-dir`` when given) before any work: both must be usable folders."""
    if not args.out:
        raise GradgapValueError("out=None: give --out DIR", field="out", value=None)
    for field, path in (("out", args.out), ("cache-dir", getattr(args, "cache_dir", None))):
        why = None if path is None else check_folder(path)
        if why is not None:
            raise GradgapValueError(f"{field}={parsing.short(path)!r}: {why}", field=field, value=path)
    return args.out


def _run(args: argparse.Namespace) -> int:
    from gradgap.experiments.grpo.presets import plan, resolve_preset

    cfg = resolve_preset(args.preset, **_overrides(args, (*_COMMON, "lr", "length", "loss_type", "seed")))
    if args.dry_run:
        machines = parsing.parse_int("num-machines", args.num_machines, low=1, high=MAX_MACHINES)
        processes = parsing.parse_int("num-processes", args.num_processes, low=1, high=MAX_PROCESSES)
        print(plan(cfg, num_machines=machines, num_processes=processes, out=args.out or f"runs/{cfg.preset}"))
        return 0
    out = _need_out(args)
    from gradgap.experiments.grpo.run import require_llm

    require_llm()
    from gradgap.experiments.grpo.run import run_one

    def progress(rec: dict[str, Any]) -> None:
        def f(key: str, spec: str) -> str:
            v = rec.get(key)
            return "—" if v is None else format(v, spec)

        print(f"step {rec['step']:>4}  batch J {f('success_rate', '.3f')}  eval J {f('eval_success_rate', '.4f')}  "
              f"|g| {f('gradient_gap_norm', '.3g')}  cos {f('alignment', '.4f')}  "
              f"safe lr {f('predicted_safe_lr', '.3g')}", file=sys.stderr)

    res = run_one(cfg, out, progress=None if args.json else progress, quiet=True,
                  log=lambda m: print(m, file=sys.stderr))
    from accelerate import PartialState

    if not PartialState().is_main_process:
        pass  # one voice per run
    elif args.json:
        print(json.dumps(res.to_dict(), indent=1, default=str))
    else:
        print(f"{res.status}: {res.reason}; metrics in {out}/metrics.jsonl")
    return 0 if res.status == "OK" else 1


def _sweep(args: argparse.Namespace) -> int:
    from gradgap.experiments.grpo.presets import resolve_preset

    out = _need_out(args)
    lrs = _numbers("lrs", args.lrs)
    lengths = _numbers("lengths", args.lengths, int)
    loss_types = _strs(args.loss_types)
    seeds = _numbers("seeds", args.seeds, int)
    base = resolve_preset(args.preset, **_overrides(args, _COMMON))
    for lt in loss_types:  # validate the whole grid before the first run
        base.replace(loss_type=lt)
    for lr in lrs:
        base.replace(lr=lr)
    for t in lengths:
        base.replace(length=t)
    from gradgap.experiments.grpo.run import require_llm

    require_llm()
    from gradgap.experiments.grpo.sweep import sweep

    records = sweep(base, out, lrs=lrs, lengths=lengths, loss_types=loss_types, seeds=seeds,
                    log=lambda m: print(m, file=sys.stderr), show_progress=args.progress)
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(f"{len(records)} runs in {out}/runs.jsonl: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def _report(args: argparse.Namespace) -> int:
    from gradgap.experiments.grpo.report import write_report

    report, md = write_report(args.dir, args.out, plots=args.plots)
    if args.json:
        print(json.dumps({"verdict": report.verdict, "reason": report.reason, "report": str(md)}, indent=1))
    else:
        print(f"{report.verdict}: {report.reason}\nreport: {md}")
    return 0 if report.verdict == "HOLDS" else 1
