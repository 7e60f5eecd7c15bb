"""``gradgap simulate EXPERIMENT``: run one of the bandit experiments of ``gradgap.experiments.bandits``.

Experiments: ``threshold-sweep``, ``length-scaling``, ``success-scaling``, ``stagnation``, ``threshold-ratio``. Writes
``EXPERIMENT.json`` and ``EXPERIMENT.png`` under ``--out`` (default: no files); ``--json`` prints the data.
Thin: the experiments live in ``gradgap.experiments.bandits``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Any

from gradgap.proofs_check.atomic import prepare_folder
from gradgap.proofs_check.commands.parsing import parse_float, parse_seed, short
from gradgap.theory.instances import RULES, GradgapValueError

NAMES = ("threshold-sweep", "length-scaling", "success-scaling", "stagnation", "threshold-ratio", "contextual")

_SUMMARY_KEYS = {
    "length-scaling": ("setting", "rule", "lengths", "eta_crit_unnormalized", "eta_crit_closed_unnormalized",
                       "eta_crit_normalized", "eta_crit_closed_normalized", "slope_unnormalized",
                       "slope_normalized", "max_rel_error", "agrees"),
    "success-scaling": ("J_star", "max_rel_error", "agrees"),
    "threshold-sweep": ("T", "rule", "eta_crit_closed", "factors", "classes", "final_J_over_Jstar"),
    "stagnation": ("tabular_all_reach_0.9999", "tabular_no_plateau", "outcome"),
    "threshold-ratio": ("families",),
    "contextual": ("factors", "grpo_plateau_below_max"),
}


def _config(args: argparse.Namespace) -> Any:
    from gradgap.experiments import bandits as ex

    cls, _ = ex.EXPERIMENTS[args.experiment]
    cfg = cls()
    changes: dict[str, Any] = {}
    if args.seed is not None:
        if not hasattr(cfg, "seed"):
            raise GradgapValueError(f"seed={short(args.seed)!r}: experiment {args.experiment} has no --seed",
                                    field="seed", value=args.seed)
        changes["seed"] = parse_seed("seed", args.seed)
    if args.rule is not None:
        if hasattr(cfg, "rule"):
            changes["rule"] = args.rule
        elif hasattr(cfg, "rules"):
            changes["rules"] = (args.rule,)
        else:
            raise GradgapValueError(f"rule={args.rule!r}: experiment {args.experiment} has no --rule",
                                    field="rule", value=args.rule)
    if args.fixed_success is not None:
        if args.experiment != "length-scaling":
            raise GradgapValueError(f"fixed_success={short(args.fixed_success)!r}: only length-scaling takes it",
                                    field="fixed_success", value=args.fixed_success)
        value = parse_float("fixed_success", args.fixed_success)
        if not 0 < value < 1:
            raise GradgapValueError(f"fixed_success={short(args.fixed_success)!r}: must lie in (0, 1)",
                                    field="fixed_success", value=args.fixed_success)
        changes["fixed_success"] = value
    return replace(cfg, **changes)


def _run(args: argparse.Namespace) -> int:
    if args.experiment not in NAMES:
        import difflib

        close = difflib.get_close_matches(args.experiment, NAMES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise GradgapValueError(f"experiment={args.experiment!r}: unknown; choose one of {', '.join(NAMES)}{hint}",
                                field="experiment", value=args.experiment)
    from tqdm import tqdm

    from gradgap.experiments import bandits as ex

    cfg = _config(args)
    if args.out is not None:
        problem = prepare_folder(args.out)
        if problem:
            raise GradgapValueError(f"out={short(args.out)!r}: {problem}", field="out", value=args.out)
    bar = tqdm(desc=args.experiment, unit="stage", file=sys.stderr, disable=args.json or not sys.stderr.isatty())

    def progress(stage: str) -> None:
        bar.set_postfix_str(stage)
        bar.update(1)

    try:
        data = ex.run(args.experiment, cfg, out=args.out, progress=progress)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(ex.json_ready(data), allow_nan=False))
    else:
        for key in _SUMMARY_KEYS[args.experiment]:
            print(f"{key}: {data.get(key)}")
        for path in data.get("files", []):
            print(f"wrote {path}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``simulate``."""
    p = subparsers.add_parser("simulate", help="run a bandit experiment (threshold, length, success, stagnation)")
    p.add_argument("experiment", metavar="EXPERIMENT", help=", ".join(NAMES))
    p.add_argument("--json", action="store_true", help="print the data as JSON")
    p.add_argument("--out", default=None, help="folder for EXPERIMENT.json and EXPERIMENT.png (checked before the "
                                               "run; files are replaced atomically)")
    p.add_argument("--seed", default=None, help="seed of the samplers, 0..2**63-1")
    p.add_argument("--rule", choices=RULES, default=None, help="update rule (default: gap)")
    p.add_argument("--fixed-success", dest="fixed_success", default=None,
                   help="length-scaling setting (ii): hold J* fixed at this value")
    p.set_defaults(func=_run)
