"""Evidence cannot silently drop: required strengths, expected proofs, the scope of PROVED, and the
theory-vs-numerics cross-check that runs with every claim."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from gradgap.proofs_check import report
from gradgap.proofs_check.builtin import builtin_claims
from gradgap.proofs_check.builtin.expectations import REQUIRED
from gradgap.proofs_check.claims import PROFILES, Claim, Evidence, Status, Strength, named_check, run_claim
from gradgap.proofs_check.evidence import proof_scope

QUICK = PROFILES["quick"]


def _claim(*checks, requires=Strength.NONE, expect="holds", family="softmax", cross_check=False):
    return Claim(id="c", title="t", family=family, statement="x", source="s", checks=checks, expect=expect,
                 requires=requires, cross_check=cross_check)


def _proved(figures=None):
    return named_check("proof", lambda p: Evidence.holds(Strength.PROVED, figures or {"K": [2, 3, 4]}))


def _tested():
    return named_check("search", lambda p: Evidence.holds(Strength.TESTED, {"examples": 10}))


def _undecided():
    return named_check("proof", lambda p: Evidence.undecided("difference did not simplify to 0"))


def test_every_builtin_claim_declares_its_required_strength_and_no_entry_is_stale():
    ids = {c.id for c in builtin_claims()}
    assert ids == set(REQUIRED), (sorted(ids - set(REQUIRED)), sorted(set(REQUIRED) - ids))
    assert all(c.requires is REQUIRED[c.id] and c.cross_check for c in builtin_claims())


def test_a_result_below_the_required_strength_is_a_regression_and_not_ok():
    res = run_claim(_claim(_tested(), requires=Strength.PROVED), QUICK)
    assert res.evidence.status is Status.HOLDS and not res.ok
    assert res.regression == "evidence regressed: PROVED → TESTED"
    table = report.format_table([res])
    assert "evidence regressed: PROVED → TESTED" in table and "0/1 claims as expected" in table
    rec = report.claim_record(res)
    assert rec["regression"] == res.regression and rec["required"] == "PROVED"
    assert 'failure message="evidence regressed: PROVED → TESTED"' in report.junit_xml([res])


def test_a_result_at_the_required_strength_is_ok():
    assert run_claim(_claim(_proved(), _tested(), requires=Strength.PROVED), QUICK).ok
    assert run_claim(_claim(_tested(), requires=Strength.TESTED), QUICK).ok


def test_an_expected_proof_that_does_not_simplify_fails_instead_of_falling_back_to_tested():
    res = run_claim(_claim(_undecided(), _tested(), requires=Strength.PROVED), QUICK)
    assert res.evidence.status is Status.FAILS and not res.ok
    assert "expected proof not obtained" in res.evidence.detail
    # without a required proof the old combination stands: HOLDS at TESTED
    assert run_claim(_claim(_undecided(), _tested()), QUICK).evidence.strength is Strength.TESTED


def test_proved_carries_its_scope_in_table_json_and_junit():
    res = run_claim(_claim(_proved({"K": [2, 3, 4, 5, 6]}), requires=Strength.PROVED), QUICK)
    assert res.evidence.figures["scope"] == "K = 2..6"
    assert "PROVED for K = 2..6" in report.format_table([res])
    assert report.claim_record(res)["scope"] == "K = 2..6"
    assert '"scope": "K = 2..6"' in report.junit_xml([res])


@pytest.mark.parametrize(("figures", "scope"), [
    ({"structures": ["softmax K=2 C=[0]", "softmax K=3 C=[0, 1]", "tokens T=2 V=3 m=1"]},
     "softmax K = 2..3; tokens (T,V) in {(2,3)}"),
    ({"G": [2, 3], "lengths": [1, 2, 1]}, "G = 2..3; lengths 1..2"),
    ({"G": "symbolic"}, "G symbolic"),
    ({"law": "3/T"}, "symbolic sizes (as stated)"),
    ({"scope": "given by the check", "K": [1]}, "given by the check"),
])
def test_proof_scope_is_read_off_the_figures(figures, scope):
    assert proof_scope(figures) == scope


def test_gap_conditional_scores_says_exactly_which_families_are_proved():
    claim = next(c for c in builtin_claims() if c.id == "gap-conditional-scores")
    res = run_claim(replace(claim, cross_check=False), QUICK)
    assert res.ok and res.evidence.strength is Strength.PROVED
    scope = res.evidence.figures["scope"]
    assert scope.startswith("softmax K = ") and "only (tokens, shared_tokens: TESTED)" in scope


def test_cross_check_holds_for_the_real_closed_forms():
    from gradgap.proofs_check.consistency import EXTREME

    res = run_claim(_claim(_tested(), family="all", cross_check=True), QUICK)
    # two points per family (quick) for softmax, tokens, shared_tokens, autoregressive and contextual, the point
    # of the public functions per family, plus the extreme instances
    extreme = sum(len(v) for v in EXTREME.values())
    assert res.ok and res.evidence.figures["cross_check_points"] == 10 + 5 + extreme
    assert dict(res.checks)["theory-vs-numerics"].status is Status.HOLDS


def test_every_registered_family_is_cross_checked_and_a_family_without_points_cannot_be_registered():
    """The cross-check reads its points from the registry: each family draws random instances of its own type
    and has extreme instances; an entry whose points are of another family's type is refused at construction."""
    from gradgap.proofs_check import consistency
    from gradgap.proofs_check.families import FAMILIES

    for name, entry in FAMILIES.items():
        drawn = consistency.random_instances(name, 3, 0)
        assert drawn and all(type(inst) is entry.instance_type for inst in drawn), name
        assert consistency.EXTREME[name], name
    softmax = FAMILIES["softmax"]
    with pytest.raises(TypeError, match="cross-check point"):
        replace(softmax, cross_check=FAMILIES["tokens"].cross_check)


def test_cross_check_turns_a_wrong_closed_form_red_even_without_a_float_violation(monkeypatch):
    """The softmax Gradient Gap with its sign flipped in the theory: every claim over softmax is an ERROR,
    although its own (always holding) check sees nothing."""
    import sympy as sp

    from gradgap.proofs_check import consistency, search
    from gradgap.theory import softmax

    real = softmax.closed_forms

    def flipped(inst):
        cf = real(inst)
        return replace(cf, gradient_gap=sp.ImmutableMatrix(-cf.gradient_gap))

    monkeypatch.setattr(softmax, "closed_forms", flipped)
    search._hp_functions.cache_clear()
    consistency._disagreement.cache_clear()
    try:
        res = run_claim(_claim(_tested(), cross_check=True), QUICK)
    finally:
        search._hp_functions.cache_clear()
        consistency._disagreement.cache_clear()
    assert res.evidence.status is Status.ERROR and not res.ok
    assert "gradient_gap" in res.evidence.detail
    assert json.dumps(report.claim_record(res))  # JSON-ready


@pytest.mark.parametrize(("family", "name"), [("tokens", "score"), ("contextual", "reward"),
                                             ("shared_tokens", "conditional_score"), ("autoregressive", "log_odds")])
def test_a_wrong_public_theory_function_turns_the_cross_check_red(monkeypatch, family, name):
    """The theory's per-instance functions (what ``derive`` and users call) are compared with the numerics once
    per family: one of them negated (a reward complemented) is an ERROR naming it."""
    from gradgap.proofs_check import consistency, families

    module = families.theory_module(family)
    real = getattr(module, name)
    wrong = (lambda *a: 1 - real(*a)) if name == "reward" else (lambda *a: -real(*a))
    monkeypatch.setattr(module, name, wrong)
    consistency.public_disagreement.cache_clear()
    try:
        bad = consistency.public_disagreement(family)
    finally:
        consistency.public_disagreement.cache_clear()
    assert bad is not None and bad["quantity"] == f"theory.{name}", bad


@pytest.mark.parametrize("family", ["softmax", "tokens", "shared_tokens", "contextual"])
def test_a_wrong_autograd_score_route_turns_the_cross_check_red(monkeypatch, family):
    """``score(inst, o, method="autograd")`` (the numerics' torch log-probability of one response) is set against
    the theory's score too: a doubled log-probability is an ERROR naming the autograd route."""
    import dataclasses
    import importlib

    from gradgap.proofs_check import consistency

    module = importlib.import_module(f"gradgap.numerics.{family}")
    real = module.FAMILY.torch_log_prob
    monkeypatch.setattr(module, "FAMILY", dataclasses.replace(
        module.FAMILY, torch_log_prob=lambda inst, delta, response: 2 * real(inst, delta, response)))
    consistency.public_disagreement.cache_clear()
    try:
        bad = consistency.public_disagreement(family)
    finally:
        consistency.public_disagreement.cache_clear()
    assert bad is not None and (bad["quantity"], bad["route"]) == ("theory.score", "autograd"), bad


def test_symbolic_size_proofs_widen_the_scope_and_a_failed_one_is_an_error(monkeypatch):
    """grad-J-variance-gap carries the theory's symbolic-K (softmax) and symbolic-T (tokens) proofs in its PROVED
    scope; if one of them stops simplifying to 0 the claim is an ERROR, not a silent drop to the structures."""
    from gradgap.theory import closed_forms, softmax

    claim = next(c for c in builtin_claims() if c.id == "grad-J-variance-gap")
    check = dict((c.name, c) for c in claim.checks)["symbolic-sizes"]
    ev = check(QUICK)
    assert ev.status is Status.HOLDS and ev.strength is Strength.PROVED
    assert "softmax any K" in ev.figures["scope"] and "symbolic T" in ev.figures["scope"]
    monkeypatch.setattr(softmax, "symbolic_K_proof",
                        lambda: closed_forms.IdentityResult("grad J = J(1-J) g (symbolic K)", False, "residual x"))
    bad = check(QUICK)
    assert bad.status is Status.ERROR and "symbolic_K_proof" in bad.detail
