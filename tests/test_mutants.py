"""Mutation testing: every built-in claim has wrong variants, and every one of them is rejected (100%)."""

from __future__ import annotations

import pytest

from gradgap.proofs_check.builtin import builtin_claims
from gradgap.proofs_check.claims import Relation, Status
from gradgap.proofs_check.mutants import generate, mutants_of, run_mutation
from gradgap.proofs_check.search import relation_claim


def test_generated_kinds_cover_flip_constant_drop_and_exponent():
    kinds = {k.split()[0] for k, _ in generate("ell_next - ell >= eta*Delta_mu - eta**2*(L_o + 8*G_o**2)")}
    assert kinds == {"flip", "const", "drop", "exp"}


def test_only_unsafe_variants_are_kept():
    claim = relation_claim("var", Relation("J*(1 - J) <= 1/4", "softmax", sizes={"K": (2, 3)}))
    texts = {m.relation.claim for m in mutants_of(claim)}
    assert "J * (1 - J) <= 1 / 8" in texts  # the constant halved: stronger, must be rejected
    assert "J * (1 - J) <= 1 / 2" not in texts  # the constant doubled is weaker: not a wrong variant
    assert "J * (1 - J) >= 1 / 4" in texts


@pytest.mark.parametrize("family, sizes", [("contextual", {"P": (1, 2), "A": (2, 3), "d": (1, 2)}),
                                           ("autoregressive", {"T": (1, 2), "V": (2, 2)}),
                                           ("tokens", {"T": (1, 2), "V": (2, 3)}),
                                           ("shared_tokens", {"d": (1, 2), "T": (1, 2), "V": (2, 3)})])
def test_generated_mutants_are_screened_on_instances_of_every_family(family, sizes):
    """The screen draws its instances through the registry (it once re-described three families and raised
    KeyError on a contextual claim file with --mutants)."""
    claim = relation_claim("var", Relation("J*(1 - J) <= 1/4", family, sizes=sizes))
    texts = {m.relation.claim for m in mutants_of(claim)}
    assert "J * (1 - J) <= 1 / 8" in texts and "J * (1 - J) <= 1 / 2" not in texts


def test_expected_failures_get_no_generated_mutants():
    claim = relation_claim("f", Relation("J >= 2", "softmax"), expect="fails")
    assert mutants_of(claim) == []


def test_mutation_score_of_a_relation_claim_is_100_percent():
    claim = relation_claim("var", Relation("J*(1 - J) <= 1/4", "softmax", sizes={"K": (2, 3)}))
    outcome = run_mutation([claim], "quick", progress=False)
    assert outcome.total >= 4
    assert outcome.score == 1.0, [row for row in outcome.rows if not row[3]]


def test_every_builtin_claim_has_mutants_or_is_an_expected_failure():
    for claim in builtin_claims():
        assert claim.expect == "fails" or mutants_of(claim), claim.id


def test_mutation_score_on_the_builtins_is_100_percent():
    outcome = run_mutation(builtin_claims(), "quick", progress=False)
    survivors = [(cid, mid, status) for cid, mid, status, killed in outcome.rows if not killed]
    assert not survivors, survivors
    assert outcome.score == 1.0
    assert all(status == Status.FAILS.value for _, _, status, _ in outcome.rows)
