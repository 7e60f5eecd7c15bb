r"""``gradgap latex -o DIR [--pdf]``: every claim as a theorem in a standalone LaTeX document.

No sympy or torch at import time: the library is imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gradgap.proofs_check.commands.check import add_claim_arguments, selected_claims


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "latex", help="write the claims as a LaTeX document (optionally compile it with latexmk)",
        description="Write DIR/gradgap-claims.tex: every claim as a theorem with its closed forms and evidence.")
    add_claim_arguments(p, profile="quick", profile_help="profile of the checks whose evidence is shown")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    p.add_argument("--pdf", action="store_true", help="compile the document with latexmk -pdf")
    p.add_argument("--no-evidence", action="store_true", help="do not run the checks; statements only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gradgap.proofs_check import latex, report

    claims = selected_claims(args)
    results = None if args.no_evidence else report.run_all(claims, args.profile)
    path = latex.write_document(args.output, claims, results)
    print(path)
    if args.pdf:
        try:
            pdf = latex.compile_pdf(path)
        except RuntimeError as exc:
            print(f"gradgap latex: {exc}", file=sys.stderr)
            return 1
        print(pdf)
    return 0
