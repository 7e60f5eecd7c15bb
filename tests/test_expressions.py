"""The claim language: AST whitelist, float64 and 50-digit evaluation, SymPy/LaTeX built from the tree."""

from __future__ import annotations

import builtins
import math

import mpmath
import pytest

from gradgap.proofs_check import expressions as ex
from gradgap.proofs_check.tolerances import EXACT, close
from gradgap.theory.instances import GradgapValueError

ENV = {"J": 0.25, "J_next": 0.5, "ell": math.log(1 / 3), "ell_next": 0.0, "eta": 2.0, "Delta_mu": 0.5,
       "norm_g": 1.0, "L_o": 0.5, "G_o": math.sqrt(2), "K": 3}


@pytest.mark.parametrize(
    "text",
    [
        "J_next >= J",
        "ell_next - ell >= eta*Delta_mu - eta**2*(L_o + 8*G_o**2)",
        "J*(1 - J) <= 1/4",
        "abs(Delta_mu) <= norm_g",
        "min(J, 1 - J) < max(J, 1 - J) + 1e-12",
        "exp(ell) * (1 - J) == J",
        "sqrt(K) > -log(J)",
        "+J >= -J",
    ],
)
def test_valid_relations_parse(text):
    rel = ex.parse_relation(text)
    assert rel.op in ex.OPERATORS.values()
    assert rel.names <= set(ex.VARIABLES)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("__import__('os').system('true') >= 0", "not allowed"),
        ("J.real >= 0", "Attribute"),
        ("x > 1", "not in the vocabulary"),
        ("eta2 > 1", "did you mean 'eta'"),
        ("J >= lg(2)", "did you mean 'log'"),
        ("J >= exp", "is a function"),
        ("J >= 0 >= 1", "exactly one comparison"),
        ("J != 0", "NotEq"),
        ("J", "expected one relation"),
        ("J >= [1][0]", "not allowed"),
        ("J >= 'a'", "not a real number"),
        ("J >= True", "not a real number"),
        ("J >= 2**100", "too large"),
        ("J >= (lambda: 0)()", "not allowed"),
        ("J >= sqrt(1, 2)", "takes 1"),
        ("J >= max(1)", "2 or more"),
        ("J >= exp(x=1)", "keyword"),
        ("J >= (1 if J else 0)", "IfExp"),
        ("J >=", "syntax error"),
        ("J >= J @ J", "not allowed"),
        ("J >= 1j", "not a real number"),
    ],
    ids=lambda v: v,
)
def test_bad_relations_are_rejected_with_the_problem(text, problem):
    with pytest.raises(GradgapValueError, match=problem.replace("(", r"\(").replace("*", r"\*")):
        ex.parse_relation(text)


def test_parser_never_calls_eval(monkeypatch):
    import sympy  # noqa: F401  (sympy itself uses eval once at import)

    def forbidden(*args, **kwargs):
        raise AssertionError("eval called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    rel = ex.parse_relation("ell_next - ell >= eta*Delta_mu - eta**2*(L_o + 8*G_o**2)")
    ex.margin(rel, ENV)
    ex.relation_latex(rel.text, ["Delta_mu > 0"])


def test_latex_never_sympifies_raw_text(monkeypatch):
    import sympy
    import sympy.parsing.sympy_parser as sp_parser

    def forbidden(*args, **kwargs):
        raise AssertionError("sympify/parse_expr called on text")

    monkeypatch.setattr(sympy, "sympify", forbidden)
    monkeypatch.setattr(sp_parser, "parse_expr", forbidden)
    assert ex.relation_latex("J*(1 - J) <= 1/4") == r"J \left(1 - J\right) \le \frac{1}{4}"


def test_float_and_mp_evaluation_agree():
    node = ex.parse_expression("eta*Delta_mu - eta**2*(L_o + 8*G_o**2) + sqrt(K) * exp(ell) / max(J, 0.1)")
    f = ex.evaluate(node, ENV)
    m = ex.evaluate(node, {k: mpmath.mpf(v) for k, v in ENV.items()}, precision="mp")
    assert close(f, float(m), EXACT)


def test_mp_evaluation_keeps_fifty_digits():
    third = ex.evaluate(ex.parse_expression("1/3"), {}, precision="mp")
    with mpmath.workdps(60):
        assert abs(third - mpmath.mpf(1) / 3) < mpmath.mpf("1e-49")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("J_next >= J", 0.25), ("J_next <= J", -0.25), ("J_next == J", -0.25), ("J > J_next", -0.25)],
)
def test_margin_sign_convention(text, expected):
    assert ex.margin(ex.parse_relation(text), ENV) == pytest.approx(expected)


def test_violated_handles_ties_and_nan():
    ge, gt = ex.parse_relation("J >= 0"), ex.parse_relation("J > 0")
    assert ex.violated(ge, 0.0, 0.0) is False
    assert ex.violated(gt, 0.0, 0.0) is True
    assert ex.violated(ge, -1e-40, 1e-35) is False
    assert ex.violated(ge, float("nan"), 0.0) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [("log(0)", -math.inf), ("sqrt(-1)", "nan"), ("1/0", math.inf), ("0/0", "nan"), ("(-1)**0.5", "nan"),
     ("exp(1000)", math.inf)],
)
def test_float_edge_values_do_not_raise(text, value):
    out = ex.evaluate(ex.parse_expression(text), {})
    if value == "nan":
        assert out != out
    else:
        assert out == value


def test_unknown_name_in_environment_is_a_gradgap_error():
    with pytest.raises(GradgapValueError, match="no value"):
        ex.evaluate(ex.parse_expression("J_next"), {})


def test_relation_latex_with_hypotheses():
    tex = ex.relation_latex("J_next >= J", ["Delta_mu > 0", "eta <= Delta_mu/(2*(L_o + 8*G_o**2))"])
    assert tex.startswith(r"\Delta\mu > 0")
    assert r"\Longrightarrow" in tex and r"J^{+} \ge J" in tex
    assert "10^{-12}" in ex.expression_latex("J + 1e-12")
