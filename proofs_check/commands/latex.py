r"""``gradgap latex -o DIR [--pdf]``: every claim as a theorem in a standalone LaTeX document.

The output folder is checked before the checks run; the document is written atomically (a kill leaves the
previous ``.tex`` intact). No sympy or torch at import time: the library is imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gradgap.proofs_check.atomic import prepare_folder
from gradgap.proofs_check.commands.check import add_claim_arguments, selected_claims
from gradgap.proofs_check.commands.parsing import short
from gradgap.theory.instances import GradgapValueError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "latex", help="write the claims as a LaTeX document (optionally compile it with latexmk)",
        description="Write DIR/gradgap-claims.tex: every claim as a theorem with its closed forms and evidence.")
    add_claim_arguments(p, profile="quick", profile_help="profile of the checks whose evidence is shown")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory (created if missing)")
    p.add_argument("--pdf", action="store_true", help="compile the document with latexmk -pdf")
    p.add_argument("--no-evidence", action="store_true", help="do not run the checks; statements only")
    p.set_defaults(func=run)


def output_dir(path: str) -> str:
    """``path`` as an output folder that exists and takes files (created when missing); checked before work."""
    problem = prepare_folder(path)
    if problem:
        raise GradgapValueError(f"output={short(path)!r}: {problem}", field="output", value=path)
    return path


def run(args: argparse.Namespace) -> int:
    from gradgap.proofs_check import latex, report

    out = output_dir(args.output)
    claims = selected_claims(args)
    results = None if args.no_evidence else report.run_all(claims, args.profile)
    path = latex.write_document(out, claims, results)
    print(path)
    if args.pdf:
        try:
            pdf = latex.compile_pdf(path)
        except RuntimeError as exc:
            print(f"gradgap latex: {str(exc).splitlines()[0][:180]}", file=sys.stderr)
            return 1
        print(pdf)
    return 0
