r"""Benchmark of the structured token evaluator (``gradgap.numerics.tokens``).

(a) structured vs brute-force enumeration at V = 4, T = 8 (65 536 responses): time ratio and the largest
    absolute difference of J and g (must be <= 1e-12), over moderate, near-deterministic and "at least m"
    instances;
(b) the structured evaluator alone at V = 32000, T = 4096 in float64 (exact-match reward), timed side by side
    with one vectorised ``np.exp`` over the same T x V logits in the same run (target: <= 1.5x), and its peak
    memory over the input (tracemalloc; target: <= 2 arrays of T x V).

Run: ``python bench/bench_structured.py`` (``--quick``: a smaller (b) for CI smoke).
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradgap.numerics import tokens
from gradgap.theory.instances import TokenSequence


@dataclass(frozen=True)
class BenchConfig:
    """Sizes and repetitions of the benchmark."""

    small_T: int = 8
    """(a) response length T"""
    small_V: int = 4
    """(a) vocabulary size V"""
    big_T: int = 4096
    """(b) response length T"""
    big_V: int = 32000
    """(b) vocabulary size V"""
    seed: int = 0
    """seed of the random logits"""


def _best_time(fn: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
        del result
    return best


def _small_instances(cfg: BenchConfig, rng: np.random.Generator) -> list[tuple[str, TokenSequence]]:
    T, V = cfg.small_T, cfg.small_V
    out = []
    for label, scale, shift, m in (("moderate", 1.0, 0.0, None), ("near-deterministic J~1", 3.0, 12.0, None),
                                   ("J~0", 2.0, -8.0, None), ("at least m=5", 1.5, 0.0, 5)):
        X = scale * rng.standard_normal((T, V))
        target = rng.integers(0, V, T)
        X[np.arange(T), target] += shift
        out.append((label, TokenSequence(logits=tuple(map(tuple, X.tolist())), target=tuple(target.tolist()),
                                         min_correct=m)))
    return out


def bench_small(cfg: BenchConfig) -> float:
    """(a): print one line per instance; return the largest absolute difference seen."""
    rng = np.random.default_rng(cfg.seed)
    worst = 0.0
    print(f"(a) structured vs enumeration, V={cfg.small_V}, T={cfg.small_T} ({cfg.small_V ** cfg.small_T} responses)")
    for label, inst in _small_instances(cfg, rng):
        t0 = time.perf_counter()
        J_s, g_s = tokens.success_rate(inst), tokens.gradient_gap(inst)
        t1 = time.perf_counter()
        J_e, g_e = tokens.success_rate(inst, method="enumerate"), tokens.gradient_gap(inst, method="enumerate")
        t2 = time.perf_counter()
        dJ, dg = abs(J_s - J_e), float(np.max(np.abs(g_s - g_e)))
        worst = max(worst, dJ, dg)
        print(f"    {label:<24} J={J_s:.6g}  structured {1e3 * (t1 - t0):7.2f} ms  enumerate {1e3 * (t2 - t1):8.1f} ms"
              f"  ratio {(t2 - t1) / (t1 - t0):7.0f}x  max|dJ|={dJ:.1e}  max|dg|={dg:.1e}")
    print(f"    max abs difference {worst:.2e} (required <= 1e-12): {'OK' if worst <= 1e-12 else 'FAIL'}")
    return worst


def _peak_bytes(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    result = fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    del result
    tracemalloc.stop()
    return peak


def bench_big(cfg: BenchConfig) -> tuple[float, float]:
    """(b): print timings and memory; return (time ratio, peak memory in units of T x V float64 arrays)."""
    T, V = cfg.big_T, cfg.big_V
    rng = np.random.default_rng(cfg.seed)
    X = 3.0 * rng.standard_normal((T, V))
    target = rng.integers(0, V, T)
    array_bytes = X.nbytes
    print(f"(b) structured evaluator alone, V={V}, T={T}, float64 ({array_bytes / 2**20:.0f} MiB of logits)")
    ratio, peak = _time_and_memory(X, target, "J ~ 0 (random logits)")
    X[np.arange(T), target] += 25.0  # near-deterministic: 1 - J differs from 1, so the scaling pass is needed
    _time_and_memory(X, target, "target logits +25 (1-J != 1: scaling pass by 1/(1-J) needed)")
    return ratio, peak


def _time_and_memory(X: np.ndarray, target: np.ndarray, label: str) -> tuple[float, float]:
    t_exp = t_gap = float("inf")
    for _ in range(2):  # interleaved, so that both see the same machine load
        t_exp = min(t_exp, _best_time(lambda: np.exp(X), 1))
        t_gap = min(t_gap, _best_time(lambda: tokens.gap_arrays(X, target), 1))
    mem_exp = _peak_bytes(lambda: np.exp(X))
    mem_gap = _peak_bytes(lambda: tokens.gap_arrays(X, target))
    res = tokens.gap_arrays(X, target)
    row_sums = float(np.max(np.abs(res.gap.sum(axis=1))))
    ratio, size = t_gap / t_exp, X.nbytes
    print(f"  {label}: J = {np.exp(res.log_j):.3g}, log J = {res.log_j:.6g}, log(1-J) = {res.log_1mj:.3g}")
    print(f"    np.exp(X)            {t_exp:7.3f} s   peak {mem_exp / size:5.2f} x (T x V)")
    print(f"    structured J and g   {t_gap:7.3f} s   peak {mem_gap / size:5.2f} x (T x V)")
    print(f"    time ratio {ratio:.2f}x (target <= 1.5x); peak memory over the input {mem_gap / size:.2f} arrays "
          f"(target <= 2); max |row sum of g| = {row_sums:.1e} (0 in exact arithmetic)")
    return ratio, mem_gap / size


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small (b) for CI smoke (T=256, V=4000)")
    args = parser.parse_args(argv)
    cfg = BenchConfig(big_T=256, big_V=4000) if args.quick else BenchConfig()
    worst = bench_small(cfg)
    bench_big(cfg)
    return 0 if worst <= 1e-12 else 1


if __name__ == "__main__":
    sys.exit(main())
