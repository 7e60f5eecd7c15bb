r"""The claim language: a safe parser and two evaluators (float64 and mpmath at 50 digits).

A relation is one comparison ``lhs OP rhs`` with ``OP`` in ``<, <=, >, >=, ==`` between arithmetic
expressions over a fixed vocabulary:

=============  ==========================================================================================
name           meaning
=============  ==========================================================================================
``J``          success rate :math:`J(\theta)`
``J_next``     :math:`J(\theta + \eta w)` after one step along the direction :math:`w`
``ell``        log-odds :math:`\ell(\theta) = \log\frac{J}{1-J}`
``ell_next``   :math:`\ell(\theta + \eta w)`
``eta``        step size :math:`\eta`
``Delta_mu``   alignment :math:`\Delta\mu = \langle w, g(\theta)\rangle`
``norm_g``     :math:`\|g(\theta)\|`
``L_o``        family smoothness constant :math:`L_o` (sup of the Hessian norm of :math:`\log\pi_\theta(o)`)
``G_o``        family score bound :math:`G_o` (sup of :math:`\|\nabla\log\pi_\theta(o)\|`)
``K``          softmax arms; ``T``, ``V`` length and vocabulary; ``d`` shared-feature dimension
=============  ==========================================================================================

Functions: ``sqrt exp log abs min max``; operators ``+ - * / **`` and unary ``-``/``+``; numbers.

Text is parsed with ``ast.parse(mode="eval")`` and every node is checked against a whitelist; nothing is ever
passed to ``eval``, ``sympify`` or ``parse_expr``. SymPy objects (for LaTeX) are built from the validated tree.

>>> rel = parse_relation("J_next >= J - eta**2")
>>> rel.op, sorted(rel.names)
('>=', ['J', 'J_next', 'eta'])
>>> margin(rel, {"J_next": 0.5, "J": 0.6, "eta": 1.0})
0.9
"""

from __future__ import annotations

import ast
import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import mpmath

from gradgap.theory.instances import GradgapValueError

__all__ = [
    "FUNCTIONS",
    "HP_DIGITS",
    "OPERATORS",
    "VARIABLES",
    "ParsedRelation",
    "evaluate",
    "expression_latex",
    "margin",
    "parse_expression",
    "parse_relation",
    "relation_latex",
    "to_sympy",
    "violated",
]

#: the names a claim may use, with their LaTeX form
VARIABLES: Final[dict[str, str]] = {
    "J": "J",
    "J_next": r"J^{+}",
    "ell": r"\ell",
    "ell_next": r"\ell^{+}",
    "eta": r"\eta",
    "Delta_mu": r"\Delta\mu",
    "norm_g": r"\|g\|",
    "L_o": "L_o",
    "G_o": "G_o",
    "K": "K",
    "T": "T",
    "V": "V",
    "d": "d",
}
#: the functions a claim may call, with their arity (``None``: two or more)
FUNCTIONS: Final[dict[str, int | None]] = {"sqrt": 1, "exp": 1, "log": 1, "abs": 1, "min": None, "max": None}
OPERATORS: Final[dict[type, str]] = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "=="}
#: digits of the high-precision evaluation
HP_DIGITS: Final[int] = 50
#: limits checked before any evaluation or SymPy object is built (a claim text is untrusted input)
MAX_TEXT: Final[int] = 2000
#: the largest constant exponent, by value (``2**(64**64)`` and ``9**9**9**9`` are refused)
MAX_EXPONENT: Final[float] = 64.0
#: the deepest syntax tree (2,000 nested unary minus are refused before any recursion)
MAX_DEPTH: Final[int] = 64
#: the most syntax-tree nodes (a 1,000-term ``+`` chain is refused)
MAX_NODES: Final[int] = 400
#: the most digits of an integer literal (a 1,500-digit literal is refused; floats are at most 1.8e308 anyway)
MAX_LITERAL_DIGITS: Final[int] = 100
#: the most decimal digits a constant power may have (``(10**64)**64`` has 4,097)
MAX_POWER_DIGITS: Final[int] = 5000
#: mpmath arguments beyond which ``exp`` is +inf / 0 and a power is +inf / 0 (mpmath would build a huge integer)
_MP_HUGE: Final[int] = 10**15
_BINOPS: Final[tuple[type, ...]] = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
_UNARY: Final[tuple[type, ...]] = (ast.USub, ast.UAdd)


def _shown(text: str, limit: int = 60) -> str:
    """``repr`` of ``text``, cut to ``limit`` characters so that an error stays one short line."""
    text = str(text)
    return repr(text) if len(text) <= limit else repr(text[: limit - 3] + "...")


def _bad(text: str, problem: str) -> GradgapValueError:
    return GradgapValueError(f"expression={_shown(text)}: {problem}", field="expression", value=text)


def _is_constant(node: ast.AST) -> bool:
    return not any(isinstance(n, ast.Name) for n in ast.walk(node))


def _shape_limits(tree: ast.AST, text: str) -> None:
    """Depth, size and literal limits, checked without recursion (before any recursive walk of the tree)."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise _bad(text, f"nested deeper than {MAX_DEPTH} levels")
        if count > MAX_NODES:
            raise _bad(text, f"more than {MAX_NODES} terms and operators")
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            if node.value.bit_length() > MAX_LITERAL_DIGITS * 3.33:
                raise _bad(text, f"integer literal with more than {MAX_LITERAL_DIGITS} digits")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _constant_value(node: ast.expr, text: str) -> Any:
    """The value of a name-free subtree at 15 digits (mpmath), with the exponent limits applied bottom-up."""
    with mpmath.workdps(15):
        return _eval(node, {}, True)


def _check_power(node: ast.BinOp, text: str) -> None:
    r"""A constant exponent must satisfy :math:`|b| \le` :data:`MAX_EXPONENT`; a constant power :math:`a^b`
    must have at most :data:`MAX_POWER_DIGITS` digits (SymPy builds it exactly)."""
    if not _is_constant(node.right):
        return
    b = _constant_value(node.right, text)
    if not mpmath.isfinite(b) or abs(b) > MAX_EXPONENT:
        shown = mpmath.nstr(b, 6) if mpmath.isfinite(b) else "too large"
        raise _bad(text, f"exponent {shown} too large (|exponent| <= {MAX_EXPONENT:g})")
    if _is_constant(node.left):
        a = _constant_value(node.left, text)
        if mpmath.isfinite(a) and a != 0 and abs(b * mpmath.log10(abs(a))) > MAX_POWER_DIGITS:
            raise _bad(text, f"constant power with more than {MAX_POWER_DIGITS} digits")


def _validate(node: ast.AST, text: str) -> None:
    """Raise unless every node of ``node`` is in the whitelist."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise _bad(text, f"constant {node.value!r} is not a real number")
        if not math.isfinite(node.value):
            raise _bad(text, "constants must be finite")
    elif isinstance(node, ast.Name):
        if node.id not in VARIABLES:
            kind = "a function, call it" if node.id in FUNCTIONS else "not in the vocabulary"
            close = difflib.get_close_matches(node.id, list(VARIABLES), n=1)
            hint = f"; did you mean {close[0]!r}?" if close and node.id not in FUNCTIONS else ""
            raise _bad(text, f"name {node.id[:30]!r} is {kind}{hint} (vocabulary: {', '.join(VARIABLES)})")
    elif isinstance(node, ast.BinOp):
        if not isinstance(node.op, _BINOPS):
            raise _bad(text, f"operator {type(node.op).__name__} is not allowed (use + - * / **)")
        _validate(node.left, text)
        _validate(node.right, text)
        if isinstance(node.op, ast.Pow):
            _check_power(node, text)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, _UNARY):
            raise _bad(text, f"operator {type(node.op).__name__} is not allowed")
        _validate(node.operand, text)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            shown = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            close = difflib.get_close_matches(shown, list(FUNCTIONS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise _bad(text, f"function {shown!r} is not allowed{hint} (functions: {', '.join(FUNCTIONS)})")
        if node.keywords:
            raise _bad(text, f"{node.func.id}() takes no keyword arguments")
        arity = FUNCTIONS[node.func.id]
        if (arity is not None and len(node.args) != arity) or (arity is None and len(node.args) < 2):
            want = arity if arity is not None else "2 or more"
            raise _bad(text, f"{node.func.id}() takes {want} argument(s), got {len(node.args)}")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise _bad(text, "starred arguments are not allowed")
            _validate(arg, text)
    else:
        raise _bad(text, f"{type(node).__name__} is not allowed in a claim expression")


def _parse(text: str) -> ast.expr:
    if not isinstance(text, str):
        raise GradgapValueError(f"expression={text!r}: must be a string", field="expression", value=text)
    if len(text) > MAX_TEXT:
        raise _bad(text, f"longer than {MAX_TEXT} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise _bad(text, f"syntax error: {str(exc.msg)[:60]}") from None
    except (ValueError, RecursionError, MemoryError):
        raise _bad(text, f"cannot be parsed (nested too deeply?); limits: depth {MAX_DEPTH}") from None
    _shape_limits(tree.body, text)
    return tree.body


def parse_expression(text: str) -> ast.expr:
    """The validated syntax tree of an arithmetic expression (no comparison)."""
    body = _parse(text)
    if isinstance(body, ast.Compare):
        raise _bad(text, "expected an expression, found a comparison")
    _validate(body, text)
    return body


@dataclass(frozen=True)
class ParsedRelation:
    """A validated relation ``lhs op rhs``; ``names`` are the vocabulary names it uses."""

    text: str
    lhs: ast.expr
    op: str
    rhs: ast.expr

    @property
    def names(self) -> frozenset[str]:
        return frozenset(n.id for side in (self.lhs, self.rhs) for n in ast.walk(side)
                         if isinstance(n, ast.Name) and n.id in VARIABLES)

    @property
    def strict(self) -> bool:
        return self.op in ("<", ">")

    def unparse(self) -> str:
        """Canonical text of the relation."""
        return f"{ast.unparse(self.lhs)} {self.op} {ast.unparse(self.rhs)}"


def parse_relation(text: str) -> ParsedRelation:
    """Parse and validate one relation (exactly one comparison operator).

    >>> parse_relation("ell_next - ell >= eta*Delta_mu - eta**2*(L_o + 8*G_o**2)").op
    '>='
    """
    body = _parse(text)
    if not isinstance(body, ast.Compare):
        raise _bad(text, "expected one relation with <, <=, >, >= or ==")
    if len(body.ops) != 1:
        raise _bad(text, "exactly one comparison operator, e.g. 'a <= b' (no chains like 'a <= b <= c')")
    op = OPERATORS.get(type(body.ops[0]))
    if op is None:
        raise _bad(text, f"comparison {type(body.ops[0]).__name__} is not allowed (use <, <=, >, >=, ==)")
    lhs, rhs = body.left, body.comparators[0]
    _validate(lhs, text)
    _validate(rhs, text)
    return ParsedRelation(text, lhs, op, rhs)


# ---------------------------------------------------------------- evaluation


def _float_pow(a: float, b: float) -> float:
    try:
        out = a**b
    except OverflowError:
        return math.inf
    except ZeroDivisionError:
        return math.inf
    return out if isinstance(out, float | int) else math.nan  # negative base, fractional power


def _float_div(a: float, b: float) -> float:
    if b == 0:
        return math.nan if a == 0 else math.copysign(math.inf, a)
    return a / b


def _safe(fn: Callable[[float], float]) -> Callable[[float], float]:
    def wrapped(x: float) -> float:
        try:
            return fn(x)
        except (ValueError, OverflowError):
            if fn is math.log and x == 0:
                return -math.inf
            if fn is math.exp:
                return math.inf
            return math.nan

    return wrapped


_FLOAT_FUNCS: Final[dict[str, Callable[..., float]]] = {
    "sqrt": _safe(math.sqrt), "exp": _safe(math.exp), "log": _safe(math.log), "abs": abs, "min": min, "max": max,
}


def _mp_sqrt(x: Any) -> Any:
    return mpmath.sqrt(x) if x >= 0 else mpmath.mpf("nan")


def _mp_log(x: Any) -> Any:
    if x < 0:
        return mpmath.mpf("nan")
    return mpmath.log(x) if x > 0 else mpmath.mpf("-inf")


def _mp_exp(x: Any) -> Any:
    """``exp`` that saturates to +inf / 0 beyond :data:`_MP_HUGE` instead of building a huge mantissa."""
    if mpmath.isnan(x):
        return x
    if x > _MP_HUGE:
        return mpmath.inf
    if x < -_MP_HUGE:
        return mpmath.mpf(0)
    return mpmath.exp(x)


def _mp_pow(a: Any, b: Any) -> Any:
    r""":math:`a^b` in mpmath; nan for a negative base with a fractional exponent, and +inf / 0 when
    :math:`|b \log_2|a||` exceeds :data:`_MP_HUGE` (the result's binary exponent would not fit)."""
    if mpmath.isnan(a) or mpmath.isnan(b):
        return mpmath.mpf("nan")
    if a < 0 and (not mpmath.isfinite(b) or b != int(b)):
        return mpmath.mpf("nan")
    if a == 0:
        return mpmath.inf if b < 0 else (mpmath.mpf(1) if b == 0 else mpmath.mpf(0))
    if b == 0:
        return mpmath.mpf(1)
    with mpmath.workdps(15):
        size = b * mpmath.log(abs(a), 2) if mpmath.isfinite(a) else (mpmath.inf if b > 0 else -mpmath.inf)
    if not mpmath.isnan(size) and abs(size) > _MP_HUGE:
        if size < 0:
            return mpmath.mpf(0)
        return mpmath.inf if a > 0 or int(b) % 2 == 0 else -mpmath.inf
    return a**b


_MP_FUNCS: Final[dict[str, Callable[..., Any]]] = {
    "sqrt": _mp_sqrt, "exp": _mp_exp, "log": _mp_log, "abs": abs, "min": min, "max": max,
}


def _eval(node: ast.expr, env: Mapping[str, Any], mp: bool) -> Any:
    if isinstance(node, ast.Constant):
        return mpmath.mpf(repr(node.value)) if mp else float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise GradgapValueError(f"name={node.id!r}: no value for it here", field="name", value=node.id)
        value = env[node.id]
        return mpmath.mpf(value) if mp else float(value)
    if isinstance(node, ast.UnaryOp):
        val = _eval(node.operand, env, mp)
        return -val if isinstance(node.op, ast.USub) else +val
    if isinstance(node, ast.BinOp):
        a, b = _eval(node.left, env, mp), _eval(node.right, env, mp)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        if isinstance(node.op, ast.Div):
            if mp:
                if b == 0:
                    return mpmath.mpf("nan") if a == 0 else mpmath.inf * mpmath.sign(a)
                return a / b
            return _float_div(a, b)
        return _mp_pow(a, b) if mp else _float_pow(a, b)
    if isinstance(node, ast.Call):
        args = [_eval(a, env, mp) for a in node.args]
        fn = (_MP_FUNCS if mp else _FLOAT_FUNCS)[node.func.id]  # type: ignore[union-attr]
        return fn(*args)
    raise GradgapValueError(f"node={type(node).__name__}: not evaluable", field="node", value=node)


def evaluate(node: ast.expr, env: Mapping[str, Any], *, precision: str = "float") -> Any:
    r"""Evaluate a validated tree: ``precision="float"`` (float64, ``math``) or ``"mp"`` (mpmath, 50 digits;
    pass the environment as mpmath numbers or exact strings to keep the digits).

    >>> mpmath.nstr(evaluate(parse_expression("sqrt(2)"), {}, precision="mp"), 40)
    '1.41421356237309504880168872420969807857'
    """
    if precision == "float":
        return _eval(node, env, False)
    if precision == "mp":
        with mpmath.workdps(HP_DIGITS):
            return +_eval(node, env, True)
    raise GradgapValueError(f"precision={precision!r}: use 'float' or 'mp'", field="precision", value=precision)


def margin(rel: ParsedRelation, env: Mapping[str, Any], *, precision: str = "float") -> Any:
    r"""How much room the relation has: :math:`\text{lhs}-\text{rhs}` for ``>``/``>=``,
    :math:`\text{rhs}-\text{lhs}` for ``<``/``<=``, :math:`-|\text{lhs}-\text{rhs}|` for ``==``.
    Non-negative means satisfied (positive for the strict ones). ``nan`` when undefined.
    """
    if precision == "mp":
        with mpmath.workdps(HP_DIGITS):
            return _margin(rel, env, True)
    return _margin(rel, env, False)


def _margin(rel: ParsedRelation, env: Mapping[str, Any], mp: bool) -> Any:
    a, b = _eval(rel.lhs, env, mp), _eval(rel.rhs, env, mp)
    if rel.op in (">", ">="):
        return a - b
    if rel.op in ("<", "<="):
        return b - a
    return -abs(a - b)


def scale(rel: ParsedRelation, env: Mapping[str, Any], *, precision: str = "float") -> Any:
    """``1 + |lhs| + |rhs|``: the magnitude that tolerances are relative to."""
    if precision == "mp":
        with mpmath.workdps(HP_DIGITS):
            return 1 + abs(_eval(rel.lhs, env, True)) + abs(_eval(rel.rhs, env, True))
    return 1.0 + abs(_eval(rel.lhs, env, False)) + abs(_eval(rel.rhs, env, False))


def violated(rel: ParsedRelation, value: Any, atol: Any) -> bool | None:
    r"""Whether a margin ``value`` violates the relation with absolute tolerance ``atol``; ``None`` if the margin
    is undefined (nan). Non-strict: ``value < -atol``; strict: ``value <= atol`` (a tie within ``atol`` breaks
    ``<``/``>``); ``==``: ``value < -atol``.

    >>> violated(parse_relation("J >= 0"), -1e-60, 1e-40), violated(parse_relation("J > 0"), 0.0, 1e-40)
    (False, True)
    """
    if value != value:  # nan
        return None
    if rel.strict:
        return bool(value <= atol)
    return bool(value < -atol)


# ---------------------------------------------------------------- SymPy and LaTeX (from the validated tree)


def _float_sympy(value: float) -> Any:
    import sympy

    if float(value).is_integer():
        return sympy.Integer(int(value))
    text = repr(float(value))
    if "e" not in text and len(text) <= 8:
        return sympy.Rational(text)
    mantissa, _, exponent = f"{value:.6e}".partition("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    shown = (f"{mantissa} \\cdot " if mantissa != "1" else "") + f"10^{{{int(exponent)}}}"
    return sympy.Symbol(shown, positive=value > 0)


def to_sympy(node: ast.expr) -> Any:
    """A SymPy expression built from a validated tree (names become symbols with LaTeX names)."""
    import sympy

    if isinstance(node, ast.Constant):
        return sympy.Integer(node.value) if isinstance(node.value, int) else _float_sympy(node.value)
    if isinstance(node, ast.Name):
        return sympy.Symbol(VARIABLES[node.id], real=True)
    if isinstance(node, ast.UnaryOp):
        val = to_sympy(node.operand)
        return -val if isinstance(node.op, ast.USub) else val
    if isinstance(node, ast.BinOp):
        a, b = to_sympy(node.left), to_sympy(node.right)
        ops: dict[type, Callable[[Any, Any], Any]] = {
            ast.Add: lambda x, y: x + y, ast.Sub: lambda x, y: x - y, ast.Mult: lambda x, y: x * y,
            ast.Div: lambda x, y: x / y, ast.Pow: lambda x, y: x**y,
        }
        return ops[type(node.op)](a, b)
    if isinstance(node, ast.Call):
        fns = {"sqrt": sympy.sqrt, "exp": sympy.exp, "log": sympy.log, "abs": sympy.Abs,
               "min": sympy.Min, "max": sympy.Max}
        return fns[node.func.id](*(to_sympy(a) for a in node.args))  # type: ignore[union-attr]
    raise GradgapValueError(f"node={type(node).__name__}: not convertible", field="node", value=node)


_LATEX_OPS: Final[dict[str, str]] = {"<": "<", "<=": r"\le", ">": ">", ">=": r"\ge", "==": "="}


def expression_latex(text: str) -> str:
    """LaTeX of an expression (via SymPy, from the validated tree)."""
    import sympy

    return sympy.latex(to_sympy(parse_expression(text)))


def _relation_tex(rel: ParsedRelation) -> str:
    import sympy

    return f"{sympy.latex(to_sympy(rel.lhs))} {_LATEX_OPS[rel.op]} {sympy.latex(to_sympy(rel.rhs))}"


def relation_latex(claim: str, given: tuple[str, ...] | list[str] = ()) -> str:
    r"""LaTeX of a claim with its hypotheses: ``given_1, ..., given_n \Longrightarrow claim``.

    >>> relation_latex("J_next >= J", ["Delta_mu > 0"])
    '\\Delta\\mu > 0 \\;\\Longrightarrow\\; J^{+} \\ge J'
    """
    body = _relation_tex(parse_relation(claim))
    if not given:
        return body
    hyps = ",\\; ".join(_relation_tex(parse_relation(g)) for g in given)
    return f"{hyps} \\;\\Longrightarrow\\; {body}"
