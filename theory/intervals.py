r"""Rigorous ball arithmetic (Arb, through ``python-flint``) for the success rate along a line.

Along :math:`\theta+sw` each position type has probabilities :math:`\pi_v` at s = 0, slopes :math:`a_v` and
success probability :math:`p_0=\sum_{v\in C}\pi_v`. Because :math:`\sum_v(\mathbb 1_C(v)-p_0)\pi_v=0`,

.. math::  p(s)-p_0 = \frac{s\,G(s)}{\delta(s)},\qquad
           G(s)=\sum_v(\mathbb 1_C(v)-p_0)\,\pi_v\,a_v\,\varphi(s a_v),\qquad
           \delta(s)=\sum_v\pi_v e^{s a_v},\qquad \varphi(x)=\frac{e^x-1}{x}=\int_0^1e^{tx}\,dt,

so the sign of :math:`J(\theta+sw)-J(\theta)` for s > 0 is that of a function continuous through s = 0
(:func:`sign_function`; its value at 0 is the directional derivative up to a positive factor): no cancellation
at small s and no root at s = 0 to exclude. Each term of G is monotone in s (:math:`\varphi` increases; the
sign of the term's slope is that of :math:`\mathbb 1_C(v)-p_0`), so over :math:`[s_1,s_2]` G lies between
:math:`A(s_1)+B(s_2)` and :math:`A(s_2)+B(s_1)` (A: correct tokens, B: wrong ones); likewise
:math:`\delta`. Several types combine by telescoping: :math:`J(p)-J(p_0)=\sum_t(p_t-p_{0,t})\,Q_t` with
:math:`Q_t` the probability that the other positions (those before t at p, after t at :math:`p_0`) make
exactly m - 1 correct (the product of the others for exact match).

:func:`certify_first_root` proves, with Arb balls and adaptive subdivision of :math:`(0, lo]`, that
:math:`J(\theta+sw) > J(\theta)` on :math:`(0, lo]` and :math:`J(\theta+hi\,w) < J(\theta)`: then
:math:`\eta^\star\in[lo,hi]` rigorously (whatever the floating-point search that proposed lo, hi).

Source: reconstruction §4.1 (the one-step threshold along a direction), DERIVED by this project.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from flint import arb, ctx, fmpq

from gradgap.theory import poisson_binomial
from gradgap.theory._loglinear import LineType, is_product

__all__ = ["PRECISION_BITS", "BallLine", "BoxCertificate", "Certificate", "MixtureBallLine", "ball",
           "certify_first_root", "certify_sign", "certify_softmax3_one_step", "softmax_masses"]

#: working precision of the balls (bits); the enclosures are rigorous at any precision
PRECISION_BITS: Final[int] = 128


def ball(x: Fraction | int) -> arb:
    """An exact rational as an Arb ball (exact when the denominator is a power of two)."""
    if isinstance(x, int):
        return arb(x)
    return arb(fmpq(x.numerator, x.denominator))


@dataclass(frozen=True)
class _TypeBalls:
    r"""Ball data of one position type: :math:`p_0` and, per token with :math:`a_v\ne0`,
    (:math:`a_v`, :math:`k_v=(\mathbb 1_C(v)-p_0)\pi_v a_v`, :math:`\pi_v`, correct?, :math:`a_v>0`?)."""

    p0: arb
    terms: tuple[tuple[arb, arb, arb, bool, bool], ...]
    slope0: arb  # G(0) = sum_v k_v


def softmax_masses(t: LineType) -> tuple[tuple[arb, ...], arb, arb]:
    r"""One position in balls at s = 0: :math:`\pi=\mathrm{softmax}(z)`, the correct mass :math:`p` and the wrong
    mass :math:`1-p`, each summed directly (neither is lost to cancellation near 0 or 1)."""
    top = max(t.z)
    ex = [ball(z - top).exp() for z in t.z]
    den = sum(ex, arb(0))
    pi = tuple(e / den for e in ex)
    return (pi, sum((pi[v] for v in t.correct), arb(0)),
            sum((pv for v, pv in enumerate(pi) if v not in t.correct), arb(0)))


def _type_balls(t: LineType) -> _TypeBalls:
    pi, p0, _ = softmax_masses(t)
    terms = []
    for v, (a, pv) in enumerate(zip(t.a, pi, strict=True)):
        if a == 0:
            continue
        ab = ball(a)
        corr = v in t.correct
        k = ((1 - p0) if corr else -p0) * pv * ab
        terms.append((ab, k, pv, corr, a > 0))
    return _TypeBalls(p0, tuple(terms), sum((x[1] for x in terms), arb(0)))


def _dphi(x: arb) -> arb:
    r""":math:`\varphi'(x)=\int_0^1 t e^{tx}dt` at an exact point x: :math:`(xe^x-e^x+1)/x^2`, or the enclosure
    :math:`[\tfrac12e^{-|x|},\tfrac12e^{|x|}]` for tiny x."""
    ax = abs(x)
    if ax < arb(2) ** -20:
        return (arb(0.5) * (-ax).exp()).union(arb(0.5) * ax.exp())
    e = x.expm1()
    return (x * (e + 1) - e) / (x * x)


class BallLine:
    r"""The success rate of an instance along a line, in Arb balls: :meth:`enclose` gives an enclosure of
    :math:`\sigma(s)`, a function with the sign of :math:`J(\theta+sw)-J(\theta)` for s > 0, over
    :math:`[s_1,s_2]`; point values are cached (adjacent boxes share their ends)."""

    def __init__(self, lines: Sequence[LineType], m: int, *, quotient: bool = False) -> None:
        ctx.prec = PRECISION_BITS
        self.product = is_product([t.count for t in lines], m)
        self.m = m
        #: one exact-match type: sigma is G itself (same sign as the difference); ``quotient`` asks for
        #: :math:`(p(s)-p(0))/s=G/\delta` instead (a mixture's components must be on one scale)
        self.single = len(lines) == 1 and self.product and not quotient
        if not self.single and any(t.count != 1 for t in lines):  # expand repeated types (small counts only)
            lines = [LineType(t.z, t.a, t.correct, 1) for t in lines for _ in range(t.count)]
        self.types = tuple(_type_balls(t) for t in lines)
        #: ball operations per evaluation, roughly: the terms, plus T * m for the at-least-m DP
        self.cost = sum(len(t.terms) for t in self.types) + (0 if self.product else len(self.types) * m)
        self._cache: dict[Fraction, tuple[tuple[arb, arb, arb, arb], ...]] = {}
        self._dcache: dict[Fraction, tuple[arb, arb]] = {}
        self.evaluations = 0

    def _point(self, s: Fraction) -> tuple[tuple[arb, arb, arb, arb], ...]:
        r"""Per type at the exact point s: (A, B, up, down), :math:`G=A+B`, :math:`\delta=1+up+down`."""
        hit = self._cache.get(s)
        if hit is not None:
            return hit
        self.evaluations += 1
        sb = ball(s)
        out = []
        for ty in self.types:
            A, B, du, dd = arb(0), arb(0), arb(0), arb(0)
            for a, k, pv, corr, pos in ty.terms:
                if s == 0:
                    phi, e = arb(1), arb(0)
                else:
                    x = sb * a
                    e = x.expm1()
                    phi = e / x
                if corr:
                    A += k * phi
                else:
                    B += k * phi
                if not self.single:
                    if pos:
                        du += pv * e
                    else:
                        dd += pv * e
            out.append((A, B, du, dd))
        res = tuple(out)
        self._cache[s] = res
        return res

    def _parts(self, s1: Fraction, s2: Fraction) -> list[tuple[arb, arb]]:
        """Per type, enclosures of (G, delta) over [s1, s2] (each term is monotone in s)."""
        lo, hi = self._point(s1), self._point(s2)
        out = []
        for (A1, B1, u1, d1), (A2, B2, u2, d2) in zip(lo, hi, strict=True):
            if s1 == s2:
                out.append((A1 + B1, 1 + u1 + d1))
                continue
            G = (A1 + B2).lower().union((A2 + B1).upper())
            delta = (1 + u1 + d2).lower().union((1 + u2 + d1).upper())
            out.append((G, delta))
        return out

    def _dpoint(self, s: Fraction) -> tuple[arb, arb]:
        r"""Single type: (A', B') at s with :math:`G'=A'+B'`, A' the terms :math:`k_va_v\varphi'(sa_v)` with
        :math:`k_v>0` (increasing in s), B' the others (decreasing)."""
        hit = self._dcache.get(s)
        if hit is not None:
            return hit
        self.evaluations += 1
        sb = ball(s)
        A, B = arb(0), arb(0)
        for a, k, _pv, corr, pos in self.types[0].terms:
            term = k * a * _dphi(sb * a)
            if corr == pos:  # k_v > 0
                A += term
            else:
                B += term
        self._dcache[s] = (A, B)
        return A, B

    def enclose_derivative(self, s1: Fraction, s2: Fraction) -> arb:
        r"""Single type only: an enclosure of :math:`G'=\sigma'` over :math:`[s_1,s_2]`."""
        if not self.single:
            raise ValueError("enclose_derivative: one position type only")
        A1, B1 = self._dpoint(s1)
        A2, B2 = self._dpoint(s2)
        return (A1 + B2).lower().union((A2 + B1).upper())

    def enclose(self, s1: Fraction, s2: Fraction) -> arb:
        r"""An enclosure of :math:`\sigma` over :math:`[s_1,s_2]` (:math:`0\le s_1\le s_2`): G for one type
        (exact match), else :math:`\sum_t (G_t/\delta_t)\,Q_t` (telescoping, see the module docstring)."""
        parts = self._parts(s1, s2)
        if self.single:
            return parts[0][0]
        S = ball(s1).union(ball(s2)) if s1 != s2 else ball(s1)
        d = [G / delta for G, delta in parts]  # (p_t(s) - p_t(0)) / s
        p_s = [ty.p0 + S * dt for ty, dt in zip(self.types, d, strict=True)]
        p_0 = [ty.p0 for ty in self.types]
        n = len(self.types)
        if self.product:
            suffix = [arb(1)] * (n + 1)
            for t in range(n - 1, -1, -1):
                suffix[t] = suffix[t + 1] * p_0[t]
            total, prefix = arb(0), arb(1)
            for t in range(n):
                total += d[t] * prefix * suffix[t + 1]
                prefix *= p_s[t]
            return total
        m = self.m
        # Q_t = P(exactly m - 1 hits among the others), positions before t at p(s), after t at p(0)
        pre = poisson_binomial.prefix_distributions(p_s, m, arb(1))
        suf = poisson_binomial.suffix_distributions(p_0, m, arb(1))
        total = arb(0)
        for t in range(n):
            total += d[t] * poisson_binomial.count_convolution(pre[t], suf[t + 1], m - 1, arb(0))
        return total


class _DirectPrompt:
    r"""One prompt's success mass along the line in balls, for the centred form
    :math:`p(s)\in p(m)+p'(S)\,(S-m)` with :math:`p'=\sum_v\pi_v(s)(\mathbb 1_C(v)-p(s))\,a_v`."""

    def __init__(self, line: LineType) -> None:
        self.pi, self.p0, self.q0 = softmax_masses(line)
        self.a = tuple(ball(a) for a in line.a)
        self.correct = line.correct

    def _weights(self, S: arb) -> tuple[arb, arb, list[arb]]:
        w = [pv * (S * a).exp() for pv, a in zip(self.pi, self.a, strict=True)]
        hit = sum((w[v] for v in self.correct), arb(0))
        miss = sum((x for v, x in enumerate(w) if v not in self.correct), arb(0))
        return hit, miss, w

    def difference(self, S: arb) -> arb:
        r""":math:`p(s)-p(0)=p(s)\,q(0)-p(0)\,q(s)` at a ball S (no subtraction of nearly equal masses)."""
        hit, miss, _ = self._weights(S)
        return (hit * self.q0 - self.p0 * miss) / (hit + miss)

    def slope(self, S: arb) -> arb:
        """An enclosure of p'(s) over the ball S."""
        hit, miss, w = self._weights(S)
        total = hit + miss
        p = hit / total
        return sum((x / total * ((1 - p) if v in self.correct else -p) * a
                    for v, (x, a) in enumerate(zip(w, self.a, strict=True))), arb(0))


class MixtureBallLine:
    r"""A mixture over prompts along a line, :math:`J(\theta+sw)=\sum_x\rho_x p_x(s)`, in Arb balls:
    :meth:`enclose` encloses :math:`\sigma(s)=\sum_x\rho_x\,(p_x(s)-p_x(0))/s`, which has the sign of
    :math:`J(\theta+sw)-J(\theta)` for s > 0 (and is the slope of J at s = 0), as the intersection of two
    enclosures: the one-type quotients :math:`G_x/\delta_x` of :class:`BallLine` (tight near s = 0) and, away
    from 0, the centred form of the difference :math:`J(s)-J(0)` divided by s (tight near a crossing, where the
    quotients' terms grow like :math:`1/\delta_x`)."""

    single = False  # no derivative bound: the quotients are not monotone

    def __init__(self, components: Sequence[tuple[Fraction, LineType]]) -> None:
        ctx.prec = PRECISION_BITS
        self.weights = tuple(ball(rho) for rho, _ in components)
        self.lines = tuple(BallLine([line], 1, quotient=True) for _, line in components)
        self.direct = tuple(_DirectPrompt(line) for _, line in components)
        self.cost = sum(line.cost for line in self.lines) * 2
        self._direct_evaluations = 0

    @property
    def evaluations(self) -> int:
        """Point evaluations so far, over all prompts."""
        return sum(line.evaluations for line in self.lines) + self._direct_evaluations

    def enclose(self, s1: Fraction, s2: Fraction) -> arb:
        r"""An enclosure of :math:`\sigma` over :math:`[s_1,s_2]` (:math:`0\le s_1\le s_2`)."""
        quotient = sum((rho * line.enclose(s1, s2) for rho, line in zip(self.weights, self.lines, strict=True)),
                       arb(0))
        if s1 == 0 or quotient > 0 or quotient < 0:
            return quotient
        self._direct_evaluations += 1
        mid = (s1 + s2) / 2
        S = ball(s1).union(ball(s2))
        offset = S - ball(mid)
        diff = sum((rho * (p.difference(ball(mid)) + p.slope(S) * offset)
                    for rho, p in zip(self.weights, self.direct, strict=True)), arb(0))
        return quotient.intersection(diff / S)


@dataclass(frozen=True)
class Certificate:
    r"""The outcome of :func:`certify_first_root`: ``certified`` when Arb proved :math:`\sigma>0` on
    :math:`(0,lo]` (``boxes`` subintervals) and :math:`\sigma(hi)<0`; ``reason`` otherwise."""

    certified: bool
    lo: Fraction
    hi: Fraction
    boxes: int
    evaluations: int
    reason: str = ""


def certify_sign(line: BallLine | MixtureBallLine, s1: Fraction, s2: Fraction, *, max_boxes: int = 4000,
                 deadline: float | None = None) -> tuple[int | None, int, str]:
    r"""Prove :math:`\sigma>0` on :math:`[s_1,s_2]` by adaptive subdivision: ``(1, boxes, "")`` on success,
    ``(-1, boxes, where)`` when a box is certainly negative there, ``(None, boxes, why)`` when undecided."""
    stack = [(s1, s2)]
    boxes = 0
    while stack:
        a, b = stack.pop()
        enc = line.enclose(a, b)
        boxes += 1
        if enc > 0:
            continue
        if enc < 0:
            return -1, boxes, f"sigma < 0 on [{float(a):.6g}, {float(b):.6g}]"
        if boxes >= max_boxes or (deadline is not None and time.monotonic() > deadline):
            return None, boxes, "subdivision budget exhausted"
        if b - a <= (abs(b) + abs(a)) * Fraction(1, 2**80):
            return None, boxes, f"cannot separate sigma from 0 near s = {float(a):.6g}"
        if a > 0 and b > 4 * a:  # geometric split across scales
            mid = _dyadic_between(a, b, geometric=True)
        elif a == 0 and b > 0:
            mid = b / 8 if boxes > 1 else b / 2
        else:
            mid = (a + b) / 2
        stack.append((mid, b))
        stack.append((a, mid))
    return 1, boxes, ""


def _dyadic_between(a: Fraction, b: Fraction, *, geometric: bool) -> Fraction:
    """A short dyadic number near the geometric (or arithmetic) mean of a < b."""
    import math

    target = math.sqrt(float(a) * float(b)) if geometric else (float(a) + float(b)) / 2
    mid = Fraction(target)
    return mid if a < mid < b else (a + b) / 2


def certify_first_root(line: BallLine | MixtureBallLine, lo: Fraction, hi: Fraction, *, max_boxes: int = 4000,
                       seconds: float = 3.0) -> Certificate:
    r"""Prove :math:`\eta^\star\in[lo,hi]`: :math:`\sigma>0` on :math:`[0,lo]` (hence J above its start on
    :math:`(0,lo]`) and :math:`\sigma(hi)<0`. ``lo = 0`` proves only the second part (:math:`\eta^\star=0`
    needs :math:`\sigma(0)<0`, checked by the caller)."""
    deadline = time.monotonic() + seconds
    end = line.enclose(hi, hi)
    if not end < 0:
        return Certificate(False, lo, hi, 1, line.evaluations, "sigma(hi) not certainly negative")
    if lo <= 0:
        return Certificate(True, lo, hi, 1, line.evaluations)
    end_cover = lo
    extra = 1
    if line.single and line.enclose(lo, lo) > 0:  # sigma decreasing on [s1, hi] and sigma(lo) > 0: > 0 on [s1, lo]
        extra += 1
        for t in (Fraction(1, 100), Fraction(1, 10**4), Fraction(1, 10**6)):
            s1 = _dyadic_between(lo * (1 - t) - hi * t, lo, geometric=False)
            extra += 1
            if s1 > 0 and line.enclose_derivative(s1, hi) < 0:
                end_cover = s1
                break
    sign, boxes, why = certify_sign(line, Fraction(0), end_cover, max_boxes=max_boxes, deadline=deadline)
    return Certificate(sign == 1, lo, hi, boxes + extra, line.evaluations, why)


# --------------------------------------------------------------------------------------------------------
# a one-step inequality certified over a bounded parameter box


@dataclass(frozen=True)
class BoxCertificate:
    r"""The outcome of a box certification: ``certified``, the box in words (``scope``), the number of Arb
    ``boxes`` of the final subdivision, and ``reason`` when not certified (the first box that failed)."""

    certified: bool
    scope: str
    boxes: int
    reason: str = ""


def _sigmoid_slope(t: arb) -> arb:
    r""":math:`\sigma'(t)=\sigma(t)(1-\sigma(t))=1/(e^{t/2}+e^{-t/2})^2` over a ball t (no dependency problem:
    the form is :math:`1/(2\cosh(t/2))^2`)."""
    c = (t / 2).cosh()
    return 1 / (4 * c * c)


def certify_softmax3_one_step(C: Fraction, theta_bound: Fraction, eta_max: Fraction, *, max_boxes: int = 20000,
                              seconds: float = 20.0) -> BoxCertificate:
    r"""Certify the one-step inequality :math:`\ell(\theta+\eta w)-\ell(\theta)\ge\eta\langle w,g\rangle-\eta^2C`
    of the 3-armed softmax bandit with arm 0 correct, for every :math:`\theta\in[-B,B]^3`, every unit w and every
    :math:`0\le\eta\le\eta_{\max}`.

    Reduction (DERIVED): with :math:`q=\sigma(x)`, :math:`x=\theta_1-\theta_2`, :math:`\delta=\eta(w_1-w_2)`,

    .. math::  \eta\langle w,g\rangle-\Delta\ell = D(x,\delta) = \log(1+q(e^\delta-1))-q\delta
               = \delta^2\int_0^1(1-s)\,\sigma'(x+s\delta)\,ds,

    (the wrong-arm log-partition is shift-invariant, so only :math:`\delta` matters; Taylor with integral
    remainder), and :math:`\eta^2\ge\delta^2/2` for a unit w. So the inequality holds on the box as soon as
    :math:`\sigma'(t) < C` for every :math:`t\in[-2B-\sqrt2\eta_{\max}, 2B+\sqrt2\eta_{\max}]`
    (then :math:`D\le\delta^2C/2\le\eta^2C`). That bound is certified with Arb by bisecting the t-range until
    each piece's enclosure of :math:`\sigma'` lies below C. Since :math:`\max\sigma'=1/4` (at t = 0), every
    :math:`C>1/4=G_o^2/8` certifies and no :math:`C\le1/4` can.

    Source: reconstruction §4.1 (the one-step inequality, DERIVED constants).

    >>> certify_softmax3_one_step(Fraction(3, 2), Fraction(4), Fraction(10)).certified
    True
    """
    ctx.prec = PRECISION_BITS
    deadline = time.monotonic() + seconds
    reach = 2 * theta_bound + Fraction(1415, 1000) * eta_max  # 1.415 > sqrt(2)
    scope = (f"theta in [-{float(theta_bound):g}, {float(theta_bound):g}]^3, unit w, "
             f"eta in [0, {float(eta_max):g}]")
    Cb = ball(C)
    stack = [(-reach, reach)]
    boxes = 0
    while stack:
        a, b = stack.pop()
        enc = _sigmoid_slope(ball(a).union(ball(b)))
        if enc < Cb:
            boxes += 1
            continue
        if b - a < Fraction(1, 2**40) or boxes + len(stack) >= max_boxes or time.monotonic() > deadline:
            return BoxCertificate(False, scope, boxes + len(stack) + 1,
                                  f"sigma' not below C={float(C):g} on t in [{float(a):.6g}, {float(b):.6g}]")
        mid = (a + b) / 2
        stack.extend([(mid, b), (a, mid)])
    return BoxCertificate(True, scope, boxes)
