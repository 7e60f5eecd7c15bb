r"""``gradgap latex -o DIR [--pdf]``: every claim as a theorem in a standalone LaTeX document.

No sympy or torch at import time: the library is imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "latex", help="write the claims as a LaTeX document (optionally compile it with latexmk)",
        description="Write DIR/gradgap-claims.tex: every claim as a theorem with its closed forms and evidence.")
    p.add_argument("files", nargs="*", metavar="FILE", help="TOML claim files (default: the built-in claims)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    p.add_argument("--pdf", action="store_true", help="compile the document with latexmk -pdf")
    p.add_argument("--profile", default="quick", choices=("quick", "ci", "thorough"),
                   help="profile of the checks whose evidence is shown (default: quick)")
    p.add_argument("--no-evidence", action="store_true", help="do not run the checks; statements only")
    p.add_argument("--only", nargs="+", action="extend", metavar="ID", help="only these claim ids")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from proofs_check import latex, report
    from proofs_check.builtin import builtin_claims
    from proofs_check.commands.check import _select
    from proofs_check.userclaims import load_files

    claims = _select(load_files(args.files) if args.files else builtin_claims(), args.only)
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
