"""``gradgap simulate``: JSON keys, agreement closed form vs simulation, files written, bad input -> exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gradgap.proofs_check import cli

KEYS = ("lengths", "eta_crit_unnormalized", "eta_crit_normalized", "eta_crit_closed_unnormalized",
        "eta_crit_closed_normalized", "slope_unnormalized", "slope_normalized")


def test_length_scaling_json_agrees_within_5_percent(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["simulate", "length-scaling", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert all(k in data for k in KEYS)
    assert data["lengths"] == [1, 2, 4, 8, 16, 32, 64]
    for a, b in ((data["eta_crit_unnormalized"], data["eta_crit_closed_unnormalized"]),
                 (data["eta_crit_normalized"], data["eta_crit_closed_normalized"])):
        assert all(abs(x / y - 1) <= 0.05 for x, y in zip(a, b, strict=True))
    # Gradient-Gap steps, J* = 3^-T: eta_c ~ 3/T (slope -1); with 1/T normalisation flat (slope 0)
    assert abs(data["slope_unnormalized"] + 1) <= 3 * data["slope_unnormalized_stderr"] + 0.02
    assert abs(data["slope_normalized"]) <= 3 * data["slope_normalized_stderr"] + 0.02


def test_threshold_sweep_writes_json_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["simulate", "threshold-sweep", "--out", str(tmp_path), "--seed", "1"]) == 0
    assert (tmp_path / "threshold-sweep.png").stat().st_size > 1000
    data = json.loads((tmp_path / "threshold-sweep.json").read_text())
    assert data["classes"][0] == "converged" and data["classes"][-2] != "converged"
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("argv, field", [
    (["simulate", "lenght-scaling"], "did you mean"),
    (["simulate", "length-scaling", "--fixed-success", "1.5"], "fixed_success"),
    (["simulate", "stagnation", "--fixed-success", "0.5"], "fixed_success"),
])
def test_bad_input_exits_2(argv: list[str], field: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    assert field in capsys.readouterr().err
