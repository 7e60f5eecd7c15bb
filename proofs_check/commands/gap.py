r"""``gradgap gap FAMILY ...``: the success rate, its gradient, the Gradient Gap and the log-odds of one instance.

Reports ``J``, ``grad_J``, ``gradient_gap`` (vectors flattened row-major, ``T x V`` for tokens),
``gradient_gap_norm`` and ``log_odds``, by one numeric route of :mod:`numerics` (``--method``, default
``structured``), as a table or as JSON (``--json``; never NaN or Infinity: such a value is ``null`` and
``notes`` says why). Bad input raises :class:`~gradgap.theory.instances.GradgapError` (one line, exit 2).
No numpy, sympy or torch at import time.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from gradgap.theory.instances import (
    GradgapTypeError,
    GradgapValueError,
    SharedTokens,
    SoftmaxBandit,
    TokenSequence,
)

METHODS = ("enumerate", "structured", "autograd", "fd", "mc")


# --------------------------------------------------------------------------------------------- parsing


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json(field: str, text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise GradgapValueError(f"{field}={_short(text)!r}: malformed JSON ({msg})", field=field,
                                value=text) from None


def _items(field: str, text: str) -> list[Any]:
    """A list from ``1,2,3`` or from a JSON array ``[1, 2, 3]``."""
    text = text.strip()
    if text.startswith("["):
        data = _json(field, text)
        if not isinstance(data, list):
            raise GradgapTypeError(f"{field}={_short(text)!r}: must be a JSON array", field=field, value=text)
        return data
    return [] if not text else [item.strip() for item in text.split(",")]


def _parse_items(field: str, text: str, convert: Callable[[str], Any], what: str) -> list[Any]:
    """The items of ``text`` (see :func:`_items`), the comma-separated ones converted by ``convert``."""
    out: list[Any] = []
    for item in _items(field, text):
        if isinstance(item, str):
            try:
                item = convert(item)
            except ValueError:
                raise GradgapTypeError(f"{field}={_short(text)!r}: entry {_short(item, 20)!r} is not {what}",
                                       field=field, value=text) from None
        out.append(item)
    return out


def parse_numbers(field: str, text: str) -> list[float]:
    """``0.3,-1.2,2`` or ``[0.3, -1.2, 2]`` as a list of floats (finiteness is checked by the instance)."""
    return _parse_items(field, text, float, "a number")


def parse_indices(field: str, text: str) -> list[int]:
    """``0,2`` or ``[0, 2]`` as a list of integers (range is checked by the instance)."""
    return _parse_items(field, text, int, "an integer")


def parse_table(field: str, text: str) -> Any:
    """A JSON array of rows, ``[[...], [...]]`` (shape and entries are checked by the instance)."""
    data = _json(field, text.strip())
    if not isinstance(data, list) or not all(isinstance(row, list) for row in data):
        raise GradgapTypeError(f"{field}={_short(text)!r}: must be a JSON array of arrays (rows)", field=field,
                               value=text)
    return tuple(tuple(row) for row in data)


def parse_int(field: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise GradgapTypeError(f"{field}={_short(text)!r}: must be an integer", field=field, value=text) from None


def build_instance(args: argparse.Namespace) -> Any:
    """The instance named by the parsed arguments (validation errors are ``GradgapError``)."""
    if args.family == "softmax":
        return SoftmaxBandit(logits=tuple(parse_numbers("logits", args.logits)),
                             correct=parse_indices("correct", args.correct))
    if args.family == "tokens":
        m = None if args.min_correct is None else parse_int("min_correct", args.min_correct)
        return TokenSequence(logits=parse_table("logits", args.logits), target=parse_indices("target", args.target),
                             min_correct=m)
    bias = None if args.bias is None else tuple(parse_numbers("bias", args.bias))
    return SharedTokens(theta=tuple(parse_numbers("theta", args.theta)),
                        features=parse_table("features", args.features),
                        correct=parse_indices("correct", args.correct), T=parse_int("T", args.T), bias=bias)


# ------------------------------------------------------------------------------------------ computing


def compute(inst: Any, method: str, n: int | None = None, seed: int | None = None) -> dict[str, Any]:
    """The report as a JSON-ready dict: values, ``*_stderr`` for ``mc``, and ``notes`` for nulls."""
    import numpy as np
    from gradgap.proofs_check import families

    num = families.numerics_module(inst)
    kwargs: dict[str, Any] = {"n": n, "seed": seed} if method == "mc" else {}
    out: dict[str, Any] = {"family": num.FAMILY.name, "method": method}
    notes: dict[str, str] = {}

    def put(key: str, fn: Any, **kw: Any) -> None:
        try:
            value = fn(inst, method=method, **kw)
        except NotImplementedError as exc:
            out[key] = None
            notes[key] = str(exc)
            return
        if hasattr(value, "stderr"):
            out[key + "_stderr"] = _clean(key + "_stderr", value.stderr, notes)
            out["n"] = value.n
            value = value.mean
        out[key] = _clean(key, value, notes)

    put("J", num.success_rate, **kwargs)
    put("log_odds", num.log_odds)
    put("grad_J", num.grad_success_rate, **kwargs)
    put("gradient_gap", num.gradient_gap, **kwargs)
    gap = out["gradient_gap"]
    if gap is None or any(x is None for x in gap):
        out["gradient_gap_norm"] = None
        notes["gradient_gap_norm"] = "gradient_gap is not available"
    else:
        out["gradient_gap_norm"] = float(np.linalg.norm(np.asarray(gap, dtype=np.float64)))
    if isinstance(out.get("J"), float) and out["J"] in (0.0, 1.0):
        notes.setdefault("J", f"J rounds to {out['J']:g} in float64; log_odds keeps the exact information")
    out["notes"] = notes
    return out


def _clean(key: str, value: Any, notes: dict[str, str]) -> Any:
    """Floats (or lists of floats) with every non-finite entry replaced by ``None`` and a note."""
    import numpy as np

    arr = np.asarray(value, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        notes[key] = (f"{int(bad.sum())} entr{'y is' if bad.sum() == 1 else 'ies are'} not finite in float64 "
                      f"under this method (shown as null); the structured method is log-space stable")
    if arr.ndim == 0:
        return None if bad else float(arr)
    return [None if b else float(x) for x, b in zip(arr.reshape(-1).tolist(), bad.reshape(-1).tolist(),
                                                    strict=True)]


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
    for key, why in report["notes"].items():
        lines.append(f"  note: {key}: {why}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    inst = build_instance(args)
    n = None if args.n is None else parse_int("n", args.n)
    seed = None if args.seed is None else parse_int("seed", args.seed)
    if args.method != "mc" and (n is not None or seed is not None):
        raise GradgapValueError(f"method={args.method!r}: --n and --seed apply only to --method mc",
                                field="method", value=args.method)
    report = compute(inst, args.method, n, seed)
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
    p.add_argument("--seed", default=None, help="Monte-Carlo seed (--method mc)")
    p.set_defaults(func=run)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("gap", help="J, grad J, the Gradient Gap and the log-odds of one instance",
                              description="Numeric J, grad J, Gradient Gap g and log-odds of one policy instance.")
    fam = p.add_subparsers(dest="family", metavar="FAMILY", required=True)
    s = fam.add_parser("softmax", help="K-armed softmax bandit",
                       description="Write negative first values as --logits=-1,2 or --logits '[-1, 2]'.")
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
