r"""All numeric tolerances of the project in one table: ``(rtol, atol)`` per route pair.

A comparison ``|a - b| <= atol + rtol * |b|``. Routes: ``symbolic`` (SymPy evaluated at 50 digits),
``enumerate``, ``structured``, ``autograd`` (all float64, exact up to rounding), ``fd`` (central finite
differences, truncation error O(h^2) plus rounding O(eps/h)). Monte Carlo is not in this table: its
tolerance comes from the estimator's standard error and a stated false-alarm rate (:data:`MC_ALPHA`).
"""

from __future__ import annotations

from typing import Final

#: float64 routes that compute the same quantity by different exact formulas
EXACT: Final[tuple[float, float]] = (1e-9, 1e-12)
#: central finite differences with step h = 1e-5 on O(1) parameters: error ~ h^2 * f''' + eps / h ~ 1e-10;
#: loosened to 1e-6 because f''' grows with T for sequence families.
FD: Final[tuple[float, float]] = (1e-6, 1e-7)
#: step of central finite differences
FD_STEP: Final[float] = 1e-5
#: false-alarm rate of one Monte-Carlo z-test (Bonferroni-corrected over the coordinates tested)
MC_ALPHA: Final[float] = 1e-4


def close(a: float, b: float, tol: tuple[float, float]) -> bool:
    """``|a - b| <= atol + rtol |b|``."""
    rtol, atol = tol
    return abs(a - b) <= atol + rtol * abs(b)
