"""The import rules that make a symbolic-vs-numeric check worth anything (docs/DESIGN.md, style rule 2).

- ``numerics/`` imports nothing from ``theory/`` but ``gradgap.theory.instances``, and never sympy;
- ``theory/`` imports neither ``numerics/`` nor torch;
- ``theory/instances.py`` imports neither sympy nor torch nor numpy;
- the command modules import no sympy / torch / matplotlib at module level (the CLI stays fast).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path, *, top_level_only: bool = False) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names: list[str] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "gradgap":  # ``from gradgap import theory``
                names.extend(f"gradgap.{alias.name}" for alias in node.names)
            else:
                names.append(node.module)
    return names


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _root(name: str) -> str:
    """The package an import names: ``gradgap.theory.tokens`` -> ``theory``; ``sympy.core`` -> ``sympy``."""
    parts = name.split(".")
    return parts[1] if parts[0] == "gradgap" and len(parts) > 1 else parts[0]


PACKAGES = ("theory", "numerics", "proofs_check", "experiments")


@pytest.mark.parametrize("path", [p for pkg in (*PACKAGES, "tests", "bench") for p in _files(pkg)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_packages_are_imported_through_the_gradgap_namespace(path: Path) -> None:
    for name in _imports(path):
        assert name.split(".")[0] not in PACKAGES, f"{path.name} imports {name}: write gradgap.{name}"


@pytest.mark.parametrize("path", _files("numerics"), ids=lambda p: str(p.relative_to(ROOT)))
def test_numerics_is_independent_of_theory(path: Path) -> None:
    for name in _imports(path):
        assert _root(name) != "sympy", f"{path.name} imports sympy ({name})"
        if _root(name) == "theory":
            assert name == "gradgap.theory.instances", f"{path.name} imports {name}: only theory.instances is shared"
        assert _root(name) not in {"proofs_check", "experiments"}, f"{path.name} imports {name}"


@pytest.mark.parametrize("path", _files("theory"), ids=lambda p: str(p.relative_to(ROOT)))
def test_theory_is_independent_of_numerics(path: Path) -> None:
    for name in _imports(path):
        assert _root(name) not in {"numerics", "torch", "proofs_check", "experiments"}, f"{path.name} imports {name}"


def test_instances_import_no_math_library() -> None:
    names = {_root(n) for n in _imports(ROOT / "theory" / "instances.py")}
    assert not names & {"sympy", "torch", "numpy", "mpmath"}, names


@pytest.mark.parametrize("path", _files("proofs_check/commands"), ids=lambda p: str(p.relative_to(ROOT)))
def test_commands_do_not_import_heavy_libraries_at_module_level(path: Path) -> None:
    for name in _imports(path, top_level_only=True):
        assert _root(name) not in {"sympy", "torch", "matplotlib", "trl", "transformers"}, f"{path.name}: {name}"
