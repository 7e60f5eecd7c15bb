r"""All numeric tolerances of the project in one table: ``(rtol, atol)`` per route pair, and the few scalar
thresholds that decide a comparison.

A comparison ``|a - b| <= atol + rtol * |b|``. Routes: ``symbolic`` (SymPy evaluated at 50 digits),
``enumerate``, ``structured``, ``autograd`` (all float64, exact up to rounding), ``fd`` (central finite
differences, truncation error O(h^2) plus rounding O(eps/h)). Monte Carlo is not in this table: its
tolerance comes from the estimator's standard error and a stated false-alarm rate (:data:`MC_ALPHA`).

Each entry says why it has its value; a loosened entry says why it is loose. Modules import from here (the
search re-exports its screens under their old names); tests never write ``rtol=`` literals.

Not tolerances, and so left where they are: floors that keep a logarithm or a quotient finite (``1e-300``),
plot clipping, and guards that skip degenerate draws (a direction of norm below ``1e-3``, a success rate within
``1e-6`` of 0 or 1, a Gradient Gap of norm ``<= 1e-9``), which decide what is drawn, not what passes.
"""

from __future__ import annotations

from typing import Final

from gradgap.numerics._routes import FD_STEP as FD_STEP  # re-exported: one definition, in the numerics

# ------------------------------------------------------------------ float64 routes

#: float64 routes that compute the same quantity by different exact formulas
EXACT: Final[tuple[float, float]] = (1e-9, 1e-12)
#: central finite differences with step h = 1e-5 on O(1) parameters: error ~ h^2 * f''' + eps / h ~ 1e-10;
#: loosened to 1e-6 because f''' grows with T for sequence families.
FD: Final[tuple[float, float]] = (1e-6, 1e-7)
#: step of central finite differences: the numerics' default, defined once in gradgap.numerics._routes
#: relative slack of one comparison between float64 values that are exact up to rounding (a bound and a value
#: computed at 40 digits, then rounded): float64 rounding is ~1e-16 relative, 1e-12 leaves four decades for
#: the few operations in between, far below any real violation the checks look for (>= 1e-6)
ROUNDING: Final[float] = 1e-12
#: the largest angle (degrees) between E[w] and g that counts as parallel: exact enumeration in float64 with the
#: atan2 angle gives ~1e-14 degrees; 1e-6 leaves eight decades for ill-conditioned instances and is still far
#: below the smallest real turn (DAPO at G = 4: 1.98 degrees, docs/claims-math.md)
ANGLE_DEG: Final[float] = 1e-6
#: absolute: the covariance formula Cov_+ - Cov_- of the log-odds Hessian against the autograd Hessian at the
#: sharpest-constant maximisers. Both are float64 (observed ~1e-16); the value leaves room for maximisers far
#: out (large logits), where the covariance difference cancels, and is still far below the O(0.1) error of a
#: wrong formula
HESSIAN_ROUTES: Final[float] = 1e-6

# ------------------------------------------------------------------ the Hypothesis search (proofs_check.search)

#: float64 screen: a point is re-evaluated at 50 digits when its relative margin is negative, or for a strict
#: relation below this (or nan). 1e-12 of the relation's scale 1 + |lhs| + |rhs| is a few thousand ulps: above
#: the rounding of the vocabulary's float64 routes, so ties of a strict relation are screened, never failed
#: (only the 50-digit verdict fails a point). Mutation testing uses it too: two float64 margins closer than this
#: (relative) count as equal when deciding the unsafe direction of a mutant.
SCREEN_RTOL: Final[float] = 1e-12
#: float64 screen for ``==``: only differences above this (relative) are candidates. Looser than
#: :data:`SCREEN_RTOL` because the two sides of an identity come from different float64 routes, which agree to
#: :data:`EXACT`'s rtol (1e-9), not to rounding
SCREEN_EQ_RTOL: Final[float] = 1e-9
#: 50-digit verdict: a relation is violated when its margin is below ``-HP_RTOL * scale`` (``<=`` for strict).
#: 50 digits give ~1e-50; the closed forms lose at most ~15 digits to cancellation, so 1e-35 is above the noise
#: and far below any real violation (a float64 screen flags margins of at least ~1e-12). Written as a string:
#: Hypothesis seeds its draws with the numeric literals of the project's modules, and a new literal 1e-35 would
#: change the derandomised draws of every search (and steer them to 1e-35-sized parameters)
HP_RTOL: Final[float] = float("1e-35")
#: 50-digit residuals of an identity (relative to ``1 + |a| + |b|``) below this count as zero: twenty digits of
#: headroom for cancellation in the closed forms of the longest sequences, and far below float64's resolution,
#: so a real disagreement (what made the float64 screen fire) shows as a residual of ~1e-16 or more
HP_ZERO: Final[float] = 1e-30

# ------------------------------------------------------------------ sharp and attained constants

#: a constant claimed sharp (a supremum) must be approached: some configuration reaches at least this share
#: of it at 50 digits, else the claim FAILS. 0.999 is three decades above the rounding of a 50-digit
#: evaluation and still far below the near-attaining configurations' ratios (1 - O(e^{-30})); a constant off
#: by 0.1 % or more is not called sharp. Written as a string for the reason given at :data:`HP_RTOL`
SHARP_RATIO: Final[float] = float("0.999")

# ------------------------------------------------------------------ Monte Carlo

#: false-alarm rate of one Monte-Carlo z-test (Bonferroni-corrected over the coordinates tested)
MC_ALPHA: Final[float] = 1e-4

#: a Monte-Carlo standard error against the exact one, sigma/sqrt(n): the sample standard deviation of n = 4000
#: draws is within ~3/sqrt(2n) ~ 3.4 % of sigma (3 standard errors of a standard deviation, near-normal
#: scores); 15 % leaves a margin and still rejects a standard error off by 1.2x or more
MC_STDERR_RTOL: Final[float] = 0.15

# ------------------------------------------------------------------ dynamics (simulated vs closed form)

#: closed-form critical step vs simulated: 5 % (the agreement docs/thresholds.md asks of a simulation), ten times the
#: bisection's resolution
AGREEMENT: Final[float] = 0.05
#: bisection resolution of a simulated critical step: relative width of the final bracket (a tenth of
#: :data:`AGREEMENT`, so the bracket never decides an agreement)
BISECT_RTOL: Final[float] = 0.005
#: fitted log-log slope vs declared exponent: on top of 3 standard errors, the bisection's resolution in
#: log-log units (points off by up to log(1 + BISECT_RTOL) ~ 0.005 move a slope fitted over T = 8..64 by at
#: most ~0.005), rounded up generously
SLOPE_SLACK: Final[float] = 0.02
#: extra slack of the success-rate slope: the fit starts at J* = 0.9, which is not yet asymptotic in 1 - J*
PREASYMPTOTIC_SLACK: Final[float] = 0.05

# ------------------------------------------------------------------ external kernels

#: float32 tolerance of TRL's fused log-prob kernel (log-softmax + gather of the sampled token in float32,
#: reduced over the vocabulary in chunks) against a float64 reference: float32 rounds to ~6e-8 relative per
#: operation and the reduction over V adds a few hundred of those, so rtol 1e-5 leaves a decade; atol 1e-9
#: covers log-probs that round to ~0 (tests/test_grpo_probe.py)
TRL_FP32: Final[tuple[float, float]] = (1e-5, 1e-9)


def close(a: float, b: float, tol: tuple[float, float]) -> bool:
    """``|a - b| <= atol + rtol |b|``."""
    rtol, atol = tol
    return abs(a - b) <= atol + rtol * abs(b)
