r"""Built-in claims of the contextual bandit (reconstruction §5, the paper's own setting) and of group algorithms
across prompts (§4.4 extended to prompts).

- ``contextual-grad-J-per-prompt``: :math:`\nabla J=\sum_x\rho_xJ_x(1-J_x)\,g_x` (prompts reweight their gaps)
- ``contextual-group-update``: one group of G per prompt: :math:`\mathbb E[w]=\sum_x\rho_x\gamma(J_x,G)g_x`
- ``contextual-centred-parallel``: REINFORCE, RLOO: :math:`\mathbb E[w]=\nabla J`; Dr. GRPO:
  :math:`\frac{G-1}G\nabla J` (they still ascend J)
- ``contextual-grpo-ascends``: expect **fails**: "GRPO's expected update ascends J" -- refuted at P = 2, A = 2, d =
  1, G = 8 (ball arithmetic: CERTIFIED)
- ``contextual-critical-step``: fixed steps converge iff :math:`\eta<2/|F_r'(\theta_r)|` (gap, GRPO)
- ``contextual-grpo-biased-fixed-point``: GRPO's fixed point is not the maximiser of J: it settles below max J
- ``contextual-length-critical-step``: responses of :math:`T_x` tokens (:math:`J^{(T)}=\sum_x\rho_xJ_x^{T_x}`):
  REINFORCE summed, 1/|o|-normalised and Gradient-Gap steps converge iff :math:`\eta<2/|F'(\theta_r)|`
- ``contextual-length-threshold-shrinks``: expect **fails**: REINFORCE's critical step falls with T -- it grows (J
  falls as :math:`p^T`)
- ``contextual-length-threshold-shrinks-gap``: with Gradient-Gap steps it falls (about 2/T)
- ``contextual-length-normalised-biased-fixed-point``: unequal lengths: 1/|o| moves the fixed point off argmax J
- ``contextual-adam-stagnation``: Adam at a fixed step settles at J = 2/3 on a realizable instance
- ``contextual-sgd-no-stagnation``: no fixed-step SGD plateau below the best J in realizable searches
- ``contextual-no-aligned-collapse``: no aligned (w = g) run decreasing J at every step to 0 was found (why:
  ``no_collapse``, docs/no_collapse.md)

The joint identities (``score-mean-zero``, ``gap-conditional-scores``, ``grad-J-variance-gap``,
``gap-grad-log-odds``) and the constants cover this family through the registry (``core``); so do the one-step
and Theorem 1 claims (``one-step-*-contextual``, ``theorem1-*-contextual``).

Evidence: ``prove_identities`` with symbolic features and prompt weights (PROVED for the listed structures);
Hypothesis searches comparing the symbolic gains (``theory.algorithms.gain`` at 50 digits) with groups enumerated
by the independent numerics (TESTED); the GRPO refutation evaluates :math:`\langle\mathbb E[w],\nabla J\rangle`
with mpmath interval arithmetic from the definitions (CERTIFIED), next to the 50-digit closed form and the
enumerated groups.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any, Final

import mpmath
import numpy as np
import sympy as sp
from hypothesis import Phase, given
from hypothesis import strategies as st

from gradgap.numerics import contextual as nc
from gradgap.proofs_check.claims import Claim, Evidence, Profile, Status, Strength, mutant_claim, named_check
from gradgap.proofs_check.families import contextual_structures, instance_strategy
from gradgap.proofs_check.search import hypothesis_settings, instance_dict
from gradgap.proofs_check.tolerances import EXACT
from gradgap.theory import algorithms as ta
from gradgap.theory import contextual as tc
from gradgap.theory.instances import ContextualBandit

__all__ = ["GRPO_DESCENT", "claims"]

_SOURCE: Final[str] = "reconstruction §5 (contextual bandits, INFERRED) and §2.1 (DERIVED), extended to prompts"
#: GRPO's expected update descends J here: J_0 = sigma(3/4), J_1 = sigma(-3), per-prompt gaps +1 and -4
GRPO_DESCENT: Final[ContextualBandit] = ContextualBandit(
    theta=(0.75,), features=(((1.0,), (0.0,)), ((0.0,), (-4.0,))), correct=(frozenset({0}), frozenset({1})))
GRPO_DESCENT_G: Final[int] = 8
#: sizes the searches draw (small enough to enumerate A**G groups per prompt)
_SIZES: Final[dict[str, tuple[int, int]]] = {"P": (1, 2), "A": (2, 3), "d": (1, 2)}
_ALGORITHMS: Final[tuple[str, ...]] = tuple(ta.ALGORITHMS)
_GROUP_SIZES: Final[tuple[int, ...]] = (2, 3, 4)


def _hypothesis(strategy: st.SearchStrategy[Any], body: Callable[[Any], None], examples: int,
                profile: Profile) -> None:
    hypothesis_settings(profile, examples=examples, phases=(Phase.explicit, Phase.generate))(
        given(strategy)(body))()


def _vec(matrix: Any) -> np.ndarray:
    return np.array([float(sp.N(x, 50)) for x in sp.Matrix(matrix)], dtype=float)


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    rtol, atol = EXACT
    return bool(np.all(np.abs(a - b) <= atol + rtol * np.maximum(np.abs(a), np.abs(b))))


# ------------------------------------------------------------------ grad J as a reweighted sum of prompt gaps


_PER_PROMPT = "grad J = sum_x rho_x J_x(1-J_x) g_x"


def _per_prompt_proved(profile: Profile) -> Evidence:
    proved = []
    for inst in contextual_structures(profile.size_cap >= 5):
        res = {r.name: r for r in tc.prove_identities(inst)}[_PER_PROMPT]
        if not res.proved:
            return Evidence.undecided(f"not proved for {inst.describe()}: {res.detail}", {"structures": proved})
        proved.append(inst.describe())
    return Evidence.holds(Strength.PROVED, {"identities": len(proved), "structures": proved},
                          detail="difference simplifies to 0 with symbolic features and prompt weights")


def _per_prompt_search(scale: float) -> Callable[[Profile], Evidence]:
    """Autograd grad J against ``scale`` times the per-prompt sum (one-prompt enumerations); scale 1 is the claim."""

    def run(profile: Profile) -> Evidence:
        count = [0]
        bad: list[dict[str, Any]] = []

        seen: set[ContextualBandit] = set()

        def body(inst: ContextualBandit) -> None:
            count[0] += 1
            seen.add(inst)
            rho = np.asarray(inst.prompt_weights)
            parts = [nc.prompt_policy(inst, x) for x in range(inst.P)]
            want = scale * sum(r * fp.J * (1 - fp.J) * fp.gap() for r, fp in zip(rho, parts, strict=True))
            got = np.asarray(nc.grad_success_rate(inst, method="autograd"))
            if not _close(got, want):
                exact = _vec(tc.grad_success_rate(inst))
                hp = scale * sum(float(rho[x]) * float(sp.N(j * (1 - j), 50)) * _vec(g) for x, (j, g) in enumerate(
                    zip(tc.per_prompt_success_rate(inst), tc.per_prompt_gradient_gap(inst), strict=True)))
                if not _close(exact, hp):
                    bad.append({"instance": instance_dict(inst), "grad_J": exact.tolist(), "sum": hp.tolist()})
                    raise AssertionError("refuted")

        try:
            _hypothesis(instance_strategy("contextual", _SIZES, profile.size_cap), body, profile.examples // 2,
                        profile)
        except (AssertionError, ExceptionGroup):
            if not bad:
                raise
        figures = {"examples": count[0], "routes": "autograd grad J vs one-prompt enumerations", "tolerance": EXACT}
        if bad:
            return Evidence.fails(Strength.TESTED, bad[0], figures, detail="differs at 50 digits")
        return Evidence.sampled(len(seen), profile, figures, detail=f"{len(seen)} distinct instances agree",
                                what="distinct instances")

    return run


# ------------------------------------------------------------------ group updates across prompts


def _group_search(profile: Profile, form: Callable[[ContextualBandit, str, int], np.ndarray]) -> Evidence:
    """Enumerated groups (numerics) against ``form`` (the symbolic closed form, or a mutant of it), every algorithm
    and G = 2..4 on each drawn instance: the centred gains, and GRPO's and DAPO's at G <= 3, are multiples of J(1-J),
    so only GRPO and DAPO at G = 4 tell the per-prompt reweighting from a joint one, and each draw must try them."""
    count = [0]
    bad: list[dict[str, Any]] = []
    seen: set[ContextualBandit] = set()

    def body(inst: ContextualBandit) -> None:
        seen.add(inst)
        for G in _GROUP_SIZES:
            for algorithm in _ALGORITHMS:
                count[0] += 1
                got = nc.expected_group_update(inst, algorithm, G)
                want = form(inst, algorithm, G)
                if not _close(got, want):
                    bad.append({"instance": instance_dict(inst), "algorithm": algorithm, "G": G,
                                "enumerated": got.tolist(), "closed_form": want.tolist()})
                    raise AssertionError("refuted")

    try:
        _hypothesis(instance_strategy("contextual", _SIZES, profile.size_cap), body,
                    max(10, profile.examples // 3), profile)
    except (AssertionError, ExceptionGroup):
        if not bad:
            raise
    figures = {"comparisons": count[0], "G": list(_GROUP_SIZES), "algorithms": list(_ALGORITHMS),
               "routes": "sum_x rho_x gamma(J_x,G) g_x (SymPy, 50 digits) vs groups enumerated per prompt"}
    if bad:
        return Evidence.fails(Strength.TESTED, bad[0], figures, detail="closed form differs from enumerated groups")
    return Evidence.sampled(len(seen), profile, figures,
                            detail=f"{len(seen)} distinct instances, each with every algorithm and G, agree",
                            what="distinct instances")


def _symbolic_update(inst: ContextualBandit, algorithm: str, G: int) -> np.ndarray:
    return _vec(tc.expected_group_update(inst, algorithm, G))


def _joint_gain_update(inst: ContextualBandit, algorithm: str, G: int) -> np.ndarray:
    """The mutant: the one-prompt formula applied to the joint J and g, gamma(J, G) g."""
    J = tc.success_rate(inst)
    return float(sp.N(ta.gain(algorithm, G).subs(ta.J, J), 50)) * _vec(tc.gradient_gap(inst))


def _centred_proved(profile: Profile) -> Evidence:
    r"""gain(alg, G) = c_G J(1-J) exactly (c = 1 for REINFORCE and RLOO, (G-1)/G for Dr. GRPO), G = 2..6; with the
    per-prompt identity this gives E[w] = c_G grad J."""
    Gs = list(range(2, 7 if profile.size_cap >= 5 else 6))
    for G in Gs:
        for algorithm, c in (("reinforce", 1), ("rloo", 1), ("dr_grpo", sp.Rational(G - 1, G))):
            diff = sp.simplify(ta.gain(algorithm, G) - c * ta.J * (1 - ta.J))
            if diff != 0:
                return Evidence.undecided(f"{algorithm} G={G}: gain - c J(1-J) = {diff}")
    per_prompt = _per_prompt_proved(profile)
    if per_prompt.strength is not Strength.PROVED:
        return per_prompt
    return Evidence.holds(Strength.PROVED, {"G": Gs, "structures": per_prompt.figures["structures"]},
                          detail="gain = c_G J(1-J) symbolically, and grad J = sum_x rho_x J_x(1-J_x) g_x")


def _centred_enumerated(profile: Profile, dr_grpo_factor: Callable[[int], float] = lambda G: (G - 1) / G
                        ) -> Evidence:
    count = [0]
    worst = [0.0]

    seen: set[ContextualBandit] = set()

    def body(inst: ContextualBandit) -> None:
        seen.add(inst)
        grad = np.asarray(nc.grad_success_rate(inst, method="autograd"))
        for algorithm, G in (("reinforce", 3), ("rloo", 2), ("dr_grpo", 3)):
            c = 1.0 if algorithm != "dr_grpo" else dr_grpo_factor(G)
            err = float(np.max(np.abs(nc.expected_group_update(inst, algorithm, G) - c * grad)))
            worst[0] = max(worst[0], err)
            count[0] += 1
            if not err <= EXACT[1] + EXACT[0] * float(np.max(np.abs(grad))):  # NaN fails
                bad.append({"instance": instance_dict(inst), "algorithm": algorithm, "G": G, "error": err})
                raise AssertionError("refuted")

    bad: list[dict[str, Any]] = []
    try:
        _hypothesis(instance_strategy("contextual", _SIZES, profile.size_cap), body, max(8, profile.examples // 4),
                    profile)
    except (AssertionError, ExceptionGroup):
        if not bad:
            raise
    if bad:
        return Evidence.fails(Strength.TESTED, bad[0], {"cases": count[0]}, detail="E[w] != c_G grad J")
    return Evidence.sampled(len(seen), profile, {"cases": count[0], "max_error": worst[0]},
                            detail=f"enumerated groups = c_G grad J (autograd) on {len(seen)} distinct instances",
                            what="distinct instances")


# ------------------------------------------------------------------ GRPO descends J: the certified refutation


def _iv_alignment(inst: ContextualBandit, algorithm: str, G: int) -> Any:
    r"""Interval enclosure of :math:`\langle\mathbb E[w],\nabla J\rangle` for a two-action, one-correct-action
    contextual bandit, from the definitions: :math:`J_x=\sigma(\theta^\top(\phi_c-\phi_w))`, :math:`g_x=\phi_c-\phi_w`,
    :math:`\nabla J=\sum\rho_xJ_x(1-J_x)g_x`, :math:`\gamma(J,G)=\frac1G\sum_k\binom Gk J^k(1-J)^{G-k}
    [k(1-J)a_1-(G-k)Ja_0]`, GRPO advantages :math:`a_1=(1-k/G)/\hat\sigma_k`, :math:`a_0=-(k/G)/\hat\sigma_k`,
    :math:`\hat\sigma_k^2=k(G-k)/(G(G-1))` (0 at k = 0, G); REINFORCE :math:`a_1=1, a_0=0`."""
    iv = mpmath.iv
    iv.dps = 50
    rho = [iv.mpf(1) / inst.P] * inst.P if inst.weights is None else [
        iv.mpf(w) / iv.mpf(sum(inst.weights)) for w in inst.weights]
    theta = [iv.mpf(t) for t in inst.theta]
    upd = [iv.mpf(0)] * inst.d
    grad = [iv.mpf(0)] * inst.d
    for x, rows in enumerate(inst.features):
        (c,) = inst.correct[x]
        gx = [iv.mpf(a) - iv.mpf(b) for a, b in zip(rows[c], rows[1 - c], strict=True)]
        J = 1 / (1 + iv.exp(-sum(t * g for t, g in zip(theta, gx, strict=True))))
        gamma = iv.mpf(0)
        for k in range(G + 1):
            if algorithm == "reinforce":
                a1, a0 = iv.mpf(1), iv.mpf(0)
            elif k in (0, G):
                a1 = a0 = iv.mpf(0)
            else:
                sigma = iv.sqrt(iv.mpf(k * (G - k)) / (G * (G - 1)))
                a1, a0 = (1 - iv.mpf(k) / G) / sigma, -(iv.mpf(k) / G) / sigma
            gamma += int(sp.binomial(G, k)) * J**k * (1 - J) ** (G - k) * (k * (1 - J) * a1 - (G - k) * J * a0)
        gamma /= G
        upd = [u + rho[x] * gamma * g for u, g in zip(upd, gx, strict=True)]
        grad = [v + rho[x] * J * (1 - J) * g for v, g in zip(grad, gx, strict=True)]
    return sum(u * v for u, v in zip(upd, grad, strict=True))


def _grpo_refutation(algorithm: str) -> Callable[[Profile], Evidence]:
    def run(profile: Profile) -> Evidence:
        inst, G = GRPO_DESCENT, GRPO_DESCENT_G
        enclosure = _iv_alignment(inst, algorithm, G)
        closed = tc.update_alignment(inst, algorithm, G).evalf(50)
        grad = np.asarray(nc.grad_success_rate(inst, method="autograd"))
        enumerated = float(nc.expected_group_update(inst, algorithm, G) @ grad)
        reinforce = float(nc.expected_group_update(inst, "reinforce", G) @ grad)
        step = 1.0  # J after one expected step of size 1 (numerics)
        nxt = inst.with_theta(tuple(np.asarray(inst.theta) + step * nc.expected_group_update(inst, algorithm, G)))
        figures = {"instance": instance_dict(inst), "G": G, "alignment_interval": [mpmath.nstr(enclosure.a, 12),
                                                                                  mpmath.nstr(enclosure.b, 12)],
                   "alignment_50_digits": str(sp.N(closed, 20)), "alignment_enumerated": enumerated,
                   "reinforce_alignment_enumerated": reinforce,
                   "per_prompt_J": [float(j) for j in nc.per_prompt_success_rate(inst)],
                   "J": float(nc.success_rate(inst)), "J_after_step_1": float(nc.success_rate(nxt)),
                   "angle_to_grad_J_deg": nc.angle_degrees(inst, algorithm, G)}
        # the angle to grad J on both sides: theory's exact cosine, numerics' enumerated update in degrees
        cosine = float(sp.N(tc.angle_cosine(inst, algorithm, G), 30))
        figures["angle_cosine_theory"] = cosine
        if not abs(cosine - math.cos(math.radians(figures["angle_to_grad_J_deg"]))) <= 1e-9:
            return Evidence.error(f"cos angle(E[w], grad J): theory {cosine!r}, numerics "
                                  f"cos({figures['angle_to_grad_J_deg']!r} deg)", figures)
        agree = (enumerated < 0) == (float(closed) < 0) == (enclosure.b < 0)
        if enclosure.b < 0 and agree:
            return Evidence.fails(Strength.CERTIFIED, figures, {"interval_digits": 50},
                                  detail=f"<E[w], grad J> in [{mpmath.nstr(enclosure.a, 6)}, "
                                         f"{mpmath.nstr(enclosure.b, 6)}] < 0 (ball arithmetic)")
        if enclosure.a > 0 and agree:
            return Evidence.holds(Strength.CERTIFIED, figures, detail="alignment certified positive here")
        return Evidence.undecided("interval, closed form and enumeration do not agree on the sign", figures)

    return run


def _grpo_search(profile: Profile) -> Evidence:
    """A search for more descents (P = 2, A = 2, d = 1..2, G in {4, 8}): how common they are (figures only)."""
    rng = np.random.default_rng(0)
    tried, descents, worst = 0, 0, 0.0
    for _ in range(max(20, profile.examples // 2)):
        d = int(rng.integers(1, 3))
        feats = tuple(tuple(tuple(float(v) for v in rng.integers(-4, 5, d)) for _ in range(2)) for _ in range(2))
        if any(np.array_equal(np.asarray(r[0]), np.asarray(r[1])) for r in feats):
            continue
        inst = ContextualBandit(tuple(float(v) for v in rng.uniform(-1.5, 1.5, d)), feats,
                                (frozenset({0}), frozenset({1})))
        G = int(rng.choice([4, 8]))
        tried += 1
        grad = np.asarray(nc.grad_success_rate(inst, method="autograd"))
        margin = float(nc.expected_group_update(inst, "grpo", G) @ grad) / max(float(grad @ grad), 1e-300)
        if margin < 0:
            descents += 1
            worst = min(worst, margin)
    return Evidence.holds(Strength.SIMULATED, {"random_instances": tried, "grpo_descents": descents,
                                               "most_negative_margin_over_|grad J|^2": worst},
                          detail=f"{descents} of {tried} random instances have a descending GRPO update")


# ------------------------------------------------------------------ dynamics: critical step, plateaus, collapse


#: the length cases of the quick and ci profiles (A^T <= 81 strings per prompt)
_LIGHT_LENGTHS: Final[tuple[tuple[int, int], ...]] = ((1, 1), (2, 2), (4, 4), (1, 4))


def _experiment(profile: Profile) -> dict[str, Any]:
    from gradgap.experiments import contextual as ce

    light = profile.name in ("quick", "ci")
    cfg = ce.ContextualConfig(steps=200, bisect_iters=8 if light else 16, bisect_steps=1000 if light else 4000,
                              search_instances=12 if light else 40, collapse_instances=40 if light else 200,
                              length_cases=_LIGHT_LENGTHS if light else ce.ContextualConfig.length_cases)
    return _cached_experiment(cfg)


_EXPERIMENT_CACHE: dict[Any, dict[str, Any]] = {}


def _cached_experiment(cfg: Any) -> dict[str, Any]:
    from gradgap.experiments import contextual as ce

    if cfg not in _EXPERIMENT_CACHE:
        _EXPERIMENT_CACHE[cfg] = ce.run_contextual(cfg)
    return _EXPERIMENT_CACHE[cfg]


def _critical_step(factor_ok: float, factor_bad: float) -> Callable[[Profile], Evidence]:
    def run(profile: Profile) -> Evidence:
        from gradgap.experiments import contextual as ce
        from gradgap.proofs_check.tolerances import AGREEMENT

        data = _experiment(profile)
        figures: dict[str, Any] = {}
        for rule, e in data["by_rule"].items():
            figures[rule] = {k: e[k] for k in ("theta_fixed", "eta_crit_closed", "eta_crit_simulated", "rel_error")}
            below = ce._converged(ce.WORKED, factor_ok * e["eta_crit_closed"], rule, 8, 2000, e["theta_fixed"])
            above = ce._converged(ce.WORKED, factor_bad * e["eta_crit_closed"], rule, 8, 2000, e["theta_fixed"])
            figures[rule].update(converges_below=below, converges_above=above)
            if not below or above or e["rel_error"] > AGREEMENT:
                return Evidence.fails(Strength.SIMULATED, {"rule": rule, **figures[rule]}, figures,
                                      detail="the fixed-step iteration does not switch at 2/|F'(theta_r)|")
        return Evidence.holds(Strength.SIMULATED, figures,
                              detail=f"converges at {factor_ok:g} eta_c, not at {factor_bad:g} eta_c; bisection agrees")

    return run


def _biased_fixed_point(profile: Profile, margin: float = 0.0) -> Evidence:
    from gradgap.experiments import contextual as ce

    gap = tc.fixed_point(ce.WORKED, "gap", 8, start=-0.1)
    grpo = tc.fixed_point(ce.WORKED, "grpo", 8, start=-0.1)
    with mpmath.workdps(60):
        dJ = gap["J"] - grpo["J"]
        dtheta = grpo["theta"] - gap["theta"]
    sim = nc.simulate(ce.WORKED, [0.5 * float(grpo["eta_crit"])], rule="grpo", G=8, steps=400)
    settled = float(sim["theta"][0, 0])
    figures = {"theta_argmax_J": mpmath.nstr(gap["theta"], 15), "theta_grpo": mpmath.nstr(grpo["theta"], 15),
               "J_max": mpmath.nstr(gap["J"], 15), "J_grpo_fixed_point": mpmath.nstr(grpo["J"], 15),
               "J_gap_below_max": mpmath.nstr(dJ, 6), "grpo_simulated_theta": settled}
    if dJ > margin and abs(dtheta) > 1e-6 and abs(settled - float(grpo["theta"])) < 1e-8:
        return Evidence.holds(Strength.SIMULATED, figures,
                              detail=f"GRPO settles {mpmath.nstr(dJ, 3)} below max J (50-digit roots; simulated)")
    return Evidence.fails(Strength.SIMULATED, figures, figures, detail="GRPO's fixed point is the maximiser")


def _length_critical_step(factor_ok: float, factor_bad: float) -> Callable[[Profile], Evidence]:
    r"""Token responses: on every length case and both updates the iteration converges at ``factor_ok`` times the
    closed-form :math:`\eta_{crit}` (theory, 50-digit root), not at ``factor_bad`` times it (numerics' enumerated
    updates), and the bisected step agrees within :data:`~gradgap.proofs_check.tolerances.AGREEMENT`."""

    def run(profile: Profile) -> Evidence:
        from gradgap.experiments import contextual as ce
        from gradgap.proofs_check.tolerances import AGREEMENT

        cases = _experiment(profile)["lengths"]["cases"]
        for c in cases:
            lengths, update, eta_c = tuple(c["lengths"]), c["update"], c["eta_crit_closed"]
            below = ce._converged_lengths(ce.WORKED, lengths, update, factor_ok * eta_c, 2000, c["theta_fixed"])
            above = ce._converged_lengths(ce.WORKED, lengths, update, factor_bad * eta_c, 2000, c["theta_fixed"])
            if not below or above or not c["rel_error"] <= AGREEMENT:
                return Evidence.fails(Strength.SIMULATED, {**c, "converges_below": below, "converges_above": above},
                                      {"cases": len(cases)},
                                      detail="the token-response iteration does not switch at 2/|F'(theta_r)|")
        return Evidence.holds(Strength.SIMULATED, {"cases": len(cases), "lengths": [c["lengths"] for c in cases],
                                                   "max_rel_error": max(c["rel_error"] for c in cases)},
                              detail=f"{len(cases)} length cases x update: converges at {factor_ok:g} eta_c, "
                                     f"not at {factor_bad:g} eta_c")

    return run


def _length_threshold_shrinks(update: str) -> Callable[[Profile], Evidence]:
    r"""The paper's length law read at a fixed per-token policy: :math:`\eta_{crit}` of ``update`` should fall as
    :math:`T` grows (equal lengths). Refuted when some :math:`T<T'` has :math:`\eta_{crit}(T')>\eta_{crit}(T)` on
    both the closed form and the simulated bisection; holds when both fall at every step of the table."""

    def run(profile: Profile) -> Evidence:
        cases = [c for c in _experiment(profile)["lengths"]["cases"]
                 if c["update"] == update and c["lengths"][0] == c["lengths"][1]]
        cases.sort(key=lambda c: c["lengths"][0])
        table = {c["lengths"][0]: {"eta_crit": c["eta_crit_closed"], "simulated": c["eta_crit_simulated"],
                                   "J_fixed": c["J_fixed"]} for c in cases}
        figures = {"update": update, "by_T": table}
        for a, b in itertools.pairwise(cases):
            closed, simulated = (b["eta_crit_closed"] > a["eta_crit_closed"],
                                 b["eta_crit_simulated"] > a["eta_crit_simulated"])
            if closed and simulated:
                return Evidence.fails(Strength.SIMULATED, {"T": a["lengths"][0], "T_next": b["lengths"][0],
                                                           "eta_crit": [a["eta_crit_closed"], b["eta_crit_closed"]],
                                                           "simulated": [a["eta_crit_simulated"],
                                                                         b["eta_crit_simulated"]]}, figures,
                                      detail=f"{update}: eta_crit grows from T={a['lengths'][0]} to "
                                             f"T={b['lengths'][0]} ({a['eta_crit_closed']:.4g} -> "
                                             f"{b['eta_crit_closed']:.4g})")
            if closed or simulated:
                return Evidence.undecided("closed form and simulation disagree on the direction", figures)
        if len(cases) < 2:
            return Evidence.undecided("fewer than two equal-length cases", figures)
        return Evidence.holds(Strength.SIMULATED, figures,
                              detail=f"{update}: eta_crit falls with T on T = {sorted(table)}")

    return run


def _length_biased_fixed_point(profile: Profile, margin: float = 0.0) -> Evidence:
    r"""Unequal lengths (1, 4): the normalised update's zero is not the maximiser of :math:`J^{(T)}` and its
    :math:`J` is below the maximum (50-digit roots, theory); the simulated normalised run settles on that zero
    (numerics). Equal lengths: both zeros coincide (the normalised field is the summed one over T)."""
    from gradgap.experiments import contextual as ce

    lengths = (1, 4)
    best = tc.length_fixed_point(ce.WORKED, lengths, update="summed", start=-0.1)
    norm = tc.length_fixed_point(ce.WORKED, lengths, update="normalised", start=-0.1)
    equal = [tc.length_fixed_point(ce.WORKED, (2, 2), update=u, start=-0.1) for u in ("summed", "normalised")]
    with mpmath.workdps(60):
        dJ = best["J"] - norm["J"]
        same = abs(equal[0]["theta"] - equal[1]["theta"])
    sim = nc.simulate_lengths(ce.WORKED, lengths, [0.5 * float(norm["eta_crit"])], update="normalised", steps=400)
    settled = float(sim["theta"][0, 0])
    figures = {"lengths": list(lengths), "theta_argmax_J": mpmath.nstr(best["theta"], 15),
               "theta_normalised": mpmath.nstr(norm["theta"], 15), "J_max": mpmath.nstr(best["J"], 15),
               "J_normalised_fixed_point": mpmath.nstr(norm["J"], 15), "J_gap_below_max": mpmath.nstr(dJ, 6),
               "normalised_simulated_theta": settled, "equal_lengths_theta_difference": mpmath.nstr(same, 3)}
    if dJ > margin and same < mpmath.mpf(10) ** -40 and abs(settled - float(norm["theta"])) < 1e-8:
        return Evidence.holds(Strength.SIMULATED, figures,
                              detail=f"length-normalised updates settle {mpmath.nstr(dJ, 3)} below max J")
    return Evidence.fails(Strength.SIMULATED, figures, figures, detail="the normalised fixed point is the maximiser")


def _adam_stagnation(profile: Profile, optimizer: str = "adam") -> Evidence:
    s = _experiment(profile)["search"]
    adam = [p for p in s["plateaus_realizable"] if p["route"].endswith(optimizer)]
    figures = {"instances": len(s["instances"]), "realizable": s["n_realizable"], "routes": s["routes"],
               "etas": s["etas"], "steps": s["steps"], "plateaus_realizable": s["n_plateaus_realizable"]}
    if adam:
        return Evidence.holds(Strength.SIMULATED, {**figures, "witness": adam[0]},
                              detail=f"Adam settles at J = {adam[0]['J_final']:.9f} < best {adam[0]['best_J']:.6f}")
    return Evidence.fails(Strength.SIMULATED, {"witness": None}, figures, detail="no Adam plateau in this search")


#: instances and steps on which the simulator's Adam is set against torch.optim.Adam
_ADAM_CASES: Final[tuple[tuple[ContextualBandit, float], ...]] = (
    (GRPO_DESCENT, 3.0),
    (ContextualBandit((0.2, -0.4), (((1.0, 0.0), (0.0, 1.0), (1.0, 1.0)), ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0))),
                      (frozenset({0}), frozenset({1, 2})), weights=(1.0, 3.0)), 0.3),
)


def _adam_matches_torch(profile: Profile, steps: int = 30) -> Evidence:
    r"""The simulator's Adam (``numerics.contextual.simulate``, the plateau searches' optimiser) against
    ``torch.optim.Adam`` (:math:`\beta=(0.9,0.999)`, :math:`\epsilon=10^{-8}`, maximising: gradient :math:`-u_k`)
    fed the same expected updates :math:`u_k`: final parameters equal within 1e-9 relative."""
    import torch

    worst = 0.0
    for inst, eta in _ADAM_CASES:
        ours = nc.simulate(inst, [eta], rule="gap", steps=steps, optimizer="adam")["theta"][0]
        p = torch.tensor(inst.theta, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([p], lr=eta, betas=(0.9, 0.999), eps=1e-8)
        for _ in range(steps):
            u = nc.rule_update(inst.with_theta(tuple(float(x) for x in p.detach())), "gap")
            opt.zero_grad()
            p.grad = torch.tensor(-np.asarray(u), dtype=torch.float64)
            opt.step()
        theirs = p.detach().numpy()
        err = float(np.max(np.abs(ours - theirs)) / (1.0 + float(np.max(np.abs(theirs)))))
        worst = max(worst, err)
        if not err <= 1e-9:  # NaN fails
            return Evidence.fails(Strength.CHECKED, {"instance": instance_dict(inst), "eta": eta, "steps": steps,
                                                     "simulator": ours.tolist(), "torch": theirs.tolist()},
                                  {"adam_cases": len(_ADAM_CASES)}, detail="the simulator's Adam is not torch's")
    return Evidence.checked(Status.HOLDS, len(_ADAM_CASES), "instances (Adam vs torch.optim.Adam)",
                            {"adam_cases": len(_ADAM_CASES), "adam_max_rel_error": worst},
                            detail=f"simulator Adam = torch Adam over {steps} steps (max rel. error {worst:.1e})")


def _sgd_no_stagnation(profile: Profile, optimizer: str = "sgd") -> Evidence:
    s = _experiment(profile)["search"]
    sgd = [p for p in s["plateaus_realizable"] if p["route"].endswith(optimizer)]
    figures = {"instances": len(s["instances"]), "realizable": s["n_realizable"], "etas": s["etas"],
               "steps": s["steps"], "plateaus_not_realizable": s["n_plateaus_not_realizable"]}
    if sgd:
        return Evidence.fails(Strength.SIMULATED, sgd[0], figures, detail="an SGD plateau below the best J")
    return Evidence.holds(Strength.SIMULATED, figures, detail="no realizable SGD run settled below the best J")


def _no_collapse(profile: Profile, key: str = "n_witnesses") -> Evidence:
    c = _experiment(profile)["collapse"]
    figures = {"instances": c["instances"], "etas": c["etas"], "steps": c["steps"],
               "runs_below_exp_-20": c["n_runs_below_exp_-20"]}
    if c[key]:
        witness = c["witnesses"][0] if c["witnesses"] else {key: c[key]}
        return Evidence.fails(Strength.SIMULATED, witness, figures, detail=f"{key} = {c[key]}")
    return Evidence.holds(Strength.SIMULATED, figures, detail="no run with J_k decreasing at every step to 0")


def claims() -> list[Claim]:
    """The contextual-bandit claims."""
    return [
        Claim(
            id="contextual-grad-J-per-prompt",
            title="Contextual policy gradient = prompt-weighted per-prompt variance times gap",
            family="contextual",
            statement=r"\nabla J=J(1-J)\,g=\sum_x\rho_x\,J_x(1-J_x)\,g_x",
            source=_SOURCE,
            checks=(named_check("prove_identities", _per_prompt_proved),
                    named_check("hypothesis-routes", _per_prompt_search(1.0))),
            mutants=lambda: [mutant_claim("contextual-grad-J-per-prompt", "scale_2",
                                          named_check("hypothesis-routes", _per_prompt_search(2.0)),
                                          family="contextual")],
        ),
        Claim(
            id="contextual-group-update",
            title="Group algorithms across prompts: the expected update reweights the prompt gaps",
            family="contextual",
            statement=(r"\mathbb E[w]=\sum_x\rho_x\,\gamma(J_x,G)\,g_x\quad(\text{one group of }G\text{ per prompt; "
                       r"REINFORCE, RLOO, GRPO, Dr. GRPO, DAPO})"),
            source="reconstruction §4.4 (one prompt, DERIVED), extended to prompts here",
            checks=(named_check("enumerated-groups", lambda p: _group_search(p, _symbolic_update)),),
            mutants=lambda: [mutant_claim("contextual-group-update", "joint_gain",
                                          named_check("enumerated-groups",
                                                      lambda p: _group_search(p, _joint_gain_update)),
                                          family="contextual")],
        ),
        Claim(
            id="contextual-centred-parallel",
            title="REINFORCE, RLOO and Dr. GRPO still move along grad J across prompts",
            family="contextual",
            statement=(r"\mathbb E[w]=c_G\nabla J,\ c_G=1\ (\text{REINFORCE, RLOO}),\ \tfrac{G-1}G\ "
                       r"(\text{Dr. GRPO}):\ \langle\mathbb E[w],\nabla J\rangle\ge0"),
            source="DERIVED here (gains of reconstruction §4.4)",
            checks=(named_check("symbolic", _centred_proved), named_check("enumerated-groups", _centred_enumerated)),
            mutants=lambda: [mutant_claim("contextual-centred-parallel", "dr_grpo_factor_1",
                                          named_check("enumerated-groups",
                                                      lambda p: _centred_enumerated(p, lambda G: 1.0)),
                                          family="contextual")],
        ),
        Claim(
            id="contextual-grpo-ascends",
            title="Claimed (and refuted): GRPO's expected update ascends J in contextual bandits",
            family="contextual",
            statement=(r"\text{Claimed: }\big\langle\textstyle\sum_x\rho_x\gamma_{\rm GRPO}(J_x,G)g_x,\ \nabla J"
                       r"\big\rangle\ge0.\ \text{Refuted at }\theta=\tfrac34,\ \phi=((1,0),(0,-4)),\ C=(\{0\},\{1\}),"
                       r"\ G=8"),
            source="DERIVED here: GRPO's std normalisation lifts prompts with J_x near 0 or 1 (§4.4)",
            checks=(named_check("certified-counterexample", _grpo_refutation("grpo")),
                    named_check("random-search", _grpo_search)),
            expect="fails",
        ),
        Claim(
            id="contextual-critical-step",
            title="Critical fixed step of the contextual worked example: 2/|F'(theta_r)|",
            family="contextual",
            statement=(r"\theta_{k+1}=\theta_k+\eta F_r(\theta_k)\to\theta_r\iff\eta<\eta_{crit}=2/|F_r'(\theta_r)|"
                       r"\quad(r=\text{gap},\ \text{GRPO},\ G=8;\ \phi_0=(0,1,2),\ \phi_1=(0,1,3),\ C_x=\{1\})"),
            source="DERIVED here (linear stability); reconstruction §4.2 (sharpness heuristic), §5",
            checks=(named_check("simulation", _critical_step(0.9, 1.1)),),
            mutants=lambda: [mutant_claim("contextual-critical-step", "eta_crit_x2",
                                          named_check("simulation", _critical_step(1.8, 2.2)), family="contextual")],
        ),
        Claim(
            id="contextual-grpo-biased-fixed-point",
            title="GRPO's per-prompt normalisation moves the fixed point off the maximiser of J",
            family="contextual",
            statement=(r"F_{\rm GRPO}(\theta_{\rm GRPO})=0,\ \theta_{\rm GRPO}\ne\arg\max J,\ "
                       r"J(\theta_{\rm GRPO})<\max J\ \text{(worked example, }G=8\text{)}"),
            source="DERIVED here (§4.4 gains reweight prompts)",
            checks=(named_check("roots-and-simulation", _biased_fixed_point),),
            mutants=lambda: [mutant_claim("contextual-grpo-biased-fixed-point", "gap_above_1e-6",
                                          named_check("roots-and-simulation",
                                                      lambda p: _biased_fixed_point(p, 1e-6)), family="contextual")],
        ),
        Claim(
            id="contextual-length-critical-step",
            title="Token responses per prompt: the critical fixed step is 2/|F'(theta_r)|, summed or length-normalised",
            family="contextual",
            statement=(r"J^{(T)}=\sum_x\rho_xJ_x^{T_x},\ F=\sum_x\rho_xc_x\nabla J_x^{T_x}\ (c_x\in\{1,1/T_x\}):\ "
                       r"\theta_k\to\theta_r\iff\eta<2/|F'(\theta_r)|\ \text{(worked example, }T\in\{1,2,4\},\ "
                       r"(1,4))"),
            source="DERIVED here (linear stability; reconstruction §4.3 length normalisation)",
            checks=(named_check("simulation", _length_critical_step(0.9, 1.1)),),
            mutants=lambda: [mutant_claim("contextual-length-critical-step", "eta_crit_x2",
                                          named_check("simulation", _length_critical_step(1.8, 2.2)),
                                          family="contextual")],
        ),
        Claim(
            id="contextual-length-threshold-shrinks",
            title="The critical step falls with response length at a fixed per-token policy (contextual)",
            family="contextual",
            statement=(r"T<T'\Rightarrow\eta_{crit}(T')<\eta_{crit}(T)\ \text{for the summed REINFORCE update, "
                       r"same features (worked example)}"),
            source="reconstruction §4.3 (threshold shrinks with length, QUOTED abstract); tested here",
            checks=(named_check("closed-form-and-simulation", _length_threshold_shrinks("summed")),),
            expect="fails",
        ),
        Claim(
            id="contextual-length-threshold-shrinks-gap",
            title="With Gradient-Gap steps the critical step falls with response length (contextual)",
            family="contextual",
            statement=(r"T<T'\Rightarrow\eta_{crit}(T')<\eta_{crit}(T)\ \text{for }F=\nabla\ell^{(T)}=g^{(T)},\ "
                       r"\text{same features (worked example)}"),
            source="reconstruction §4.3 (threshold shrinks with length, QUOTED abstract); tested here",
            checks=(named_check("closed-form-and-simulation", _length_threshold_shrinks("gap")),),
            mutants=lambda: [mutant_claim("contextual-length-threshold-shrinks-gap", "summed_update",
                                          named_check("closed-form-and-simulation",
                                                      _length_threshold_shrinks("summed")), family="contextual")],
        ),
        Claim(
            id="contextual-length-normalised-biased-fixed-point",
            title="Length normalisation with unequal lengths moves the fixed point off the maximiser of J",
            family="contextual",
            statement=(r"T=(1,4):\ F_{1/|o|}(\theta_n)=0,\ J^{(T)}(\theta_n)<\max J^{(T)};\ "
                       r"T=(2,2):\ \theta_n=\arg\max J^{(T)}"),
            source="DERIVED here (reconstruction §4.3: 1/|o| reweights prompts by their lengths)",
            checks=(named_check("roots-and-simulation", _length_biased_fixed_point),),
            mutants=lambda: [mutant_claim("contextual-length-normalised-biased-fixed-point", "gap_above_1e-3",
                                          named_check("roots-and-simulation",
                                                      lambda p: _length_biased_fixed_point(p, 1e-3)),
                                          family="contextual")],
        ),
        Claim(
            id="contextual-adam-stagnation",
            title="Adam at a fixed step stagnates strictly below 100 % on a realizable contextual instance",
            family="contextual",
            statement=(r"\text{Adam},\ \eta=3:\ J_k\to\tfrac23<1=\sup J\ \text{(one prompt saturated at }J_x\approx0"
                       r"\text{; smaller steps reach }J\ge0.999\text{)}"),
            source="reconstruction §4.3 (stagnation below 100 %, QUOTED) and §6 (Adam, QUOTED review); found here",
            checks=(named_check("search", _adam_stagnation), named_check("adam-vs-torch", _adam_matches_torch)),
            mutants=lambda: [mutant_claim("contextual-adam-stagnation", "sgd_plateau",
                                          named_check("search", lambda p: _adam_stagnation(p, "sgd")),
                                          family="contextual")],
        ),
        Claim(
            id="contextual-sgd-no-stagnation",
            title="No fixed-step SGD plateau below the best J in realizable contextual searches",
            family="contextual",
            statement=(r"\text{gap and GRPO (SGD), fixed }\eta\in\{0.3,3\}:\ \text{no realizable run settles below "
                       r"the best }J\text{ reached}"),
            source="reconstruction §4.3 (stagnation, DERIVED corollary); searched here",
            checks=(named_check("search", _sgd_no_stagnation),),
            mutants=lambda: [mutant_claim("contextual-sgd-no-stagnation", "adam_too",
                                          named_check("search", lambda p: _sgd_no_stagnation(p, "adam")),
                                          family="contextual")],
        ),
        Claim(
            id="contextual-no-aligned-collapse",
            title="No aligned collapse found: w = g with large fixed steps never decreased J at every step to 0",
            family="contextual",
            statement=(r"\text{searched: }w_k=g(\theta_k),\ \eta\in\{3,10,30,100\}:\ \text{no run with }"
                       r"J_{k+1}<J_k\ \forall k\text{ and }J_K<e^{-20}"),
            source="reconstruction §4.2 (Theorem 2, QUOTED-2nd); searched here",
            checks=(named_check("search", _no_collapse),),
            mutants=lambda: [mutant_claim("contextual-no-aligned-collapse", "never_below_exp_-20",
                                          named_check("search", lambda p: _no_collapse(p, "n_runs_below_exp_-20")),
                                          family="contextual")],
        ),
    ]
