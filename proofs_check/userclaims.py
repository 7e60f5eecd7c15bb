r"""User claim files (TOML): relations in the claim language, checked like the built-ins.

.. code-block:: toml

    [[claim]]
    id = "my-bound"                     # unique
    family = "softmax"                  # softmax | tokens | shared_tokens
    sizes = { K = [2, 6] }              # inclusive ranges of the family's size parameters
    direction = "random"                # gap (default) | grad | random
    ranges = { eta = [0, 10] }          # free scalars; eta defaults to [0, 10]
    given = ["Delta_mu > 0"]            # hypotheses, optional
    claim = "J_next >= J"               # one relation: <, <=, >, >=, ==
    statement = "..."                   # LaTeX, optional
    expect = "holds"                    # or "fails"

Optional too: ``title``, ``source``. Every problem (TOML syntax, an unknown key or name, a bad range, a duplicate
id) raises a :class:`~gradgap.theory.instances.GradgapValueError` whose one line names the file, the claim id and the
problem; the CLI exits 2 with it. The vocabulary is :data:`gradgap.proofs_check.expressions.VARIABLES`.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any, Final

from gradgap.proofs_check.claims import Claim, Relation
from gradgap.proofs_check.search import relation_claim
from gradgap.theory.instances import GradgapError, GradgapValueError

__all__ = ["KEYS", "load_file", "load_files", "parse_claim"]

#: keys of one ``[[claim]]`` table (``id``, ``family``, ``claim`` are required)
KEYS: Final[tuple[str, ...]] = ("id", "title", "family", "sizes", "direction", "ranges", "given", "claim",
                                "statement", "source", "expect")
_REQUIRED: Final[tuple[str, ...]] = ("id", "family", "claim")


#: a claim file larger than this is refused before parsing (claim files are a few kB)
MAX_FILE_BYTES: Final[int] = 1 << 20
#: the deepest bracket nesting a claim file may have (tomllib recurses per level)
MAX_NESTING: Final[int] = 32


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _err(path: str, cid: str | None, problem: str) -> GradgapValueError:
    shown = str(path) if len(str(path)) <= 100 else "..." + str(path)[-97:]
    where = f"{shown}: claim {_cut(cid, 40)!r}" if cid else shown
    return GradgapValueError(f"{where}: {_cut(problem, 150)}", field="file", value=path)


def _nesting(text: str) -> int:
    """The deepest ``[``/``{`` nesting outside strings and comments (an upper bound is enough here)."""
    depth = best = 0
    quote = ""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif c in "[{":
            depth += 1
            best = max(best, depth)
        elif c in "]}":
            depth = max(0, depth - 1)
        i += 1
    return best


def _string(path: str, cid: str | None, table: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise _err(path, cid, f"{key}={value!r}: must be a string")
    return value


def _check_sizes(relation: Relation, max_responses: int) -> None:
    r"""The smallest instance of the size ranges must be searchable: at most ``max_responses`` responses
    (:math:`K` for softmax, :math:`V^T` for the token families), else every draw would be rejected."""
    sizes = relation.sizes
    if "K" in sizes:
        key, count = "K", sizes["K"][0]
    elif "P" in sizes:  # contextual: P * A pairs
        key, count = "A", sizes["P"][0] * sizes["A"][0]
    else:
        v, t = sizes["V"][0], sizes["T"][0]
        key = "V" if v > max_responses else "T"
        count = v**t if v <= max_responses and t <= 64 else max_responses + 1
    if count > max_responses:
        lo, hi = sizes[key]
        raise GradgapValueError(f"sizes.{key}=[{_cut(str(lo), 12)}, {_cut(str(hi), 12)}]: the smallest instance "
                                f"has over {max_responses} responses, more than a search handles; lower the sizes",
                                field=f"sizes.{key}", value=[lo, hi])


def parse_claim(table: Mapping[str, Any], path: str = "<claims>") -> Claim:
    """One ``[[claim]]`` table as a :class:`~gradgap.proofs_check.claims.Claim` (relation + generic search)."""
    if not isinstance(table, Mapping):
        raise _err(path, None, "each [[claim]] must be a table")
    raw_id = table.get("id")
    cid = raw_id if isinstance(raw_id, str) else None
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], KEYS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise _err(path, cid, f"unknown key {unknown[0]!r}{hint} (keys: {', '.join(KEYS)})")
    for key in _REQUIRED:
        if key not in table:
            raise _err(path, cid, f"missing required key {key!r}")
    cid = _string(path, None, table, "id")
    if not cid.strip() or any(c.isspace() for c in cid):
        raise _err(path, cid, "id must be a non-empty word without spaces")
    given = table.get("given", [])
    if not isinstance(given, list) or not all(isinstance(g, str) for g in given):
        raise _err(path, cid, f"given={given!r}: must be a list of strings")
    for key in ("sizes", "ranges"):
        if not isinstance(table.get(key, {}), Mapping):
            raise _err(path, cid, f"{key}={table.get(key)!r}: must be a table like {{ K = [2, 6] }}")
    expect = _string(path, cid, table, "expect", "holds")
    try:
        relation = Relation(
            claim=_string(path, cid, table, "claim"),
            family=_string(path, cid, table, "family"),
            sizes=dict(table.get("sizes", {})),
            direction=_string(path, cid, table, "direction", "gap"),
            ranges=dict(table.get("ranges", {})),
            given=tuple(given),
        )
        from gradgap.proofs_check import families, search

        _check_sizes(relation, families.MAX_RESPONSES)
        search._compile(relation)  # names against the family's vocabulary
        return relation_claim(
            cid, relation,
            title=_string(path, cid, table, "title", cid),
            statement=_string(path, cid, table, "statement", ""),
            source=_string(path, cid, table, "source", f"user claim ({os.path.basename(path)})"),
            expect=expect,  # type: ignore[arg-type]
        )
    except GradgapError as exc:
        if str(exc).startswith(f"{path}: "):
            raise
        raise _err(path, cid, str(exc)) from None


def load_file(path: str) -> list[Claim]:
    """Every claim of one TOML file."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise _err(path, None, "no such file") from None
    except IsADirectoryError:
        raise _err(path, None, "is a directory, not a claim file") from None
    except OSError as exc:
        raise _err(path, None, f"cannot be read ({exc.strerror})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise _err(path, None, f"larger than {MAX_FILE_BYTES} bytes; a claim file is small text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _err(path, None, "not UTF-8 text") from None
    depth = _nesting(text)
    if depth > MAX_NESTING:
        raise _err(path, None, f"nested {depth} levels deep (at most {MAX_NESTING}); a claim file is flat")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _err(path, None, f"TOML syntax error: {str(exc)[:100]}") from None
    except (RecursionError, MemoryError):
        raise _err(path, None, f"nested too deeply (at most {MAX_NESTING} levels)") from None
    extra = sorted(set(data) - {"claim"})
    if extra:
        raise _err(path, None, f"unknown top-level key {extra[0]!r} (claims go in [[claim]] tables)")
    tables = data.get("claim")
    if not isinstance(tables, list) or not tables:
        raise _err(path, None, "no [[claim]] tables")
    return [parse_claim(t, path) for t in tables]


def load_files(paths: Iterable[str]) -> list[Claim]:
    """The claims of several files, in order; ids must be unique across them."""
    claims: list[Claim] = []
    seen: dict[str, str] = {}
    for path in paths:
        for claim in load_file(path):
            if claim.id in seen:
                raise _err(path, claim.id, f"duplicate id (first defined in {seen[claim.id]})")
            seen[claim.id] = path
            claims.append(claim)
    return claims
