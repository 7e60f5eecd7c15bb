"""The ``gradgap`` command line: a thin layer over ``proofs_check``.

Each subcommand lives in ``proofs_check/commands/<name>.py`` and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` (a callable taking the parsed namespace and returning the exit code). This module
parses, dispatches and turns a :class:`~gradgap.theory.instances.GradgapError` into one line on stderr with exit 2.

Conventions every subcommand shares:

- a value that starts with a minus and a digit (``--logits -1,2``, ``--direction -1/2,1``) is a value, never an
  option;
- every error is one line on stderr, at most :data:`MAX_ERROR_LINE` characters, exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Sequence
from typing import Final

from gradgap.proofs_check.commands import check, derive, gap, grpo, latex, simulate, threshold
from gradgap.theory.instances import GradgapError

#: subcommand modules, in the order ``--help`` lists them
COMMANDS: Final[tuple[str, ...]] = ("check", "gap", "derive", "latex", "threshold", "simulate", "grpo")
_MODULES: Final[dict[str, object]] = {"check": check, "gap": gap, "derive": derive, "latex": latex,
                                      "threshold": threshold, "simulate": simulate, "grpo": grpo}
#: the longest error line printed (longer messages are cut, keeping their start, which names the field)
MAX_ERROR_LINE: Final[int] = 199
#: a command-line word that is a value although it starts with ``-``: a number or a list of numbers
_NEGATIVE_VALUE: Final[re.Pattern[str]] = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


def one_line(text: str, limit: int = MAX_ERROR_LINE) -> str:
    """``text`` on one line of at most ``limit`` characters (newlines become spaces; a long tail is cut)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit code 2, and which reads a word such as
    ``-1,2`` as a value (argparse by default only accepts ``-1`` or ``-1.5``)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._negative_number_matcher = _NEGATIVE_VALUE

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, one_line(f"{self.prog}: error: {message}") + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gradgap", description="Symbolic-numeric verifier for the optimization theory of RLVR.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        _MODULES[name].register(sub)  # type: ignore[attr-defined]
    return parser


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; FILE words after an option (``check --only ID a.toml --profile quick b.toml``) join the
    command's ``files`` (argparse alone takes only the first run of positional words)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        files = getattr(args, "files", None)
        if isinstance(files, list) and not any(w.startswith("-") and not _NEGATIVE_VALUE.match(w) for w in extra):
            files.extend(extra)
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = _parse(parser, argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2, already printed as one line)
        return int(exc.code or 0) if isinstance(exc.code, int) or exc.code is None else 2
    if getattr(args, "func", None) is None:
        print(f"gradgap: error: choose a command: {', '.join(COMMANDS)} (gradgap --help describes them)",
              file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except GradgapError as exc:
        print(one_line(f"gradgap {args.command}: error: {exc}"), file=sys.stderr)
        return 2
    except RecursionError:
        print(f"gradgap {args.command}: error: input nested too deeply", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"gradgap {args.command}: error: out of memory; use smaller sizes or a cheaper --method",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gradgap {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly, as the shell's tools do
        _silence_stdout()
        return 141


def _silence_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's final flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
