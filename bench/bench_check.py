r"""Benchmark of ``gradgap check``: wall time over all built-in claims, per claim and per check.

The gate's budget is ``gradgap check --profile ci`` over all built-ins in at most 120 s on 2 cores. This runs
the same library call as the command (in one process, like the command), prints a table of claims sorted by
time with the share of each check, and the total against the budget; ``--json FILE`` writes the figures.

Run: ``python bench/bench_check.py [--profile ci] [--only ID ...] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BenchConfig:
    """What to time."""

    profile: str = "ci"
    """profile of the checks (quick | ci | thorough)"""
    budget_s: float = 120.0
    """the gate's budget for all built-ins, seconds (docs/DESIGN.md, the gate)"""


def bench(config: BenchConfig, only: Sequence[str] | None = None) -> dict:
    """Time every built-in claim; returns the figures (also printed)."""
    from gradgap.proofs_check.builtin import builtin_claims
    from gradgap.proofs_check.claims import run_claim

    start = time.perf_counter()
    claims = builtin_claims()
    if only:
        claims = [c for c in claims if c.id in set(only)]
    load_s = time.perf_counter() - start
    rows = []
    for claim in claims:
        t0 = time.perf_counter()
        res = run_claim(claim, config.profile)
        rows.append({"id": claim.id, "status": res.evidence.status.value, "strength": res.evidence.strength.name,
                     "seconds": round(time.perf_counter() - t0, 3),
                     "checks": {name: ev.seconds for name, ev in res.checks}})
    total = time.perf_counter() - start
    return {"profile": config.profile, "claims": len(rows), "load_seconds": round(load_s, 3),
            "total_seconds": round(total, 3), "budget_seconds": config.budget_s,
            "within_budget": total <= config.budget_s, "per_claim": rows}


def _print(figures: dict) -> None:
    rows = sorted(figures["per_claim"], key=lambda r: -r["seconds"])
    width = max((len(r["id"]) for r in rows), default=10)
    print(f"{'claim':{width}}  {'s':>7}  {'share':>6}  checks")
    total = figures["total_seconds"] or 1.0
    for r in rows:
        checks = ", ".join(f"{k}={v:.2f}" for k, v in r["checks"].items())
        print(f"{r['id']:{width}}  {r['seconds']:7.2f}  {100 * r['seconds'] / total:5.1f}%  {checks}")
    verdict = "within" if figures["within_budget"] else "OVER"
    print(f"total {figures['total_seconds']:.1f} s for {figures['claims']} claims (profile {figures['profile']}, "
          f"loading {figures['load_seconds']:.1f} s): {verdict} the {figures['budget_seconds']:.0f} s budget")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ci", choices=("quick", "ci", "thorough"))
    parser.add_argument("--only", nargs="+", metavar="ID")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    figures = bench(BenchConfig(profile=args.profile), args.only)
    _print(figures)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2)
    return 0 if figures["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
