"""Every docstring example of the four packages runs as a test (``doctest`` on each module), so the examples
in the documentation cannot drift from the code. A module that cannot be imported fails, unless what is
missing is an optional dependency outside gradgap (then it is skipped, naming it)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("gradgap.theory", "gradgap.numerics", "gradgap.proofs_check", "gradgap.experiments")


def _modules() -> list[str]:
    names: list[str] = []
    for pkg in PACKAGES:
        names.append(pkg)
        path = importlib.import_module(pkg).__path__
        names.extend(info.name for info in pkgutil.walk_packages(path, pkg + ".", onerror=lambda name: None))
    return sorted(set(names))


MODULES = _modules()


def test_every_package_has_modules_with_examples():
    assert all(any(m.startswith(p + ".") for m in MODULES) for p in PACKAGES), MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:  # only an optional dependency may be missing
        if exc.name is None or exc.name.split(".")[0] == "gradgap":
            raise
        pytest.skip(f"optional dependency {exc.name!r} not installed")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name} (run python -m " \
                               f"doctest -v on it)"
