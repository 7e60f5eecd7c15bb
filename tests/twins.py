"""Comparisons of a symbolic quantity (theory/, SymPy at 30 digits) with its numeric twin (numerics/).

Each helper computes the two sides by independent routes and fails with the quantity, the routes, the
instance, the error and the tolerance (style rule 13). Tolerances come from ``gradgap.proofs_check.tolerances``.
:func:`twin_tests` builds the test class that ``tests/test_<family>.py`` binds to a ``Test...`` name: the same
bodies for every family, on that family's strategies and examples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
import sympy as sp
from hypothesis import example, given
from hypothesis.strategies import SearchStrategy

from gradgap.proofs_check import families
from gradgap.proofs_check.tolerances import EXACT, FD
from gradgap.theory.instances import Instance
from tests.mc_checks import assert_estimator

DIGITS = 30


def sym_scalar(expr: Any) -> float:
    return float(sp.N(expr, DIGITS))


def sym_vector(matrix: Any) -> np.ndarray:
    return np.array([float(sp.N(x, DIGITS)) for x in sp.Matrix(matrix)], dtype=np.float64)


def sym_matrix(matrix: Any) -> np.ndarray:
    m = sp.Matrix(matrix)
    return np.array([[float(sp.N(m[i, j], DIGITS)) for j in range(m.cols)] for i in range(m.rows)])


def assert_close(quantity: str, routes: str, inst: Instance, got: Any, want: Any, tol: tuple[float, float]) -> None:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{quantity} [{routes}] shape {got.shape} != {want.shape} on {inst}"
    rtol, atol = tol
    err = np.abs(got - want)
    bound = atol + rtol * np.abs(want)
    worst = int(np.argmax(err - bound)) if err.size else 0
    assert np.all(np.isfinite(got)), f"{quantity} [{routes}] not finite: {got} on {inst}"
    assert np.all(err <= bound), (
        f"{quantity} [{routes}] on {inst}: error {err.flat[worst]:.3e} > tolerance {bound.flat[worst]:.3e} "
        f"(rtol={rtol}, atol={atol}); got {got.flat[worst]!r}, want {want.flat[worst]!r}"
    )


def check_success_rate(inst: Instance, methods: tuple[str, ...]) -> None:
    sym, num = families.theory_module(inst), families.numerics_module(inst)
    want = sym_scalar(sym.success_rate(inst))
    for method in methods:
        assert_close("success_rate", f"symbolic vs {method}", inst, num.success_rate(inst, method=method), want, EXACT)


def check_log_odds(inst: Instance, methods: tuple[str, ...]) -> None:
    sym, num = families.theory_module(inst), families.numerics_module(inst)
    want = sym_scalar(sym.log_odds(inst))
    for method in methods:
        assert_close("log_odds", f"symbolic vs {method}", inst, num.log_odds(inst, method=method), want, EXACT)


def check_gradient_gap(inst: Instance, methods: tuple[str, ...]) -> None:
    sym, num = families.theory_module(inst), families.numerics_module(inst)
    want = sym_vector(sym.gradient_gap(inst))
    for method in methods:
        tol = FD if method == "fd" else EXACT
        assert_close("gradient_gap", f"symbolic vs {method}", inst, num.gradient_gap(inst, method=method), want, tol)


def check_grad_success_rate_is_variance_times_gap(inst: Instance) -> None:
    r"""numeric :math:`\nabla J` (autograd) against symbolic :math:`J(1-J)\,g`."""
    sym, num = families.theory_module(inst), families.numerics_module(inst)
    want = sym_vector(sym.success_rate(inst) * (1 - sym.success_rate(inst)) * sym.gradient_gap(inst))
    got = num.grad_success_rate(inst, method="autograd")
    assert_close("grad_J vs J(1-J)g", "autograd vs symbolic", inst, got, want, EXACT)


def check_hessian_log_odds(inst: Instance) -> None:
    sym, num = families.theory_module(inst), families.numerics_module(inst)
    want = sym_matrix(sym.hessian_log_odds(inst))
    got = num.hessian_log_odds(inst, method="autograd")
    assert_close("hessian_log_odds", "symbolic vs autograd", inst, got, want, EXACT)


def check_score_mean_zero_by_enumeration(inst: Instance) -> None:
    num = families.numerics_module(inst)
    got = num.expected_score(inst, method="enumerate")
    assert_close("E[score]", "enumerate vs 0", inst, got, np.zeros_like(got), EXACT)


def check_gradient_gap_monte_carlo(inst: Instance, n: int = 2000, seed: int = 0) -> None:
    r"""Coverage and scale of the MC Gradient Gap against the symbolic one, with the test's own standard error
    from independent estimates (two-sided; Bonferroni over the coordinates; tests/mc_checks.py)."""
    sym, num = families.theory_module(inst), families.numerics_module(inst)
    want = sym_vector(sym.gradient_gap(inst))
    assert_estimator(f"gradient_gap [mc vs symbolic] on {inst}",
                     lambda s: num.gradient_gap(inst, method="mc", n=n, seed=s), want, seed)


def _given_with_examples(instances: SearchStrategy[Any], examples: Sequence[Instance]) -> Callable[[Any], Any]:
    """``@given(instances)`` with ``@example(inst)`` for each of ``examples``."""

    def decorate(test: Any) -> Any:
        for inst in examples:
            test = example(inst)(test)
        return given(instances)(test)

    return decorate


def twin_tests(family: str, instances: SearchStrategy[Any], *, near_deterministic: SearchStrategy[Any],
               hessian: SearchStrategy[Any], monte_carlo: Sequence[Instance], examples: Sequence[Instance] = (),
               near_examples: Sequence[Instance] = ()) -> type:
    """The symbolic-vs-numeric tests of one family: moderate ``instances`` (plus ``examples``) for every exact
    route, ``near_deterministic`` ones (plus ``near_examples``) for the structured route, ``hessian`` (small)
    instances for the Hessian and the ``monte_carlo`` instances for the Monte-Carlo z-test."""

    class TwinTests:
        def test_public_functions_are_named_after_their_quantity(self) -> None:
            for module in (families.theory_module(family), families.numerics_module(family)):
                for name in module.__all__:
                    assert getattr(module, name).__name__ == name, f"{module.__name__}.{name}"

        @_given_with_examples(instances, examples)
        def test_success_rate_symbolic_vs_enumerate_structured_autograd(self, inst: Instance) -> None:
            check_success_rate(inst, ("enumerate", "structured", "autograd"))

        @_given_with_examples(instances, examples)
        def test_gradient_gap_symbolic_vs_enumerate_structured_autograd_fd(self, inst: Instance) -> None:
            check_gradient_gap(inst, ("enumerate", "structured", "autograd", "fd"))

        @_given_with_examples(near_deterministic, near_examples)
        def test_gradient_gap_and_log_odds_symbolic_vs_structured_near_deterministic(self, inst: Instance) -> None:
            check_gradient_gap(inst, ("structured",))
            check_log_odds(inst, ("structured",))

        @given(instances)
        def test_grad_success_rate_equals_variance_times_gradient_gap(self, inst: Instance) -> None:
            check_grad_success_rate_is_variance_times_gap(inst)

        @given(hessian)
        def test_hessian_log_odds_symbolic_vs_autograd(self, inst: Instance) -> None:
            check_hessian_log_odds(inst)

        @given(instances)
        def test_score_mean_zero_by_enumeration(self, inst: Instance) -> None:
            check_score_mean_zero_by_enumeration(inst)

        @pytest.mark.parametrize("inst", monte_carlo, ids=lambda inst: f"theta={inst.theta}")
        def test_gradient_gap_mc_vs_symbolic(self, inst: Instance) -> None:
            check_gradient_gap_monte_carlo(inst)

    return TwinTests
