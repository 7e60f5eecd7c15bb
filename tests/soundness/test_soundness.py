"""Soundness of the TESTED search: false claims are refuted with the expected counterexample, which survives
50-digit re-evaluation; true claims that are tight, tight up to 1e-12, or only true in exact arithmetic are never
flagged because of rounding."""

from __future__ import annotations

import mpmath
import pytest

from gradgap.proofs_check import expressions as ex
from gradgap.proofs_check.claims import PROFILES, Profile, Relation, Status, Strength
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


# ---------------------------------------------------------------- near-tight false claims found at the ci profile

#: the bound's constant: below the sharp constant at T = 3 only (see the docstring of the test)
_SHARED_K = 0.226


def _shared_v2_log_odds(T: int, x: mpmath.mpf) -> mpmath.mpf:
    r""":math:`\ell(x)=T\log\sigma(x)-\log(1-\sigma(x)^T)` of a two-token shared policy, :math:`x=\theta\cdot
    (\phi_c-\phi_w)+b_c-b_w` (written here from the definition, not from the code under test)."""
    s = 1 / (1 + mpmath.exp(-x))
    return T * mpmath.log(s) - mpmath.log(1 - s**T)


def test_shared_tokens_v2_bound_false_only_at_length_3_near_J_0_05_is_refuted():
    r"""A one-step bound extrapolated from long sequences, false at one length only.

    Claim: :math:`\ell(\theta+\eta w)-\ell(\theta)\ge\eta\Delta\mu-\eta^2\,0.226\,G_o^2/8` for shared tokens with
    V = 2 and T in 3..4 (ci caps T at 4). With two tokens :math:`\ell` depends on :math:`\theta` through
    :math:`x=\theta\cdot\Delta\phi` only, :math:`\Delta\phi=\phi_c-\phi_w`, and
    :math:`\ell(x)=T\log\sigma(x)-\log(1-\sigma^T)`, :math:`\ell'=T(1-\sigma)/(1-\sigma^T)`. By Taylor the sharp
    constant is :math:`C^\star_T=\tfrac12\sup_x(-\ell'')\,|\Delta\phi|^2` (approached as :math:`\eta\to0`), and
    :math:`G_o=T|\Delta\phi|`. At T = 3, :math:`-\ell''` is largest at :math:`\sigma=1/(1+\sqrt3)`
    (:math:`x=-\tfrac12\log3`) where it equals :math:`4-2\sqrt3`: :math:`C^\star_3=(2-\sqrt3)|\Delta\phi|^2=
    0.2382\,G_o^2/8>0.226\,G_o^2/8`, violated, at :math:`J=\sigma^3=0.049`. At T = 4,
    :math:`\tfrac12\sup(-\ell'')=0.41499<0.226\cdot16/8=0.452`: the bound holds. Both are established below with
    mpmath from the definition; the search (ci profile) must find a T = 3 counterexample near J = 0.05 that
    survives 50 digits."""
    with mpmath.workdps(50):
        x3 = -mpmath.log(3) / 2
        curv3 = -mpmath.diff(lambda x: _shared_v2_log_odds(3, x), x3, 2)
        assert abs(curv3 - (4 - 2 * mpmath.sqrt(3))) < mpmath.mpf("1e-30")
        assert abs(mpmath.diff(lambda x: _shared_v2_log_odds(3, x), x3, 3)) < mpmath.mpf("1e-30")  # a maximum
        eta, k = mpmath.mpf("0.01"), mpmath.mpf(_SHARED_K)
        ell = lambda x: _shared_v2_log_odds(3, x)  # noqa: E731
        margin = ell(x3 + eta) - ell(x3) - eta * mpmath.diff(ell, x3) + eta**2 * k * 9 / 8  # phi = (0, 1), w = 1
        assert margin < -mpmath.mpf("1e-6")
        # T = 4: the largest -ell''/2 (grid, then the stationary point) stays below the claimed constant
        ell4 = lambda x: _shared_v2_log_odds(4, x)  # noqa: E731
        start = max(mpmath.linspace(-4, 4, 161), key=lambda x: -mpmath.diff(ell4, x, 2))
        x4 = mpmath.findroot(lambda x: mpmath.diff(ell4, x, 3), start)
        assert -mpmath.diff(ell4, x4, 2) / 2 < k * 16 / 8 * mpmath.mpf("0.95")

    rel = Relation(f"ell_next - ell >= eta*Delta_mu - eta**2*{_SHARED_K}*G_o**2/8", "shared_tokens",
                   sizes={"V": (2, 2), "T": (3, 4), "d": (1, 2)}, direction="random")
    ev = search_relation(rel, PROFILES["ci"])
    assert ev.status is Status.FAILS, ev.figures
    cx = ev.counterexample
    assert cx["instance"]["T"] == 3
    assert 0.01 < float(mpmath.mpf(cx["values"]["J"])) < 0.2
    assert _reverify(rel, cx)["violated"] is True


def test_descent_bound_on_J_5_percent_too_small_violated_only_near_J_0_79_is_refuted():
    r"""A second-order descent bound on J itself with its constant 5 % too small.

    For the two-armed bandit (arm 0 correct) :math:`J=\sigma(\theta_0-\theta_1)`, so
    :math:`\nabla J=J(1-J)\,g` and :math:`\nabla^2J=\sigma''(x)\,(e_0-e_1)(e_0-e_1)^\top` with
    :math:`\sigma''=\sigma(1-\sigma)(1-2\sigma)`; for a unit :math:`w`, :math:`w^\top\nabla^2Jw\ge2\min\sigma''`.
    The minimum is at :math:`\sigma=(3+\sqrt3)/6=0.7887`, where :math:`\sigma(1-\sigma)=1/6` and
    :math:`1-2\sigma=-1/\sqrt3`: :math:`\min\sigma''=-1/(6\sqrt3)`. Taylor with the Lagrange remainder gives the
    true and sharp :math:`J(\theta+\eta w)-J\ge\eta J(1-J)\Delta\mu-\eta^2/(6\sqrt3)`; with the constant times
    0.95 it fails only where :math:`\sigma''<-0.95/(6\sqrt3)` (a band around J = 0.79) and for small
    :math:`\eta`. The counterexample is computed below with mpmath from the definition of :math:`\sigma`; the
    search (ci profile) must find one near J = 0.79 that survives 50 digits."""
    with mpmath.workdps(50):
        s_star = (3 + mpmath.sqrt(3)) / 6
        x = mpmath.log(s_star / (1 - s_star))
        sig = lambda t: 1 / (1 + mpmath.exp(-t))  # noqa: E731
        eta, r = mpmath.mpf("0.01"), 1 / mpmath.sqrt(2)  # w = (1, -1)/sqrt(2): x moves by eta*sqrt(2)
        J, Jn = sig(x), sig(x + eta * 2 * r)
        first = eta * mpmath.diff(sig, x) * 2 * r  # eta <grad J, w> = eta J(1-J) Delta_mu
        assert abs(mpmath.diff(sig, x, 2) + 1 / (6 * mpmath.sqrt(3))) < mpmath.mpf("1e-40")
        assert Jn - J - first + eta**2 * mpmath.mpf("0.95") / (6 * mpmath.sqrt(3)) < -mpmath.mpf("1e-7")
        assert Jn - J - first + eta**2 / (6 * mpmath.sqrt(3)) > 0  # the sharp constant holds there

    rel = Relation("J_next - J >= eta*J*(1 - J)*Delta_mu - eta**2*0.95/(6*sqrt(3))", "softmax",
                   sizes={"K": (2, 2)}, direction="random")
    ev = search_relation(rel, PROFILES["ci"])
    assert ev.status is Status.FAILS, ev.figures
    cx = ev.counterexample
    assert 0.7 < float(mpmath.mpf(cx["values"]["J"])) < 0.87
    assert _reverify(rel, cx)["violated"] is True
