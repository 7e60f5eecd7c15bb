r"""The numbers ``gradgap gap`` reports for one instance, and the cost estimate that guards every route.

:func:`report` gives :math:`J`, :math:`\nabla J`, the Gradient Gap :math:`g` with :math:`\|g\|` and the
log-odds :math:`\ell=\log\frac{J}{1-J}` of one instance by one numeric route of :mod:`gradgap.numerics`, as
JSON-ready data (never NaN or Infinity: such a value is ``None`` and ``notes`` says why).

:func:`route_cost` estimates, before anything is allocated, the work of a route in float64 entries
(responses times their length for ``enumerate``; samples times length for ``mc``; positions for ``autograd``
on the shared family, which unrolls the length); :func:`check_budget` refuses a route beyond
:data:`DEFAULT_BUDGET` entries (about 0.4 GB of float64), overridable with ``budget=`` (``--max-cost``).

Source: reconstruction §2 (definitions of J, g and ℓ, QUOTED); the routes are this project's (DERIVED).
"""

from __future__ import annotations

import math
from typing import Any, Final

from gradgap.theory.instances import GradgapValueError, family_name

__all__ = ["DEFAULT_BUDGET", "DEFAULT_MC_SAMPLES", "check_budget", "report", "route_cost"]

#: the largest estimated work (float64 entries) a route may take unless the caller raises it
DEFAULT_BUDGET: Final[float] = 5e7
#: the Monte-Carlo sample size when none is given (the numerics default)
DEFAULT_MC_SAMPLES: Final[int] = 10_000


def _shape(inst: Any) -> tuple[int, int, int]:
    """``(L, A, n)``: response length, alphabet size and number of parameters of ``inst`` (from the family's
    numeric twin: its ``response_shape``)."""
    from gradgap.proofs_check import families  # lazy: the registry imports sympy and the twins

    try:
        twin = families.numerics_module(inst).FAMILY
    except GradgapValueError:
        raise GradgapValueError(f"instance={type(inst).__name__}: not a policy instance", field="instance",
                                value=inst) from None
    L, A = twin.response_shape(inst)
    return L, A, len(inst.theta)


def route_cost(inst: Any, method: str, n: int | None = None) -> float:
    r"""Estimated work of ``method`` on ``inst`` in float64 entries (a float: it may be astronomically large).

    ``enumerate``: :math:`A^L (L + n)`; ``mc``: :math:`N (L + n) + L A`; ``autograd``/``structured``/``fd``:
    the parameters and the per-position tables (:math:`T V + T m` for tokens, whose count recursion is
    :math:`T\times m`; :math:`T + V d` for shared tokens under autograd, which unrolls the positions),
    times :math:`2n` evaluations for ``fd``.

    >>> from gradgap.theory.instances import SoftmaxBandit
    >>> route_cost(SoftmaxBandit(logits=(0.0, 1.0), correct={0}), "enumerate")
    6.0
    """
    L, A, n_params = _shape(inst)
    if method == "enumerate":
        log_total = L * math.log(A) + math.log(L + n_params)
        return math.exp(log_total) if log_total < 700 else math.inf
    if method == "mc":
        samples = DEFAULT_MC_SAMPLES if n is None else n
        return float(samples) * (L + n_params) + L * A
    from gradgap.proofs_check import families

    base = families.numerics_module(inst).FAMILY.table_cost(inst, method)
    return base * (2 * n_params + 1) if method == "fd" else base


def check_budget(inst: Any, method: str, n: int | None = None, budget: float = DEFAULT_BUDGET) -> float:
    """The cost of :func:`route_cost`; a one-line error naming the cheaper route when it exceeds ``budget``."""
    cost = route_cost(inst, method, n)
    if cost > budget:
        shown = "astronomical" if math.isinf(cost) else f"{cost:.2g}"
        hint = "use --method structured" if method != "structured" else "use smaller sizes"
        if method == "mc":
            hint = "use a smaller --n or --method structured"
        raise GradgapValueError(f"method={method!r}: estimated cost {shown} float64 entries exceeds the budget "
                                f"{budget:.2g} (raise it with --max-cost); {hint}", field="method", value=method)
    return cost


def report(inst: Any, method: str, n: int | None = None, seed: int | None = None,
           budget: float = DEFAULT_BUDGET) -> dict[str, Any]:
    """The report as a JSON-ready dict: values, ``*_stderr`` for ``mc``, and ``notes`` for nulls."""
    import numpy as np

    from gradgap.proofs_check import families

    check_budget(inst, method, n, budget)
    num = families.numerics_module(inst)
    kwargs: dict[str, Any] = {"n": n, "seed": seed} if method == "mc" else {}
    out: dict[str, Any] = {"family": family_name(inst), "method": method}
    notes: dict[str, str] = {}

    def put(key: str, fn: Any, **kw: Any) -> None:
        try:
            value = fn(inst, method=method, **kw)
        except NotImplementedError as exc:
            out[key] = None
            notes[key] = str(exc)
            return
        if hasattr(value, "stderr"):
            out[key + "_stderr"] = _clean(key + "_stderr", value.stderr, notes)
            out["n"] = value.n
            value = value.mean
        out[key] = _clean(key, value, notes)

    put("J", num.success_rate, **kwargs)
    put("log_odds", num.log_odds)
    put("grad_J", num.grad_success_rate, **kwargs)
    put("gradient_gap", num.gradient_gap, **kwargs)
    gap = out["gradient_gap"]
    if gap is None or any(x is None for x in gap):
        out["gradient_gap_norm"] = None
        notes["gradient_gap_norm"] = "gradient_gap is not available"
    else:
        out["gradient_gap_norm"] = float(np.linalg.norm(np.asarray(gap, dtype=np.float64)))
    per_prompt = getattr(num, "per_prompt_success_rate", None)
    if per_prompt is not None:  # the contextual family: per-prompt J_x and g_x (P x d), structured route
        out["per_prompt_J"] = _clean("per_prompt_J", per_prompt(inst), notes)
        gaps = np.asarray(num.per_prompt_gradient_gap(inst), dtype=np.float64)
        out["per_prompt_gradient_gap"] = [_clean("per_prompt_gradient_gap", row, notes) for row in gaps]
        if method != "structured":
            notes["per_prompt"] = "per_prompt_J and per_prompt_gradient_gap use the structured route"
    if isinstance(out.get("J"), float) and out["J"] in (0.0, 1.0):
        notes.setdefault("J", f"J rounds to {out['J']:g} in float64; log_odds keeps the exact information")
    out["notes"] = notes
    return out


def _clean(key: str, value: Any, notes: dict[str, str]) -> Any:
    """Floats (or lists of floats) with every non-finite entry replaced by ``None`` and a note."""
    import numpy as np

    arr = np.asarray(value, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        notes[key] = (f"{int(bad.sum())} entr{'y is' if bad.sum() == 1 else 'ies are'} not finite in float64 "
                      f"under this method (shown as null); the structured method is log-space stable")
    if arr.ndim == 0:
        return None if bad else float(arr)
    return [None if b else float(x) for x, b in zip(arr.reshape(-1).tolist(), bad.reshape(-1).tolist(),
                                                    strict=True)]
