r"""The command line's one parser for values: numbers, integer lists, JSON tables, sizes, seeds and budgets.

Every function takes the field name (as the user typed it, without ``--``) and the text, and returns plain
Python data or raises a :class:`~gradgap.theory.instances.GradgapError` whose message is one short line
``field='text': problem`` (texts longer than 40 characters are cut). Nothing here knows a policy family: the
instance types check shapes and ranges. Limits are checked before any recursive parser sees the text.

>>> parse_numbers("logits", "-1,2.5")
[-1.0, 2.5]
>>> parse_sizes("K=3", {"K": (2, 8, 3)})
{'K': 3}
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from gradgap.theory.instances import GradgapTypeError, GradgapValueError

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_SEED",
    "json_depth",
    "parse_float",
    "parse_indices",
    "parse_int",
    "parse_json",
    "parse_numbers",
    "parse_rows",
    "parse_seed",
    "parse_sizes",
    "parse_table",
    "short",
]

#: the deepest JSON nesting accepted (a table is two levels; ``json`` recurses per level)
MAX_JSON_DEPTH: Final[int] = 8
#: seeds are integers in ``0 .. MAX_SEED`` (what ``numpy.random.default_rng`` and torch both accept)
MAX_SEED: Final[int] = 2**63 - 1
#: the longest list of numbers accepted on a command line
MAX_ITEMS: Final[int] = 1_000_000


def short(text: Any, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters (``...`` marks a cut), so that error lines stay short."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bad(field: str, text: Any, problem: str, cls: type[GradgapValueError] | type[GradgapTypeError]
         = GradgapValueError) -> Exception:
    return cls(f"{field}={short(text)!r}: {problem}", field=field, value=text)


def json_depth(text: str) -> int:
    """The deepest ``[``/``{`` nesting of a JSON text, outside strings, without recursion."""
    depth = best = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            best = max(best, depth)
        elif c in "]}":
            depth -= 1
    return best


def parse_json(field: str, text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON text as Python data; nesting deeper than ``max_depth`` is refused before ``json`` recurses, and
    ``NaN``/``Infinity`` are refused (they are not JSON)."""
    text = _text(text)
    depth = json_depth(text)
    if depth > max_depth:
        raise _bad(field, text, f"JSON nested {depth} levels deep (at most {max_depth})")

    def constant(name: str) -> Any:
        raise _bad(field, text, f"{name} is not a finite number")

    try:
        return json.loads(text, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise _bad(field, text, f"malformed JSON ({exc.msg} at character {exc.pos})") from None
    except (RecursionError, MemoryError):
        raise _bad(field, text, "JSON nested too deeply") from None


def _text(value: Any) -> str:
    """The option's text (argparse hands ``--x=--`` over as a list)."""
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def _items(field: str, text: str) -> list[Any]:
    """A list from ``1,2,3`` or from a JSON array ``[1, 2, 3]``."""
    text = _text(text).strip()
    if text.startswith("["):
        data = parse_json(field, text)
        if not isinstance(data, list):
            raise _bad(field, text, "must be a JSON array", GradgapTypeError)
        return data
    if not text:
        return []
    if text.count(",") >= MAX_ITEMS:
        raise _bad(field, text, f"more than {MAX_ITEMS} entries")
    return [item.strip() for item in text.split(",")]


def _converted(field: str, text: str, convert: Callable[[Any], Any], what: str) -> list[Any]:
    return _convert_items(field, text, _items(field, text), convert, what)


def _convert_items(field: str, text: str, items: Sequence[Any], convert: Callable[[Any], Any], what: str) -> list[Any]:
    """``convert`` of each item; a bad one is reported against the whole option ``text``."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, list | dict) or isinstance(item, bool) or item is None:
            raise _bad(field, text, f"entry {short(json.dumps(item), 20)} is not {what}", GradgapTypeError)
        try:
            out.append(convert(item))
        except (ValueError, TypeError, OverflowError):
            raise _bad(field, text, f"entry {short(item, 20)!r} is not {what}", GradgapTypeError) from None
    return out


def _finite_float(item: Any) -> float:
    value = float(item)
    if not math.isfinite(value):
        raise ValueError(item)
    return value


def _integer(item: Any) -> int:
    if isinstance(item, float):
        if not item.is_integer():
            raise ValueError(item)
        return int(item)
    text = _text(item).strip()
    if len(text) > 30:  # int() of a 5,000-digit text is slow and useless here
        raise ValueError(item)
    return int(text)


def parse_numbers(field: str, text: str) -> list[float]:
    """``0.3,-1.2,2`` or ``[0.3, -1.2, 2]`` as a list of finite floats (``1e400``, ``nan``, ``inf`` refused)."""
    return _converted(field, text, _finite_float, "a finite number")


def parse_indices(field: str, text: str) -> list[int]:
    """``0,2`` or ``[0, 2]`` as a list of integers (their range is checked by the instance)."""
    return _converted(field, text, _integer, "an integer")


def parse_table(field: str, text: str) -> tuple[tuple[Any, ...], ...]:
    """A JSON array of rows, ``[[...], [...]]``, as a tuple of tuples (entries are checked by the instance)."""
    data = parse_json(field, _text(text).strip())
    if not isinstance(data, list) or not all(isinstance(row, list) for row in data):
        raise _bad(field, text, "must be a JSON array of arrays (rows)", GradgapTypeError)
    return tuple(tuple(row) for row in data)


def parse_rows(field: str, text: str) -> tuple[tuple[float, ...], ...]:
    """Rows of numbers, ``0,1;1,0`` (rows separated by ``;``, entries by ``,``), or a JSON table
    ``[[0, 1], [1, 0]]``; entries are finite floats.

    >>> parse_rows("features", "0;1;2")
    ((0.0,), (1.0,), (2.0,))
    """
    text = _text(text).strip()
    if text.startswith("["):
        rows: Sequence[Sequence[Any]] = parse_table(field, text)
    elif text.count(";") + text.count(",") >= MAX_ITEMS:
        raise _bad(field, text, f"more than {MAX_ITEMS} entries")
    else:
        rows = [[item.strip() for item in row.split(",")] if row.strip() else [] for row in text.split(";")]
    return tuple(tuple(_convert_items(field, text, row, _finite_float, "a finite number")) for row in rows)


def parse_tables(field: str, text: str) -> tuple[tuple[tuple[Any, ...], ...], ...]:
    """A JSON array of tables (arrays of rows), ``[[[...]], [[...], [...]]]``, as nested tuples (entries and
    shapes are checked by the instance)."""
    data = parse_json(field, _text(text).strip())
    if not isinstance(data, list) or not all(isinstance(tb, list) and all(isinstance(r, list) for r in tb)
                                             for tb in data):
        raise _bad(field, text, "must be a JSON array over t of arrays of rows (logits[t][prefix][v])",
                   GradgapTypeError)
    return tuple(tuple(tuple(row) for row in table) for table in data)


def parse_int(field: str, text: str | int, *, low: int | None = None, high: int | None = None) -> int:
    """One integer, optionally within ``low .. high``."""
    try:
        value = _integer(text)
    except (ValueError, TypeError):
        raise _bad(field, text, "must be an integer", GradgapTypeError) from None
    if (low is not None and value < low) or (high is not None and value > high):
        rng = f"{low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
        raise _bad(field, text, f"must lie in {rng}")
    return value


def parse_seed(field: str, text: str | int) -> int:
    """A seed: an integer in ``0 .. 2**63 - 1``."""
    return parse_int(field, text, low=0, high=MAX_SEED)


def parse_float(field: str, text: str | float, *, low: float | None = None, high: float | None = None) -> float:
    """One finite float, optionally within ``[low, high]``."""
    try:
        value = _finite_float(text)
    except (ValueError, TypeError, OverflowError):
        raise _bad(field, text, "must be a finite number", GradgapTypeError) from None
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise _bad(field, text, f"must lie in [{lo}, {hi}]")
    return value


def parse_sizes(text: str | None, spec: Mapping[str, tuple[int, int, int]]) -> dict[str, int]:
    """``K=3`` / ``T=2,V=3`` into a dict of ints; ``spec`` maps each size to ``(min, max, default)``.
    A size given twice (``K=3,K=4``), an unknown size or one out of range is an error."""
    out = {name: default for name, (_, _, default) in spec.items()}
    if text is None:
        return out
    text = _text(text)
    example = ",".join(f"{k}={v[2]}" for k, v in spec.items())
    seen: set[str] = set()
    for item in (x.strip() for x in text.split(",")):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise _bad("size", text, f"expected NAME=INT items such as {example}")
        if name not in spec:
            raise _bad("size", text, f"no size {short(name, 10)!r}; the sizes are {', '.join(spec)}")
        if name in seen:
            raise _bad("size", text, f"{name} is given twice")
        seen.add(name)
        low, high, _ = spec[name]
        try:
            number = _integer(value)
        except ValueError:
            raise _bad("size", text, f"{name}={short(value.strip(), 12)!r} is not an integer",
                       GradgapTypeError) from None
        if not low <= number <= high:
            raise _bad("size", text, f"{name}={short(number, 12)} out of the supported range {low}..{high}")
        out[name] = number
    return out
