r"""``gradgap check``: run claims (the built-ins, or user TOML files) and gate on their expectations.

Exit 0 when every claim's status matches its expectation, 1 otherwise, 2 on a usage or input error.
No sympy or torch at import time: the library is imported when the command runs.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from typing import Any

from gradgap.theory.instances import GradgapValueError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "check", help="check the built-in claims (or claim files); exit 0 when all are as expected",
        description="Check claims of the theory: status, evidence level, figures, shrunk counterexamples.")
    add_claim_arguments(p, profile="ci", profile_help="how hard to search")
    p.add_argument("--json", metavar="FILE", help="write the JSON report to FILE ('-' for stdout)")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report to FILE")
    p.add_argument("--mutants", action="store_true",
                   help="check that generated wrong variants of every claim are rejected; print the score")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def add_claim_arguments(p: argparse.ArgumentParser, *, profile: str, profile_help: str) -> None:
    """The arguments that choose claims and how hard to check them: ``FILE...``, ``--profile``, ``--only``
    (shared by ``check`` and ``latex``; read back by :func:`selected_claims`)."""
    p.add_argument("files", nargs="*", metavar="FILE", help="TOML claim files (default: the built-in claims)")
    p.add_argument("--profile", default=profile, choices=("quick", "ci", "thorough"),
                   help=f"{profile_help} (default: {profile})")
    p.add_argument("--only", nargs="+", action="extend", metavar="ID", help="only these claim ids")


def selected_claims(args: argparse.Namespace) -> list[Any]:
    """The claims of ``args.files`` (default: the built-in claims), restricted to ``args.only``."""
    from gradgap.proofs_check.builtin import builtin_claims
    from gradgap.proofs_check.userclaims import load_files

    return _select(load_files(args.files) if args.files else builtin_claims(), args.only)


def _select(claims: list[Any], only: list[str] | None) -> list[Any]:
    if not only:
        return claims
    ids = [c.id for c in claims]
    for want in only:
        if want not in ids:
            close = difflib.get_close_matches(want, ids, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise GradgapValueError(f"only={want!r}: no such claim{hint}", field="only", value=want)
    keep = set(only)
    return [c for c in claims if c.id in keep]


def run(args: argparse.Namespace) -> int:
    from gradgap.proofs_check import report

    claims = selected_claims(args)
    progress = False if args.no_progress else None
    if args.mutants:
        from gradgap.proofs_check import mutants

        outcome = mutants.run_mutation(claims, args.profile, progress=progress)
        print(mutants.format_outcome(outcome))
        if args.json:
            _emit_json(args.json, mutants.outcome_json(outcome))
        return 0 if outcome.score == 1.0 else 1
    results, seconds = report.timed_run(claims, args.profile, progress=progress)
    print(report.format_table(results))
    print(f"profile {args.profile}: {len(results)} claims in {seconds:.1f} s")
    if args.json:
        _emit_json(args.json, report.to_json(results, args.profile, seconds))
    if args.junit:
        report.write_junit(args.junit, results, args.profile)
    return 0 if all(r.ok for r in results) else 1


def _emit_json(path: str, data: dict[str, Any]) -> None:
    import json

    if path == "-":
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from gradgap.proofs_check.report import write_json

        write_json(path, data)
