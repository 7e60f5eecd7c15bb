"""``gradgap threshold FAMILY ...``: the exact one-step threshold eta_star against Theorem 1's sufficient step.

Prints ``eta_star`` (the largest step along the unit direction that never lowers J; JSON ``null`` when
infinite), ``eta_theorem`` (Theorem 1's [Delta mu]_+ / (2 (L_o + 8 G_o^2))) and ``ratio``; ``certified`` is true only
when Arb balls proved the enclosure ``eta_star_interval``; ``searched_to`` (ball route, infinite answer) is the largest
unit step scanned. Thin: the math is in ``gradgap.theory.one_step_threshold``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from fractions import Fraction
from typing import Any

from gradgap.proofs_check.commands import parsing
from gradgap.proofs_check.commands.instances import add_family_parsers, build_instance, texts_of
from gradgap.theory.instances import GradgapValueError


def _instance(args: argparse.Namespace) -> Any:
    """The instance from the family's fields (:data:`~.instances.FIELDS`); tables also as ``0,1;1,0`` rows."""
    return build_instance(args.family, texts_of(args.family, args), table=parsing.parse_rows)


def _direction(inst: Any, text: str, gap: tuple[Any, ...]) -> tuple[Fraction, ...]:
    """The direction as exact fractions, rescaled exactly so that its largest entry is 1 in absolute value."""
    from gradgap.theory import one_step_threshold

    if text in ("gap", "grad"):
        g = gap if text == "gap" else one_step_threshold.gradient_gap_direction(inst, text, 30)
        w = tuple(Fraction(float(x)) for x in g)
    else:
        w = tuple(_exact(x.strip(), text) for x in text.split(","))
    big = max((abs(x) for x in w), default=Fraction(0))
    if big == 0:
        raise GradgapValueError(f"direction={text[:40]!r}: the direction is zero here (at a stationary point gap/grad "
                                "vanish)", field="direction", value=text[:40])
    return tuple(x / big for x in w)


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE]([+-]?\d{1,4}))?|[+-]?\d+/\d+")
#: largest decimal exponent and number of digits accepted in a direction entry (exact arithmetic follows)
_MAX_EXPONENT, _MAX_DIGITS = 1000, 400


def _exact(entry: str, text: str) -> Fraction:
    """One direction entry as an exact fraction; the size is checked before the fraction is built."""
    shown = text if len(text) <= 40 else text[:37] + "..."
    match = _NUMBER.fullmatch(entry)
    if match is None or len(entry) > _MAX_DIGITS or (match.group(4) and abs(int(match.group(4))) > _MAX_EXPONENT):
        raise GradgapValueError(f"direction={shown!r}: use gap, grad or comma-separated numbers (1,-1/2,0.25) "
                                f"with at most {_MAX_DIGITS} characters and exponents within +-{_MAX_EXPONENT}",
                                field="direction", value=shown)
    try:
        return Fraction(entry)
    except ZeroDivisionError:
        raise GradgapValueError(f"direction={shown!r}: division by zero in an entry", field="direction",
                                value=shown) from None


def _show(x: Fraction) -> str:
    import mpmath

    text = str(x)
    return text if len(text) <= 40 else mpmath.nstr(mpmath.mpf(x.numerator) / x.denominator, 17)


def compute(args: argparse.Namespace) -> dict[str, Any]:
    """The command's result as a dict (the library calls behind the printout)."""
    from gradgap.theory import one_step_threshold

    inst = _instance(args)
    gap = one_step_threshold.gradient_gap_direction(inst, "gap", 30)
    w = _direction(inst, args.direction, gap)
    star = one_step_threshold.eta_star(inst, w)
    eta_thm, norm = one_step_threshold.eta_theorem(inst, w, gap)
    eta_unit = star.value * norm  # a step eta along u = w/|w| is eta/|w| along w
    ratio = eta_unit / eta_thm if eta_thm > 0 else math.inf
    return {"family": args.family, "direction": [_show(x) for x in w],
            "eta_star": None if math.isinf(eta_unit) else eta_unit,
            "eta_star_interval": None if math.isinf(eta_unit) else [star.lo * norm, star.hi * norm],
            "route": star.route, "certified": star.certified, "degree": star.degree, "boxes": star.boxes,
            "searched_to": one_step_threshold.S_MAX if math.isinf(eta_unit) and star.route == "ball" else None,
            "eta_theorem": eta_thm, "ratio": None if math.isinf(ratio) else ratio}


def _run(args: argparse.Namespace) -> int:
    out = compute(args)
    if args.json:
        print(json.dumps(out))
    else:
        star = "inf" if out["eta_star"] is None else f"{out['eta_star']:.12g}"
        ratio = "inf" if out["ratio"] is None else f"{out['ratio']:.6g}"
        reach = f", no crossing up to {out['searched_to']:g}" if out["searched_to"] is not None else ""
        print(f"eta_star    {star}   ({out['route']}{', certified' if out['certified'] else ''}{reach})")
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
    add_family_parsers(fam, ("softmax", "tokens", "shared_tokens", "contextual"), parents=[common],
                       table_help=" (or rows: 0,1;1,0)",
                       help_override={"contextual": "contextual log-linear bandit (mixture over prompts: ball route)"})
    p.set_defaults(func=_run)
