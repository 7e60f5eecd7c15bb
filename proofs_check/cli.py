"""The ``gradgap`` command line: a thin layer over ``proofs_check``.

Each subcommand lives in ``proofs_check/commands/<name>.py`` and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` (a callable taking the parsed namespace and returning the exit code). This module
parses, dispatches and turns a :class:`~gradgap.theory.instances.GradgapError` into one line on stderr with exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gradgap.theory.instances import GradgapError

#: subcommand modules, in the order ``--help`` lists them
COMMANDS: tuple[str, ...] = ("check", "gap", "derive", "latex", "threshold", "simulate", "grpo")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gradgap", description="Symbolic-numeric verifier for the optimization theory of RLVR.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"gradgap.proofs_check.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"gradgap.proofs_check.commands.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except GradgapError as exc:
        print(f"gradgap {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gradgap {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
