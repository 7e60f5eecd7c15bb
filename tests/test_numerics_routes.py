"""Every numeric route against every other (enumerate, structured, autograd, fd, mc), on each family.

The symbolic side is not used here (see tests/test_<family>.py for symbolic vs numeric): these tests check that
the independent numeric routes of numerics/ agree, including the hard regimes (near-deterministic logits, J
rounding to 0 or 1, sequences of up to 2000 tokens). Tolerances come from proofs_check.tolerances; the Monte-Carlo
tests are two-sided (coverage and scale) with the test's own standard error from independent estimates, at the
stated false-alarm rate MC_ALPHA, Bonferroni-corrected over the coordinates (tests/mc_checks.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gradgap.numerics import logspace, montecarlo, shared_tokens, softmax, tokens
from gradgap.proofs_check import families
from gradgap.proofs_check.tolerances import EXACT, FD
from gradgap.theory.instances import GradgapError, GradgapValueError, SharedTokens, SoftmaxBandit, TokenSequence
from tests.mc_checks import assert_estimator
from tests.strategies import EXTREME, shared_instances, softmax_instances, token_instances, unit_directions

EXTREME_EXAMPLE = SoftmaxBandit(logits=(1000.0, -1000.0, 0.0), correct=frozenset({0}))
#: a few examples for the expensive tests, whatever the profile
FEW = min(8, settings.default.max_examples)


def assert_close(quantity: str, routes: str, inst: Any, got: Any, want: Any, tol: tuple[float, float]) -> None:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{quantity} [{routes}] shape {got.shape} != {want.shape} on {inst}"
    assert np.all(np.isfinite(got)), f"{quantity} [{routes}] not finite: {got} on {inst}"
    rtol, atol = tol
    err, bound = np.abs(got - want), atol + rtol * np.abs(want)
    worst = int(np.argmax(err - bound)) if err.size else 0
    assert np.all(err <= bound), (f"{quantity} [{routes}] on {inst}: error {err.flat[worst]:.3e} > "
                                  f"{bound.flat[worst]:.3e} (rtol={rtol}, atol={atol})")


def any_instance(bound: float = 4.0) -> st.SearchStrategy[Any]:
    return st.one_of(softmax_instances(bound=bound), token_instances(bound=bound),
                     shared_instances(bound=min(bound, 2.0) if bound <= 4.0 else bound / 4))


EXACT_ROUTES = ("enumerate", "structured", "autograd")


# ------------------------------------------------------------------------------- exact routes agree


@given(any_instance())
@example(EXTREME_EXAMPLE)
def test_success_rate_and_log_odds_enumerate_vs_structured_vs_autograd(inst: Any) -> None:
    num = families.numerics_module(inst)
    J, ell = num.success_rate(inst, method="enumerate"), num.log_odds(inst, method="enumerate")
    for method in ("structured", "autograd"):
        assert_close("success_rate", f"enumerate vs {method}", inst, num.success_rate(inst, method=method), J, EXACT)
        assert_close("log_odds", f"enumerate vs {method}", inst, num.log_odds(inst, method=method), ell, EXACT)


@given(any_instance())
@example(EXTREME_EXAMPLE)
def test_gradient_gap_enumerate_vs_structured_vs_autograd(inst: Any) -> None:
    num = families.numerics_module(inst)
    want = num.gradient_gap(inst, method="enumerate")
    for method in ("structured", "autograd"):
        assert_close("gradient_gap", f"enumerate vs {method}", inst, num.gradient_gap(inst, method=method), want,
                     EXACT)
        assert_close("grad_log_odds", f"enumerate vs {method}", inst, num.grad_log_odds(inst, method=method), want,
                     EXACT)


@given(any_instance(bound=EXTREME))
def test_gradient_gap_and_log_odds_near_deterministic_enumerate_vs_structured_vs_autograd(inst: Any) -> None:
    num = families.numerics_module(inst)
    want_g, want_ell = num.gradient_gap(inst, method="enumerate"), num.log_odds(inst, method="enumerate")
    for method in ("structured", "autograd"):
        assert_close("gradient_gap", f"enumerate vs {method}", inst, num.gradient_gap(inst, method=method), want_g,
                     EXACT)
        assert_close("log_odds", f"enumerate vs {method}", inst, num.log_odds(inst, method=method), want_ell, EXACT)


@given(any_instance())
def test_grad_success_rate_and_conditional_scores_enumerate_vs_structured_vs_autograd(inst: Any) -> None:
    num = families.numerics_module(inst)
    gJ = num.grad_success_rate(inst, method="enumerate")
    plus, minus = num.conditional_score(inst, True, method="enumerate"), num.conditional_score(inst, False,
                                                                                                method="enumerate")
    for method in ("structured", "autograd"):
        assert_close("grad_success_rate", f"enumerate vs {method}", inst, num.grad_success_rate(inst, method=method),
                     gJ, EXACT)
        assert_close("E+[s]", f"enumerate vs {method}", inst, num.conditional_score(inst, True, method=method), plus,
                     EXACT)
        assert_close("E-[s]", f"enumerate vs {method}", inst, num.conditional_score(inst, False, method=method),
                     minus, EXACT)
        zero = num.expected_score(inst, method=method)
        assert_close("E[s]", f"{method} vs 0", inst, zero, np.zeros_like(zero), EXACT)


@given(any_instance())
def test_gradient_gap_fd_vs_structured(inst: Any) -> None:
    num = families.numerics_module(inst)
    want = num.gradient_gap(inst)
    assert_close("gradient_gap", "structured vs fd", inst, num.gradient_gap(inst, method="fd"), want, FD)
    assert_close("grad_success_rate", "structured vs fd", inst, num.grad_success_rate(inst, method="fd"),
                 num.grad_success_rate(inst), FD)
    assert_close("E+[s]", "structured vs fd", inst, num.conditional_score(inst, True, method="fd"),
                 num.conditional_score(inst, True), FD)


@given(any_instance(), st.data())
def test_alignment_fd_along_unit_direction_vs_structured(inst: Any, data: st.DataObject) -> None:
    num = families.numerics_module(inst)
    w = data.draw(unit_directions(len(inst.theta)))
    want = num.alignment(inst, w)
    for method in ("enumerate", "autograd"):
        assert_close("alignment", f"structured vs {method}", inst, num.alignment(inst, w, method=method), want, EXACT)
    assert_close("alignment", "structured vs fd", inst, num.alignment(inst, w, method="fd"), want, FD)


@settings(max_examples=FEW)
@given(any_instance())
def test_hessian_log_odds_enumerate_vs_autograd_vs_fd(inst: Any) -> None:
    num = families.numerics_module(inst)
    want = num.hessian_log_odds(inst, method="autograd")
    assert_close("hessian_log_odds", "autograd vs enumerate", inst, num.hessian_log_odds(inst, method="enumerate"),
                 want, EXACT)
    assert_close("hessian_log_odds", "autograd vs fd", inst, num.hessian_log_odds(inst, method="fd"), want, FD)
    if isinstance(inst, SoftmaxBandit):
        assert_close("hessian_log_odds", "autograd vs structured", inst, num.hessian_log_odds(inst), want, EXACT)


@given(any_instance(), st.data())
def test_score_structured_vs_autograd(inst: Any, data: st.DataObject) -> None:
    num = families.numerics_module(inst)
    response = num.sample_responses(inst, 1, np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))))[0]
    assert_close("score", "structured vs autograd", inst, num.score(inst, response),
                 num.score(inst, response, method="autograd"), EXACT)
    assert num.reward(inst, response) in (0, 1)


# -------------------------------------------------------------------------------- the extreme example


def test_extreme_softmax_example_gives_log_odds_1000_and_gap_1_0_minus1_to_double_precision() -> None:
    assert softmax.log_odds(EXTREME_EXAMPLE) == 1000.0
    assert softmax.gradient_gap(EXTREME_EXAMPLE).tolist() == [1.0, 0.0, -1.0]
    for method in ("enumerate", "autograd"):
        assert softmax.log_odds(EXTREME_EXAMPLE, method=method) == 1000.0
        assert softmax.gradient_gap(EXTREME_EXAMPLE, method=method).tolist() == [1.0, 0.0, -1.0]


@pytest.mark.parametrize("logits, target, m", [
    (((1000.0, -1000.0, -1000.0),), (0,), None),  # 1 - J = e^-2000: the direct-rescaling branch
    (((1000.0, -1000.0, -1000.0), (1000.0, -1000.0, 5.0)), (0, 0), None),
    (((1000.0, -1000.0, -1000.0), (1000.0, -1000.0, 5.0)), (0, 0), 1),
    (((-1000.0, 1000.0, 0.0), (3.0, -1000.0, 1000.0)), (0, 0), None),  # J = e^-2997 rounds to 0
    (((1000.0, -1000.0, -999.0),) * 3, (0, 0, 0), 2),
    (((300.0, -300.0, -299.0),) * 3, (0, 0, 0), None),
], ids=lambda v: repr(v)[:40])
def test_tokens_logits_1e3_structured_vs_enumerate_vs_autograd(logits: Any, target: Any, m: Any) -> None:
    inst = TokenSequence(logits=logits, target=target, min_correct=m)
    want_g, want_ell = tokens.gradient_gap(inst, method="enumerate"), tokens.log_odds(inst, method="enumerate")
    for method in ("structured", "autograd"):
        assert_close("gradient_gap", f"enumerate vs {method}", inst, tokens.gradient_gap(inst, method=method),
                     want_g, EXACT)
        assert_close("log_odds", f"enumerate vs {method}", inst, tokens.log_odds(inst, method=method), want_ell,
                     EXACT)


def test_shared_tokens_p_rounding_to_1_keeps_gap_and_log_odds_finite() -> None:
    inst = SharedTokens(theta=(800.0,), features=((1.0,), (0.0,), (1.0,)), correct=frozenset({0, 2}), T=50)
    for method in ("structured", "autograd"):
        assert_close("gradient_gap", method, inst, shared_tokens.gradient_gap(inst, method=method), [1.0], EXACT)
        assert_close("log_odds", method, inst, shared_tokens.log_odds(inst, method=method),
                     800.0 + np.log(2.0) - np.log(50.0), EXACT)


# ------------------------------------------------------------------------------------ long sequences


@st.composite
def long_token_instances(draw: st.DrawFn) -> TokenSequence:
    T = draw(st.integers(100, 2000))
    V = draw(st.integers(2, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = draw(st.sampled_from([1.0, 3.0])) * rng.standard_normal((T, V))
    target = rng.integers(0, V, T)
    X[np.arange(T), target] += draw(st.sampled_from([0.0, 8.0, 40.0]))  # 40: J rounds to 1
    m = draw(st.none() | st.integers(1, T))
    return TokenSequence(logits=tuple(map(tuple, X.tolist())), target=tuple(target.tolist()), min_correct=m)


@settings(max_examples=FEW)
@given(long_token_instances())
@example(TokenSequence(logits=((40.0, 0.0, 0.0),) * 2000, target=(0,) * 2000))
def test_long_token_sequences_structured_vs_autograd(inst: TokenSequence) -> None:
    want_g = tokens.gradient_gap(inst, method="autograd")
    assert_close("gradient_gap", "autograd vs structured", f"T={inst.T}, V={inst.V}, m={inst.m}",
                 tokens.gradient_gap(inst), want_g, EXACT)
    assert_close("log_odds", "autograd vs structured", f"T={inst.T}, V={inst.V}, m={inst.m}", tokens.log_odds(inst),
                 tokens.log_odds(inst, method="autograd"), EXACT)


@settings(max_examples=FEW)
@given(shared_instances(T=(100, 2000), bound=6.0))
def test_long_shared_sequences_structured_vs_autograd(inst: SharedTokens) -> None:
    assert_close("gradient_gap", "autograd vs structured", inst, shared_tokens.gradient_gap(inst),
                 shared_tokens.gradient_gap(inst, method="autograd"), EXACT)
    assert_close("log_odds", "autograd vs structured", inst, shared_tokens.log_odds(inst),
                 shared_tokens.log_odds(inst, method="autograd"), EXACT)


def test_gap_arrays_equals_instance_route_and_refuses_aliased_output() -> None:
    rng = np.random.default_rng(1)
    X, target = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    inst = TokenSequence(logits=tuple(map(tuple, X.tolist())), target=tuple(target.tolist()), min_correct=3)
    res = tokens.gap_arrays(X, target, min_correct=3)
    assert_close("gradient_gap", "gap_arrays vs enumerate", inst, res.gap.reshape(-1),
                 tokens.gradient_gap(inst, method="enumerate"), EXACT)
    with pytest.raises(GradgapValueError, match="out"):
        tokens.gap_arrays(X, target, out=X)


# -------------------------------------------------------------------------------------- Monte Carlo




MC_INSTANCES = [
    SoftmaxBandit(logits=(0.3, -1.2, 2.0, 0.5), correct=frozenset({0, 2})),
    TokenSequence(logits=((0.5, 0.0, -0.5), (1.0, 0.0, 0.2)), target=(0, 0)),
    TokenSequence(logits=((0.5, 0.0), (1.0, 0.0), (-0.3, 0.4)), target=(0, 0, 1), min_correct=2),
    SharedTokens(theta=(0.3, -0.5), features=((1.0, 0.0), (0.0, 1.0), (1.0, 1.0)), correct=frozenset({0, 2}), T=2),
]


@settings(max_examples=min(3, settings.default.max_examples))
@given(st.sampled_from(MC_INSTANCES), st.integers(0, 2**32 - 1 - 64))
def test_gradient_gap_mc_vs_structured(inst: Any, seed: int) -> None:
    """Coverage and scale of each MC estimator with the test's own standard error (tests/mc_checks.py)."""
    num = families.numerics_module(inst)
    for name in ("gradient_gap", "success_rate", "grad_success_rate"):
        fn = getattr(num, name)
        assert_estimator(f"{name} [mc vs structured] on {inst}",
                         lambda s, fn=fn: fn(inst, method="mc", n=2000, seed=s), fn(inst), seed)


def test_mc_stderr_shrinks_like_one_over_sqrt_n() -> None:
    inst = MC_INSTANCES[0]
    se = [float(np.mean(softmax.gradient_gap(inst, method="mc", n=n, seed=n).stderr)) for n in (1000, 16000)]
    assert 3.0 < se[0] / se[1] < 5.5  # sqrt(16) = 4


# ----------------------------------------------------------------------------------- route plumbing


def test_unsupported_pair_raises_not_implemented_naming_quantity_and_method() -> None:
    with pytest.raises(NotImplementedError, match=r"log_odds.*'mc'"):
        softmax.log_odds(EXTREME_EXAMPLE, method="mc")
    with pytest.raises(NotImplementedError, match=r"hessian_log_odds.*'structured'"):
        tokens.hessian_log_odds(TokenSequence(logits=((0.0, 1.0),), target=(0,)), method="structured")


@pytest.mark.parametrize("call", [
    "softmax.gradient_gap(EXTREME_EXAMPLE, method='exact')",
    "softmax.gradient_gap(EXTREME_EXAMPLE, n=10)",
    "softmax.gradient_gap(EXTREME_EXAMPLE, method='fd', h=0.0)",
    "softmax.alignment(EXTREME_EXAMPLE, (1.0, 0.0))",
    "softmax.reward(EXTREME_EXAMPLE, (3,))",
    "tokens.success_rate(TokenSequence(logits=((0.0, 1.0),) * 21, target=(0,) * 21), method='enumerate')",
    "softmax.gradient_gap(SoftmaxBandit(logits=(30.0, -30.0), correct=frozenset({0})), method='mc', n=100, seed=0)",
], ids=lambda c: c)
def test_bad_route_calls_raise_gradgap_error(call: str) -> None:
    with pytest.raises(GradgapError):
        eval(call)


def test_log1mexp_and_log_geometric_sum_against_direct_formulas() -> None:
    x = np.array([-1e-300, -1e-10, -0.5, -1.0, -50.0])
    assert_close("log1mexp", "vs log(1-exp)", x, logspace.log1mexp(x[2:]), np.log(1 - np.exp(x[2:])), EXACT)
    assert logspace.log1mexp(-1e-300) == np.log(1e-300)
    for lp, T in ((np.log(0.3), 5), (-1e-12, 7), (-1e-3, 4000)):
        direct = np.log(np.sum(np.exp(np.arange(T) * lp)))
        assert_close("log_geometric_sum", "vs direct", (lp, T), logspace.log_geometric_sum(lp, T), direct, EXACT)


def test_moments_batches_equal_one_pass_variance() -> None:
    rng = np.random.default_rng(3)
    data = rng.standard_normal((101, 3)) + 1e6
    mom = montecarlo.Moments.empty(3)
    for a in range(0, 101, 17):
        mom.add(data[a:a + 17])
    assert_close("variance", "batched vs numpy", "data", mom.variance, data.var(axis=0, ddof=1), EXACT)
