r"""Evidence that cannot silently drop: required strengths, the scope of a proof, and expected proofs.

Three rules applied by :func:`gradgap.proofs_check.claims.run_claim` after the checks of a claim are combined:

1. **Required strength.** A claim may declare the strength it must reach (``Claim.requires``; the built-ins
   declare it in :mod:`gradgap.proofs_check.builtin.expectations`). A result at the expected status but at a
   lower strength is not as expected: the gate turns red with ``evidence regressed: PROVED → TESTED``
   (:func:`regression`).
2. **An expected proof that is not obtained fails.** When ``requires`` is ``PROVED`` and a check returned
   ``UNDECIDED`` (a difference that did not simplify to 0, a form that is not sign-definite) the claim is
   ``FAILS``, not a quiet fall-back to its ``TESTED`` route (:func:`missing_proof`).
3. **PROVED carries its scope.** A proof is for stated sizes; :func:`proof_scope` turns the figures of the
   decisive proof (``structures``, ``K``, ``G``, ``lengths``) into a short text ("softmax K = 2..3; tokens
   (T,V) in {(1,2),(2,2)}"), stored as ``figures["scope"]`` and shown in the table, the JSON, JUnit and LaTeX.
   A check may set ``figures["scope"]`` itself, which wins.

>>> proof_scope({"structures": ["softmax K=2 C=[0]", "softmax K=3 C=[0]", "tokens T=1 V=2 m=1"]})
'softmax K = 2..3; tokens (T,V) in {(1,2)}'
>>> proof_scope({"K": [1, 2, 3]})
'K = 1..3'
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from gradgap.proofs_check.claims import Evidence, Status, Strength

__all__ = ["apply_cross_check", "missing_proof", "proof_scope", "regression", "with_scope"]

_SOFTMAX = re.compile(r"softmax K=(\d+)")
_TOKENS = re.compile(r"tokens T=(\d+) V=(\d+)")
_SHARED = re.compile(r"shared d=(\d+) V=(\d+) T=(\d+)")


def _span(values: Sequence[int]) -> str:
    vals = sorted(set(values))
    if len(vals) > 1 and vals == list(range(vals[0], vals[-1] + 1)):
        return f"{vals[0]}..{vals[-1]}"
    return ", ".join(map(str, vals))


def _structures_scope(structures: Sequence[str]) -> str:
    soft = [int(m.group(1)) for s in structures if (m := _SOFTMAX.search(s))]
    toks = sorted({(int(m.group(1)), int(m.group(2))) for s in structures if (m := _TOKENS.search(s))})
    shared = sorted({(int(m.group(2)), int(m.group(3))) for s in structures if (m := _SHARED.search(s))})
    parts = []
    if soft:
        parts.append(f"softmax K = {_span(soft)}")
    if toks:
        parts.append("tokens (T,V) in {" + ",".join(f"({t},{v})" for t, v in toks) + "}")
    if shared:
        parts.append("shared_tokens (V,T) in {" + ",".join(f"({v},{t})" for v, t in shared) + "}")
    return "; ".join(parts) if parts else f"{len(structures)} structures"


def proof_scope(figures: Mapping[str, Any]) -> str:
    r"""The sizes a proof covers, read off its figures; ``"as stated"`` when the proof is for symbolic sizes
    (or when the figures name none)."""
    if isinstance(figures.get("scope"), str):
        return str(figures["scope"])
    parts = []
    if isinstance(figures.get("structures"), list | tuple):
        parts.append(_structures_scope([str(s) for s in figures["structures"]]))
    for key in ("K", "G"):
        value = figures.get(key)
        if isinstance(value, list | tuple) and value and all(isinstance(v, int) for v in value):
            parts.append(f"{key} = {_span(value)}")
        elif isinstance(value, str):
            parts.append(f"{key} {value}")
    lengths = figures.get("lengths")
    if isinstance(lengths, list | tuple) and lengths:
        parts.append(f"lengths {_span([int(v) for v in lengths])}")
    return "; ".join(parts) if parts else "symbolic sizes (as stated)"


def with_scope(ev: Evidence, results: Sequence[tuple[str, Evidence]]) -> Evidence:
    """``ev`` with ``figures["scope"]`` set from the holding PROVED check(s) when ``ev`` is PROVED."""
    if ev.strength is not Strength.PROVED or ev.status is not Status.HOLDS:
        return ev
    scopes = [proof_scope(e.figures) for _, e in results if e.status is Status.HOLDS and e.strength is Strength.PROVED]
    figures = dict(ev.figures)
    figures["scope"] = " | ".join(dict.fromkeys(scopes)) or proof_scope(ev.figures)
    return Evidence(ev.status, ev.strength, figures, ev.counterexample, ev.detail, ev.seconds)


def missing_proof(ev: Evidence, results: Sequence[tuple[str, Evidence]], requires: Strength) -> Evidence:
    r"""``FAILS`` when a proof was required, the claim otherwise holds below ``PROVED``, and a check could not
    conclude (``UNDECIDED``): the undecided proof is the reason, never a fall-back to a weaker route."""
    if requires is not Strength.PROVED or ev.status is not Status.HOLDS or ev.strength is Strength.PROVED:
        return ev
    undecided = [(n, e) for n, e in results if e.status is Status.UNDECIDED]
    if not undecided:
        return ev
    name, und = undecided[0]
    return Evidence.fails(Strength.NONE, {"check": name, "undecided": und.detail}, ev.figures,
                          detail=f"expected proof not obtained ({name}: {und.detail})")


def regression(required: Strength, reached: Strength) -> str | None:
    """The regression message when ``reached`` is below ``required``, else ``None``.

    >>> regression(Strength.PROVED, Strength.TESTED)
    'evidence regressed: PROVED → TESTED'
    """
    if reached >= required:
        return None
    return f"evidence regressed: {required.name} → {reached.name}"


def apply_cross_check(ev: Evidence, cross: Evidence) -> Evidence:
    r"""The claim's evidence after the theory-vs-numerics cross-check: unchanged (plus the number of points)
    when it held or did not apply; ``ERROR`` naming the disagreement otherwise, whatever the checks found."""
    if cross.status is Status.UNDECIDED:
        return ev
    if cross.status is Status.HOLDS:
        figures = {**ev.figures, "cross_check_points": cross.figures.get("cross_check_points")}
        return Evidence(ev.status, ev.strength, figures, ev.counterexample, ev.detail, ev.seconds)
    return Evidence.error(f"theory-vs-numerics: {cross.detail}", {**ev.figures, **cross.figures})
