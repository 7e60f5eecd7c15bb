r"""A fixed battery of observables of ``theory/`` and ``numerics/``: the equivalence rule of source mutants.

``python -m gradgap.proofs_check.battery [FILE LINE]`` prints JSON ``{"values": {...}, "line_ran": bool}``:
every numeric quantity of every family (all deterministic routes, and ``mc`` with a fixed seed) and the theory's
closed forms on fixed instances, the family constants of both sides, Theorem 1's step and the exact one-step
threshold on the pinned instances, the expected updates of the algorithms, a short sharp-constant search, and the
critical steps and their length and success laws (every rule).
Each value is written with ``repr`` (17 significant digits), so two runs are equal only when bit-identical.
With ``FILE LINE`` a line tracer records whether that line of that file ran (installed before any ``gradgap``
import, so module-level lines count).

A surviving source mutant is *equivalent* when the mutated line ran and every value equals the unmutated run's
(:func:`gradgap.proofs_check.source_mutants.battery_equal`); a survivor whose line the battery never runs stays
``survived``.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _tracer(path: str, line: int, seen: list[bool]) -> Any:
    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "line" and frame.f_lineno == line:
            seen[0] = True
        return local

    def global_(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename == path:
            if frame.f_lineno == line:
                seen[0] = True
            return local
        return None

    return global_


def _flat(value: Any) -> Any:
    import numpy as np
    import sympy as sp

    if isinstance(value, sp.MatrixBase):
        return [_flat(sp.N(x, 20)) for x in value]
    if isinstance(value, sp.Basic):
        try:
            return repr(float(sp.N(value, 20)))
        except TypeError:
            return str(value)
    if hasattr(value, "mean") and hasattr(value, "stderr"):
        return {"mean": _flat(value.mean), "stderr": _flat(value.stderr)}
    if isinstance(value, np.ndarray):
        return [repr(float(x)) for x in value.reshape(-1)]
    if isinstance(value, float | int | np.floating | np.integer):
        return repr(float(value))
    if isinstance(value, tuple | list):
        return [_flat(v) for v in value]
    return str(value)


def _safe(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return _flat(fn(*args, **kwargs))
    except Exception as exc:  # a mutant that raises is observable too
        return f"raised {type(exc).__name__}"


def _method(module: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(module, name)(*args, **kwargs)


def _instances() -> dict[str, list[Any]]:
    from gradgap.proofs_check.consistency import random_instances
    from gradgap.theory.instances import SoftmaxBandit, TokenSequence

    out = {f: random_instances(f, 4, 7) for f in ("softmax", "tokens", "shared_tokens", "autoregressive", "contextual")}
    out["softmax"] += [SoftmaxBandit((40.0, -30.0, 0.5), frozenset({1})), SoftmaxBandit((1e-9, 0.0), frozenset({0}))]
    out["tokens"] += [TokenSequence(((30.0, -30.0, 0.0), (0.0, 25.0, -5.0)), (1, 0)),
                      TokenSequence(((0.5, 0.1),) * 3, (0, 1, 0))]
    return out


_QUANTITIES = ("success_rate", "log_odds", "gradient_gap", "grad_success_rate", "grad_log_odds", "expected_score",
               "hessian_log_odds")
_ROUTES = ("structured", "enumerate", "autograd", "fd")


def values() -> dict[str, Any]:
    """Every observable of the battery, by name."""
    import numpy as np

    from gradgap.numerics import one_step_threshold as num_ost
    from gradgap.proofs_check import families
    from gradgap.proofs_check.builtin.certified import PINNED_THRESHOLD_CASES
    from gradgap.proofs_check.consistency import _theory_values
    from gradgap.theory import one_step_threshold as ost

    out: dict[str, Any] = {}
    for fam, insts in _instances().items():
        num = families.numerics_module(fam)
        thy = families.theory_module(fam)
        for i, inst in enumerate(insts):
            key = f"{fam}[{i}]"
            for q in _QUANTITIES:
                for route in _ROUTES:
                    out[f"{key}.{q}.{route}"] = _safe(_method, num, q, inst, method=route)
            for q in ("success_rate", "gradient_gap", "grad_success_rate", "expected_score"):
                out[f"{key}.{q}.mc"] = _safe(_method, num, q, inst, method="mc", n=4000, seed=3)
            for success in (True, False):
                out[f"{key}.conditional_score.{success}"] = _safe(num.conditional_score, inst, success,
                                                                 method="structured")
            if i < 3:
                out[f"{key}.theory"] = _safe(_theory_values, inst)
                for q in ("success_rate", "log_odds", "gradient_gap", "grad_success_rate", "hessian_log_odds"):
                    out[f"{key}.theory.{q}"] = _safe(_method, thy, q, inst)
                consts = _safe(thy.constants, inst)
                out[f"{key}.constants"] = consts
                c = thy.constants(inst) if not str(consts).startswith("raised") else None
                if c is not None:
                    out[f"{key}.L_o"] = _flat(c.L_o.value)
                    out[f"{key}.G_o"] = _flat(c.G_o.value)
    for j, (inst, w) in enumerate(PINNED_THRESHOLD_CASES):
        out[f"pinned[{j}].eta_theorem"] = _safe(ost.eta_theorem, inst, w)
        out[f"pinned[{j}].eta_star"] = _safe(lambda i, v: str(ost.eta_star(i, v)), inst, w)
        out[f"pinned[{j}].eta_star.numerics"] = _safe(
            lambda i, v: str(num_ost.eta_star(i, np.asarray(v, float))), inst, w)
    out.update(_algorithm_values())
    out.update(_critical_step_values())
    return out


def _critical_step_values() -> dict[str, Any]:
    from gradgap.theory import critical_step as cs

    out: dict[str, Any] = {}
    for rule in cs.RULES:
        for T in (1, 2, 3):
            out[f"critical_step.worked[{T}].{rule}"] = _safe(lambda t, r: cs.critical_step(cs.worked_example(t), r),
                                                             T, rule)
        for setting in ("worked", "success", "fixed_success"):
            for normalized in (False, True):
                out[f"critical_step_law.{setting}.{rule}.{normalized}"] = _safe(cs.critical_step_law, setting, rule,
                                                                               normalized)
        for setting in ("success", "fixed_success"):
            out[f"success_law.{setting}.{rule}"] = _safe(cs.success_law, rule, setting)
    return out


def _algorithm_values() -> dict[str, Any]:
    from gradgap.numerics import algorithms as alg
    from gradgap.theory.instances import SoftmaxBandit, TokenSequence

    out: dict[str, Any] = {}
    insts = (SoftmaxBandit((0.3, -0.2, 0.9), frozenset({0})), TokenSequence(((0.2, -0.1), (0.4, 0.0)), (0, 1)))
    for i, inst in enumerate(insts):
        pol = _safe(alg.finite_policy, inst)
        out[f"policy[{i}]"] = pol
        for rule in ("reinforce", "rloo", "grpo", "dr_grpo", "dapo"):
            for G in (2, 4):
                out[f"update[{i}].{rule}.{G}"] = _safe(
                    lambda i, r, g: alg.expected_update(alg.finite_policy(i), r, g), inst, rule, G)
        out[f"hessian[{i}]"] = _safe(lambda i: alg.log_odds_hessian(alg.finite_policy(i)), inst)
    out["sharpest"] = _safe(lambda: alg.sharpest_constant_search(
        lambda t: SoftmaxBandit(tuple(float(x) for x in t), frozenset({0})), 3, restarts=4, iters=20))
    return out


def main(argv: list[str]) -> int:
    seen = [False]
    if len(argv) == 2:
        sys.settrace(_tracer(argv[0], int(argv[1]), seen))
    vals = values()
    sys.settrace(None)
    print(json.dumps({"values": vals, "line_ran": seen[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
