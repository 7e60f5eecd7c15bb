r"""The length law with variable lengths: an end-of-sequence token and token-level aggregation.

Setting: the autoregressive family (:class:`~gradgap.theory.instances.Autoregressive`), V = 3 tokens, token 0 is
``eos``, zero logits, reward = exact match of :math:`(1,\dots,1)` (the longest response; success correlates with
length), against the same table without ``eos`` (every response has length T).

What is computed (exact sums over the enumerated responses, float64):

- **Direction.** For group-relative advantages (GRPO) with per-response :math:`1/|o|` aggregation the advantage
  depends only on the group's rewards, so :math:`\mathbb E[w]=J\,a_+\,h` with the length-weighted gap
  :math:`h=\mathbb E_+[s/|o|]-\mathbb E_-[s/|o|]` for every group size (DERIVED here; TESTED against the
  enumeration of groups in ``proofs_check/builtin/autoregressive.py``). Sequence-level aggregation keeps
  :math:`\mathbb E[w]\parallel g\parallel\nabla J`; :func:`angle` is :math:`\angle(h,g)`.
- **Half-progress step.** :math:`\eta_{1/2}(d)=\sup\{\eta:\ \ell(\theta+\eta'd)-\ell(\theta)\ge\frac12\eta'\langle
  d,g\rangle\ \forall\eta'\le\eta\}`, the step up to which a step along d keeps at least half its first-order
  gain in the log-odds (the sufficient-progress form of reconstruction §4.3). For :math:`d=g` (sequence level,
  unnormalised) and :math:`d=h` (token level, :math:`1/|o|`) the gain :math:`J a_+` is the same, so
  :math:`\eta_{1/2}(h)/\eta_{1/2}(g)` is the factor by which length normalisation rescales the step: exactly T
  when every length is T.

Reproduce: ``python -m gradgap.experiments.eos_length --out docs/figures`` (figure and JSON).
Source: reconstruction §4.3 (length normalisation, DERIVED), §2.1 (g); the measurements are this project's.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gradgap.numerics import autoregressive as na
from gradgap.numerics.algorithms import angle_degrees
from gradgap.proofs_check.atomic import atomic_write_text
from gradgap.theory.instances import Autoregressive

__all__ = ["angle", "half_progress_step", "length_weighted_gap", "main", "plot", "random_angles", "run_eos_length",
           "worked"]


def worked(T: int, *, eos: bool = True) -> Autoregressive:
    """V = 3, zero logits, target (1, ..., 1); token 0 ends the response when ``eos``."""
    zero = tuple(((0.0, 0.0, 0.0),) * 3**t for t in range(T))
    return Autoregressive(logits=zero, target=(1,) * T, eos=0 if eos else None)


def length_weighted_gap(inst: Autoregressive) -> np.ndarray:
    r""":math:`h=\mathbb E_+[s/|o|]-\mathbb E_-[s/|o|]`, the direction of GRPO's expected update (:math:`1/|o|`)."""
    tab = na.response_table(inst)
    ok = tab.rewards.astype(bool)
    S = tab.scores / tab.lengths[:, None]
    return tab.probs[ok] @ S[ok] / tab.probs[ok].sum() - tab.probs[~ok] @ S[~ok] / tab.probs[~ok].sum()


def angle(inst: Autoregressive) -> float:
    r""":math:`\angle(h,g)` in degrees (the angle to :math:`\nabla J` is the same: :math:`\nabla J=J(1-J)g`)."""
    return angle_degrees(length_weighted_gap(inst), np.asarray(na.gradient_gap(inst)))


def half_progress_step(inst: Autoregressive, d: np.ndarray, *, lo: float = 1e-4, hi: float = 1e5, grid: int = 400,
                       rtol: float = 1e-10) -> float:
    r""":math:`\eta_{1/2}(d)` by a geometric scan of :math:`[\text{lo},\text{hi}]` for the first violation, then
    bisection to ``rtol``; ``inf`` when no violation is found up to ``hi``."""
    theta = np.asarray(inst.theta, dtype=np.float64)
    ell0 = na.log_odds(inst)
    slope = float(d @ np.asarray(na.gradient_gap(inst)))

    def keeps_half(eta: float) -> bool:
        return na.log_odds(inst.with_theta(theta + eta * d)) - ell0 >= 0.5 * eta * slope

    prev = 0.0
    for eta in np.geomspace(lo, hi, grid):
        if not keeps_half(float(eta)):
            a, b = prev, float(eta)
            while b - a > rtol * b:
                mid = 0.5 * (a + b)
                a, b = (mid, b) if keeps_half(mid) else (a, mid)
            return a
        prev = float(eta)
    return math.inf


def random_angles(T: int, n: int = 200, seed: int = 0) -> np.ndarray:
    r""":math:`\angle(h,g)` on ``n`` random instances: V = 3, eos = 0, logits N(0, 1), a uniform random target
    (exact match)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        tables = tuple(tuple(tuple(float(x) for x in rng.standard_normal(3)) for _ in range(3**t)) for t in range(T))
        target = tuple(int(x) for x in rng.integers(0, 3, T))
        out.append(angle(Autoregressive(logits=tables, target=target, eos=0)))
    return np.asarray(out)


def _row(inst: Autoregressive) -> dict[str, Any]:
    tab = na.response_table(inst)
    ok = tab.rewards.astype(bool)
    g = np.asarray(na.gradient_gap(inst))
    h = length_weighted_gap(inst)
    eta_g, eta_h = half_progress_step(inst, g), half_progress_step(inst, h)
    return {"T": inst.T, "eos": inst.eos is not None, "J": float(na.success_rate(inst)),
            "mean_length": float(tab.probs @ tab.lengths),
            "mean_length_success": float(tab.probs[ok] @ tab.lengths[ok] / tab.probs[ok].sum()),
            "mean_length_failure": float(tab.probs[~ok] @ tab.lengths[~ok] / tab.probs[~ok].sum()),
            "angle_deg": angle_degrees(h, g), "eta_half_gap": eta_g, "eta_half_token": eta_h,
            "ratio": eta_h / eta_g if math.isfinite(eta_g) and math.isfinite(eta_h) else None}


def fit_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def run_eos_length(Ts: Sequence[int] = tuple(range(1, 8)), fit_from: int = 4) -> dict[str, Any]:
    """Rows for every T with and without ``eos``, and the fitted log-log slopes of the half-progress steps over
    ``T >= fit_from``."""
    rows = [_row(worked(T, eos=e)) for e in (True, False) for T in Ts]
    out: dict[str, Any] = {"setting": "V=3, zero logits, exact match of (1,...,1), eos=0 (or none)", "rows": rows}
    for e in (True, False):
        sel = [r for r in rows if r["eos"] is e and r["T"] >= fit_from]
        if len(sel) >= 2:
            key = "eos" if e else "fixed"
            out[f"slope_eta_half_gap_{key}"] = fit_slope([r["T"] for r in sel], [r["eta_half_gap"] for r in sel])
            out[f"slope_eta_half_token_{key}"] = fit_slope([r["T"] for r in sel], [r["eta_half_token"] for r in sel])
    return out


def plot(data: dict[str, Any], path: Path) -> None:
    """Left: the angle between GRPO's expected update and g against T; right: the half-progress step of the
    Gradient-Gap step and of the 1/|o|-normalised step, with and without eos."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    for e, style in ((True, "o-"), (False, "s--")):
        rows = [r for r in data["rows"] if r["eos"] is e]
        label = "with eos" if e else "fixed length"
        a.plot([r["T"] for r in rows], [r["angle_deg"] for r in rows], style, label=label)
        fin = [r for r in rows if math.isfinite(r["eta_half_gap"])]
        b.plot([r["T"] for r in fin], [r["eta_half_gap"] for r in fin], style, label=f"g, {label}")
        b.plot([r["T"] for r in fin], [r["eta_half_token"] for r in fin], style, alpha=0.6,
               label=f"h (1/|o|), {label}")
    a.set_xlabel("T (longest response)")
    a.set_ylabel("angle(E[w_GRPO], g)  [deg]")
    a.legend()
    b.set_xscale("log")
    b.set_yscale("log")
    b.set_xlabel("T")
    b.set_ylabel("half-progress step eta_1/2")
    b.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _finite(data: Any) -> Any:
    """``inf`` (no violation found) as ``None`` for strict JSON."""
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite(v) for v in data]
    return None if isinstance(data, float) and not math.isfinite(data) else data


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gradgap.experiments.eos_length --out DIR``: write ``eos-length.json`` and ``eos-length.png``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/figures")
    p.add_argument("--T-max", type=int, default=7)
    args = p.parse_args(argv)
    data = run_eos_length(tuple(range(1, args.T_max + 1)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "eos-length.json", json.dumps(_finite(data), indent=2, allow_nan=False) + "\n")
    plot(data, out / "eos-length.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
