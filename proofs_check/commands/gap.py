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
from gradgap.proofs_check.commands.instances import build_instance, texts_of
from gradgap.theory.instances import METHODS, GradgapValueError, TokenSequence


def compute(inst: Any, method: str, n: int | None = None, seed: int | None = None,
            budget: float | None = None) -> dict[str, Any]:
    """The report of :func:`gradgap.proofs_check.quantities.report` (kept here for callers of the command)."""
    from gradgap.proofs_check import quantities

    return quantities.report(inst, method, n, seed, quantities.DEFAULT_BUDGET if budget is None else budget)


# ------------------------------------------------------------------------------------------- output


def _fmt(x: Any) -> str:
    return "null" if x is None else f"{x:.12g}"


def _labels(inst: Any, size: int) -> list[str]:
    if isinstance(inst, TokenSequence):
        return [f"{i // inst.V},{i % inst.V}" for i in range(size)]
    return [str(i) for i in range(size)]


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
        head = "(t,v)" if isinstance(inst, TokenSequence) else "index"
        lines.append(f"  {head:<10}" + "".join(f"{c:>24}" for c in cols))
        for i, label in enumerate(_labels(inst, size)):
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
    s = fam.add_parser("softmax", help="K-armed softmax bandit",
                       description="Negative values are fine: --logits -1,2 or --logits '[-1, 2]'.")
    s.add_argument("--logits", required=True, help="K logits: 0.3,-1.2,2.0 or a JSON array")
    s.add_argument("--correct", required=True, help="correct arms: 0,2")
    _common(s)
    t = fam.add_parser("tokens", help="tabular token-sequence policy")
    t.add_argument("--logits", required=True, help="T x V logits as JSON: '[[...], [...]]'")
    t.add_argument("--target", required=True, help="target tokens o*: 1,0,2")
    t.add_argument("--min-correct", default=None, help="reward 1 iff at least m positions match (default: all)")
    _common(t)
    h = fam.add_parser("shared_tokens", help="shared-parameter log-linear token policy")
    h.add_argument("--theta", required=True, help="d parameters: 0.5,-1")
    h.add_argument("--features", required=True, help="V x d features as JSON: '[[...], ...]'")
    h.add_argument("--correct", required=True, help="correct vocabulary subset: 0,2")
    h.add_argument("--T", required=True, help="response length")
    h.add_argument("--bias", default=None, help="V token biases (default: zeros)")
    _common(h)
    c = fam.add_parser("contextual", help="contextual log-linear bandit (P prompts, A actions, shared theta)")
    c.add_argument("--theta", required=True, help="d parameters: 0.1,-0.2")
    c.add_argument("--features", required=True, help="P x A x d features as JSON: '[[[1,0],[0,1]], ...]'")
    c.add_argument("--correct", required=True, help="correct actions per prompt as JSON: '[[0],[1,2]]'")
    c.add_argument("--weights", default=None, help="P positive prompt weights (default: uniform)")
    _common(c)
