r"""Running a list of claims and reporting them: a table, JSON, JUnit XML, and a progress bar.

JSON (``gradgap check --json FILE``)::

    {"claims": [{"id", "status", "expected", "strength", "required", "scope", "checked_on", "regression",
                 "evidence", "counterexample", "seconds"}],
     "summary": {"profile", "total", "matched", "mismatched", "status": {...}, "strength": {...},
                 "seconds", "ok"}}

``status`` is ``HOLDS``/``FAILS``/``ERROR``/``UNDECIDED``; ``expected`` is ``HOLDS`` or ``FAILS``; the gate is
green (exit 0) when every status equals its expectation. In the table a claim expected to fail that fails is
shown as ``REFUTED`` (a known-false statement, kept as a regression check). ``scope`` is set for ``PROVED``
(the sizes the proof covers), ``checked_on`` for ``CHECKED`` (what was checked: "3 instances", "54 grid points
(theory only)"); the table shows them as ``PROVED for K = 2..6`` and ``CHECKED on 3 instances``.
"""

from __future__ import annotations

import json
import math
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Final

from gradgap.proofs_check.atomic import atomic_write_text
from gradgap.proofs_check.claims import Claim, ClaimResult, Evidence, Profile, Status, Strength, get_profile, run_claim

__all__ = ["evidence_label", "evidence_text", "fail_fast_rank", "first_cross_check_failure", "format_table",
           "junit_xml", "mutants_junit_xml", "run_all", "run_fail_fast", "status_label", "to_json", "write_json",
           "write_junit", "write_mutants_junit"]

#: show a progress bar when at least this many claims run (and stderr is a terminal)
PROGRESS_MIN_CLAIMS: Final[int] = 4


def run_all(claims: Sequence[Claim], profile: Profile | str, *, progress: bool | None = None) -> list[ClaimResult]:
    """Run every claim in order; a tqdm bar on stderr when ``progress`` (default: a terminal and many claims)."""
    prof = get_profile(profile)
    show = progress if progress is not None else (sys.stderr.isatty() and len(claims) >= PROGRESS_MIN_CLAIMS)
    results: list[ClaimResult] = []
    if show:
        from tqdm import tqdm

        bar = tqdm(total=len(claims), desc=f"gradgap check ({prof.name})", unit="claim", file=sys.stderr,
                   leave=False)
        for claim in claims:
            bar.set_postfix_str(claim.id, refresh=False)
            results.append(run_claim(claim, prof))
            bar.update(1)
        bar.close()
    else:
        results = [run_claim(c, prof) for c in claims]
    return results


def status_label(result: ClaimResult) -> str:
    """``REFUTED`` for an expected failure that fails, else the status name."""
    status = result.evidence.status
    if status is Status.FAILS and result.claim.expect == "fails":
        return "REFUTED"
    return status.value


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def claim_record(result: ClaimResult) -> dict[str, Any]:
    """One entry of ``claims`` in the JSON report."""
    ev = result.evidence
    return {
        "id": result.claim.id,
        "status": ev.status.value,
        "expected": result.claim.expected_status.value,
        "strength": ev.strength.name,
        "required": result.claim.requires.name,
        "scope": ev.figures.get("scope") if ev.strength is Strength.PROVED else None,
        "checked_on": ev.figures.get("checked_on") if ev.strength is Strength.CHECKED else None,
        "regression": result.regression,
        "evidence": _jsonable({
            "figures": ev.figures,
            "detail": ev.detail,
            "checks": [{"name": n, "status": e.status.value, "strength": e.strength.name,
                        "seconds": e.seconds, "detail": e.detail} for n, e in result.checks],
            "family": result.claim.family,
            "title": result.claim.title,
            "source": result.claim.source,
        }),
        "counterexample": _jsonable(ev.counterexample),
        "seconds": round(sum(e.seconds for _, e in result.checks), 3),
    }


def to_json(results: Sequence[ClaimResult], profile: Profile | str, seconds: float | None = None) -> dict[str, Any]:
    """The JSON report (see the module docstring)."""
    records = [claim_record(r) for r in results]
    matched = sum(r.ok for r in results)
    total_seconds = seconds if seconds is not None else sum(rec["seconds"] for rec in records)
    summary = {
        "profile": get_profile(profile).name,
        "total": len(results),
        "matched": matched,
        "mismatched": len(results) - matched,
        "status": dict(sorted(Counter(r.evidence.status.value for r in results).items())),
        "strength": dict(sorted(Counter(r.evidence.strength.name for r in results).items())),
        "seconds": round(total_seconds, 3),
        "ok": matched == len(results),
    }
    return {"claims": records, "summary": summary}


def json_text(report: dict[str, Any]) -> str:
    """The report as strict JSON text (a non-finite float becomes its string, never ``NaN``/``Infinity``)."""
    return json.dumps(_jsonable(report), indent=2, sort_keys=False, allow_nan=False) + "\n"


def write_json(path: str, report: dict[str, Any]) -> None:
    """Write the JSON report atomically (a kill mid-way leaves the previous report intact)."""
    atomic_write_text(path, json_text(report))


def _figures_text(figures: dict[str, Any], limit: int = 60) -> str:
    keys = ("examples", "identities", "G", "K", "largest_violation", "min_rel_margin", "points", "trajectories",
            "max_error", "ratio")  # G, K: the sizes a PROVED-for-sizes claim was proved for
    parts = [f"{k}={figures[k]}" for k in keys if k in figures and figures[k] is not None]
    if not parts:
        parts = [f"{k}={v}" for k, v in figures.items()
                 if k not in ("checks", "scope", "cross_check_points") and isinstance(v, int | float | str)][:3]
    text = " ".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cx_text(cx: dict[str, Any] | None, limit: int = 100) -> str:
    if not cx:
        return ""
    parts = []
    inst = cx.get("instance")
    if inst is not None:
        parts.append(json.dumps(inst, separators=(",", ":")))
    for key in ("eta", "margin"):
        if key in cx:
            parts.append(f"{key}={cx[key]}")
    if not parts:
        parts = [json.dumps(_jsonable(cx), separators=(",", ":"))]
    text = " ".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def evidence_text(ev: Evidence) -> str:
    """The strength in words: ``PROVED for <scope>``, ``CHECKED on <what>`` (never plain for these two when the
    figures say more), else the strength's name."""
    if ev.strength is Strength.PROVED and ev.figures.get("scope"):
        return f"PROVED for {ev.figures['scope']}"
    if ev.strength is Strength.CHECKED and ev.figures.get("checked_on"):
        return f"CHECKED on {ev.figures['checked_on']}"
    return ev.strength.name


def evidence_label(result: ClaimResult, limit: int = 48) -> str:
    """The evidence column: :func:`evidence_text` cut to ``limit`` (``PROVED for K = 2..6``,
    ``CHECKED on 3 instances``)."""
    text = evidence_text(result.evidence)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_table(results: Sequence[ClaimResult]) -> str:
    """A plain-text table: id, status, evidence level, figures, seconds, and the counterexample of a FAILS."""
    rows = [("id", "status", "evidence", "figures", "s", "counterexample")]
    for r in results:
        label = status_label(r) + ("" if r.ok else " (!)")
        rows.append((r.claim.id, label, evidence_label(r), _figures_text(r.evidence.figures),
                     f"{sum(e.seconds for _, e in r.checks):.1f}", _cx_text(r.evidence.counterexample)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5] for row in rows]
    lines.insert(1, "-" * min(160, sum(widths) + 12))
    bad = [r for r in results if not r.ok]
    lines.append("")
    for r in bad:
        want = r.claim.expected_status.value
        if r.regression:
            lines.append(f"(!) {r.claim.id}: {r.regression} ({r.evidence.detail})")
        else:
            lines.append(f"(!) {r.claim.id}: expected {want}, got {r.evidence.status.value}: {r.evidence.detail}")
    count = Counter(r.evidence.strength.name for r in results if r.evidence.status is Status.HOLDS)
    levels = ", ".join(f"{count[s.name]} {s.name}" for s in reversed(Strength) if count[s.name])
    lines.append(f"{len(results) - len(bad)}/{len(results)} claims as expected" + (f" (holding: {levels})"
                                                                                   if levels else ""))
    return "\n".join(lines)


def junit_xml(results: Iterable[ClaimResult], *, suite: str = "gradgap", profile: str = "ci") -> str:
    """JUnit XML: one ``testcase`` per claim; a status that differs from its expectation is a ``failure``
    (``error`` for ERROR); figures and counterexamples go to ``system-out``."""
    results = list(results)
    failures = sum(1 for r in results if not r.ok and r.evidence.status is not Status.ERROR)
    errors = sum(1 for r in results if not r.ok and r.evidence.status is Status.ERROR)
    total = sum(sum(e.seconds for _, e in r.checks) for r in results)
    root = ET.Element("testsuites", name=suite, tests=str(len(results)), failures=str(failures),
                      errors=str(errors), time=f"{total:.3f}")
    ts = ET.SubElement(root, "testsuite", name=f"{suite}.{profile}", tests=str(len(results)),
                       failures=str(failures), errors=str(errors), skipped="0", time=f"{total:.3f}")
    for r in results:
        rec = claim_record(r)
        case = ET.SubElement(ts, "testcase", classname=f"{suite}.{r.claim.family}", name=r.claim.id,
                             time=f"{rec['seconds']:.3f}")
        if not r.ok:
            tag = "error" if r.evidence.status is Status.ERROR else "failure"
            msg = rec["regression"] or f"expected {rec['expected']}, got {rec['status']} ({rec['strength']})"
            el = ET.SubElement(case, tag, message=msg, type=rec["status"])
            el.text = r.evidence.detail + ("\ncounterexample: " + json.dumps(rec["counterexample"])
                                           if rec["counterexample"] else "")
        out = ET.SubElement(case, "system-out")
        out.text = json.dumps({"status": status_label(r), "strength": rec["strength"], "scope": rec["scope"],
                               "checked_on": rec["checked_on"], "required": rec["required"],
                               "figures": rec["evidence"]["figures"], "counterexample": rec["counterexample"]},
                              sort_keys=True)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: str, results: Sequence[ClaimResult], profile: str) -> None:
    """Write :func:`junit_xml` atomically."""
    atomic_write_text(path, junit_xml(results, profile=profile))


def mutants_junit_xml(outcome: Any, *, suite: str = "gradgap-mutants", profile: str = "ci") -> str:
    """JUnit XML of a mutation run: one ``testcase`` per mutant, a ``failure`` when the mutant survived (its
    status was not FAILS, so the checks did not reject the wrong statement)."""
    rows = list(outcome.rows)
    survived = sum(1 for row in rows if not row[3])
    root = ET.Element("testsuites", name=suite, tests=str(len(rows)), failures=str(survived), errors="0")
    ts = ET.SubElement(root, "testsuite", name=f"{suite}.{profile}", tests=str(len(rows)),
                       failures=str(survived), errors="0", skipped="0")
    for cid, mid, status, killed in rows:
        case = ET.SubElement(ts, "testcase", classname=f"{suite}.{cid}", name=mid)
        if not killed:
            el = ET.SubElement(case, "failure", message=f"mutant survived (status {status})", type=status)
            el.text = f"the wrong variant {mid} of {cid} was not rejected"
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_mutants_junit(path: str, outcome: Any, profile: str) -> None:
    """Write :func:`mutants_junit_xml` atomically."""
    atomic_write_text(path, mutants_junit_xml(outcome, profile=profile))


def timed_run(claims: Sequence[Claim], profile: Profile | str, *, progress: bool | None = None
              ) -> tuple[list[ClaimResult], float]:
    """:func:`run_all` with its wall-clock time."""
    start = time.perf_counter()
    results = run_all(claims, profile, progress=progress)
    return results, time.perf_counter() - start


def first_cross_check_failure(claims: Sequence[Claim], profile: Profile | str) -> ClaimResult | None:
    """The first claim whose theory-vs-numerics cross-check does not hold, as an ``ERROR`` result (``None`` when
    every cross-check holds or does not apply). Cheap: a few random points per claim."""
    from gradgap.proofs_check.claims import Evidence, run_check
    from gradgap.proofs_check.consistency import cross_check_claim

    prof = get_profile(profile)
    for claim in claims:
        if not claim.cross_check:
            continue
        cross = run_check(lambda p, c=claim: cross_check_claim(c, p), prof)
        if cross.status in (Status.HOLDS, Status.UNDECIDED):
            continue
        ev = Evidence.error(f"theory-vs-numerics: {cross.detail}", dict(cross.figures))
        return ClaimResult(claim, ev, (("theory-vs-numerics", cross),))
    return None


def fail_fast_rank(claim: Claim) -> int:
    """The order of :func:`run_fail_fast` (stable within a rank): claims without a relation search first (proofs,
    pinned checks, certified enclosures), then simulations, then the Hypothesis searches over instances,
    directions and steps (the expensive ones)."""
    if claim.relation is not None:
        return 2
    return 1 if claim.requires is Strength.SIMULATED else 0


def run_fail_fast(claims: Sequence[Claim], profile: Profile | str, *, progress: bool | None = None
                  ) -> tuple[list[ClaimResult], float]:
    """Stop at the first claim that is not as expected: first every claim's theory-vs-numerics cross-check
    (cheap), then the claims cheapest first (:func:`fail_fast_rank`), each without its (already passed)
    cross-check. Returns the results run
    (the last one is the failure, if any) and the wall-clock time. A green run reaches the same verdict as
    :func:`run_all`; only the figures of the cross-checks are left out of the results."""
    start = time.perf_counter()
    bad = first_cross_check_failure(claims, profile)
    if bad is not None:
        return [bad], time.perf_counter() - start
    prof = get_profile(profile)
    show = progress if progress is not None else (sys.stderr.isatty() and len(claims) >= PROGRESS_MIN_CLAIMS)
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=len(claims), desc=f"gradgap check ({prof.name}, fail-fast)", unit="claim", file=sys.stderr,
                   leave=False)
    results: list[ClaimResult] = []
    for claim in sorted(claims, key=fail_fast_rank):
        if bar is not None:
            bar.set_postfix_str(claim.id, refresh=False)
        result = run_claim(claim.with_changes(cross_check=False), prof)
        results.append(ClaimResult(claim, result.evidence, result.checks))
        if bar is not None:
            bar.update(1)
        if not result.ok:
            break
    if bar is not None:
        bar.close()
    return results, time.perf_counter() - start
