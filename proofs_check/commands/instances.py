r"""One instance builder for the command line: a table of fields per family, read by one function.

Each family lists the constructor keywords of its instance type (the registry's
:data:`gradgap.proofs_check.families.FAMILIES`) with the parser of their command-line text (:mod:`.parsing`).
``gap`` and ``threshold`` pass every field as typed; ``derive`` passes what was typed plus defaults computed from
``--size``.
Adding a family = one entry in :data:`FIELDS` (its instance type comes from the registry).

>>> build_instance("softmax", {"logits": "-1,2", "correct": "1"}).K
2
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from gradgap.proofs_check.commands import parsing
from gradgap.theory.instances import FAMILIES, GradgapValueError

__all__ = ["FIELDS", "Field", "build_instance", "check_family"]


@dataclass(frozen=True)
class Field:
    """A constructor keyword ``name`` of a family's instance type, read from the option ``option``."""

    name: str
    parse: Callable[[str, str], Any]
    option: str = ""
    required: bool = True

    @property
    def flag(self) -> str:
        return self.option or self.name


def _numbers(field: str, text: str) -> tuple[float, ...]:
    return tuple(parsing.parse_numbers(field, text))


def _length(field: str, text: str) -> int:
    return parsing.parse_int(field, text, low=1)


def _nested(field: str, text: str) -> tuple[Any, ...]:
    """A JSON array of arrays of any depth (``[[[1, 0], [0, 1]], ...]``, ``[[0], [1, 2]]``) as nested tuples;
    entries and shapes are checked by the instance."""
    data = parsing.parse_json(field, str(text).strip())
    if not isinstance(data, list) or not all(isinstance(row, list) for row in data):
        raise GradgapValueError(f"{field}={parsing.short(text)!r}: must be a JSON array of arrays", field=field,
                                value=text)

    def freeze(item: Any) -> Any:
        return tuple(freeze(x) for x in item) if isinstance(item, list) else item

    return freeze(data)


FIELDS: Final[dict[str, tuple[Field, ...]]] = {
    "softmax": (Field("logits", _numbers), Field("correct", parsing.parse_indices)),
    "tokens": (Field("logits", parsing.parse_table), Field("target", parsing.parse_indices),
               Field("min_correct", parsing.parse_int, "min-correct", required=False)),
    "shared_tokens": (Field("theta", _numbers), Field("features", parsing.parse_table),
                      Field("correct", parsing.parse_indices), Field("T", _length),
                      Field("bias", _numbers, required=False)),
    "autoregressive": (Field("logits", parsing.parse_tables), Field("target", parsing.parse_indices),
                       Field("min_correct", parsing.parse_int, "min-correct", required=False),
                       Field("eos", parsing.parse_int, required=False)),
    "contextual": (Field("theta", _numbers), Field("features", _nested), Field("correct", _nested),
                   Field("weights", _numbers, required=False)),
}


def check_family(family: str) -> str:
    """``family`` if it is a known family; a one-line error with "did you mean" otherwise."""
    if family in FAMILIES and family in FIELDS:
        return family
    close = difflib.get_close_matches(str(family), list(FAMILIES), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; choose one of {', '.join(FAMILIES)}"
    raise GradgapValueError(f"family={parsing.short(family, 30)!r}: unknown{hint}", field="family", value=family)


def build_instance(family: str, texts: Mapping[str, str | None], defaults: Mapping[str, Any] | None = None, *,
                   table: Callable[[str, str], Any] = parsing.parse_table) -> Any:
    """The instance of ``family`` from the command-line ``texts`` (keyed by constructor keyword; ``None`` when
    the option was not given), falling back to the already parsed ``defaults``; the table fields are read with
    ``table`` (``threshold`` also takes rows as ``0,1;1,0``: :func:`~.parsing.parse_rows`)."""
    from gradgap.proofs_check import families  # lazy: the registry imports sympy and the twins

    cls = families.family(check_family(family)).instance_type
    defaults = defaults or {}
    kwargs: dict[str, Any] = {}
    for f in FIELDS[family]:
        text = texts.get(f.name)
        if text is not None:
            parse = table if f.parse is parsing.parse_table else f.parse
            kwargs[f.name] = parse(f.flag, text)
        elif f.name in defaults:
            kwargs[f.name] = defaults[f.name]
        elif f.required:
            raise GradgapValueError(f"{f.flag}=None: required for family {family}", field=f.flag, value=None)
    return cls(**kwargs)


def texts_of(family: str, args: Any) -> dict[str, str | None]:
    """The option texts of ``family``'s fields from a parsed namespace (absent options are ``None``)."""
    return {f.name: getattr(args, f.name, None) for f in FIELDS[check_family(family)]}
