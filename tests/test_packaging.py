"""The installed package is one namespace: pyproject's packages match the folders, and a built wheel holds
``gradgap/...`` only (no top-level ``theory``, ``numerics`` or ``proofs_check``)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"theory", "numerics", "proofs_check", "experiments"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_packages_list_matches_the_folders() -> None:
    tool = _pyproject()["tool"]["setuptools"]
    mapping = tool["package-dir"]
    assert mapping == {f"gradgap.{name}": name for name in FOLDERS}
    expected = set()
    for name in FOLDERS:
        for init in (ROOT / name).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT).parts
            expected.add(".".join(("gradgap", *parts)))
    assert set(tool["packages"]) == expected


@pytest.mark.slow
def test_wheel_installs_no_generic_top_level_package(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("gradgap-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"gradgap"}, tops
    assert "gradgap/theory/instances.py" in names and "gradgap/proofs_check/families.py" in names
