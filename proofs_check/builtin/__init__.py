r"""The built-in claims: the theory as reconstructed in ``shared/paper/reconstruction.md`` §2-4.

Each module named in :data:`BUILTIN_MODULES` exposes ``claims() -> list[Claim]``. :func:`builtin_claims`
loads them in this order. A module that does not exist yet is skipped (only an ``ImportError`` naming that very
module); any other error, including an import error *inside* an existing module, propagates.
"""

from __future__ import annotations

import importlib

from gradgap.proofs_check.claims import Claim
from gradgap.theory.instances import GradgapValueError

__all__ = ["BUILTIN_MODULES", "builtin_claims"]

#: modules of built-in claims, in report order
BUILTIN_MODULES: tuple[str, ...] = (
    "gradgap.proofs_check.builtin.core",
    "gradgap.proofs_check.builtin.algorithms",
    "gradgap.proofs_check.builtin.one_step",
    "gradgap.proofs_check.builtin.theorem1",
    "gradgap.proofs_check.builtin.dynamics",
)


def builtin_claims(modules: tuple[str, ...] = BUILTIN_MODULES) -> list[Claim]:
    """Every built-in claim, in module order; ids are checked unique. Each gets the strength it must reach
    (:data:`~gradgap.proofs_check.builtin.expectations.REQUIRED`; none when absent) and the
    theory-vs-numerics cross-check."""
    from gradgap.proofs_check.builtin.expectations import REQUIRED

    out: list[Claim] = []
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # not written yet
            raise
        out.extend(module.claims())
    seen: set[str] = set()
    for claim in out:
        if claim.id in seen:
            raise GradgapValueError(f"id={claim.id!r}: duplicate built-in claim id", field="id", value=claim.id)
        seen.add(claim.id)
    return [c.with_changes(requires=REQUIRED.get(c.id, c.requires), cross_check=True) for c in out]
