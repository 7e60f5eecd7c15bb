r"""Numeric twin of ``gradgap.theory.critical_step``: the local critical step :math:`\eta_c` at an optimum from a
central-difference Jacobian of the expected update (``gradgap.numerics.dynamics``). No SymPy, no formula from
``theory/``.

Notation (paper symbol -> name): :math:`\eta_c` = :func:`critical_step`, :math:`c(J)g` = expected update.

Source: reconstruction §4.2 (sharpness heuristic, DERIVED by this project).
"""

from __future__ import annotations

import numpy as np

from gradgap.numerics import dynamics
from gradgap.theory.instances import Instance, SharedTokens  # noqa: F401  (SharedTokens: doctest)

__all__ = ["critical_step"]


def critical_step(inst: Instance, rule: str = "gap", *, normalized: bool = False, h: float = 1e-4) -> float:
    r"""Local critical step at the optimum ``inst.theta`` from a central-difference Jacobian of the expected
    update :math:`c(J)g`: :math:`\eta_c = 2/\lambda_{\max}(-\partial(c g)/\partial\theta)`, times T when
    ``normalized``. ``nan`` if the Jacobian has a positive eigenvalue (not a maximum).

    >>> round(critical_step(SharedTokens((0.0,), ((0.,), (1.,), (2.,)), frozenset({1}), T=1)), 6)
    2.0
    """
    model = dynamics.LogLinearModel.from_instance(inst)
    theta = np.asarray(inst.theta, dtype=float)
    d = theta.size
    eye = np.eye(d) * h
    plus = dynamics.expected_update(model, theta[None, :] + eye, rule)
    minus = dynamics.expected_update(model, theta[None, :] - eye, rule)
    jac = (plus - minus).T / (2 * h)
    eig = np.linalg.eigvals(0.5 * (jac + jac.T)).real
    if np.any(eig > 1e-9 * np.max(np.abs(eig))) or np.all(eig >= 0):
        return float("nan")
    eta = 2.0 / float(np.max(-eig))
    return eta * float(model.T) if normalized else eta
