r"""Containers and exact helpers shared by the three symbolic family modules.

* :class:`ClosedForms`: the structural closed forms of one family member (expressions in the parameter
  symbols :math:`\theta`, never in parameter values);
* :class:`FamilyConstants`: the constants :math:`L_o`, :math:`G_o` and the smoothness of :math:`J`, each
  with how it is attained (maximum, supremum, or only an upper bound) and a short proof;
* :class:`IdentityResult`: one identity and whether its difference simplified to exactly 0;
* helpers: exact substitution of float parameters (:func:`exact`, :func:`at_instance`), 50-digit
  evaluation (:func:`evaluate`) and the exact-zero prover (:func:`prove_zero`).

Notation: :math:`J` = ``J``, :math:`g` = ``gradient_gap``, :math:`\ell=\log\frac{J}{1-J}` = ``log_odds``,
:math:`\mathbb E_\pm[s]` = ``e_score_success`` / ``e_score_failure``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, Literal

import sympy as sp

from gradgap.theory.instances import GradgapTypeError, GradgapValueError, check_finite_vector

__all__ = [
    "DIGITS",
    "FAMILY_NAMES",
    "Attainment",
    "ClosedForms",
    "Constant",
    "FamilyConstants",
    "IdentityResult",
    "at_instance",
    "evaluate",
    "exact",
    "prove_zero",
    "prove_zero_matrix",
    "substitute",
]

#: digits of the high-precision re-evaluation
DIGITS: Final[int] = 50

Attainment = Literal["maximum", "supremum", "upper bound", "numerical supremum"]


@dataclass(frozen=True)
class ClosedForms:
    r"""Exact closed forms of one family member as expressions in ``theta`` (the flat parameter symbols).

    ``token_gaps`` holds the per-position gaps :math:`g_t = \mathbb E_+[s_t]-\mathbb E_-[s_t]` for the
    token families (``None`` for the bandit); ``probabilities`` the policy's probabilities
    (arms, or one tuple per position); ``unique_correct_log_prob`` :math:`\log\pi(o^\star)` when the
    correct response is unique, else ``None``. ``failure_rate`` is :math:`1-J` written as a sum over the
    failures (no cancellation when :math:`J\to1`); ``log_odds`` and :math:`\mathbb E_-` use it.
    ``hessian_log_odds`` is computed on first use (``sympy.diff`` of ``grad_log_odds``; the costliest form, which
    most callers never read) unless given as ``given_hessian``.

    Source: reconstruction §1-§2.1 (quantities), DERIVED.

    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> cf = ClosedForms(family="demo", structure="toy", theta=(x,), success_rate=sp.S.Half,
    ...     gradient_gap=sp.ImmutableMatrix([0]), grad_success_rate=sp.ImmutableMatrix([0]), norm_gap_sq=sp.S.Zero,
    ...     log_odds=sp.S.Zero, grad_log_odds=sp.ImmutableMatrix([x**2]), e_score_success=sp.ImmutableMatrix([0]),
    ...     e_score_failure=sp.ImmutableMatrix([0]), e_score=sp.ImmutableMatrix([0]))
    >>> cf.n, cf.hessian_log_odds
    (1, Matrix([[2*x]]))
    """

    family: str
    structure: str
    theta: tuple[sp.Symbol, ...]
    success_rate: sp.Expr
    gradient_gap: sp.ImmutableMatrix
    grad_success_rate: sp.ImmutableMatrix
    norm_gap_sq: sp.Expr
    log_odds: sp.Expr
    grad_log_odds: sp.ImmutableMatrix
    e_score_success: sp.ImmutableMatrix
    e_score_failure: sp.ImmutableMatrix
    e_score: sp.ImmutableMatrix
    token_gaps: tuple[sp.ImmutableMatrix, ...] | None = None
    failure_rate: sp.Expr | None = None
    probabilities: tuple = ()
    unique_correct_log_prob: sp.Expr | None = None
    given_hessian: sp.ImmutableMatrix | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        """Number of parameters."""
        return len(self.theta)

    @cached_property
    def hessian_log_odds(self) -> sp.ImmutableMatrix:
        r""":math:`\nabla^2_\theta\ell`: ``given_hessian``, else ``sympy.diff`` of ``grad_log_odds`` (once)."""
        if self.given_hessian is not None:
            return self.given_hessian
        n = self.n
        return sp.ImmutableMatrix(n, n, lambda i, j: sp.diff(self.grad_log_odds[i], self.theta[j]))

    @classmethod
    def from_parts(cls, family: str, structure: str, theta: tuple[sp.Symbol, ...], J: sp.Expr, F: sp.Expr,
                   gap: sp.MatrixBase, plus: sp.MatrixBase, minus: sp.MatrixBase, mean: sp.MatrixBase,
                   **extra: object) -> ClosedForms:
        r"""The closed forms from :math:`J`, the failure rate :math:`F=1-J`, :math:`g`, :math:`\mathbb E_\pm[s]`
        and :math:`\mathbb E[s]`: adds :math:`\|g\|^2=g^\top g` and the :func:`derived_forms` of :math:`J`
        (``extra``: ``token_gaps``, ``probabilities``, ``unique_correct_log_prob``).

        >>> t = theta_symbols(1)
        >>> J = 1 / (1 + sp.exp(-t[0]))
        >>> one = sp.ImmutableMatrix([1])
        >>> ClosedForms.from_parts("demo", "toy", t, J, 1 - J, one, one, one, one).norm_gap_sq
        1
        """
        gap = sp.ImmutableMatrix(gap)
        return cls(family=family, structure=structure, theta=theta, success_rate=J, gradient_gap=gap,
                   norm_gap_sq=(gap.T * gap)[0], e_score_success=sp.ImmutableMatrix(plus),
                   e_score_failure=sp.ImmutableMatrix(minus), e_score=sp.ImmutableMatrix(mean),
                   **extra, **derived_forms(theta, J, F, hessian=False))

    def named(self) -> dict[str, sp.Basic]:
        """The main closed forms by name (for printing)."""
        return {
            "J": self.success_rate,
            "log_odds": self.log_odds,
            "e_score_success": self.e_score_success,
            "e_score_failure": self.e_score_failure,
            "gradient_gap": self.gradient_gap,
            "grad_J": self.grad_success_rate,
            "norm_gap_sq": self.norm_gap_sq,
        }


@dataclass(frozen=True)
class Constant:
    r"""One family constant: its exact value (or ``None``), how it is attained, and why.

    >>> Constant(value=sp.S.Half, attainment="maximum", proof="two arms at 1/2").value
    1/2
    """

    value: sp.Expr | None
    attainment: Attainment | None
    proof: str


@dataclass(frozen=True)
class FamilyConstants:
    r"""The constants of the paper's assumptions for one family member.

    :math:`L_o=\sup_{\theta,o}\|\nabla^2\log\pi_\theta(o)\|_{op}`,
    :math:`G_o=\sup_{\theta,o}\|\nabla\log\pi_\theta(o)\|`,
    ``smoothness_J`` :math:`=\sup_\theta\|\nabla^2J(\theta)\|_{op}`; each a :class:`Constant`.

    Source: reconstruction §3 (A1, A2), INFERRED; values DERIVED.

    >>> c = Constant(sp.S.Half, "maximum", "p")
    >>> FamilyConstants(L_o=c, G_o=c, smoothness_J=c).L_o.value
    1/2
    """

    L_o: Constant
    G_o: Constant
    smoothness_J: Constant

    def as_dict(self) -> dict[str, dict[str, str | None]]:
        """Plain-text form for JSON output."""
        out: dict[str, dict[str, str | None]] = {}
        for name in ("L_o", "G_o", "smoothness_J"):
            c: Constant = getattr(self, name)
            out[name] = {
                "value": None if c.value is None else str(c.value),
                "latex": None if c.value is None else sp.latex(c.value),
                "numeric": None if c.value is None else str(sp.N(c.value, 20)),
                "attainment": c.attainment,
                "proof": c.proof,
            }
        return out


@dataclass(frozen=True)
class IdentityResult:
    r"""An identity and the outcome of its exact proof: ``proved`` only if the difference is exactly 0.

    >>> IdentityResult("E_pi[score] = 0", True, "cancel").proved
    True
    """

    name: str
    proved: bool
    detail: str
    seconds: float = field(default=0.0, compare=False)


def exact(value: float | int | sp.Basic) -> sp.Expr:
    r"""The exact rational value of a float (its binary expansion), :math:`x \mapsto \mathrm{Rational}(x)`.

    Source: docs/DESIGN.md (exact substitution), DERIVED.

    >>> exact(0.5), exact(2)
    (1/2, 2)
    """
    if isinstance(value, sp.Basic):
        return value
    return sp.Rational(value)


def at_instance(expr: sp.Basic, symbols: Sequence[sp.Symbol], values: Iterable[float]) -> sp.Basic:
    r"""Substitute ``values`` (floats, made exact by :func:`exact`) for ``symbols`` in ``expr``.

    Source: docs/DESIGN.md (exact substitution), DERIVED.

    >>> x = sp.Symbol("x")
    >>> at_instance(sp.exp(x) + x, (x,), (0.25,))
    1/4 + exp(1/4)
    """
    mapping = {s: exact(v) for s, v in zip(symbols, values, strict=True)}
    return expr.xreplace(mapping)


def evaluate(expr: sp.Basic, digits: int = DIGITS) -> sp.Basic:
    r"""Evaluate an exact expression (or matrix) to ``digits`` significant digits.

    >>> str(evaluate(sp.sqrt(2), 10))
    '1.414213562'
    """
    return expr.evalf(digits)


def _exact_value_at_a_point(expr: sp.Expr) -> sp.Rational | None:
    r"""``expr`` at a fixed rational point of its free symbols (the k-th symbol by name gets
    :math:`\pm\frac{k+2}{k+3}`, positive where the symbol is non-negative), when that value is an exact finite
    rational -- so a rational function; ``None`` otherwise (transcendental parts, a pole, integer symbols).

    >>> x, y = sp.Symbol("x", positive=True), sp.Symbol("y", real=True)
    >>> _exact_value_at_a_point(x / (1 + y)), _exact_value_at_a_point(sp.exp(x)) is None
    (8/3, True)
    """
    symbols = sorted(expr.free_symbols, key=str)
    if any(s.is_integer for s in symbols):
        return None
    point = {s: sp.Rational(k + 2, k + 3) * (1 if s.is_nonnegative or k % 2 == 0 else -1)
             for k, s in enumerate(symbols)}
    value = expr.xreplace(point)
    return value if isinstance(value, sp.Rational) else None


def prove_zero(diff: sp.Expr, substitution: Mapping[sp.Basic, sp.Basic] | None = None) -> tuple[bool, str]:
    r"""Prove ``diff`` :math:`\equiv 0` exactly; returns ``(proved, strategy)``.

    Strategies, cheapest first: the expression is already 0; after ``substitution`` (typically
    :math:`\theta_i=\log x_i`, which makes softmax expressions rational) ``together`` + ``expand`` of the
    numerator is 0; ``cancel`` is 0; ``simplify`` is 0. A difference that no strategy reduces to the
    literal 0 is reported as not proved (never as proved).

    Source: reconstruction §2.1 (the identities it proves), DERIVED; the strategies are this project's.

    >>> x = sp.Symbol("x", positive=True)
    >>> prove_zero(x / (1 + x) - 1 + 1 / (1 + x))
    (True, 'together+expand')
    >>> prove_zero(x - 1)[0]
    False
    """
    expr = sp.sympify(diff)
    if substitution:
        expr = expr.subs(dict(substitution))
    if expr == 0:
        return True, "literal"
    value = _exact_value_at_a_point(expr)
    if value is not None and value != 0:  # a rational function that is not 0 somewhere: refuted, no simplify
        return False, f"difference is {value} (not 0) at a rational point"
    num, _ = sp.fraction(sp.together(expr))
    if sp.expand(num) == 0:
        return True, "together+expand"
    if sp.cancel(expr) == 0:
        return True, "cancel"
    if sp.simplify(expr) == 0:
        return True, "simplify"
    return False, "difference did not simplify to 0"


def prove_zero_matrix(diff: sp.MatrixBase, substitution: Mapping[sp.Basic, sp.Basic] | None = None
                      ) -> tuple[bool, str]:
    r"""Apply :func:`prove_zero` to every entry; proved iff every entry is exactly 0.

    >>> x = sp.Symbol("x", positive=True)
    >>> prove_zero_matrix(sp.Matrix([x - x, 1 / x - 1 / x]))
    (True, 'literal')
    """
    strategies: list[str] = []
    for k, entry in enumerate(diff):
        ok, how = prove_zero(entry, substitution)
        if not ok:
            return False, f"entry {k}: {how}"
        strategies.append(how)
    worst = max(strategies, key=["literal", "together+expand", "cancel", "simplify"].index, default="literal")
    return True, worst


def timed(name: str, fn, *args) -> IdentityResult:
    """Run ``fn(*args) -> (proved, detail)`` and wrap it in an :class:`IdentityResult` with the time taken."""
    start = time.perf_counter()
    proved, detail = fn(*args)
    return IdentityResult(name=name, proved=bool(proved), detail=detail, seconds=time.perf_counter() - start)


def theta_symbols(n: int, name: str = "theta") -> tuple[sp.Symbol, ...]:
    r"""The flat parameter symbols :math:`\theta_0,\dots,\theta_{n-1}` (real).

    >>> theta_symbols(2)
    (theta_0, theta_1)
    """
    return tuple(sp.Symbol(f"{name}_{i}", real=True) for i in range(n))


def log_substitution(theta: Sequence[sp.Symbol], name: str = "x") -> dict[sp.Symbol, sp.Expr]:
    r"""The substitution :math:`\theta_i=\log x_i` (``x_i`` positive), under which softmax expressions in
    :math:`e^{\theta_i}` become rational functions of the :math:`x_i`.

    >>> t = theta_symbols(1)
    >>> sp.exp(2 * t[0]).subs(log_substitution(t))
    x_0**2
    """
    return {s: sp.log(sp.Symbol(f"{name}_{i}", positive=True)) for i, s in enumerate(theta)}


def column(entries: Iterable[sp.Basic]) -> sp.ImmutableMatrix:
    """An immutable column vector."""
    items = list(entries)
    return sp.ImmutableMatrix(len(items), 1, items)


def derived_forms(theta: Sequence[sp.Symbol], J: sp.Expr, F: sp.Expr | None = None, *, hessian: bool = True
                  ) -> dict[str, sp.Basic]:
    r"""The forms obtained from :math:`J` by differentiation: :math:`\nabla J`, :math:`\ell=\log\frac{J}{F}`
    (:math:`F` the failure rate, :math:`1-J` by default), :math:`\nabla\ell` and :math:`\nabla^2\ell`
    (``sympy.diff``, no simplification; the Hessian is left out with ``hessian=False``).

    Source: reconstruction §2.1 (log-odds), DERIVED.

    >>> t = theta_symbols(1)
    >>> sp.simplify(derived_forms(t, 1 / (1 + sp.exp(-t[0])))["grad_log_odds"][0])
    1
    """
    F = 1 - J if F is None else F
    ell = sp.log(J) - sp.log(F)
    grad_J = column(sp.diff(J, s) for s in theta)
    grad_ell = column(sp.diff(ell, s) for s in theta)
    n = len(theta)
    out = {"grad_success_rate": grad_J, "log_odds": ell, "grad_log_odds": grad_ell, "failure_rate": F}
    if hessian:
        out["hessian_log_odds"] = sp.ImmutableMatrix(n, n, lambda i, j: sp.diff(grad_ell[i], theta[j]))
    return out


def check_direction(w: Iterable[float], n: int) -> sp.ImmutableMatrix:
    """A direction ``w`` of length ``n`` as an exact column vector, or a :class:`GradgapError`."""

    values = check_finite_vector("w", w, length=n)
    return column(exact(v) for v in values)


def check_response(response: Iterable[int], length: int, size: int) -> tuple[int, ...]:
    """A response: ``length`` token indices in ``range(size)``, or a :class:`GradgapError`."""

    if isinstance(response, str | bytes) or not isinstance(response, Iterable):
        raise GradgapTypeError(f"response={response!r}: must be a tuple of token indices",
                               field="response", value=response)
    out = tuple(response)
    if len(out) != length:
        raise GradgapValueError(f"response={out!r}: must have length {length}", field="response", value=out)
    for v in out:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < size:
            raise GradgapValueError(f"response={out!r}: entry {v!r} is not an index in 0..{size - 1}",
                                    field="response", value=out)
    return out



# ---------------------------------------------------------------------------- quantities at an instance


#: the public names every symbolic family module (``softmax``, ``tokens``, ``shared_tokens``) defines, sorted
FAMILY_NAMES: Final[tuple[str, ...]] = (
    "alignment", "closed_forms", "conditional_score", "constants", "expected_score", "grad_log_odds",
    "grad_success_rate", "gradient_gap", "hessian_log_odds", "log_odds", "parameters", "prove_identities",
    "reward", "score", "success_rate",
)


def substitute(cf: ClosedForms, expr: sp.Basic, inst: Any) -> sp.Basic:
    r"""A structural closed form of ``cf`` at the instance: the parameter symbols ``cf.theta`` replaced by the
    instance's exact parameter values (:func:`at_instance`), so ``.evalf(50)`` gives 50 digits.

    >>> from types import SimpleNamespace
    >>> cf = SimpleNamespace(theta=theta_symbols(2))
    >>> substitute(cf, cf.theta[1] * 2, SimpleNamespace(theta=(0.0, 0.25)))
    1/2
    """
    return at_instance(expr, cf.theta, inst.theta)
