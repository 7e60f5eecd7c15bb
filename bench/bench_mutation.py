"""Code-mutation score of the gate: mutants of ``theory/`` and ``numerics/``, ``gradgap check`` on each.

Every mutant (an AST edit: operator swap, constant x2 or /2, negated return, dropped factor or subtracted term,
loosened comparison; :mod:`gradgap.proofs_check.source_mutants`) is applied in a temporary copy of the source
folders, never in the working tree, and ``gradgap check --profile ci --fail-fast`` runs on the copy with a time
limit. Verdicts: ``killed`` (exit 1 or 2), ``survived`` (exit 0), ``timeout``, ``equivalent`` (survived, and
the fixed battery of :mod:`gradgap.proofs_check.battery` runs the mutated line and returns bit-identical
values). Printed: one line per mutant, the counts, the score killed / (all - equivalent), and the diff of
every survivor.

    python bench/bench_mutation.py --sample 40 --seed 1 --json mutation.json
    python bench/bench_mutation.py --modules numerics/logspace.py theory/softmax.py --sample 10
    python bench/bench_mutation.py --list            # how many mutants each file has

``--jsonl FILE`` appends one record per mutant as it finishes (a long run can be read while it goes).

A mutant on a line the unmutated gate never executes survives by construction and costs a whole gate run.
``--measure-reach FILE`` runs the unmutated gate once under ``coverage`` (the ``bench`` extra:
``pip install -e '.[bench]'``) and writes the executed lines of ``theory/`` and ``numerics/``; ``--reached FILE``
then classifies mutants on other lines as ``unreached`` without running them (they count as not killed in the
score; the score over reached mutants is printed beside it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from gradgap.proofs_check import source_mutants as sm


def _select(mutants: list[sm.Mutant], modules: list[str] | None) -> list[sm.Mutant]:
    if not modules:
        return mutants
    return [m for m in mutants if any(m.path == w or m.path.startswith(w.rstrip("/") + "/") for w in modules)]


def _reference(root: Path) -> dict[str, object]:
    tree = sm.copy_tree(root, sm.scratch())
    try:
        ref = sm.battery_values(tree, None)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    if ref is None:
        raise SystemExit("bench_mutation: the battery fails on the unmutated tree")
    return ref


def run_one(root: Path, mutant: sm.Mutant, gate_args: list[str], timeout: float,
            reference: dict[str, object] | None) -> sm.Outcome:
    tree = sm.copy_tree(root, sm.scratch())
    try:
        sm.apply(tree, mutant)
        code, seconds, tail = sm.run_gate(tree, gate_args, timeout)
        if code is None:
            verdict = "timeout"
        elif code == 0:
            same = reference is not None and sm.battery_equal(reference, tree, mutant)
            verdict = "equivalent" if same else "survived"
        else:
            verdict = "killed"
        return sm.Outcome(mutant, verdict, code, seconds, tail)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--modules", nargs="+", help="folders or files to mutate (default: theory numerics)")
    p.add_argument("--sample", type=int, help="mutants drawn at random (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=1200.0, help="seconds per mutant (default 1200)")
    p.add_argument("--profile", default="ci")
    p.add_argument("--no-fail-fast", action="store_true", help="run the whole gate on every mutant")
    p.add_argument("--no-equivalence", action="store_true", help="skip the battery on survivors")
    p.add_argument("--names", nargs="+", metavar="NAME",
                   help="only the mutants of these names ('path:line:col kind', as printed; also a --json file "
                        "of an earlier run, whose survivors are taken)")
    p.add_argument("--measure-reach", metavar="FILE", help="run the gate once under coverage; write its lines")
    p.add_argument("--reached", metavar="FILE", help="lines the gate executes (from --measure-reach)")
    p.add_argument("--list", action="store_true", help="only count the mutants per file")
    p.add_argument("--json", help="write the outcomes to this file at the end")
    p.add_argument("--jsonl", help="append one JSON record per mutant as it finishes")
    args = p.parse_args(argv)

    root = sm.source_root()
    if args.measure_reach:
        return _measure_reach(root, args.measure_reach, args.profile)
    mutants = _select(sm.generate(root), args.modules)
    reached = json.loads(Path(args.reached).read_text()) if args.reached else None
    if args.list:
        for path, n in sorted(Counter(m.path for m in mutants).items()):
            print(f"{n:5d}  {path}")
        print(f"{len(mutants):5d}  total")
        return 0
    if args.names:
        mutants = [m for m in mutants if m.name in _names(args.names)]
    chosen = sm.sample(mutants, args.sample, args.seed)
    gate_args = ["--profile", args.profile, *([] if args.no_fail_fast else ["--fail-fast"])]
    print(f"{len(chosen)} of {len(mutants)} mutants; gate: gradgap check {' '.join(gate_args)}; "
          f"timeout {args.timeout:.0f} s", flush=True)
    reference = None if args.no_equivalence else _reference(root)
    outcomes: list[sm.Outcome] = []
    start = time.perf_counter()
    for i, mutant in enumerate(chosen, 1):
        if reached is not None and mutant.line not in set(reached.get(mutant.path, ())):
            out = sm.Outcome(mutant, "unreached", None, 0.0, "")
        else:
            out = run_one(root, mutant, gate_args, args.timeout, reference)
        outcomes.append(out)
        print(f"[{i:3d}/{len(chosen)}] {out.verdict:10s} {out.seconds:7.1f} s  {mutant.name}: "
              f"{mutant.old[:40]!r} -> {mutant.new[:40]!r}", flush=True)
        if args.jsonl:
            with open(args.jsonl, "a") as fh:
                fh.write(json.dumps(_record(out, root)) + "\n")
    wall = time.perf_counter() - start
    counts = Counter(o.verdict for o in outcomes)
    considered = len(outcomes) - counts["equivalent"]
    score = counts["killed"] / considered if considered else 1.0
    print(f"\nkilled {counts['killed']}  survived {counts['survived']}  timeout {counts['timeout']}  "
          f"equivalent {counts['equivalent']}  unreached {counts['unreached']}  "
          f"score {score:.1%} of non-equivalent  ({wall:.0f} s)")
    if counts["unreached"]:
        run = considered - counts["unreached"]
        print(f"score over mutants on lines the gate executes: {counts['killed'] / run:.1%}" if run else "")
    killed_s = [o.seconds for o in outcomes if o.verdict == "killed"]
    if killed_s:
        print(f"seconds per killed mutant: median {sorted(killed_s)[len(killed_s) // 2]:.1f}, max {max(killed_s):.1f}")
    for o in outcomes:
        if o.verdict in ("survived", "timeout", "equivalent", "unreached"):
            print(f"\n--- {o.verdict}: {o.mutant.name}\n{o.mutant.diff(root)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"counts": dict(counts), "score": score, "seconds": wall,
                                               "outcomes": [_record(o, root) for o in outcomes]}, indent=1))
    return 0


def _measure_reach(root: Path, out: str, profile: str) -> int:
    """Run the unmutated gate under coverage on a copy; write {relative path: [executed lines]}."""
    import importlib.util
    import subprocess

    if importlib.util.find_spec("coverage") is None:
        print("bench_mutation: --measure-reach needs the coverage package: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    tree = sm.copy_tree(root, sm.scratch())
    try:
        data = tree / "coverage.dat"
        include = ",".join(f"{tree}/gradgap/{f}/*" for f in sm.MUTATED)
        cmd = [sys.executable, "-m", "coverage", "run", f"--data-file={data}", f"--include={include}", "-m",
               "gradgap.proofs_check.cli", "check", "--profile", profile, "--no-progress"]
        proc = subprocess.run(cmd, env=sm._env(tree), cwd=tree, check=False)
        if proc.returncode != 0:
            print(f"bench_mutation: the unmutated gate exits {proc.returncode}", file=sys.stderr)
            return 1
        import coverage

        cov = coverage.Coverage(data_file=str(data))
        cov.load()
        cdata = cov.get_data()
        lines = {Path(f).relative_to(tree / "gradgap").as_posix(): sorted(cdata.lines(f) or ())
                 for f in cdata.measured_files()}
        Path(out).write_text(json.dumps(lines))
        print(f"{sum(map(len, lines.values()))} lines executed in {len(lines)} files -> {out}")
        return 0
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def _names(words: list[str]) -> set[str]:
    out: set[str] = set()
    for w in words:
        if w.endswith(".json") and Path(w).is_file():
            data = json.loads(Path(w).read_text())
            out.update(o["mutant"] for o in data["outcomes"] if o["verdict"] in ("survived", "timeout"))
        else:
            out.add(w)
    return out


def _record(o: sm.Outcome, root: Path) -> dict[str, object]:
    return {"mutant": o.mutant.name, "verdict": o.verdict, "exit": o.exit_code, "seconds": round(o.seconds, 1),
            "diff": o.mutant.diff(root), "tail": o.tail[-600:]}


if __name__ == "__main__":
    sys.exit(main())
