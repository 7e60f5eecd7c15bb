r"""``gradgap check``: run claims (the built-ins, or user TOML files) and gate on their expectations.

Exit 0 when every claim's status matches its expectation, 1 otherwise, 2 on a usage or input error.
No sympy or torch at import time: the library is imported when the command runs.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from typing import Any

from gradgap.proofs_check.atomic import check_writable_file
from gradgap.proofs_check.commands.parsing import short
from gradgap.theory.instances import GradgapValueError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "check", help="check the built-in claims (or claim files); exit 0 when all are as expected",
        description="Check claims of the theory: status, evidence level, figures, shrunk counterexamples.")
    add_claim_arguments(p, profile="ci", profile_help="how hard to search")
    p.add_argument("--json", metavar="FILE", help="write the JSON report to FILE ('-': stdout, the table then "
                                                  "goes to stderr)")
    p.add_argument("--junit", metavar="FILE", help="write a JUnit XML report to FILE (with --mutants: one test "
                                                   "case per mutant)")
    p.add_argument("--mutants", action="store_true",
                   help="check that generated wrong variants of every claim are rejected; print the score")
    p.add_argument("--fail-fast", action="store_true",
                   help="stop at the first claim not as expected (every theory-vs-numerics cross-check runs first); "
                        "exit 1 then, 0 when all are as expected; the report holds only the claims run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _profiles() -> tuple[str, ...]:
    from gradgap.proofs_check.claims import PROFILES

    return tuple(PROFILES)


def add_claim_arguments(p: argparse.ArgumentParser, *, profile: str, profile_help: str) -> None:
    """The arguments that choose claims and how hard to check them: ``FILE...``, ``--profile``, ``--only``
    (shared by ``check`` and ``latex``; read back by :func:`selected_claims`). The profile choices are the
    keys of :data:`gradgap.proofs_check.claims.PROFILES`."""
    p.add_argument("files", nargs="*", metavar="FILE", help="TOML claim files (default: the built-in claims)")
    p.add_argument("--profile", default=profile, choices=_profiles(),
                   help=f"{profile_help} (default: {profile})")
    p.add_argument("--only", nargs="+", action="extend", metavar="ID",
                   help="only these claim ids (also comma-separated); a word after --only that ends in .toml or "
                        "names an existing file is a claim FILE, not an id")


def split_only(values: list[str] | None) -> tuple[list[str] | None, list[str]]:
    """``--only`` words as ``(ids, files)``: ``--only ID FILE`` means the claim ``ID`` of ``FILE``.

    >>> split_only(["a,b", "mine.toml", "c"])
    (['a', 'b', 'c'], ['mine.toml'])
    """
    if not values:
        return None, []
    files = [v for v in values if v.lower().endswith(".toml") or os.path.isfile(v)]
    ids = [i.strip() for v in values if v not in files for i in v.split(",") if i.strip()]
    return ids or None, files


def selected_claims(args: argparse.Namespace) -> list[Any]:
    """The claims of ``args.files`` (default: the built-in claims), restricted to ``args.only``."""
    from gradgap.proofs_check.builtin import builtin_claims
    from gradgap.proofs_check.userclaims import load_files

    only, more_files = split_only(args.only)
    files = [*args.files, *more_files]
    return _select(load_files(files) if files else builtin_claims(), only)


def _select(claims: list[Any], only: list[str] | None) -> list[Any]:
    if not only:
        return claims
    ids = [c.id for c in claims]
    for want in only:
        if want not in ids:
            close = difflib.get_close_matches(want, ids, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise GradgapValueError(f"only={short(want)!r}: no such claim{hint}", field="only", value=want)
    keep = set(only)
    return [c for c in claims if c.id in keep]


def output_path(field: str, path: str | None) -> str | None:
    """``path`` if a file can be written there (checked before the work starts); ``-`` passes for stdout."""
    if path is None or (path == "-" and field == "json"):
        return path
    problem = check_writable_file(path)
    if problem:
        raise GradgapValueError(f"{field}={short(path)!r}: {problem}", field=field, value=path)
    return path


def run(args: argparse.Namespace) -> int:
    from gradgap.proofs_check import report

    json_path = output_path("json", args.json)
    junit_path = output_path("junit", args.junit)
    claims = selected_claims(args)
    progress = False if args.no_progress else None
    table = sys.stderr if json_path == "-" else sys.stdout  # stdout holds only the JSON then
    if args.mutants and getattr(args, "fail_fast", False):
        raise GradgapValueError("fail_fast: --fail-fast checks claims; it does not combine with --mutants",
                                field="fail_fast", value=True)
    if args.mutants:
        from gradgap.proofs_check import mutants

        outcome = mutants.run_mutation(claims, args.profile, progress=progress)
        print(mutants.format_outcome(outcome), file=table)
        if json_path:
            _emit_json(json_path, mutants.outcome_json(outcome))
        if junit_path:
            report.write_mutants_junit(junit_path, outcome, args.profile)
        return 0 if outcome.score == 1.0 else 1
    if getattr(args, "fail_fast", False):
        results, seconds = report.run_fail_fast(claims, args.profile, progress=progress)
    else:
        results, seconds = report.timed_run(claims, args.profile, progress=progress)
    print(report.format_table(results), file=table)
    print(f"profile {args.profile}: {len(results)} claims in {seconds:.1f} s", file=table)
    if getattr(args, "fail_fast", False) and not all(r.ok for r in results):
        print(f"fail-fast: stopped at {results[-1].claim.id} ({len(results)} of {len(claims)} claims run)",
              file=table)
    if json_path:
        _emit_json(json_path, report.to_json(results, args.profile, seconds))
    if junit_path:
        report.write_junit(junit_path, results, args.profile)
    return 0 if all(r.ok for r in results) else 1


def _emit_json(path: str, data: dict[str, Any]) -> None:
    from gradgap.proofs_check.report import json_text, write_json

    if path == "-":
        sys.stdout.write(json_text(data))
    else:
        write_json(path, data)
