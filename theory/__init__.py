"""gradgap theory: see docs/DESIGN.md for the names this package shares with its twin.

The family registry (name -> instance type, twin modules, strategy, size parameters) is
``gradgap.proofs_check.families``; this package keeps the package import light (``gradgap.theory.instances``
is imported by the numeric twin, which must not load sympy).
"""

from __future__ import annotations

from types import ModuleType

from gradgap.theory.instances import Instance


def family_module(instance_or_name: Instance | str) -> ModuleType:
    """The symbolic family module of a family name or an instance, for dispatch inside ``theory/`` (which may not
    read the registry in ``proofs_check/``); elsewhere use ``gradgap.proofs_check.families.theory_module``."""
    # static; deferred so the package import stays light
    from gradgap.theory import contextual, shared_tokens, softmax, tokens
    from gradgap.theory.instances import FAMILIES, GradgapValueError, family_name

    name = instance_or_name if isinstance(instance_or_name, str) else family_name(instance_or_name)
    modules = {module.__name__.rsplit(".", 1)[1]: module for module in (softmax, tokens, shared_tokens, contextual)}
    if name not in modules:
        raise GradgapValueError(f"family={name!r}: unknown; choose one of {', '.join(FAMILIES)}",
                                field="family", value=name)
    return modules[name]
