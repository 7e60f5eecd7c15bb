"""The claim engine: evidence levels, three-valued outcomes, the combinator, profiles, the built-in loader."""

from __future__ import annotations

import importlib
import types
from dataclasses import replace

import pytest

from gradgap.proofs_check.builtin import BUILTIN_MODULES, builtin_claims, core
from gradgap.proofs_check.claims import (
    PROFILES,
    Claim,
    Evidence,
    Relation,
    Status,
    Strength,
    check_name,
    combine,
    get_profile,
    named_check,
    run_check,
    run_claim,
)
from gradgap.theory.instances import GradgapError, GradgapValueError

QUICK = PROFILES["quick"]


def _claim(*checks, expect="holds"):
    return Claim(id="c", title="t", family="softmax", statement="x", source="s", checks=checks, expect=expect)


def test_strength_is_ordered_none_simulated_tested_certified_proved():
    assert Strength.NONE < Strength.SIMULATED < Strength.TESTED < Strength.CERTIFIED < Strength.PROVED


def test_error_and_undecided_carry_no_strength():
    assert Evidence(Status.ERROR, Strength.PROVED).strength is Strength.NONE
    assert Evidence(Status.UNDECIDED, Strength.TESTED).strength is Strength.NONE


def test_combine_reports_the_strongest_holding_evidence():
    ev = combine([("a", Evidence.holds(Strength.TESTED)), ("b", Evidence.holds(Strength.PROVED)),
                  ("c", Evidence.undecided("did not simplify"))])
    assert (ev.status, ev.strength) == (Status.HOLDS, Strength.PROVED)
    assert ev.figures["checks"] == {"a": "HOLDS/TESTED", "b": "HOLDS/PROVED", "c": "UNDECIDED/NONE"}


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ((Status.HOLDS, Status.ERROR), Status.ERROR),
        ((Status.HOLDS, Status.FAILS), Status.FAILS),
        ((Status.ERROR, Status.FAILS), Status.FAILS),
        ((Status.UNDECIDED,), Status.UNDECIDED),
        ((Status.UNDECIDED, Status.ERROR), Status.ERROR),
    ],
    ids=lambda v: "-".join(s.value for s in v) if isinstance(v, tuple) else v.value,
)
def test_combine_never_turns_an_error_or_undecided_into_holds(statuses, expected):
    evs = [(f"c{i}", Evidence(s, Strength.TESTED, counterexample={"x": 1} if s is Status.FAILS else None))
           for i, s in enumerate(statuses)]
    assert combine(evs).status is expected


def test_combine_caps_a_claim_with_a_simulation_at_simulated():
    proof, simulation = ("sympy", Evidence.holds(Strength.PROVED)), ("simulation", Evidence.holds(Strength.SIMULATED))
    assert combine([proof, simulation]).strength is Strength.SIMULATED
    assert combine([proof, simulation], aggregate="weakest").strength is Strength.SIMULATED
    res = run_claim(_claim(named_check("sympy", lambda p: proof[1]), named_check("sim", lambda p: simulation[1])),
                    QUICK)
    assert (res.evidence.status, res.evidence.strength) == (Status.HOLDS, Strength.SIMULATED)


def test_weakest_aggregate_reports_the_weakest_part_and_an_undecided_part_leaves_it_undecided():
    proof, search = ("proof", Evidence.holds(Strength.PROVED)), ("grid", Evidence.holds(Strength.TESTED))
    assert combine([proof, search], aggregate="weakest").strength is Strength.TESTED
    assert combine([proof, search]).strength is Strength.PROVED
    undecided = ("proof", Evidence.undecided("did not simplify"))
    assert combine([undecided, search], aggregate="weakest").status is Status.UNDECIDED
    assert combine([undecided, search]).status is Status.HOLDS
    weakest = _claim(named_check("proof", lambda p: proof[1]), named_check("grid", lambda p: search[1]))
    assert run_claim(weakest.with_changes(aggregate="weakest"), QUICK).evidence.strength is Strength.TESTED


def test_unknown_aggregate_is_rejected():
    with pytest.raises(GradgapValueError, match="aggregate"):
        Claim(id="a", title="", family="softmax", statement="", source="", checks=(), aggregate="mean")
    with pytest.raises(GradgapValueError, match="aggregate"):
        combine([], aggregate="mean")


def test_combine_of_nothing_is_undecided():
    assert combine([]).status is Status.UNDECIDED


def test_a_crashing_check_is_error_never_holds():
    def boom(profile):
        raise ZeroDivisionError("x")

    res = run_claim(_claim(named_check("ok", lambda p: Evidence.holds(Strength.PROVED)), boom), QUICK)
    assert res.evidence.status is Status.ERROR
    assert "ZeroDivisionError" in res.evidence.detail
    assert not res.ok


def test_a_check_returning_something_else_is_error():
    res = run_claim(_claim(lambda p: True), QUICK)
    assert res.evidence.status is Status.ERROR


def test_expected_failure_matches_when_it_fails_and_not_when_it_holds():
    fails = run_claim(_claim(lambda p: Evidence.fails(Strength.TESTED, {"J": 0.5}), expect="fails"), QUICK)
    holds = run_claim(_claim(lambda p: Evidence.holds(Strength.TESTED), expect="fails"), QUICK)
    assert fails.ok and fails.evidence.counterexample == {"J": 0.5}
    assert not holds.ok


def test_run_claim_times_each_check():
    res = run_claim(_claim(named_check("n", lambda p: Evidence.holds(Strength.TESTED))), "quick")
    assert res.checks[0][0] == "n"
    assert res.checks[0][1].seconds >= 0


def test_check_name_prefers_name_then_dunder_name():
    def my_check(profile):
        return Evidence.holds(Strength.TESTED)

    assert check_name(named_check("x", my_check)) == "x"
    assert check_name(my_check) == "my_check"


def test_profiles_grow_from_quick_to_thorough():
    q, c, t = (get_profile(n) for n in ("quick", "ci", "thorough"))
    assert q.examples < c.examples < t.examples
    assert c.derandomize


def test_unknown_profile_says_did_you_mean():
    with pytest.raises(GradgapValueError, match="did you mean 'quick'"):
        get_profile("quik")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"family": "softmaxx"},
        {"sizes": {"T": [1, 2]}},
        {"sizes": {"K": [3, 2]}},
        {"sizes": {"K": [1, 2]}},
        {"sizes": {"K": [2.5, 3]}},
        {"ranges": {"eta": [-1, 2]}},
        {"ranges": {"mu": [0, 1]}},
        {"direction": "sideways"},
    ],
    ids=lambda kw: repr(kw),
)
def test_relation_rejects_bad_input(kwargs):
    base = {"claim": "J >= 0", "family": "softmax"}
    with pytest.raises(GradgapError):
        Relation(**{**base, **kwargs})


def test_relation_fills_default_sizes_and_eta():
    rel = Relation("J >= 0", "tokens")
    assert rel.sizes == {"T": (1, 3), "V": (2, 3)}
    assert rel.ranges == {"eta": (0.0, 10.0)}


def test_claim_rejects_bad_expect_and_id():
    with pytest.raises(GradgapValueError):
        Claim(id="a b", title="", family="softmax", statement="", source="", checks=())
    with pytest.raises(GradgapValueError):
        Claim(id="a", title="", family="softmax", statement="", source="", checks=(), expect="maybe")


def test_builtin_claims_have_unique_ids_and_at_least_three_proved_capable(tmp_path):
    claims = builtin_claims()
    ids = [c.id for c in claims]
    assert len(ids) == len(set(ids))
    assert {"score-mean-zero", "grad-J-variance-gap", "gap-grad-log-odds"} <= set(ids)
    assert core in BUILTIN_MODULES


def test_builtin_claims_rejects_duplicate_ids():
    module = types.SimpleNamespace(claims=lambda: [
        Claim(id="same", title="", family="softmax", statement="", source="", checks=())])
    with pytest.raises(GradgapValueError, match="duplicate"):
        builtin_claims((module, module))


def test_claims_and_relations_are_hashable_and_compare_by_value():
    from gradgap.proofs_check.search import relation_claim

    a = Relation("J >= 0", "softmax", sizes={"K": [2, 3]})
    b = Relation("J >= 0", "softmax", sizes={"K": (2, 3)})
    assert a == b and hash(a) == hash(b)
    claim = relation_claim("r", a)
    assert claim in {claim}


#: the simulators of the project: (module, function); a check that calls one is about trajectories
SIMULATORS = (("gradgap.numerics.dynamics", "simulate"), ("gradgap.numerics.algorithms", "theorem1_trajectory"))
#: the quick profile, lighter still (its name keeps the dynamics checks on their light settings)
TINY = replace(QUICK, examples=10, seeds=(0,), trajectories=1, steps=10, grid=3)


@pytest.mark.slow
def test_no_check_or_claim_that_simulates_reports_proved(monkeypatch):
    """Whatever a check says about itself: one that ran a simulator (a spy on each) reports at most SIMULATED,
    and so does its claim, for every built-in claim."""
    calls: list[str] = []

    def spy(name, real):
        def run(*args, **kwargs):
            calls.append(name)
            return real(*args, **kwargs)

        return run

    for module, name in SIMULATORS:
        mod = importlib.import_module(module)
        monkeypatch.setattr(mod, name, spy(name, getattr(mod, name)))
    simulating: set[str] = set()
    for claim in builtin_claims():
        results = []
        for check in claim.checks:
            calls.clear()
            ev = run_check(check, TINY)
            results.append((check_name(check), ev))
            if calls:
                simulating.add(claim.id)
                assert ev.strength <= Strength.SIMULATED, (claim.id, check_name(check), ev.strength.name)
        if claim.id in simulating:
            ev = combine(results, aggregate=claim.aggregate)
            assert ev.strength <= Strength.SIMULATED, (claim.id, ev.strength.name)
    assert {"collapse-threshold-worked-example", "success-rate-law", "tabular-no-stagnation",
            "theorem1-trajectories-softmax", "stochastic-threshold-single-success"} <= simulating
    assert not [cid for cid in simulating if cid.endswith("-closed-form")]
