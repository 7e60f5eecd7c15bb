"""Benchmark of ``gradgap.numerics.dynamics``: the vectorised simulator against a plain per-step loop, and the full
``length-scaling`` experiment. Run: ``python bench/bench_dynamics.py`` (prints the timings and the ratio).
"""

from __future__ import annotations

import time

import numpy as np

from gradgap.experiments import bandits as ex
from gradgap.numerics import dynamics as nd
from gradgap.theory import critical_step as th


def plain_loop(Ts: list[int], etas: np.ndarray, steps: int) -> np.ndarray:
    """One run at a time, one step at a time: the reference the vectorised simulator must beat."""
    out = np.empty((etas.shape[0], len(Ts)))
    for b, T in enumerate(Ts):
        model = nd.LogLinearModel.from_instance(th.worked_example(T))
        for e in range(etas.shape[0]):
            theta = np.array([0.05])
            for _ in range(steps):
                theta = theta + etas[e, b] * nd.expected_update(model, theta, "gap")
            out[e, b] = float(nd.success_rate(model, theta))
    return out


def vectorised(Ts: list[int], etas: np.ndarray, steps: int) -> np.ndarray:
    """All instances and step sizes in one :func:`gradgap.numerics.dynamics.simulate` call."""
    model = nd.stack_models([nd.LogLinearModel.from_instance(th.worked_example(T)) for T in Ts])
    tr = nd.simulate(model, np.full((len(Ts), 1), 0.05), etas, nd.SimConfig(steps=steps, tail=3))
    return tr.success[-1]


def main() -> None:
    Ts = list(ex.LENGTHS)
    closed = np.array([3 * (1 - 3.0**-T) / T for T in Ts])
    etas = closed[None, :] * np.geomspace(0.25, 4, 12)[:, None]
    steps = 300
    t0 = time.perf_counter()
    a = plain_loop(Ts, etas, steps)
    t_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = vectorised(Ts, etas, steps)
    t_vec = time.perf_counter() - t0
    assert np.allclose(a, b, rtol=1e-9, atol=0), "vectorised and plain loop disagree"
    print(f"runs: {etas.size} (7 lengths x 12 step sizes), {steps} steps each")
    print(f"plain per-step loop: {t_loop:.2f} s")
    print(f"vectorised:          {t_vec:.3f} s")
    print(f"ratio loop / vectorised: {t_loop / t_vec:.1f}x")
    t0 = time.perf_counter()
    data = ex.run_length_scaling(ex.LengthConfig())
    t_len = time.perf_counter() - t0
    print(f"full length-scaling (7 lengths, 3 rules, 2 normalisations, bisection): {t_len:.1f} s "
          f"(target <= 60 s); max rel. error closed vs simulation {data['max_rel_error']:.4f}")


if __name__ == "__main__":
    main()
