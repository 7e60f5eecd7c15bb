"""User claim files (TOML): parsing, and one-line errors naming file, claim id and problem (exit 2)."""

from __future__ import annotations

import pathlib
import textwrap

import pytest

from gradgap.proofs_check.cli import main
from gradgap.proofs_check.userclaims import load_file, load_files
from gradgap.theory.instances import GradgapValueError

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples" / "claims"


def _write(tmp_path, body: str, name: str = "c.toml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_example_files_load():
    claims = load_files(sorted(str(p) for p in EXAMPLES.glob("*.toml")))
    assert {c.expect for c in claims} == {"holds", "fails"}
    for claim in claims:
        assert claim.relation is not None
        assert claim.checks


def test_full_claim_table_is_read():
    path = EXAMPLES / "softmax.toml"
    first = load_file(str(path))[0]
    assert first.relation.sizes == {"K": (2, 5)}
    assert first.relation.direction == "random"
    assert first.relation.given[0] == "Delta_mu > 0"
    assert first.latex_statement  # generated from the relation when the file has none


def test_latex_is_built_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import sympy

    from gradgap.proofs_check import latex

    calls = []
    original = sympy.latex
    monkeypatch.setattr(sympy, "latex", lambda *a, **k: calls.append(a) or original(*a, **k))
    claims = load_file(str(EXAMPLES / "softmax.toml"))
    assert claims and not calls  # loading typesets nothing
    text = latex.document(claims)
    assert calls and claims[0].latex_statement in text


GOOD = """
[[claim]]
id = "ok"
family = "softmax"
claim = "J >= 0"
"""


@pytest.mark.parametrize(
    ("body", "claim_id", "problem"),
    [
        ("[[claim]\nid = 1", None, "TOML syntax error"),
        ("[[claim]]\nid = 'a'\nfamily = 'softmax'\nclaim = 'J >= x'\n", "a", "name 'x' is not in the vocabulary"),
        ("[[claim]]\nid = 'a'\nfamily = 'softmax'\nclaim = 'J >= T'\n", "a", "not defined for family"),
        ("[[claim]]\nid = 'a'\nfamily = 'softmax'\nclaim = 'J >= 0'\nsizes = { K = [5, 2] }\n", "a", "lo <= hi"),
        ("[[claim]]\nid = 'a'\nfamily = 'softmax'\nclaim = 'J >= 0'\nranges = { eta = [-1, 2] }\n", "a",
         "0 <= lo"),
        ("[[claim]]\nid = 'a'\nfamily = 'softmax'\nclaim = 'J >= 0'\nsizes = { V = [2, 3] }\n", "a",
         "not a size parameter"),
        ("[[claim]]\nid = 'a'\nfamily = 'sofmax'\nclaim = 'J >= 0'\n", "a", "did you mean 'softmax'"),
        ("[[claim]]\nid = 'a'\nfamily = 'softmax'\nclaim = 'J >= 0'\nexpect = 'maybe'\n", "a", "expect"),
        ("[[claim]]\nid = 'a'\nfamily = 'softmax'\nclaim = 'J >= 0'\nclam = 1\n", "a", "unknown key 'clam'"),
        ("[[claim]]\nid = 'a'\nfamily = 'softmax'\n", "a", "missing required key 'claim'"),
        ("[[claim]]\nid = 'a'\nfamily = 'softmax'\nclaim = 'J >= 0'\ngiven = 'eta > 0'\n", "a",
         "must be a list"),
        ("[[claim]]\nid = 'a'\nfamily = 'softmax'\nclaim = 'J >= 0'\ndirection = 'up'\n", "a", "direction"),
        ("[[claim]]\nid = 'a'\nfamily = 'softmax'\nclaim = 'J'\n", "a", "expected one relation"),
        (GOOD + GOOD, "ok", "duplicate id"),
        ("title = 'x'\n", None, "unknown top-level key"),
        ("", None, "no [[claim]] tables"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None,
)
def test_bad_file_is_one_line_naming_file_claim_and_problem(tmp_path, body, claim_id, problem):
    path = _write(tmp_path, body)
    with pytest.raises(GradgapValueError) as info:
        load_files([path])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(path)
    if claim_id:
        assert f"claim {claim_id!r}" in message
    assert problem in message


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(GradgapValueError, match="no such file"):
        load_file(str(tmp_path / "nope.toml"))
    with pytest.raises(GradgapValueError, match="directory"):
        load_file(str(tmp_path))


def test_duplicate_ids_across_files(tmp_path):
    a = _write(tmp_path, GOOD, "a.toml")
    b = _write(tmp_path, GOOD, "b.toml")
    with pytest.raises(GradgapValueError, match="first defined in"):
        load_files([a, b])


def test_cli_exits_2_with_one_line_on_a_bad_file(tmp_path, capsys):
    path = _write(tmp_path, "[[claim]]\nid = 'bad'\nfamily = 'softmax'\nclaim = 'J >= nope'\n")
    assert main(["check", path, "--profile", "quick", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert path in err and "'bad'" in err and "nope" in err
