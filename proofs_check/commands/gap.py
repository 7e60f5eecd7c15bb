r"""``gradgap gap FAMILY ...``: the success rate, its gradient, the Gradient Gap and the log-odds of one instance.

Reports ``J``, ``grad_J``, ``gradient_gap`` (vectors flattened row-major, ``T x V`` for tokens),
``gradient_gap_norm`` and ``log_odds``, by one numeric route of :mod:`numerics` (``--method``, default
``structured``), as a table or as JSON (``--json``; never NaN or Infinity: such a value is ``null`` and
``notes`` says why). Bad input raises :class:`~gradgap.theory.instances.GradgapError` (one line, exit 2); a
route whose estimated cost exceeds ``--max-cost`` is refused before it starts. Thin: the numbers come from
:mod:`gradgap.proofs_check.quantities`. No numpy, sympy or torch at import time.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from gradgap.proofs_check.commands import parsing
from gradgap.proofs_check.commands.instances import add_family_parsers, build_instance, parameter_labels, texts_of
from gradgap.theory.instances import METHODS, GradgapValueError


def compute(inst: Any, method: str, n: int | None = None, seed: int | None = None,
            budget: float | None = None) -> dict[str, Any]:
    """The report of :func:`gradgap.proofs_check.quantities.report` (kept here for callers of the command)."""
    from gradgap.proofs_check import quantities

    return quantities.report(inst, method, n, seed, quantities.DEFAULT_BUDGET if budget is None else budget)


# ------------------------------------------------------------------------------------------- output


def _fmt(x: Any) -> str:
    return "null" if x is None else f"{x:.12g}"


def format_table(inst: Any, report: dict[str, Any]) -> str:
    lines = [f"gradgap gap {report['family']} (method={report['method']})"]
    for key in ("J", "log_odds", "gradient_gap_norm"):
        extra = f"  +- {_fmt(report[key + '_stderr'])}" if key + "_stderr" in report else ""
        lines.append(f"  {key:<18} {_fmt(report[key])}{extra}")
    if "n" in report:
        lines.append(f"  {'n':<18} {report['n']}")
    cols = [k for k in ("grad_J", "grad_J_stderr", "gradient_gap", "gradient_gap_stderr") if k in report]
    vectors = [report[k] for k in cols]
    size = max((len(v) for v in vectors if v is not None), default=0)
    if size:
        head, labels = parameter_labels(inst)
        lines.append(f"  {head:<10}" + "".join(f"{c:>24}" for c in cols))
        for i, label in enumerate(labels[:size]):
            lines.append(f"  {label:<10}" + "".join(f"{_fmt(None if v is None else v[i]):>24}" for v in vectors))
    if "per_prompt_J" in report:  # contextual: one row per prompt, J_x and g_x
        lines.append(f"  {'prompt':<10}{'J_x':>24}{'g_x':>24}")
        for x, (j, g) in enumerate(zip(report["per_prompt_J"], report["per_prompt_gradient_gap"], strict=True)):
            lines.append(f"  {x:<10}{_fmt(j):>24}{'  ' + ', '.join(_fmt(v) for v in g):>24}")
    for key, why in report["notes"].items():
        lines.append(f"  note: {key}: {why}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from gradgap.proofs_check import quantities

    inst = build_instance(args.family, texts_of(args.family, args))
    n = None if args.n is None else parsing.parse_int("n", args.n, low=4)
    seed = None if args.seed is None else parsing.parse_seed("seed", args.seed)
    budget = (quantities.DEFAULT_BUDGET if args.max_cost is None
              else parsing.parse_float("max-cost", args.max_cost, low=1.0))
    if args.method != "mc" and (n is not None or seed is not None):
        raise GradgapValueError(f"method={args.method!r}: --n and --seed apply only to --method mc",
                                field="method", value=args.method)
    report = quantities.report(inst, args.method, n, seed, budget)
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        print(format_table(inst, report))
    return 0


def run_custom(args: argparse.Namespace) -> int:
    """``gap custom``: the report of a user's policy, or with ``--claims`` its claim files checked (exit 1 when a
    claim is not as expected)."""
    from gradgap.proofs_check import custom

    policy = custom.load_policy(args.module)
    points = parsing.parse_int("points", args.points, low=1, high=100_000)
    radius = parsing.parse_float("radius", args.radius, low=0.0)
    seed = parsing.parse_seed("seed", args.seed)
    if not args.claims:
        report = custom.report(policy, args.method)
        if args.json:
            print(json.dumps(report, indent=2, allow_nan=False))
        else:
            lines = [f"gradgap gap custom {policy.name} (method={args.method}, d={policy.d}, "
                     f"responses={report['responses']})"]
            for key in ("J", "log_odds", "gradient_gap_norm", "enumerate_vs_autograd"):
                lines.append(f"  {key:<22} {_fmt(report[key])}")
            lines.append(f"  {'index':<10}{'grad_J':>24}{'gradient_gap':>24}")
            for i, (a, b) in enumerate(zip(report["grad_J"], report["gradient_gap"], strict=True)):
                lines.append(f"  {i:<10}{_fmt(a):>24}{_fmt(b):>24}")
            print("\n".join(lines))
        return 0
    results = [r for path in args.claims for r in custom.check_policy(policy, path, points=points, radius=radius,
                                                                        seed=seed)]
    if args.json:
        print(json.dumps({"policy": policy.name, "claims": [r.as_dict() for r in results]}, indent=2,
                         allow_nan=False))
    else:
        for r in results:
            mark = "" if r.ok else " (!)"
            print(f"{r.id:<40} {r.status}{mark}  TESTED (float64 only)  evaluated={r.figures['evaluated']}")
        print(f"{sum(r.ok for r in results)}/{len(results)} claims as expected")
    return 0 if all(r.ok for r in results) else 1


# --------------------------------------------------------------------------------------------- parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.add_argument("--method", default="structured", choices=METHODS, help="numeric route (default: structured)")
    p.add_argument("--n", default=None, help="Monte-Carlo sample size (--method mc)")
    p.add_argument("--seed", default=None, help="Monte-Carlo seed, 0..2**63-1 (--method mc)")
    p.add_argument("--max-cost", default=None, metavar="ENTRIES",
                   help="refuse a route whose estimated work exceeds ENTRIES float64 entries (default 5e7, about "
                        "0.4 GB); the structured route is cheapest")
    p.set_defaults(func=run)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("gap", help="J, grad J, the Gradient Gap and the log-odds of one instance",
                              description="Numeric J, grad J, Gradient Gap g and log-odds of one policy instance.")
    fam = p.add_subparsers(dest="family", metavar="FAMILY", required=True)
    parsers = add_family_parsers(fam, ("softmax", "tokens", "shared_tokens", "autoregressive"))
    c = fam.add_parser("custom", help="your own policy over an enumerated response space (MODULE:FUNCTION)",
                       description="FUNCTION() returns a gradgap.proofs_check.custom.CustomPolicy; its module is "
                                   "imported and run. With --claims, check claim files on it instead.")
    c.add_argument("--module", required=True, help="MODULE:FUNCTION or FILE.py:FUNCTION")
    c.add_argument("--method", default="autograd", choices=("autograd", "enumerate"),
                   help="route of g (default: autograd)")
    c.add_argument("--claims", nargs="+", default=None, metavar="FILE", help="TOML claim files to check on it")
    c.add_argument("--points", default="200", help="random parameter points per claim (default 200)")
    c.add_argument("--radius", default="1.0", help="the points lie in theta0 + radius * [-1, 1]^d (default 1)")
    c.add_argument("--seed", default="0", help="seed of the points (default 0)")
    c.add_argument("--json", action="store_true", help="print JSON on stdout")
    c.set_defaults(func=run_custom)
    parsers.update(add_family_parsers(fam, ("contextual",)))
    for p_family in parsers.values():
        _common(p_family)
