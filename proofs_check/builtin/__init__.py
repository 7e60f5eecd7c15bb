r"""The built-in claims: the theory as reconstructed in ``shared/paper/reconstruction.md`` §2-4.

Each module in :data:`BUILTIN_MODULES` (imported statically: a renamed or broken module fails the import, it is
never skipped) exposes ``claims() -> list[Claim]``; :func:`builtin_claims` collects them in this order and
checks that the ids are unique. ``tests/test_builtin_ids.py`` pins the set of ids.
"""

from __future__ import annotations

from types import ModuleType
from typing import Final

from gradgap.proofs_check.builtin import (
    algorithms,
    autoregressive,
    certified,
    contextual,
    core,
    dynamics,
    no_collapse,
    one_step,
    sampling,
    theorem1,
)
from gradgap.proofs_check.builtin.expectations import REQUIRED
from gradgap.proofs_check.claims import Claim
from gradgap.theory.instances import GradgapValueError

__all__ = ["BUILTIN_MODULES", "builtin_claims"]

#: modules of built-in claims, in report order
BUILTIN_MODULES: Final[tuple[ModuleType, ...]] = (core, sampling, algorithms, one_step, theorem1, dynamics, certified,
                                                  autoregressive, contextual, no_collapse)


def builtin_claims(modules: tuple[ModuleType, ...] = BUILTIN_MODULES) -> list[Claim]:
    """Every built-in claim, in module order; ids are checked unique. Each gets the strength it must reach
    (:data:`~gradgap.proofs_check.builtin.expectations.REQUIRED`; none when absent) and the
    theory-vs-numerics cross-check."""
    out: list[Claim] = [claim for module in modules for claim in module.claims()]
    seen: set[str] = set()
    for claim in out:
        if claim.id in seen:
            raise GradgapValueError(f"id={claim.id!r}: duplicate built-in claim id", field="id", value=claim.id)
        seen.add(claim.id)
    return [c.with_changes(requires=REQUIRED.get(c.id, c.requires), cross_check=True) for c in out]
