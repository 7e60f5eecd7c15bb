"""gradgap theory: see docs/DESIGN.md for the names this package shares with its twin."""

from __future__ import annotations

import importlib
from types import ModuleType

from gradgap.theory.instances import FAMILIES, GradgapValueError, Instance, family_name


def family_module(instance_or_name: Instance | str) -> ModuleType:
    """The module of this package for a family name or an instance (``softmax``, ``tokens``, ``shared_tokens``)."""
    name = instance_or_name if isinstance(instance_or_name, str) else family_name(instance_or_name)
    if name not in FAMILIES:
        raise GradgapValueError(f"family={name!r}: unknown; choose one of {', '.join(FAMILIES)}",
                                field="family", value=name)
    return importlib.import_module(f"{__name__}.{name}")
