"""``gradgap threshold FAMILY ...``: the exact one-step threshold eta_star against Theorem 1's sufficient step.

Prints ``eta_star`` (the largest step along the unit direction that never lowers J; JSON ``null`` when
infinite), ``eta_theorem`` (Theorem 1's [Delta mu]_+ / (2 (L_o + 8 G_o^2))) and ``ratio``. Thin: the math is in
``gradgap.theory.thresholds``.
"""

from __future__ import annotations

import argparse
import json
import math
from fractions import Fraction
from typing import Any

from gradgap.proofs_check.commands.parsing import parse_int
from gradgap.theory.instances import GradgapValueError, SharedTokens, SoftmaxBandit, TokenSequence


def _floats(field: str, text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise GradgapValueError(f"{field}={text!r}: must be comma-separated numbers", field=field, value=text) from None


def _ints(field: str, text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise GradgapValueError(f"{field}={text!r}: must be comma-separated integers", field=field,
                                value=text) from None


def _instance(args: argparse.Namespace) -> Any:
    if args.family == "softmax":
        return SoftmaxBandit(_floats("logits", args.logits), frozenset(_ints("correct", args.correct)))
    if args.family == "tokens":
        rows = tuple(_floats("logits", row) for row in args.logits.split(";"))
        m = None if args.min_correct is None else parse_int("min-correct", args.min_correct)
        return TokenSequence(rows, _ints("target", args.target), min_correct=m)
    feats = tuple(_floats("features", row) for row in args.features.split(";"))
    bias = None if args.bias is None else _floats("bias", args.bias)
    return SharedTokens(_floats("theta", args.theta), feats, frozenset(_ints("correct", args.correct)),
                        T=parse_int("T", args.T, low=1), bias=bias)


def _direction(inst: Any, text: str) -> tuple[Any, ...]:
    from gradgap.theory import thresholds

    if text in ("gap", "grad"):
        return tuple(float(x) for x in thresholds.gradient_gap_direction(inst, text, 30))
    try:
        return tuple(Fraction(x) for x in text.split(","))
    except (ValueError, ZeroDivisionError):
        raise GradgapValueError(f"direction={text!r}: use gap, grad or comma-separated numbers (e.g. 1,-1/2,0.25)",
                                field="direction", value=text) from None


def compute(args: argparse.Namespace) -> dict[str, Any]:
    """The command's result as a dict (the library calls behind the printout)."""
    from gradgap.theory import thresholds

    inst = _instance(args)
    w = _direction(inst, args.direction)
    if not any(w):
        raise GradgapValueError(f"direction={args.direction!r}: the direction is zero here (at a stationary "
                                "point gap/grad vanish)", field="direction", value=args.direction)
    star = thresholds.eta_star(inst, w)
    eta_thm, norm = thresholds.eta_theorem(inst, w)
    eta_unit = star.value * norm  # a step eta along u = w/|w| is eta/|w| along w
    ratio = eta_unit / eta_thm if eta_thm > 0 else math.inf
    return {"family": args.family, "direction": [str(x) for x in w],
            "eta_star": None if math.isinf(eta_unit) else eta_unit,
            "eta_star_interval": None if math.isinf(eta_unit) else [star.lo * norm, star.hi * norm],
            "route": star.route, "certified": star.certified,
            "eta_theorem": eta_thm, "ratio": None if math.isinf(ratio) else ratio}


def _run(args: argparse.Namespace) -> int:
    out = compute(args)
    if args.json:
        print(json.dumps(out))
    else:
        star = "inf" if out["eta_star"] is None else f"{out['eta_star']:.12g}"
        ratio = "inf" if out["ratio"] is None else f"{out['ratio']:.6g}"
        print(f"eta_star    {star}   ({out['route']}{', certified' if out['certified'] else ''})")
        print(f"eta_theorem {out['eta_theorem']:.6g}")
        print(f"ratio       {ratio}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``threshold`` with one sub-parser per family."""
    p = subparsers.add_parser("threshold", help="exact one-step threshold eta_star vs Theorem 1's step")
    fam = p.add_subparsers(dest="family", metavar="FAMILY", parser_class=type(p))
    fam.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--direction", default="gap",
                        help="gap, grad, or w1,w2,... (exact rationals: 1,-1/2,0.25); normalised to unit length")
    common.add_argument("--json", action="store_true", help="print JSON")
    s = fam.add_parser("softmax", parents=[common], help="K-armed softmax bandit")
    s.add_argument("--logits", required=True, help="comma-separated logits")
    s.add_argument("--correct", required=True, help="comma-separated correct arms")
    t = fam.add_parser("tokens", parents=[common], help="tabular token sequence")
    t.add_argument("--logits", required=True, help="rows separated by ';', entries by ','")
    t.add_argument("--target", required=True, help="comma-separated target tokens")
    t.add_argument("--min-correct", dest="min_correct", default=None, help="reward needs >= m matches")
    h = fam.add_parser("shared_tokens", parents=[common], help="shared-parameter log-linear tokens")
    h.add_argument("--theta", required=True, help="comma-separated parameters")
    h.add_argument("--features", required=True, help="V rows separated by ';', d entries by ','")
    h.add_argument("--correct", required=True, help="comma-separated correct tokens")
    h.add_argument("--T", required=True, help="response length")
    h.add_argument("--bias", default=None, help="comma-separated biases")
    p.set_defaults(func=_run)
