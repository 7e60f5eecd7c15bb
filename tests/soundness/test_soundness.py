"""Soundness of the TESTED search: false claims are refuted with the expected counterexample, which survives
50-digit re-evaluation; true claims that are tight, tight up to 1e-12, or only true in exact arithmetic are never
flagged because of rounding."""

from __future__ import annotations

import mpmath
import pytest
from gradgap.proofs_check import expressions as ex
from gradgap.proofs_check.claims import Profile, Relation, Status, Strength
from gradgap.proofs_check.search import Case, evaluate_case, search_relation
from gradgap.theory.instances import SharedTokens, SoftmaxBandit, TokenSequence

SEARCH = Profile("soundness", examples=80, size_cap=3, seeds=(0,), trajectories=1, steps=1, grid=3)
THEOREM1 = ("Delta_mu > 0", "eta <= Delta_mu / (2*(L_o + 8*G_o**2))")


def _reverify(relation: Relation, cx: dict) -> dict:
    """Rebuild the counterexample's case and evaluate it again at 50 digits."""
    inst_d = cx["instance"]
    fam = relation.family
    if fam == "softmax":
        inst = SoftmaxBandit(tuple(inst_d["logits"]), frozenset(inst_d["correct"]))
    elif fam == "tokens":
        inst = TokenSequence(tuple(map(tuple, inst_d["logits"])), tuple(inst_d["target"]), inst_d["min_correct"])
    else:
        inst = SharedTokens(tuple(inst_d["theta"]), tuple(map(tuple, inst_d["features"])),
                            frozenset(inst_d["correct"]), inst_d["T"],
                            None if inst_d["bias"] is None else tuple(inst_d["bias"]))
    # the eta of the counterexample is lo + u (hi - lo); recover u from the reported eta for the default range
    lo, hi = relation.ranges["eta"]
    u = (float(cx["eta"]) - lo) / (hi - lo) if not relation.given else None
    raw = tuple(float(x) for x in cx["w"]) if relation.direction == "random" else ()
    assert u is not None
    return evaluate_case(relation, Case(inst, raw, u))


# ---------------------------------------------------------------- false claims: refuted, survives 50 digits


def test_variance_bound_off_by_1e12_is_refuted_at_one_half():
    """J(1-J) <= 1/4 - 1e-12 fails only within ~1e-6 of J = 1/2; the shrunk counterexample is the 2-arm
    bandit with equal logits, J = 1/2 exactly, margin -1e-12 at 50 digits."""
    rel = Relation("J*(1 - J) <= 0.25 - 1e-12", "softmax", sizes={"K": (2, 4)})
    ev = search_relation(rel, SEARCH)
    assert ev.status is Status.FAILS and ev.strength is Strength.TESTED
    cx = ev.counterexample
    logits = cx["instance"]["logits"]
    assert len(logits) == 2 and logits[0] == logits[1]
    assert mpmath.mpf(cx["values"]["J"]) == mpmath.mpf("0.5")
    assert abs(mpmath.mpf(cx["margin"]) + mpmath.mpf("1e-12")) < mpmath.mpf("1e-20")
    again = _reverify(rel, cx)
    assert again["violated"] is True


def test_one_step_without_curvature_term_is_refuted_and_survives_reevaluation():
    rel = Relation("ell_next - ell >= eta*Delta_mu", "tokens", sizes={"T": (1, 2), "V": (2, 3)})
    ev = search_relation(rel, SEARCH)
    assert ev.status is Status.FAILS
    assert float(ev.counterexample["margin"]) < -1e-3
    assert _reverify(rel, ev.counterexample)["violated"] is True


def test_aligned_large_step_on_shared_tokens_is_refuted():
    """Perfect alignment does not prevent overshoot: J(theta + eta g/|g|) < J(theta) for a large eta."""
    rel = Relation("J_next >= J", "shared_tokens", sizes={"d": (1, 2), "T": (1, 2), "V": (2, 3)},
                   given=("Delta_mu > 0",))
    ev = search_relation(rel, SEARCH)
    assert ev.status is Status.FAILS
    cx = ev.counterexample
    assert mpmath.mpf(cx["values"]["J_next"]) < mpmath.mpf(cx["values"]["J"])
    assert mpmath.mpf(cx["values"]["Delta_mu"]) > 0


def test_strict_relation_fails_on_an_exact_tie():
    """J_next > J is false at eta = 0 (a tie), which the 50-digit check sees exactly."""
    rel = Relation("J_next > J", "softmax", ranges={"eta": (0, 1)})
    ev = search_relation(rel, SEARCH)
    assert ev.status is Status.FAILS
    assert mpmath.mpf(ev.counterexample["eta"]) == 0


# ---------------------------------------------------------------- true claims: never flagged by rounding


@pytest.mark.parametrize("family", ["softmax", "tokens", "shared_tokens"])
def test_theorem1_step_rule_keeps_J_monotone(family):
    """The near-tight true statement J_next >= J under Theorem 1's hypothesis (tight as eta -> 0)."""
    rel = Relation("J_next >= J", family, direction="random", given=THEOREM1)
    ev = search_relation(rel, SEARCH)
    assert ev.status is Status.HOLDS, ev.counterexample


def test_tight_bound_attained_exactly_is_not_flagged():
    rel = Relation("J*(1 - J) <= 1/4", "softmax", sizes={"K": (2, 3)})
    ev = search_relation(rel, SEARCH)
    assert ev.status is Status.HOLDS
    assert ev.figures["min_rel_margin"] == 0.0  # the equal-logit bandit attains it


def test_bound_tight_up_to_1e12_is_not_flagged():
    rel = Relation("J*(1 - J) <= 0.25 + 1e-12", "softmax", sizes={"K": (2, 3)})
    ev = search_relation(rel, SEARCH)
    assert ev.status is Status.HOLDS
    assert 0 < ev.figures["min_rel_margin"] < 1e-11


def test_identity_true_only_in_exact_arithmetic_is_cleared_at_50_digits():
    """exp(ell)(1-J) = J is exact, but float64 sees both signs (1-J cancels near J = 1): every float
    'violation' is cleared by the 50-digit re-evaluation."""
    rel = Relation("exp(ell) * (1 - J) <= J", "softmax", sizes={"K": (2, 4)})
    ev = search_relation(rel, SEARCH)
    assert ev.status is Status.HOLDS
    assert ev.figures["hp_reevaluations"] > 0
    assert ev.figures["cleared_by_hp"] == ev.figures["hp_reevaluations"]
    assert ev.figures["largest_float_violation"] > 0


def test_float_margin_negative_but_exact_margin_zero_on_a_single_case():
    inst = SoftmaxBandit((3.0, -1.0, 0.5), frozenset({0}))
    rel = Relation("exp(ell) * (1 - J) <= J", "softmax")
    out = evaluate_case(rel, Case(inst, (), 0.0))
    assert out["violated"] is False
    with mpmath.workdps(ex.HP_DIGITS):
        assert abs(out["mp_margin"]) < mpmath.mpf("1e-40")


def test_one_step_with_the_derived_constant_holds():
    """The one-step bound with L_o + G_o^2/2 (reconstruction §4.1, DERIVED) holds for random unit w."""
    rel = Relation("ell_next - ell >= eta*Delta_mu - eta**2*(L_o + G_o**2/2)", "tokens", direction="random",
                   sizes={"T": (1, 2), "V": (2, 3)})
    assert search_relation(rel, SEARCH).status is Status.HOLDS
