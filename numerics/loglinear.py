r"""Numeric forms read off an instance's log-linear description, for every family at once (numpy float64).

Every family is log-linear per position (``gradgap.theory.instances.LogLinearForm``):
:math:`\pi_t(v)\propto\exp(\phi_t(v)^\top\theta+b_t(v))`, reward :math:`\mathbb 1[\#\{t:o_t\in C_t\}\ge m]`.
These functions work on that description alone (no family module), so they are an independent route
for small instances.

==============================  =====================================================================
here                            formula
==============================  =====================================================================
:func:`position_log_probs`      :math:`\log\pi_t(v) = z_t(v) - \operatorname{lse}(z_t)`
:func:`position_scores`         :math:`s_t(o)=\phi_t(o_t)-\mathbb E_{\pi_t}[\phi_t]` (flat layout)
:func:`token_sum_gap`           :math:`\sum_t(\mathbb E_+[s_t]-\mathbb E_-[s_t])` by enumeration
:func:`operator_norm`           :math:`\max_i|\lambda_i(H)|` of a symmetric matrix
==============================  =====================================================================

Source: reconstruction §1 (policy, score), §2.1 item 3 (token decomposition), INFERRED/DERIVED.

>>> from gradgap.theory.instances import TokenSequence
>>> ex = TokenSequence(logits=((0.0, 0.0), (0.0, 0.0)), target=(0, 0))
>>> [round(x, 12) for x in token_sum_gap(ex).tolist()]
[0.666666666667, -0.666666666667, 0.666666666667, -0.666666666667]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from gradgap.numerics.logspace import logsumexp
from gradgap.theory.instances import Instance

__all__ = ["operator_norm", "position_log_probs", "position_scores", "token_sum_gap"]

Array = NDArray[np.float64]


def position_log_probs(inst: Instance) -> list[Array]:
    r"""Per response position, :math:`\log\pi_t = z_t - \operatorname{lse}(z_t)`, :math:`z_t=A_t\theta+b_t`."""
    theta = np.asarray(inst.theta, dtype=np.float64)
    out = []
    for position in inst.structure().expanded():
        z = np.asarray(position.features, dtype=np.float64) @ theta + np.asarray(position.bias, dtype=np.float64)
        out.append(z - logsumexp(z))
    return out


def position_scores(inst: Instance, response: Sequence[int]) -> list[Array]:
    r"""Per-position scores :math:`s_t(o)=\nabla\log\pi_t(o_t)=\phi_t(o_t)-\sum_v\pi_t(v)\phi_t(v)`."""
    out = []
    for o, position, logp in zip(response, inst.structure().expanded(), position_log_probs(inst), strict=True):
        phi = np.asarray(position.features, dtype=np.float64)
        out.append(phi[o] - np.exp(logp) @ phi)
    return out


def token_sum_gap(inst: Instance) -> Array:
    r""":math:`\sum_t g_t`, :math:`g_t=\mathbb E_+[s_t]-\mathbb E_-[s_t]`, by enumerating every response."""
    form = inst.structure()
    logp = position_log_probs(inst)
    plus, minus = np.zeros(form.n_params), np.zeros(form.n_params)
    J = 0.0
    for resp in form.responses():
        p = float(np.exp(sum(logp[t][o] for t, o in enumerate(resp))))
        s_sum = np.sum(position_scores(inst, resp), axis=0)
        if form.reward(resp):
            plus += p * s_sum
            J += p
        else:
            minus += p * s_sum
    return plus / J - minus / (1.0 - J)


def operator_norm(H: Array) -> float:
    r"""Operator norm :math:`\max_i|\lambda_i(H)|` of a symmetric matrix (0 for an empty one).

    >>> operator_norm(np.array([[0.5, 0.0], [0.0, -1.0]]))
    1.0
    """
    return float(np.max(np.abs(np.linalg.eigvalsh(H)))) if H.size else 0.0
