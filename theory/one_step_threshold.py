r"""The exact one-step threshold :math:`\eta^\star` along a direction, against Theorem 1's sufficient step.

Notation (paper symbol -> name):

=============================  ===============================  ==============================================
paper                          here                              meaning
=============================  ===============================  ==============================================
:math:`\eta^\star(\theta,w)`   :func:`eta_star`                  largest step along ``w`` that never lowers J
:math:`\eta_{\rm thm}`         :func:`eta_theorem`               Theorem 1's :math:`[\Delta\mu]_+/(2(L_o+8G_o^2))`
:math:`g`, :math:`\nabla J`    :func:`gradient_gap_direction`    the Gradient Gap / policy gradient at 30+ digits
=============================  ===============================  ==============================================

.. math::  \eta^\star(\theta,w)=\sup\{\eta>0 : J(\theta+sw)\ge J(\theta)\ \forall s\in(0,\eta]\}.

Two routes, chosen *before* any large object is built (:func:`estimate_degree`):

``polynomial``  rational w with a small common denominator q of the slopes :math:`a_v=\langle w,\phi(v)\rangle`:
                with :math:`z=e^{s/q}` the sign of :math:`J(\theta+sw)-J(\theta)` is that of a polynomial P(z)
                (coefficients :math:`e^{z_v}` rationalised at ``digits`` digits); SymPy isolates its first root
                z > 1 of odd multiplicity.
``ball``        any other w (floats, 17-digit decimals, huge denominators, K up to :math:`10^4`): a float64
                scan of the sign function of :mod:`gradgap.theory.intervals` locates the first sign change,
                float bisection refines it.

A mixture over prompts (``contextual``: :math:`J(\theta+sw)=\sum_x\rho_xp_x(s)`, no product form) always takes
the ball route: the float sign is read from two sums with rounding bounds (the per-prompt quotients
:math:`G_x/\delta_x` near s = 0, :math:`p_x(s)q_x(0)-p_x(0)q_x(s)` further out) and Arb encloses the sign function
by :class:`gradgap.theory.intervals.MixtureBallLine`.

Either way ``certified`` is true only when Arb balls (:func:`gradgap.theory.intervals.certify_first_root`)
proved :math:`J>J(\theta)` on :math:`(0,lo]` and :math:`J(\theta+hi\,w)<J(\theta)` for the *true* J, so that
:math:`\eta^\star\in[lo,hi]`. An infinite value on the ball route means "no crossing for
:math:`s\le` ``s_max``" and is never certified.

Source: reconstruction §4.1 (sufficient step of Theorem 1, QUOTED-2nd; the threshold along a direction,
DERIVED by this project, docs/thresholds.md). Numeric twin: ``gradgap.numerics.one_step_threshold``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

import mpmath
import numpy as np
import sympy as sp
from flint import arb
from flint import ctx as flint_ctx
from scipy.special import logsumexp

from gradgap.theory import _loglinear as ll
from gradgap.theory import intervals, poisson_binomial
from gradgap.theory.instances import GradgapValueError, Instance, SoftmaxBandit  # noqa: F401 (doctests)

__all__ = ["MAX_DEGREE", "S_MAX", "EtaStar", "estimate_degree", "eta_star", "eta_theorem",
           "gradient_gap_direction"]

#: largest polynomial degree the exact route builds (beyond it: the ball route)
MAX_DEGREE: Final[int] = 120
#: largest number of ball operations per evaluation of the line for which an Arb certificate is attempted
CERTIFY_BUDGET: Final[int] = 200_000
#: largest T * m of the at-least-m Poisson-binomial DP (Arb) that the gradient computes
DP_BUDGET: Final[int] = 500_000
#: the ball route scans :math:`s\,\|w\|\in(0, S_{\max}]` (a unit step of at most S_MAX)
S_MAX: Final[float] = 1e3
_Z: Final = sp.Symbol("z", positive=True)
#: largest spread of the logits of one position for the polynomial route (its coefficients are e^{z_v - max z})
_MAX_SPREAD: Final[int] = 10_000


@dataclass(frozen=True)
class EtaStar:
    r"""The one-step threshold along ``w``: ``value`` (``math.inf`` when no crossing was found), the
    enclosure ``(lo, hi)``, the ``route`` (``polynomial``, ``ball`` or ``constant``), whether Arb certified
    :math:`\eta^\star\in[lo,hi]`, the polynomial ``degree`` (polynomial route) and the number of Arb ``boxes``
    of the certificate."""

    value: float
    lo: float
    hi: float
    route: str
    certified: bool
    degree: int | None = None
    boxes: int = 0


def _fractions(w: Sequence[object]) -> tuple[Fraction, ...]:
    out = []
    for x in w:
        if type(x) is Fraction:
            out.append(x)
            continue
        if isinstance(x, sp.Rational):
            out.append(Fraction(int(x.p), int(x.q)))
            continue
        if isinstance(x, bool) or not isinstance(x, Fraction | int | float | mpmath.mpf):
            raise GradgapValueError(f"w={x!r}: entries must be numbers", field="w", value=x)
        if isinstance(x, float) and not math.isfinite(x):
            raise GradgapValueError(f"w={x!r}: entries must be finite", field="w", value=x)
        if isinstance(x, mpmath.mpf):
            if not mpmath.isfinite(x):
                raise GradgapValueError(f"w={x!r}: entries must be finite", field="w", value=x)
            sign, man, exp, _ = x._mpf_
            out.append(Fraction(-int(man) if sign else int(man)) * (Fraction(2) ** int(exp)))
            continue
        out.append(Fraction(x))
    return tuple(out)


def _slope_span(t: ll.LineType, q: int) -> int:
    ints = [int(a * q) for a in t.a]
    return max(ints) - min(ints)


def estimate_degree(lines: Sequence[ll.LineType], m: int, *, limit: int = 10**9) -> tuple[int, int]:
    r"""(degree bound of P, q) without building P: q is the common denominator of the slopes; the degree is
    the sum of the slope spans :math:`q(\max_v a_v-\min_v a_v)` (times the multiplicity for a product of
    several types). Returns ``(limit + 1, q)`` as soon as the bound exceeds ``limit``."""
    q = 1
    for t in lines:
        for a in t.a:
            q = math.lcm(q, a.denominator)
            if q > limit:
                return limit + 1, q
    counts = [t.count for t in lines]
    product = ll.is_product(counts, m)
    deg = 0
    for t in lines:
        mult = t.count if product and len(lines) > 1 else 1
        deg += mult * _slope_span(t, q)
        if deg > limit:
            return limit + 1, q
    return deg, q


def _polynomial(lines: Sequence[ll.LineType], m: int, q: int, digits: int) -> sp.Poly:
    r"""P(z) with :math:`\mathrm{sign}\,P(e^{s/q})=\mathrm{sign}(J(\theta+sw)-J(\theta))` for s > 0;
    coefficients :math:`e^{z_v}` rationalised at ``digits`` digits (built from coefficient dicts)."""
    mpmath.mp.dps = digits + 10
    nums, dens = [], []
    for t in lines:
        ints = [int(a * q) for a in t.a]
        lo = min(ints)
        top = max(t.z)
        num: dict[int, sp.Rational] = {}
        den: dict[int, sp.Rational] = {}
        for v, (n, zv) in enumerate(zip(ints, t.z, strict=True)):
            e = mpmath.exp(mpmath.mpf(zv.numerator) / zv.denominator - (mpmath.mpf(top.numerator) / top.denominator))
            c = sp.Rational(mpmath.nstr(e, digits, min_fixed=-mpmath.inf, max_fixed=mpmath.inf))
            den[n - lo] = den.get(n - lo, sp.S.Zero) + c
            if v in t.correct:
                num[n - lo] = num.get(n - lo, sp.S.Zero) + c
        nums.append(sp.Poly.from_dict({(k,): c for k, c in num.items()} or {(0,): 0}, _Z, domain="QQ"))
        dens.append(sp.Poly.from_dict({(k,): c for k, c in den.items()}, _Z, domain="QQ"))
    if ll.is_product([t.count for t in lines], m):
        if len(lines) == 1:  # (N/D)^T: compare N/D, the T-th root is monotone
            pn, pd = nums[0], dens[0]
        else:
            pn, pd = sp.Poly(1, _Z, domain="QQ"), sp.Poly(1, _Z, domain="QQ")
            for t, n_, d_ in zip(lines, nums, dens, strict=True):
                pn *= n_ ** t.count
                pd *= d_ ** t.count
    else:
        # homogeneous Poisson-binomial tail: hit weight N_t, miss weight D_t - N_t (no division)
        pn = poisson_binomial.tail(nums, m, sp.Poly(1, _Z, domain="QQ"),
                                   comps=[d_ - n_ for n_, d_ in zip(nums, dens, strict=True)])
        pd = sp.Poly(1, _Z, domain="QQ")
        for d_ in dens:
            pd *= d_
    return pn * pd.eval(1) - pd * pn.eval(1)


def _widen(lo: float, hi: float, rel: float) -> tuple[Fraction, Fraction]:
    return Fraction(max(0.0, lo * (1 - rel))), Fraction(hi * (1 + rel))


def _certify(line: intervals.BallLine, lo: float, hi: float, seconds: float) -> tuple[bool, float, float, int]:
    """Certify eta* in a slightly widened [lo, hi] (1e-12, then 1e-8, then 1e-5 relative)."""
    deadline = time.monotonic() + seconds
    boxes = 0
    for rel in (1e-12, 1e-8, 1e-5):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        a, b = _widen(lo, hi, rel)
        cert = intervals.certify_first_root(line, a, b, seconds=left)
        boxes += cert.boxes
        if cert.certified:
            return True, float(a), float(b), boxes
        if cert.reason.startswith("sigma < 0"):  # an earlier crossing: the proposed root is not the first
            break
    return False, lo, hi, boxes


def _eta_star_polynomial(lines: Sequence[ll.LineType], m: int, q: int, digits: int,
                         seconds: float) -> EtaStar:
    P = _polynomial(lines, m, q, digits)
    line = intervals.BallLine(lines, m)
    if P.is_zero:
        return EtaStar(math.inf, math.inf, math.inf, "polynomial", False, 0)
    one = sp.Poly(_Z - 1, _Z)
    while P.eval(1) == 0:
        P = P.exquo(one)
    if P.eval(1) < 0:
        sure = bool(line.enclose(Fraction(0), Fraction(0)) < 0)
        return EtaStar(0.0, 0.0, 0.0, "polynomial", sure, P.degree(), 1)
    best: tuple[sp.Rational, sp.Rational] | None = None
    for factor, mult in P.sqf_list()[1]:
        if mult % 2 == 0:
            continue
        for (lo_z, hi_z), _ in factor.intervals(inf=1, eps=sp.Rational(1, 10**24)):
            if hi_z <= 1:
                continue
            if best is None or lo_z < best[0]:
                best = (sp.Rational(lo_z), sp.Rational(hi_z))
    if best is None:  # no sign change of the rationalised polynomial: J never drops (not certified by Arb)
        return EtaStar(math.inf, math.inf, math.inf, "polynomial", False, P.degree())
    lo = float(q * sp.log(best[0]).evalf(30)) if best[0] > 1 else 0.0
    hi = float(q * sp.log(best[1]).evalf(30))
    if line.cost > CERTIFY_BUDGET:
        return EtaStar(0.5 * (lo + hi), lo, hi, "polynomial", False, P.degree())
    ok, lo_c, hi_c, boxes = _certify(line, lo, hi, seconds)
    return EtaStar(0.5 * (lo_c + hi_c), lo_c, hi_c, "polynomial", ok, P.degree(), boxes)


# --------------------------------------------------------------------------------------------------------
# the ball route: float64 location of the first sign change, Arb certification


def _logphi(x: np.ndarray) -> np.ndarray:
    r""":math:`\log\varphi(x)=\max(x,0)+\log\frac{1-e^{-|x|}}{|x|}`, stable for every real x."""
    ax = np.abs(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.maximum(x, 0.0) + np.log(-np.expm1(-ax) / ax)
    return np.where(ax < 1e-8, x / 2, out)


@dataclass(frozen=True)
class _FloatType:
    log_pi: np.ndarray
    a: np.ndarray
    correct: np.ndarray  # bool mask
    log_c: np.ndarray  # log |(1_C - p0) pi_v a_v|
    sign_c: np.ndarray
    p0: float
    count: int
    log_p0: float  # log p0 and log (1 - p0), each from its own log-sum-exp (no underflow of p0 or 1 - p0)
    log_q0: float


def _float_type(t: ll.LineType) -> _FloatType:
    top = max(t.z)
    zs = np.array([float(z - top) if z - top > -10**300 else -1e300 for z in t.z])
    with np.errstate(over="ignore"):
        a = np.array([float(x) for x in t.a])
    lse = np.log(np.sum(np.exp(zs)))
    log_pi = zs - lse
    mask = np.zeros(len(zs), dtype=bool)
    mask[list(t.correct)] = True
    log_p0, log_q0 = float(logsumexp(log_pi[mask])), float(logsumexp(log_pi[~mask]))
    with np.errstate(divide="ignore"):
        log_c = np.where(mask, log_q0, log_p0) + log_pi + np.log(np.abs(a))
    sign_c = np.where(mask, 1.0, -1.0) * np.sign(a)
    return _FloatType(log_pi, a, mask, log_c, sign_c, math.exp(log_p0), t.count, log_p0, log_q0)


def _signed_lse(logs: np.ndarray, signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sign, log|sum|) of sum_v signs * exp(logs) along the last axis; sign 0 where the sum is below rounding."""
    with np.errstate(invalid="ignore", divide="ignore"):
        top = np.max(np.where(signs != 0, logs, -np.inf), axis=-1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        terms = signs * np.exp(logs - top)
        total = np.sum(terms, axis=-1)
        scale = np.sum(np.abs(terms), axis=-1)
        sign = np.where(np.abs(total) > 1e-13 * scale, np.sign(total), 0.0)
        return sign, np.log(np.abs(total)) + top[..., 0]


def _sigma_float(types: Sequence[_FloatType], m: int, s: np.ndarray) -> np.ndarray:
    """Sign (-1, 0 undecided, 1) of J(theta + s w) - J(theta) for s >= 0 (vector), in float64."""
    x = s[:, None]
    single = len(types) == 1 and ll.is_product([t.count for t in types], m)
    parts = []
    for t in types:
        xa = x * t.a[None, :]
        sg, lG = _signed_lse(t.log_c[None, :] + _logphi(xa), t.sign_c[None, :])
        if single:
            return sg
        lp = t.log_pi[None, :] + xa
        top = np.max(lp, axis=-1, keepdims=True)
        ldelta = np.log(np.sum(np.exp(lp - top), axis=-1)) + top[:, 0]
        parts.append((sg, lG - ldelta))  # sign and log|p(s) - p0| - log s
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        logs = np.log(np.where(s > 0, s, 1.0))
        ys = [sg * np.exp(np.minimum(ld + logs - t.log_p0, 700.0)) for t, (sg, ld) in zip(types, parts,
                                                                                               strict=True)]
        if ll.is_product([t.count for t in types], m):
            total = sum(t.count * np.log1p(np.maximum(y, -1 + 1e-300)) for t, y in zip(types, ys, strict=True))
            d0 = sum(t.count * sg * np.exp(ld - t.log_p0) for t, (sg, ld) in zip(types, parts, strict=True))
            total = np.where(s > 0, total, d0)
            return np.sign(total)
        ps = [t.p0 * (1 + y) for t, y in zip(types, ys, strict=True)]
        tail_s = poisson_binomial.tail(ps, m, np.ones(len(s)))  # every grid point at once
        tail_0 = poisson_binomial.tail([t.p0 for t in types], m, 1.0)
        diff = tail_s - tail_0
        return np.where(np.abs(diff) > 1e-13 * tail_0, np.sign(diff), 0.0)


def _first_crossing(sign: Callable[[np.ndarray], np.ndarray], scan: int, norm: float) -> tuple[float, float] | None:
    """The first grid cell of (0, S_MAX] / norm where ``sign`` is negative, refined by float bisection (undecided
    counts as not negative); ``None`` when there is none, ``(0, s_0)`` when the first grid point is negative."""
    s = np.geomspace(1e-9, S_MAX, scan) / norm
    neg = np.flatnonzero(sign(s) < 0)
    if neg.size == 0:
        return None
    i = int(neg[0])
    if i == 0:
        return 0.0, float(s[0])
    a, b = float(s[i - 1]), float(s[i])
    for _ in range(200):
        mid = 0.5 * (a + b)
        if not a < mid < b:
            break
        if sign(np.array([mid]))[0] < 0:
            b = mid
        else:
            a = mid
    return a, b


def _scan_and_certify(sign: Callable[[np.ndarray], np.ndarray], line: intervals.BallLine | intervals.MixtureBallLine,
                      size: int, norm: float, seconds: float) -> EtaStar:
    """The ball route on a sign function and its Arb line: certified 0 when the slope at 0 is certainly
    negative, else the float crossing, certified when Arb affords it."""
    scan = int(min(2000, max(200, 2e6 // size)))  # grid points: at most ~2e6 terms per scan
    affordable = line.cost <= CERTIFY_BUDGET
    if affordable and line.enclose(Fraction(0), Fraction(0)) < 0:
        return EtaStar(0.0, 0.0, 0.0, "ball", True, None, 1)
    cell = _first_crossing(sign, scan, norm)
    if cell is None:
        return EtaStar(math.inf, math.inf, math.inf, "ball", False)
    a, b = cell
    if a == 0.0:
        return EtaStar(0.0, 0.0, b, "ball", False)
    if not affordable:
        return EtaStar(0.5 * (a + b), a, b, "ball", False)
    ok, lo, hi, boxes = _certify(line, a, b, seconds)
    return EtaStar(0.5 * (lo + hi), lo, hi, "ball", ok, None, boxes)


def _eta_star_ball(lines: Sequence[ll.LineType], m: int, norm: float, seconds: float) -> EtaStar:
    types = [_float_type(t) for t in lines]
    return _scan_and_certify(lambda s: _sigma_float(types, m, s), intervals.BallLine(lines, m),
                             sum(len(t.z) for t in lines), norm, seconds)


def _bounded_sign(logs: Sequence[np.ndarray], signs: Sequence[np.ndarray],
                  sizes: Sequence[np.ndarray]) -> np.ndarray:
    r"""Sign (-1, 0 undecided, 1) of :math:`\sum_i\mathrm{sign}_ie^{\log_i}` along the last axis (terms of all
    arrays together), scale-free (shifted by the largest term). Undecided within the rounding bound
    :math:`\sum_i e^{\log_i}(10^{-13}+10^{-15}m_i)`: a log computed from parts of magnitude :math:`m_i` (``sizes``)
    carries an absolute error of about :math:`m_i` ulps, a relative one in :math:`e^{\log_i}`."""
    lg, sg = np.concatenate(logs, axis=-1), np.concatenate(signs, axis=-1)
    mag = np.concatenate(sizes, axis=-1)
    with np.errstate(invalid="ignore", over="ignore"):
        top = np.max(np.where(sg != 0, lg, -np.inf), axis=-1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        terms = np.where(sg != 0, sg * np.exp(lg - top), 0.0)
        bound = np.sum(np.abs(terms) * (1e-13 + 1e-15 * np.where(np.isfinite(mag), mag, 0.0)), axis=-1)
    total = np.sum(terms, axis=-1)
    return np.where(np.abs(total) > bound, np.sign(total), 0.0)


def _sigma_float_mixture(prompts: Sequence[tuple[float, _FloatType]], s: np.ndarray) -> np.ndarray:
    r"""Sign (-1, 0 undecided, 1) of :math:`\sum_x\rho_x(p_x(s)-p_x(0))` for s >= 0, in float64 and in log space,
    by two sums, each undecided within a rounding bound (so prompts that cancel exactly, a J constant along the
    line, are never read as a crossing):

    * :math:`\rho_x(p_x(s)-p_x(0))/s=\rho_xG_x/\delta_x`, term by term (resolves small s);
    * :math:`\rho_x(p_x(s)\,q_x(0)-p_x(0)\,q_x(s))`, :math:`q=1-p` summed directly (resolves large s, where the
      first sum's terms grow like :math:`1/\delta_x`).

    The first decided sign is returned."""
    x = s[:, None]
    small_logs, small_signs, small_sizes, large_logs, large_signs, large_sizes = [], [], [], [], [], []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for log_rho, t in prompts:
            xa = x * t.a[None, :]
            lp = t.log_pi[None, :] + xa
            top = np.max(lp, axis=-1, keepdims=True)
            rel = np.exp(lp - top)
            ldelta = np.log(np.sum(rel, axis=-1)) + top[:, 0]
            phi = _logphi(xa)
            small_logs.append(t.log_c[None, :] + phi + (log_rho - ldelta)[:, None])
            small_signs.append(np.broadcast_to(t.sign_c[None, :], xa.shape))
            small_sizes.append(np.abs(t.log_c)[None, :] + np.abs(phi) + np.abs(xa) + np.abs(ldelta)[:, None]
                               + abs(log_rho))
            log_hit = logsumexp(np.where(t.correct[None, :], lp, -np.inf), axis=-1) - ldelta
            log_miss = logsumexp(np.where(t.correct[None, :], -np.inf, lp), axis=-1) - ldelta
            large_logs.append(np.stack([log_rho + log_hit + t.log_q0, log_rho + t.log_p0 + log_miss], axis=-1))
            large_signs.append(np.broadcast_to(np.array([1.0, -1.0]), (len(s), 2)))
            size = 2 * np.abs(top[:, 0]) + abs(log_rho) + abs(t.log_p0) + abs(t.log_q0) + float(np.max(np.abs(xa)))
            large_sizes.append(np.stack([size, size], axis=-1))
    first = _bounded_sign(small_logs, small_signs, small_sizes)
    second = _bounded_sign(large_logs, large_signs, large_sizes)
    return np.where(first != 0, first, second)


def _eta_star_mixture(prompts: Sequence[tuple[Fraction, ll.LineType]], norm: float, seconds: float) -> EtaStar:
    """The ball route for a mixture over prompts (contextual bandits)."""
    floats = [(math.log(float(rho)), _float_type(t)) for rho, t in prompts]
    return _scan_and_certify(lambda s: _sigma_float_mixture(floats, s), intervals.MixtureBallLine(prompts),
                             sum(len(t.z) for _, t in prompts), norm, seconds)


def eta_star(inst: Instance, w: Sequence[object], *, digits: int = 40, max_degree: int = MAX_DEGREE,
             seconds: float = 3.0) -> EtaStar:
    r""":math:`\eta^\star(\theta,w)=\sup\{\eta>0: J(\theta+sw)\ge J(\theta)\ \forall s\in(0,\eta]\}` along w
    (not normalised), by the polynomial route when :func:`estimate_degree` is at most ``max_degree``, else by
    the ball route; ``certified`` as the module docstring says (``seconds`` bounds the Arb certification).

    Source: reconstruction §4.1 (sufficient step), DERIVED.

    >>> r = eta_star(SoftmaxBandit((0.0, 0.0, 0.0), frozenset({0})), (1, 0, -2))
    >>> r.route, r.value
    ('polynomial', inf)
    """
    wf = _fractions(w)
    d = ll.n_parameters(inst)
    if len(wf) != d:
        raise GradgapValueError(f"w has {len(wf)} entries: the instance has {d} parameters", field="w",
                                value=tuple(w))
    big = max((abs(x) for x in wf), default=Fraction(0))
    if big == 0:
        return EtaStar(math.inf, math.inf, math.inf, "constant", True)
    if not Fraction(1, 10**300) <= big <= Fraction(10) ** 300:
        raise GradgapValueError(f"w: largest entry {float(min(big, Fraction(10) ** 308)):.3g} is out of range "
                                "[1e-300, 1e300]; rescale the direction", field="w", value=float(min(big, 10**308)))
    unit = wf if big == 1 else tuple(x / big for x in wf)  # exact rescaling: eta*(w) = eta*(w / |w|_inf) / |w|_inf
    norm = math.sqrt(sum(float(x) ** 2 for x in unit))
    prompts = ll.mixture_line_types(inst, unit)
    if prompts is not None:  # a mixture over prompts: the ball route (J is a weighted sum of softmax masses)
        if all(len(set(t.a)) == 1 for _, t in prompts):
            return EtaStar(math.inf, math.inf, math.inf, "constant", True)
        res = _eta_star_mixture(prompts, norm, seconds)
    else:
        lines, m = ll.line_types(inst, unit)
        if all(len(set(t.a)) == 1 for t in lines):  # every logit of a position moves alike: J is constant
            return EtaStar(math.inf, math.inf, math.inf, "constant", True)
        degree, q = estimate_degree(lines, m, limit=max_degree)
        spread = max(max(t.z) - min(t.z) for t in lines)  # e^{-spread} would be rationalised: keep it moderate
        if degree <= max_degree and spread <= _MAX_SPREAD:
            res = _eta_star_polynomial(lines, m, q, digits, seconds)
        else:
            res = _eta_star_ball(lines, m, norm, seconds)
    scale = float(big)
    return EtaStar(res.value / scale, res.lo / scale, res.hi / scale, res.route, res.certified, res.degree,
                   res.boxes)


def gradient_gap_direction(inst: Instance, kind: str = "gap", digits: int = 50) -> tuple[mpmath.mpf, ...]:
    r"""The direction :math:`g=\nabla\log J/(1-J)` (``gap``) or :math:`\nabla J` (``grad``) at the instance, at
    ``digits`` digits, from the exact log-linear form: :math:`\nabla\log p_t = \mathbb E_{\pi_t^+}\phi -
    \mathbb E_{\pi_t}\phi` per position, and :math:`\partial J/\partial p_t = P(\text{exactly } m-1 \text{ of
    the others correct})`. Evaluated in Arb balls (cost linear in the number of logits); the midpoints are
    returned, and a component whose ball contains 0 (a stationary point, say) is returned as exactly 0.

    Source: reconstruction §2.1 (Gradient Gap, QUOTED), DERIVED form for log-linear policies.

    >>> [float(x) for x in gradient_gap_direction(SoftmaxBandit((0.0, 0.0), frozenset({0})))]
    [1.0, -1.0]
    """
    if kind not in ("gap", "grad"):
        raise GradgapValueError(f"kind={kind!r}: choose gap or grad", field="kind", value=kind)
    saved = flint_ctx.prec
    flint_ctx.prec = int(3.33 * digits) + 32
    try:
        d = ll.n_parameters(inst)
        zero = tuple(Fraction(0) for _ in range(d))
        prompts = ll.mixture_line_types(inst, zero)
        if prompts is not None:
            J, J_comp, gradJ = _mixture_grad(prompts)
        else:
            lines, m = ll.line_types(inst, zero)
            J, J_comp, gradJ = _product_grad(lines, m)
        if kind == "gap" and not (J > 0 and J_comp > 0):
            raise GradgapValueError("J: the Gradient Gap needs 0 < J < 1 (J or 1 - J is not resolved at "
                                    f"{digits} digits)", field="J", value=float(J.mid()))
        factor = 1 / (J * J_comp) if kind == "gap" else arb(1)
        mpmath.mp.dps = digits
        out = [mpmath.mpf(0)] * d
        for k, v in gradJ.items():
            val = v * factor
            out[k] = mpmath.mpf(0) if val.contains(0) else mpmath.mpf(val.mid())  # unresolved from 0: exactly 0
        return tuple(out)
    finally:
        flint_ctx.prec = saved


def _position(t: ll.LineType) -> tuple[arb, arb, dict[int, arb]]:
    r"""One position in balls: :math:`p_t`, :math:`1-p_t` (summed directly) and the sparse
    :math:`\nabla\log p_t`."""
    pi, p, comp = intervals.softmax_masses(t)
    return p, comp, _grad_log_p(t, pi, p)


def _product_grad(lines: Sequence[ll.LineType], m: int) -> tuple[arb, arb, dict[int, arb]]:
    r"""(J, 1 - J, sparse :math:`\nabla J`) of independent positions with reward "at least m correct"."""
    probs, comps, dlogs = zip(*(_position(t) for t in lines), strict=True)
    gradJ: dict[int, arb] = {}
    if ll.is_product([t.count for t in lines], m):  # J = prod_t p_t^{n_t}: grad J = J sum_t n_t grad log p_t
        logJ = sum((t.count * (-q).log1p() for q, t in zip(comps, lines, strict=True)), arb(0))
        J, J_comp = logJ.exp(), -logJ.expm1()
        for t, dl in zip(lines, dlogs, strict=True):
            for k, v in dl.items():
                gradJ[k] = gradJ.get(k, arb(0)) + t.count * J * v
        return J, J_comp, gradJ
    # at least m correct (every count is 1): grad J = sum_t dJ/dp_t p_t grad log p_t
    if len(probs) * m > DP_BUDGET:
        raise GradgapValueError(f"min_correct={m}: T*m = {len(probs) * m} exceeds the budget {DP_BUDGET} of "
                                "the exact at-least-m DP; use a smaller T or m", field="min_correct", value=m)
    J, J_comp, dJdp = _at_least(probs, comps, m)
    for dp, p, dl in zip(dJdp, probs, dlogs, strict=True):
        for k, v in dl.items():
            gradJ[k] = gradJ.get(k, arb(0)) + dp * p * v
    return J, J_comp, gradJ


def _mixture_grad(prompts: Sequence[tuple[Fraction, ll.LineType]]) -> tuple[arb, arb, dict[int, arb]]:
    r"""(J, 1 - J, sparse :math:`\nabla J`) of a mixture over prompts: :math:`J=\sum_x\rho_xp_x`,
    :math:`1-J=\sum_x\rho_x(1-p_x)`, :math:`\nabla J=\sum_x\rho_xp_x\nabla\log p_x`."""
    J, J_comp, gradJ = arb(0), arb(0), {}
    for rho, t in prompts:
        r = intervals.ball(rho)
        p, comp, dl = _position(t)
        J += r * p
        J_comp += r * comp
        for k, v in dl.items():
            gradJ[k] = gradJ.get(k, arb(0)) + r * p * v
    return J, J_comp, gradJ


def _grad_log_p(t: ll.LineType, pi: Sequence[arb], p: arb) -> dict[int, arb]:
    r""":math:`\nabla\log p_t=\mathbb E_{\pi^+}\phi-\mathbb E_\pi\phi` as a sparse dict over parameter indices,
    from the position's sparse feature rows."""
    out: dict[int, arb] = {}
    for v, row in enumerate(t.columns):
        weight = pi[v] / p - pi[v] if v in t.correct else -pi[v]
        for j, x in row:
            out[j] = out.get(j, arb(0)) + (weight if x == 1 else weight * intervals.ball(x))
    return out


def _at_least(probs: Sequence[arb], comps: Sequence[arb], m: int) -> tuple[arb, arb, list[arb]]:
    r"""(:math:`P(\ge m)`, :math:`P(<m)`, :math:`\partial P(\ge m)/\partial p_t` = P(exactly m - 1 of the others))
    for independent positions with success probabilities ``probs`` and failure probabilities ``comps``, from
    prefix and suffix count distributions truncated at m (entry m holds ":math:`\ge m`"); both tails are summed
    directly, so neither is lost to cancellation near 0 or 1."""
    prefix = poisson_binomial.prefix_distributions(probs, m, arb(1), comps)
    suffix = poisson_binomial.suffix_distributions(probs, m, arb(1), comps)
    full = prefix[-1]
    J = full[m] if len(full) > m else arb(0)
    J_comp = sum(full[:m], arb(0))
    dJ = [poisson_binomial.count_convolution(prefix[t], suffix[t + 1], m - 1, arb(0)) for t in range(len(probs))]
    return J, J_comp, dJ


def _mpf_ball(x: mpmath.mpf) -> arb:
    """An mpmath number as an exact Arb ball (mantissa times a power of two)."""
    sign, man, exp, _ = mpmath.mpf(x)._mpf_
    if not man:
        return arb(0)
    return arb(-int(man) if sign else int(man)) * arb(2) ** int(exp)


def eta_theorem(inst: Instance, w: Sequence[object], g: Sequence[mpmath.mpf] | None = None) -> tuple[float, float]:
    r"""Theorem 1's sufficient step along the unit direction :math:`u = w/\|w\|`:
    :math:`[\Delta\mu]_+/(2(L_o+8G_o^2))` with :math:`\Delta\mu = \langle u, g(\theta)\rangle`, and
    :math:`\|w\|` (so that a step :math:`\eta` along u is :math:`\eta/\|w\|` along w).

    ``L_o`` and ``G_o`` come from the family module's ``constants(inst)``; ``g`` (the Gradient Gap at 30 digits)
    is computed unless given.

    Source: reconstruction §4.1 (QUOTED-2nd constants).
    """
    from gradgap import theory  # the family module of the instance (not numerics)

    consts = theory.family_module(inst).constants(inst)
    if consts.L_o.value is None or consts.G_o.value is None:
        raise GradgapValueError("constants: L_o or G_o unknown for this family; eta_theorem undefined",
                                field="constants", value=None)
    L = float(sp.N(consts.L_o.value, 30))
    G = float(sp.N(consts.G_o.value, 30))
    if g is None:
        g = gradient_gap_direction(inst, "gap", 30)
    wf = _fractions(w)
    big = max((abs(x) for x in wf), default=Fraction(0))
    if big == 0:
        raise GradgapValueError("w=0: the direction must be non-zero", field="w", value=tuple(w))
    saved = flint_ctx.prec
    flint_ctx.prec = 128
    try:
        wv = [intervals.ball(x) for x in wf]
        gv = [_mpf_ball(x) for x in g]
        norm2 = sum((x * x for x in wv), arb(0))
        dot = sum((a * b for a, b in zip(wv, gv, strict=True)), arb(0))
        dmu = float((dot / norm2.sqrt()).mid())
        norm = float(norm2.sqrt().mid())
    finally:
        flint_ctx.prec = saved
    return max(dmu, 0.0) / (2.0 * (L + 8.0 * G * G)), norm
