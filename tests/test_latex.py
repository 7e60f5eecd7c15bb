"""``gradgap latex``: a standalone document, byte-identical across runs, compiled by latexmk when present."""

from __future__ import annotations

import shutil

import pytest

from gradgap.proofs_check.builtin import builtin_claims
from gradgap.proofs_check.cli import main
from gradgap.proofs_check.latex import TEX_NAME, document, escape
from gradgap.proofs_check.report import run_all

SUBSET = ["score-mean-zero", "gap-grad-log-odds", "constant-G_o"]


def test_escape_text_specials():
    assert escape("a_b & 50% #1 {x} ~ ^") == r"a\_b \& 50\% \#1 \{x\} \textasciitilde{} \^{}"


def test_document_has_every_claim_as_a_theorem_without_a_date():
    claims = builtin_claims()
    tex = document(claims)
    assert tex.startswith(r"\documentclass")
    assert tex.rstrip().endswith(r"\end{document}")
    assert tex.count(r"\begin{claim}") == len(claims)
    for claim in claims:
        assert r"\label{claim:" + claim.id + "}" in tex
    assert r"\date{}" in tex and r"\today" not in tex


def test_document_shows_closed_forms_and_evidence():
    claims = [c for c in builtin_claims() if c.id in SUBSET]
    tex = document(claims, run_all(claims, "quick", progress=False))
    assert r"\frac{e^{\theta_{0}}}{e^{\theta_{0}} + e^{\theta_{1}} + e^{\theta_{2}}}" in tex  # sympy.latex of J
    assert r"\evidence{proved}" in tex and r"\evidence{tested}" in tex
    assert "second" not in tex  # no timings: they would break byte-identity


def test_tex_is_byte_identical_across_runs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert main(["latex", "-o", str(out), "--profile", "quick", "--only", *SUBSET]) == 0
    assert (a / TEX_NAME).read_bytes() == (b / TEX_NAME).read_bytes()


def test_user_claims_document(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[[claim]]\nid = "v"\nfamily = "softmax"\nclaim = "J*(1 - J) <= 1/4"\n')
    assert main(["latex", str(path), "-o", str(tmp_path / "out"), "--no-evidence"]) == 0
    tex = (tmp_path / "out" / TEX_NAME).read_text()
    assert r"J \left(1 - J\right) \le \frac{1}{4}" in tex
    assert "Search domain" in tex


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk not installed (CI installs texlive)")
def test_pdf_compiles(tmp_path):
    assert main(["latex", "-o", str(tmp_path), "--pdf", "--profile", "quick", "--only", *SUBSET]) == 0
    assert (tmp_path / "gradgap-claims.pdf").stat().st_size > 1000


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk not installed (CI installs texlive)")
def test_full_document_compiles_without_evidence(tmp_path):
    assert main(["latex", "-o", str(tmp_path), "--pdf", "--no-evidence"]) == 0
