r"""Mutants of the project's own source (``theory/``, ``numerics/``) and the gate run on each: its mutation score.

A *source mutant* is one small edit of one file: an operator swapped, a numeric constant halved or doubled, a
returned expression negated, a factor or a subtracted term dropped, a comparison loosened. Each is applied in a
temporary copy of the four source folders laid out as the package ``gradgap`` (the working tree is never
touched) and ``gradgap check`` runs on the copy in a subprocess (``PYTHONPATH`` points at the copy, so the
mutated modules shadow the installed ones; :func:`run_gate` verifies that they do). The mutant is

- ``killed`` when the gate exits 1 (a claim not as expected) or 2,
- ``survived`` when it exits 0,
- ``timeout`` when it runs past the limit,
- ``equivalent`` when it survived and a fixed battery of observables (:mod:`gradgap.proofs_check.battery`)
  executes the mutated line and returns the same values as the unmutated code, bit for bit: no claim can
  tell such a mutant apart on those inputs.

The generator (:func:`generate`) is a small AST walk: it emits source-text replacements at the position of a
node, so every mutant is a readable one-line diff. Docstrings, ``raise`` statements (error messages), f-strings,
annotations and ``__all__`` are left alone.

Source: the gate's soundness figure (README "Mutation score").
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["Mutant", "Outcome", "apply", "battery_equal", "copy_tree", "fixed_mutant", "generate",
           "run_gate", "source_root"]

#: the source folders copied for every mutant (laid out as ``gradgap/<folder>``)
FOLDERS: Final[tuple[str, ...]] = ("theory", "numerics", "proofs_check", "experiments")
#: the folders whose files are mutated
MUTATED: Final[tuple[str, ...]] = ("theory", "numerics")


def source_root() -> Path:
    """The folder that holds ``theory/``, ``numerics/`` ... of the installed ``gradgap`` (editable or not)."""
    import gradgap.theory

    return Path(gradgap.theory.__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    """One edit: in ``path`` (relative, e.g. ``theory/softmax.py``) the text ``old`` at 1-based ``line``,
    0-based columns ``col``..``end_col`` of lines ``line``..``end_line`` becomes ``new``."""

    path: str
    line: int
    col: int
    end_line: int
    end_col: int
    old: str
    new: str
    kind: str

    @property
    def name(self) -> str:
        return f"{self.path}:{self.line}:{self.col} {self.kind}"

    def patched(self, source: str) -> str:
        """``source`` with the edit applied (the segment must read ``old``)."""
        lines = source.splitlines(keepends=True)
        start = sum(len(x) for x in lines[: self.line - 1]) + _byte_to_char(lines[self.line - 1], self.col)
        stop = sum(len(x) for x in lines[: self.end_line - 1]) + _byte_to_char(lines[self.end_line - 1], self.end_col)
        if source[start:stop] != self.old:
            raise ValueError(f"{self.name}: expected {self.old!r} at the position, found {source[start:stop]!r}")
        return source[:start] + self.new + source[stop:]

    def diff(self, root: Path) -> str:
        """The unified diff of the edit."""
        before = (root / self.path).read_text()
        after = self.patched(before)
        return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{self.path}",
                                            f"b/{self.path}", n=1))


def _byte_to_char(line: str, col: int) -> int:
    """AST columns count UTF-8 bytes; the character index of byte ``col`` of ``line``."""
    return len(line.encode()[:col].decode(errors="ignore"))


def fixed_mutant(root: Path, path: str, old: str, new: str, kind: str = "fixed") -> Mutant:
    """The mutant replacing the only occurrence of ``old`` in ``path`` by ``new``."""
    source = (root / path).read_text()
    if source.count(old) != 1:
        raise ValueError(f"{path}: {old!r} occurs {source.count(old)} times, not once")
    start = source.index(old)
    before = source[:start]
    line = before.count("\n") + 1
    col = len(before.rsplit("\n", 1)[-1].encode())
    body = before + old
    end_line = body.count("\n") + 1
    end_col = len(body.rsplit("\n", 1)[-1].encode())
    return Mutant(path, line, col, end_line, end_col, old, new, kind)


# ---------------------------------------------------------------------------------------------------- generation

_SWAP: Final[dict[type, tuple[type, str]]] = {ast.Add: (ast.Sub, "-"), ast.Sub: (ast.Add, "+"),
                                              ast.Mult: (ast.Div, "/"), ast.Div: (ast.Mult, "*")}
_CMP: Final[dict[type, str]] = {ast.Lt: "<=", ast.LtE: "<", ast.Gt: ">=", ast.GtE: ">"}


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes never mutated: docstrings, raise statements, f-strings, annotations, ``__all__``."""
    skip: set[int] = set()

    def mark(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, ast.Raise | ast.JoinedStr | ast.Assert):
            mark(node)
        elif isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            mark(node.returns)
            for a in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs]:
                mark(a.annotation)
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                  for t in node.targets):
            mark(node)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                mark(first)
    return skip


def _number_variants(value: float | int) -> list[tuple[str, str]]:
    if isinstance(value, bool) or value == 0:
        return [("1", "const 0->1")] if value == 0 and not isinstance(value, bool) else []
    if isinstance(value, int):
        out = [(repr(2 * value), f"const {value}->{2 * value}")]
        out.append((repr(value // 2) if value % 2 == 0 else f"({value} / 2)", f"const {value}->{value}/2"))
        return out
    return [(repr(2 * value), f"const {value!r}->x2"), (repr(value / 2), f"const {value!r}->/2")]


def _node_mutants(node: ast.AST, seg: str | None, text: Callable[[ast.AST], str | None]) -> Iterator[tuple[str, str]]:
    """(replacement, kind) for one node whose source is ``seg``."""
    if seg is None:
        return
    if isinstance(node, ast.BinOp):
        left, right = text(node.left), text(node.right)
        if left is None or right is None:
            return
        if type(node.op) in _SWAP:
            _, sym = _SWAP[type(node.op)]
            yield f"({left}) {sym} ({right})", f"op {type(node.op).__name__}->{sym}"
        if isinstance(node.op, ast.Mult):
            yield f"({left})", "drop right factor"
            yield f"({right})", "drop left factor"
        if isinstance(node.op, ast.Sub):
            yield f"({left})", "drop subtracted term"
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        operand = text(node.operand)
        if operand is not None:
            yield f"({operand})", "drop unary minus"
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMP:
        left, right = text(node.left), text(node.comparators[0])
        if left is not None and right is not None:
            yield f"{left} {_CMP[type(node.ops[0])]} {right}", "boundary"


def _segmenter(source: str) -> Callable[[ast.AST], str | None]:
    """A fast ``ast.get_source_segment`` for one source (line offsets computed once; columns are UTF-8 bytes)."""
    lines = [line.encode() for line in source.splitlines(keepends=True)]

    def text(node: ast.AST) -> str | None:
        try:
            a, b = node.lineno - 1, node.end_lineno - 1  # type: ignore[attr-defined]
            c, d = node.col_offset, node.end_col_offset  # type: ignore[attr-defined]
        except AttributeError:
            return None
        if a == b:
            return lines[a][c:d].decode()
        return b"".join([lines[a][c:], *lines[a + 1: b], lines[b][:d]]).decode()

    return text


def generate(root: Path, folders: Sequence[str] = MUTATED) -> list[Mutant]:
    """Every mutant of the ``.py`` files of ``folders`` under ``root`` (sorted by file and position)."""
    out: list[Mutant] = []
    for folder in folders:
        for file in sorted((root / folder).rglob("*.py")):
            rel = file.relative_to(root).as_posix()
            source = file.read_text()
            tree = ast.parse(source)
            skip = _skipped_nodes(tree)

            text = _segmenter(source)

            for node in ast.walk(tree):
                if id(node) in skip or not hasattr(node, "lineno"):
                    continue
                seg = text(node)
                where = (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)
                muts = list(_node_mutants(node, seg, text))
                if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
                    muts += _number_variants(node.value)
                returned = (ast.BinOp, ast.Call, ast.Name, ast.UnaryOp)
                if isinstance(node, ast.Return) and isinstance(node.value, returned):
                    v = node.value
                    value = text(v)
                    if value:
                        out.append(Mutant(rel, v.lineno, v.col_offset, v.end_lineno, v.end_col_offset, value,
                                          f"-({value})", "negate return"))
                out.extend(Mutant(rel, *where, seg, new, kind) for new, kind in muts if seg is not None)
    out.sort(key=lambda m: (m.path, m.line, m.col, m.kind, m.new))
    return out


# ---------------------------------------------------------------------------------------------------- running

def copy_tree(root: Path, dest: Path) -> Path:
    """Copy the source folders of ``root`` to ``dest/gradgap/`` (a regular package there, so that it shadows the
    installed namespace); returns ``dest`` (the ``PYTHONPATH`` entry)."""
    pkg = dest / "gradgap"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    for folder in FOLDERS:
        shutil.copytree(root / folder, pkg / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def apply(tree: Path, mutant: Mutant) -> None:
    """Apply ``mutant`` to the copy at ``tree`` (made by :func:`copy_tree`)."""
    target = tree / "gradgap" / mutant.path
    target.write_text(mutant.patched(target.read_text()))


@dataclass(frozen=True)
class Outcome:
    """What the gate did on one mutant."""

    mutant: Mutant
    verdict: str  # killed | survived | timeout | equivalent
    exit_code: int | None
    seconds: float
    tail: str


_PROBE: Final[str] = ("import gradgap.theory, gradgap.numerics, sys; "
                      "sys.exit(0 if gradgap.theory.__file__.startswith(sys.argv[1]) "
                      "and gradgap.numerics.__file__.startswith(sys.argv[1]) else 3)")


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_gate(tree: Path, args: Sequence[str], timeout: float) -> tuple[int | None, float, str]:
    """Run ``gradgap check ARGS`` on the copy at ``tree``: (exit code or ``None`` on timeout, seconds, the last
    lines of its output). Raises ``RuntimeError`` when the copy does not shadow the installed package."""
    env = _env(tree)
    probe = subprocess.run([sys.executable, "-c", _PROBE, str(tree)], env=env, cwd=tree, check=False,
                           capture_output=True, text=True)
    if probe.returncode != 0:
        raise RuntimeError(f"the copy at {tree} does not shadow the installed gradgap: {probe.stderr[-300:]}")
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "gradgap.proofs_check.cli", "check", *args, "--no-progress"],
                              env=env, cwd=tree, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return None, time.perf_counter() - start, out[-1500:]
    tail = (proc.stdout + proc.stderr)[-1500:]
    return proc.returncode, time.perf_counter() - start, tail


def battery_values(tree: Path, mutant: Mutant | None, timeout: float = 300) -> dict[str, object] | None:
    """The observables of :mod:`gradgap.proofs_check.battery` computed on ``tree`` (with whether the mutated line
    ran); ``None`` when the battery crashed or timed out."""
    cmd = [sys.executable, "-m", "gradgap.proofs_check.battery"]
    if mutant is not None:
        cmd += [str(tree / "gradgap" / mutant.path), str(mutant.line)]
    try:
        proc = subprocess.run(cmd, env=_env(tree), cwd=tree, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)


def battery_equal(reference: dict[str, object], tree: Path, mutant: Mutant) -> bool:
    """Whether ``mutant`` (applied at ``tree``) is equivalent on the battery: the mutated line runs and every
    observable is identical to ``reference`` (the unmutated battery)."""
    got = battery_values(tree, mutant)
    if got is None or not got.get("line_ran"):
        return False
    return got["values"] == reference["values"]


def sample(mutants: Sequence[Mutant], n: int | None, seed: int) -> list[Mutant]:
    """``n`` mutants drawn without replacement with ``seed`` (all, in order, when ``n`` is ``None``)."""
    if n is None or n >= len(mutants):
        return list(mutants)
    return sorted(random.Random(seed).sample(list(mutants), n), key=lambda m: (m.path, m.line, m.col))


def scratch() -> Path:
    """A fresh temporary folder."""
    return Path(tempfile.mkdtemp(prefix="gradgap-mutant-"))
