r"""Numeric twin of ``gradgap.theory.one_step_threshold``: :math:`\eta^\star` by a fine scan plus high-precision
bisection. No SymPy, no formula from ``theory/``.

Notation (paper symbol -> name): :math:`\eta^\star(\theta,w)` = :func:`eta_star`, :math:`J` = success rate.

Route of :func:`eta_star`: the sign of :math:`\log J(\theta+sw)-\log J(\theta)` (same sign as the difference of
J, and free of underflow) on a geometric grid of ``scan`` steps in float64 (vectorised, ``gradgap.numerics.dynamics``);
the first sign change is then bisected with an independent mpmath evaluation at ``digits`` digits (the grid
only locates it). Source: reconstruction §4.1 (the threshold along a direction, DERIVED by this project).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import mpmath
import numpy as np

from gradgap.numerics import dynamics
from gradgap.numerics.logspace import logsumexp
from gradgap.theory.instances import (  # noqa: F401 (doctests)
    ContextualForm,
    GradgapValueError,
    Instance,
    SharedTokens,
    SoftmaxBandit,
)

__all__ = ["EtaStar", "eta_star", "log_success_mp"]


@dataclass(frozen=True)
class EtaStar:
    """``value`` (``math.inf`` if no crossing up to ``s_max``), bracket ``(lo, hi)``, grid points scanned."""

    value: float
    lo: float
    hi: float
    scanned: int


def _mp_types(inst: Instance) -> list[tuple[tuple[tuple[float, ...], ...], tuple[float, ...], frozenset[int], int]]:
    """Per position type (features, biases, correct set, multiplicity), read off the instance's ``structure()``."""
    return [(pos.features, pos.bias, pos.correct, pos.count) for pos in inst.structure().positions]


def _mixture(inst: Instance) -> list[tuple[float, np.ndarray, np.ndarray]] | None:
    """Per prompt (weight, A x d features, correct mask) of a mixture over prompts; ``None`` for a product form."""
    form = inst.structure()
    if not isinstance(form, ContextualForm):
        return None
    out = []
    for rho, prompt in zip(form.weights, form.prompts, strict=True):
        (pos,) = prompt.positions
        mask = np.zeros(len(pos.features), dtype=bool)
        mask[sorted(pos.correct)] = True
        out.append((float(rho), np.asarray(pos.features, dtype=float), mask))
    return out


def _log_success_mixture(prompts: list[tuple[float, np.ndarray, np.ndarray]], thetas: np.ndarray) -> np.ndarray:
    r""":math:`\log\sum_x\rho_x\pi_\theta(C_x\mid x)` for each row of ``thetas`` (float64, log-sum-exp)."""
    parts = []
    for rho, feats, mask in prompts:
        z = thetas @ feats.T
        parts.append(math.log(rho) + logsumexp(z[:, mask], axis=1) - logsumexp(z, axis=1))
    return logsumexp(np.stack(parts, axis=1), axis=1)


def log_success_mp(inst: Instance, theta: Sequence[object]) -> mpmath.mpf:
    r""":math:`\log J(\theta)` in mpmath at the current precision (product rewards, or a mixture over prompts:
    :math:`\log\sum_x\rho_x p_x(\theta)`).

    >>> float(log_success_mp(SoftmaxBandit((0.0, 0.0), frozenset({0})), [0, 0]))
    -0.6931471805599453
    """
    prompts = _mixture(inst)
    if prompts is not None:
        total = mpmath.mpf(0)
        for rho, feats, mask in prompts:
            logits = [mpmath.fsum(mpmath.mpf(t) * float(f) for t, f in zip(theta, row, strict=True) if f != 0)
                      for row in feats]
            num = mpmath.fsum(mpmath.exp(z) for z, c in zip(logits, mask, strict=True) if c)
            total += mpmath.mpf(rho) * num / mpmath.fsum(mpmath.exp(z) for z in logits)
        return mpmath.log(total)
    total = mpmath.mpf(0)
    for feats, bias, correct, count in _mp_types(inst):
        logits = [mpmath.mpf(b) + mpmath.fsum(mpmath.mpf(t) * f for t, f in zip(theta, row, strict=True) if f != 0)
                  for row, b in zip(feats, bias, strict=True)]
        lse_all = mpmath.log(mpmath.fsum(mpmath.exp(z) for z in logits))
        lse_c = mpmath.log(mpmath.fsum(mpmath.exp(logits[v]) for v in correct))
        total += count * (lse_c - lse_all)
    return total


def eta_star(inst: Instance, w: Sequence[float], *, scan: int = 20000, s_min: float = 1e-7,
             s_max: float = 1e3, digits: int = 40) -> EtaStar:
    r""":math:`\eta^\star(\theta, w)` numerically: first sign change of :math:`\log J(\theta+sw)-\log J(\theta)`
    for :math:`s\in[s_{\min}, s_{\max}]/\|w\|` on a geometric grid, bisected at ``digits`` digits.

    >>> eta_star(SharedTokens((0.2,), ((0.,), (1.,), (2.,)), frozenset({1}), T=4), [-1.0]).value
    0.4
    """
    prompts = _mixture(inst)
    if prompts is None:
        model = dynamics.LogLinearModel.from_instance(inst)

        def log_J(thetas: np.ndarray) -> np.ndarray:
            return dynamics.log_success_rate(model, thetas)
    else:
        def log_J(thetas: np.ndarray) -> np.ndarray:
            return _log_success_mixture(prompts, np.atleast_2d(thetas))
    theta = np.asarray(inst.theta, dtype=float)
    wv = np.asarray([float(x) for x in w], dtype=float)
    if wv.shape != theta.shape:
        raise GradgapValueError(f"w has {wv.size} entries: the instance has {theta.size} parameters", field="w",
                                value=tuple(w))
    norm = float(np.linalg.norm(wv))
    if norm == 0.0:
        return EtaStar(math.inf, math.inf, math.inf, 0)
    s = np.geomspace(s_min, s_max, scan) / norm
    base = float(np.reshape(log_J(theta), -1)[0])
    vals = log_J(theta[None, :] + s[:, None] * wv[None, :]) - base
    # float64 cannot resolve differences below ~1e-13 |log J|: treat those as undecided, let mpmath decide
    tiny = 1e-11 * max(1.0, abs(base))
    mpmath.mp.dps = digits
    th_mp = [mpmath.mpf(float(x)) for x in theta]
    w_mp = [mpmath.mpf(float(x)) for x in wv]
    base_mp = log_success_mp(inst, th_mp)

    def f(step: mpmath.mpf) -> mpmath.mpf:
        return log_success_mp(inst, [t + step * x for t, x in zip(th_mp, w_mp, strict=True)]) - base_mp

    eps = mpmath.mpf(10) ** (12 - digits) * max(1, abs(base_mp))  # mpmath's own rounding floor
    for idx in np.flatnonzero(vals < tiny):
        hi = mpmath.mpf(float(s[idx]))
        if f(hi) >= -eps:
            continue
        if idx == 0:  # J already below its start at the first grid point: it decreases at once
            return EtaStar(0.0, 0.0, float(hi), 1)
        lo = mpmath.mpf(float(s[idx - 1]))
        for _ in range(400):
            mid = (lo + hi) / 2
            if f(mid) < -eps:
                hi = mid
            else:
                lo = mid
            if hi - lo <= mpmath.mpf(10) ** (12 - digits) * hi:
                break
        return EtaStar(float((lo + hi) / 2), float(lo), float(hi), int(idx + 1))
    return EtaStar(math.inf, math.inf, math.inf, scan)
