r"""One instance builder for the command line: a table of fields per family, read by one function.

Each family lists the constructor keywords of its instance type (the registry's
:data:`gradgap.proofs_check.families.FAMILIES`) with the parser of their command-line text (:mod:`.parsing`).
``gap`` and ``threshold`` pass every field as typed; ``derive`` passes what was typed plus defaults computed from
``--size``.
Adding a family = one entry in :data:`FIELDS`, :data:`FAMILY_HELP` and :data:`PARAMETER_LABELS` (its instance
type comes from the registry); the ``gap`` and ``threshold`` sub-parsers are generated from them.

>>> build_instance("softmax", {"logits": "-1,2", "correct": "1"}).K
2
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from gradgap.proofs_check.commands import parsing
from gradgap.theory.instances import FAMILIES, GradgapValueError

__all__ = ["FAMILY_HELP", "FIELDS", "PARAMETER_LABELS", "Field", "add_family_parsers", "build_instance", "check_family",
           "parameter_labels", "texts_of"]


@dataclass(frozen=True)
class Field:
    """A constructor keyword ``name`` of a family's instance type, read from the option ``option``."""

    name: str
    parse: Callable[[str, str], Any]
    help: str
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
    "softmax": (Field("logits", _numbers, "K logits: 0.3,-1.2,2.0 or a JSON array"),
                Field("correct", parsing.parse_indices, "correct arms: 0,2")),
    "tokens": (Field("logits", parsing.parse_table, "T x V logits as JSON: '[[...], [...]]'"),
               Field("target", parsing.parse_indices, "target tokens o*: 1,0,2"),
               Field("min_correct", parsing.parse_int, "reward 1 iff at least m positions match (default: all)",
                     "min-correct", required=False)),
    "shared_tokens": (Field("theta", _numbers, "d parameters: 0.5,-1"),
                      Field("features", parsing.parse_table, "V x d features as JSON: '[[...], ...]'"),
                      Field("correct", parsing.parse_indices, "correct vocabulary subset: 0,2"),
                      Field("T", _length, "response length"),
                      Field("bias", _numbers, "V token biases (default: zeros)", required=False)),
    "autoregressive": (Field("logits", parsing.parse_tables,
                             "JSON list over t of V^t rows of V logits: '[[[0,1]], [[0,0],[1,0]]]'"),
                       Field("target", parsing.parse_indices, "target tokens o*: 1,0,2"),
                       Field("min_correct", parsing.parse_int,
                             "reward 1 iff at least m positions match (default: exact)", "min-correct",
                             required=False),
                       Field("eos", parsing.parse_int, "end-of-sequence token: a response ends at its first eos",
                             required=False)),
    "contextual": (Field("theta", _numbers, "d parameters: 0.1,-0.2"),
                   Field("features", _nested, "P x A x d features as JSON: '[[[1,0],[0,1]], ...]'"),
                   Field("correct", _nested, "correct actions per prompt as JSON: '[[0],[1,2]]'"),
                   Field("weights", _numbers, "P positive prompt weights (default: uniform)", required=False)),
}

#: the sub-command help and description of each family (``gap``, ``threshold``)
FAMILY_HELP: Final[dict[str, tuple[str, str | None]]] = {
    "softmax": ("K-armed softmax bandit", "Negative values are fine: --logits -1,2 or --logits '[-1, 2]'."),
    "tokens": ("tabular token-sequence policy", None),
    "shared_tokens": ("shared-parameter log-linear token policy", None),
    "autoregressive": ("tabular autoregressive policy (logits per position and prefix)",
                       "logits[t] has V^t rows (the prefix as a base-V number, first token most significant), "
                       "each of V logits; vectors are flattened in the order (t, prefix, v)."),
    "contextual": ("contextual log-linear bandit (P prompts, A actions, shared theta)", None),
}


def _token_labels(inst: Any) -> list[str]:
    return [f"{t},{v}" for t in range(inst.T) for v in range(inst.V)]


def _prefix_labels(inst: Any) -> list[str]:
    """``t,prefix,v`` in the flat (t, prefix, v) order (the prefix as tokens, ``-`` when empty)."""
    out = []
    for t in range(inst.T):
        for code in range(inst.V**t):
            digits = [str((code // inst.V ** (t - 1 - s)) % inst.V) for s in range(t)]
            out.extend(f"{t},{''.join(digits) or '-'},{v}" for v in range(inst.V))
    return out


def _index_labels(inst: Any) -> list[str]:
    return [str(i) for i in range(len(inst.theta))]


#: the column head and the labels of the flat parameter vector of each family (the layout of docs/DESIGN.md)
PARAMETER_LABELS: Final[dict[str, tuple[str, Callable[[Any], list[str]]]]] = {
    "softmax": ("index", _index_labels),
    "tokens": ("(t,v)", _token_labels),
    "shared_tokens": ("index", _index_labels),
    "autoregressive": ("(t,u,v)", _prefix_labels),
    "contextual": ("index", _index_labels),
}


def parameter_labels(inst: Any) -> tuple[str, list[str]]:
    """The column head and one label per entry of ``inst.theta`` (and of ``grad_J``, ``gradient_gap``).

    >>> from gradgap.theory.instances import TokenSequence
    >>> parameter_labels(TokenSequence(((0.0, 1.0),), (0,)))
    ('(t,v)', ['0,0', '0,1'])
    """
    from gradgap.theory.instances import family_name

    head, labels = PARAMETER_LABELS[family_name(inst)]
    return head, labels(inst)


def add_family_parsers(subparsers: Any, families: Iterable[str], *, parents: Sequence[argparse.ArgumentParser] = (),
                       table_help: str = "", help_override: Mapping[str, str] | None = None
                       ) -> dict[str, argparse.ArgumentParser]:
    """One sub-parser per family with one option per :data:`FIELDS` entry (``table_help`` is appended to the help
    of the table fields: ``threshold`` also reads ``0,1;1,0`` rows); the parsers, by family."""
    out = {}
    for name in families:
        help_, description = FAMILY_HELP[name]
        p = subparsers.add_parser(name, parents=list(parents), help=(help_override or {}).get(name, help_),
                                  description=description)
        for f in FIELDS[name]:
            extra = table_help if f.parse is parsing.parse_table else ""
            p.add_argument(f"--{f.flag}", dest=f.name, required=f.required, default=None, help=f.help + extra)
        out[name] = p
    return out


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
