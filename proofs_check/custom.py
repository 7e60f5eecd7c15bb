r"""Users' own policies: hand gradgap a small policy whose response space is enumerated exactly, then run ``gap``
and claim files on it.

A :class:`CustomPolicy` is a function :math:`\theta\mapsto(\log\pi_\theta(o_i))_{i\le N}` (torch, float64) over an
enumerated list of N responses, the binary rewards :math:`r(o_i)` and the parameter :math:`\theta_0`. Build one from

- a torch module whose ``forward(responses)`` returns :math:`\log\pi(o)` for each row of a response tensor
  (:meth:`CustomPolicy.from_module`; its parameters, flattened in ``named_parameters`` order, are :math:`\theta`), or
- a function ``log_prob(theta, response) -> scalar tensor`` (:meth:`CustomPolicy.from_log_prob`).

Quantities (exact sums over the N responses, float64, log space):
:math:`\log J=\operatorname{lse}_{r=1}\log\pi`, :math:`\log(1-J)=\operatorname{lse}_{r=0}\log\pi`,
:math:`\ell=\log J-\log(1-J)`; :math:`g` by ``autograd`` (:math:`\nabla\ell`) or ``enumerate``
(:math:`\mathbb E_+[s]-\mathbb E_-[s]` from the per-response scores, the Jacobian of :math:`\log\pi`);
:math:`\nabla J` by autograd of :math:`J`. :func:`report` is the ``gradgap gap`` report; :func:`check_policy`
runs the relation claims of a TOML file (the claim language of :mod:`gradgap.proofs_check.expressions`: ``J``,
``ell``, ``norm_g``, ``Delta_mu``, ``eta``, ``J_next``, ``ell_next``, ``d``, and ``L_o``/``G_o`` when the policy
states them) at :math:`\theta_0` and at random points around it. There is no symbolic twin, so a result is
``TESTED (float64 only)``: a violation must exceed the screen tolerance, and nothing is re-evaluated at 50 digits.

Command line: ``gradgap gap custom --module mymod:make_policy [--claims FILE] [--json]`` (``mymod`` a module on
the path or a ``.py`` file; ``make_policy()`` returns a :class:`CustomPolicy`). Example: ``examples/custom_policy.py``.

Source: reconstruction §1-§2.1 (the quantities), QUOTED-2nd/DERIVED; the entry point is this project's.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import math
import os
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from gradgap.proofs_check import expressions as ex
from gradgap.proofs_check.search import _eta_bounds
from gradgap.proofs_check.tolerances import SCREEN_EQ_RTOL, SCREEN_RTOL
from gradgap.theory.instances import GradgapError, GradgapTypeError, GradgapValueError

__all__ = ["MAX_RESPONSES", "CustomPolicy", "PolicyClaimResult", "check_policy", "load_policy", "report"]

#: the most responses a custom policy may enumerate
MAX_RESPONSES: Final[int] = 100_000
#: how far :math:`\sum_o\pi(o)` may be from 1 (the log-probabilities must be normalised)
NORMALISATION_ATOL: Final[float] = 1e-9
#: claim-file keys understood for a custom policy (``family`` must be ``"custom"`` when given)
_KEYS: Final[frozenset[str]] = frozenset({"id", "title", "family", "direction", "ranges", "given", "claim",
                                          "statement", "source", "expect"})


@dataclass(frozen=True)
class CustomPolicy:
    r"""A user's policy over an enumerated response space.

    ``log_probs(theta)`` maps a float64 torch vector :math:`\theta` (length ``len(theta)``) to the N
    log-probabilities :math:`\log\pi_\theta(o_i)`, differentiably; ``rewards`` are the N rewards in {0, 1} (both
    must occur); ``constants`` optionally states ``L_o``/``G_o`` for claims that use them.
    """

    log_probs: Callable[[Any], Any]
    rewards: tuple[int, ...]
    theta: tuple[float, ...]
    name: str = "custom"
    constants: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not callable(self.log_probs):
            raise GradgapTypeError("log_probs: must be a callable theta -> log-probabilities", field="log_probs",
                                   value=type(self.log_probs).__name__)
        rewards = tuple(self.rewards)
        if not 2 <= len(rewards) <= MAX_RESPONSES:
            raise GradgapValueError(f"rewards: {len(rewards)} responses; need 2..{MAX_RESPONSES}", field="rewards",
                                    value=len(rewards))
        if any(isinstance(r, bool) or r not in (0, 1) for r in rewards):
            raise GradgapValueError("rewards: every reward must be 0 or 1", field="rewards", value=rewards[:8])
        if 0 not in rewards or 1 not in rewards:
            raise GradgapValueError("rewards: need at least one correct and one wrong response (0 < J < 1)",
                                    field="rewards", value=rewards[:8])
        object.__setattr__(self, "rewards", tuple(int(r) for r in rewards))
        theta = tuple(float(x) for x in self.theta)
        if not theta or not all(math.isfinite(x) for x in theta):
            raise GradgapValueError("theta: must be a non-empty vector of finite numbers", field="theta",
                                    value=theta[:8])
        object.__setattr__(self, "theta", theta)
        for key, value in dict(self.constants).items():
            if key not in ("L_o", "G_o") or not isinstance(value, int | float) or not math.isfinite(value):
                raise GradgapValueError(f"constants.{key}={value!r}: only finite L_o and G_o", field="constants",
                                        value=key)

    @property
    def d(self) -> int:
        """Number of parameters."""
        return len(self.theta)

    @classmethod
    def from_log_prob(cls, log_prob: Callable[[Any, Any], Any], theta: Sequence[float], responses: Sequence[Any],
                      reward: Callable[[Any], int] | Sequence[int], *, name: str = "custom",
                      constants: Mapping[str, float] | None = None) -> CustomPolicy:
        """From ``log_prob(theta, response) -> scalar tensor`` over the listed ``responses``; ``reward`` a function
        of a response or the list of rewards."""
        items = list(responses)
        rewards = [int(reward(o)) for o in items] if callable(reward) else list(reward)

        def log_probs(th: Any) -> Any:
            import torch

            return torch.stack([torch.as_tensor(log_prob(th, o)).reshape(()) for o in items])

        return cls(log_probs, tuple(rewards), tuple(theta), name, dict(constants or {}))

    @classmethod
    def from_module(cls, module: Any, responses: Any, reward: Callable[[Any], int] | Sequence[int], *,
                    name: str = "custom", constants: Mapping[str, float] | None = None) -> CustomPolicy:
        r"""From a torch module with ``forward(responses) -> (N,)`` log-probabilities; :math:`\theta` is its
        parameters flattened in ``named_parameters()`` order (a float64 copy of the module is used)."""
        import torch
        from torch.func import functional_call

        model = copy.deepcopy(module).double()
        shapes = [(n, p.shape, p.numel()) for n, p in model.named_parameters()]
        if not shapes:
            raise GradgapValueError("module: has no parameters", field="module", value=type(module).__name__)
        theta = torch.cat([p.detach().reshape(-1) for _, p in model.named_parameters()]).tolist()
        R = torch.as_tensor(responses)
        rows = R.tolist()
        rewards = [int(reward(tuple(o) if isinstance(o, list) else o)) for o in rows] if callable(reward) \
            else list(reward)

        def log_probs(th: Any) -> Any:
            params, k = {}, 0
            for n, shape, size in shapes:
                params[n] = th[k:k + size].reshape(shape)
                k += size
            return functional_call(model, params, (R,)).reshape(-1)

        return cls(log_probs, tuple(rewards), tuple(theta), name, dict(constants or {}))


# ------------------------------------------------------------------------------------------ quantities


class _Parts:
    """:math:`\\log J`, :math:`\\log(1-J)`, :math:`\\ell`, :math:`g` and :math:`\\nabla J` at one parameter."""

    def __init__(self, policy: CustomPolicy, theta: Sequence[float], method: str) -> None:
        import torch

        th = torch.tensor(list(theta), dtype=torch.float64, requires_grad=True)
        logp = policy.log_probs(th)
        if not isinstance(logp, torch.Tensor) or logp.shape != (len(policy.rewards),):
            shape = getattr(logp, "shape", type(logp).__name__)
            raise GradgapValueError(f"log_probs: returned {shape}; need a tensor of shape ({len(policy.rewards)},)",
                                    field="log_probs", value=str(shape))
        logp = logp.to(torch.float64)
        total = float(torch.logsumexp(logp.detach(), 0))
        if not abs(total) <= NORMALISATION_ATOL:
            raise GradgapValueError(f"log_probs: sum of probabilities is exp({total:.3g}); the log-probabilities of "
                                    "the enumerated responses must be normalised", field="log_probs", value=total)
        ok = torch.tensor(policy.rewards, dtype=torch.bool)
        log_j, log_1mj = torch.logsumexp(logp[ok], 0), torch.logsumexp(logp[~ok], 0)
        ell = log_j - log_1mj
        self.log_j, self.log_1mj, self.ell = float(log_j.detach()), float(log_1mj.detach()), float(ell.detach())
        (grad_j,) = torch.autograd.grad(log_j.exp(), th, retain_graph=True)
        self.grad_j = grad_j.detach().numpy().astype(np.float64)
        if method == "autograd":
            (g,) = torch.autograd.grad(ell, th)
            self.gap = g.detach().numpy().astype(np.float64)
        elif method == "enumerate":
            scores = torch.autograd.functional.jacobian(lambda t: policy.log_probs(t).to(torch.float64), th.detach())
            w = torch.exp(logp.detach() - torch.where(ok, log_j.detach(), log_1mj.detach()))
            plus = (w[ok, None] * scores[ok]).sum(0)
            minus = (w[~ok, None] * scores[~ok]).sum(0)
            self.gap = (plus - minus).numpy().astype(np.float64)
        else:
            raise GradgapValueError(f"method={method!r}: a custom policy has the routes autograd, enumerate",
                                    field="method", value=method)
        if not (np.all(np.isfinite(self.gap)) and np.all(np.isfinite(self.grad_j)) and math.isfinite(self.ell)):
            raise GradgapValueError("log_probs: not finite (or not differentiable) at theta", field="log_probs",
                                    value=list(theta)[:8])

    @property
    def J(self) -> float:
        return math.exp(self.log_j)


def report(policy: CustomPolicy, method: str = "autograd") -> dict[str, Any]:
    r"""The ``gradgap gap`` report of a custom policy at :math:`\theta_0`: ``J``, ``log_odds``, ``grad_J``,
    ``gradient_gap`` and its norm, plus ``enumerate_vs_autograd``, the largest difference of the two routes of
    :math:`g` (a check of the user's function: both differentiate the same :math:`\log\pi`)."""
    parts = _Parts(policy, policy.theta, method)
    other = _Parts(policy, policy.theta, "enumerate" if method == "autograd" else "autograd")
    return {"family": "custom", "name": policy.name, "method": method, "d": policy.d,
            "responses": len(policy.rewards), "J": parts.J, "log_odds": parts.ell, "grad_J": parts.grad_j.tolist(),
            "gradient_gap": parts.gap.tolist(), "gradient_gap_norm": float(np.linalg.norm(parts.gap)),
            "enumerate_vs_autograd": float(np.max(np.abs(parts.gap - other.gap))), "notes": {}}


# ------------------------------------------------------------------------------------------ claims


@dataclass(frozen=True)
class PolicyClaimResult:
    """One claim checked on a custom policy: its status (``HOLDS``/``FAILS``), whether that is the expected one,
    the figures and the counterexample (``None`` when it holds)."""

    id: str
    expect: str
    status: str
    figures: dict[str, Any]
    counterexample: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == ("HOLDS" if self.expect == "holds" else "FAILS")

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "expect": self.expect, "status": self.status, "evidence": "TESTED (float64 only)",
                "ok": self.ok, "figures": self.figures, "counterexample": self.counterexample}


@dataclass(frozen=True)
class _PolicyClaim:
    id: str
    claim: ex.ParsedRelation
    given: tuple[ex.ParsedRelation, ...]
    direction: str
    eta: tuple[float, float]
    expect: str


def _claim_error(path: str, cid: Any, problem: str) -> GradgapValueError:
    return GradgapValueError(f"{os.path.basename(str(path))}: claim {str(cid)[:40]!r}: {problem[:140]}", field="file",
                             value=path)


def _parse_claims(path: str, policy: CustomPolicy) -> list[_PolicyClaim]:
    from gradgap.proofs_check.userclaims import MAX_FILE_BYTES

    try:
        if os.path.getsize(path) > MAX_FILE_BYTES:
            raise GradgapValueError(f"{path}: larger than {MAX_FILE_BYTES} bytes", field="file", value=path)
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise GradgapValueError(f"{path}: cannot read ({exc.strerror})", field="file", value=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise GradgapValueError(f"{path}: not valid TOML ({str(exc)[:100]})", field="file", value=path) from None
    tables = data.get("claim")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise GradgapValueError(f"{path}: needs [[claim]] tables", field="file", value=path)
    allowed = {"J", "J_next", "ell", "ell_next", "eta", "Delta_mu", "norm_g", "d", *policy.constants}
    out, seen = [], set()
    for table in tables:
        cid = table.get("id")
        if not isinstance(cid, str) or not cid or cid in seen:
            raise _claim_error(path, cid, "needs a unique string id")
        seen.add(cid)
        unknown = sorted(set(table) - _KEYS)
        if unknown:
            raise _claim_error(path, cid, f"unknown keys {unknown} for a custom policy")
        if table.get("family", "custom") != "custom":
            raise _claim_error(path, cid, "family must be 'custom' (or absent) for a custom policy")
        try:
            claim = ex.parse_relation(str(table.get("claim", "")))
            given = tuple(ex.parse_relation(str(g)) for g in table.get("given", []))
        except GradgapError as exc:
            raise _claim_error(path, cid, str(exc)) from None
        names = claim.names.union(*(g.names for g in given))
        if names - allowed:
            raise _claim_error(path, cid, f"names {sorted(names - allowed)} are not defined for this policy")
        direction = table.get("direction", "gap")
        if direction not in ("gap", "grad", "random"):
            raise _claim_error(path, cid, f"direction={direction!r}: use gap, grad or random")
        eta = table.get("ranges", {}).get("eta", [0, 10])
        if (not isinstance(eta, list) or len(eta) != 2 or not all(isinstance(x, int | float) for x in eta)
                or not 0 <= eta[0] <= eta[1] or not math.isfinite(eta[1])):
            raise _claim_error(path, cid, f"ranges.eta={eta!r}: need 0 <= lo <= hi")
        expect = table.get("expect", "holds")
        if expect not in ("holds", "fails"):
            raise _claim_error(path, cid, f"expect={expect!r}: use holds or fails")
        out.append(_PolicyClaim(cid, claim, given, direction, (float(eta[0]), float(eta[1])), expect))
    return out


def _env_at(policy: CustomPolicy, c: _PolicyClaim, theta: np.ndarray, raw_w: np.ndarray, u: float
            ) -> dict[str, Any] | None:
    parts = _Parts(policy, theta, "autograd")
    env: dict[str, Any] = {"d": policy.d, **policy.constants, "J": parts.J, "ell": parts.ell,
                           "norm_g": float(np.linalg.norm(parts.gap))}
    if c.direction == "gap":
        if not env["norm_g"] > 0:
            return None
        w = parts.gap / env["norm_g"]
    elif c.direction == "grad":
        w = parts.grad_j
    else:
        w = raw_w / np.linalg.norm(raw_w)
    env["Delta_mu"] = float(w @ parts.gap)
    upper, lower = _eta_bounds(c.given)
    lo, hi = c.eta
    for node, _ in upper:
        hi = min(hi, float(ex.evaluate(node, env)))
    for node, _ in lower:
        lo = max(lo, float(ex.evaluate(node, env)))
    if not hi >= lo:
        return None
    env["eta"] = lo + u * (hi - lo)
    if c.claim.names.union(*(g.names for g in c.given)) & {"J_next", "ell_next"}:
        nxt = _Parts(policy, theta + env["eta"] * w, "autograd")
        env["J_next"], env["ell_next"] = nxt.J, nxt.ell
    env["_w"] = w
    return env


def _holds(rel: ex.ParsedRelation, env: Mapping[str, Any]) -> bool:
    m = float(ex.margin(rel, env))
    return m > 0 if rel.op in ("<", ">") else m >= 0


def check_policy(policy: CustomPolicy, path: str, *, points: int = 200, radius: float = 1.0, seed: int = 0
                 ) -> list[PolicyClaimResult]:
    r"""Check every claim of the TOML file ``path`` on ``policy``: at :math:`\theta_0` and at ``points - 1``
    random points :math:`\theta_0+\text{radius}\cdot U(-1,1)^d`, each with a direction (``gap``, ``grad`` or a
    random unit vector) and a step :math:`\eta` uniform in its range (narrowed by ``eta <= E`` hypotheses). The
    hypotheses filter the points; a point violates the claim when its margin is below
    :math:`-\text{SCREEN\_RTOL}\cdot(1+|\text{lhs}|+|\text{rhs}|)` (``==``: ``SCREEN_EQ_RTOL``) in float64. HOLDS
    means no violation at the points that passed the hypotheses (TESTED, float64 only)."""
    if isinstance(points, bool) or not isinstance(points, int) or not 1 <= points <= 100_000:
        raise GradgapValueError(f"points={points!r}: must be an integer in 1..100000", field="points", value=points)
    if not (isinstance(radius, int | float) and math.isfinite(radius) and radius >= 0):
        raise GradgapValueError(f"radius={radius!r}: must be a finite number >= 0", field="radius", value=radius)
    claims = _parse_claims(path, policy)
    out = []
    theta0 = np.asarray(policy.theta, dtype=np.float64)
    for c in claims:
        rng = np.random.default_rng([seed, len(c.id)])
        evaluated, undefined, worst, counter = 0, 0, math.inf, None
        for k in range(points):
            theta = theta0 if k == 0 else theta0 + radius * rng.uniform(-1.0, 1.0, policy.d)
            raw_w = rng.standard_normal(policy.d)
            u = float(rng.uniform()) if k else 1.0
            env = _env_at(policy, c, theta, raw_w, u)
            if env is None or not all(_holds(g, env) for g in c.given):
                continue
            tol = (SCREEN_EQ_RTOL if c.claim.op == "==" else SCREEN_RTOL) * float(ex.scale(c.claim, env))
            margin = float(ex.margin(c.claim, env))
            if margin != margin:  # NaN: the claim cannot be evaluated here (counted, never read as holding)
                undefined += 1
                continue
            evaluated += 1
            worst = min(worst, margin / tol if tol else margin)
            if margin < -tol:
                counter = {"theta": theta.tolist(), "w": env["_w"].tolist(), "eta": env["eta"],
                           "values": {k2: v for k2, v in env.items() if k2 != "_w"},
                           "lhs": float(ex.evaluate(c.claim.lhs, env)), "rhs": float(ex.evaluate(c.claim.rhs, env))}
                break
        figures = {"points": points, "evaluated": evaluated, "undefined": undefined, "radius": radius,
                   "min_margin_over_tolerance": None if worst == math.inf else float(f"{worst:.3e}")}
        if counter is None and evaluated == 0:
            raise _claim_error(path, c.id, "no point satisfied the hypotheses with a defined margin"
                               f"{f' ({undefined} gave NaN)' if undefined else ''}; widen radius or ranges")
        out.append(PolicyClaimResult(c.id, c.expect, "HOLDS" if counter is None else "FAILS", figures, counter))
    return out


# ------------------------------------------------------------------------------------------ loading


def load_policy(spec: str) -> CustomPolicy:
    """``"module:function"`` or ``"path/to/file.py:function"``: import it and call ``function()`` (no arguments);
    it must return a :class:`CustomPolicy`. The user's module is imported (and so runs): pass only your own code."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise GradgapValueError(f"module={str(spec)[:60]!r}: use MODULE:FUNCTION or FILE.py:FUNCTION", field="module",
                                value=spec)
    where, func = spec.split(":")
    try:
        if where.endswith(".py"):
            if not os.path.isfile(where):
                raise GradgapValueError(f"module={where[:80]!r}: no such file", field="module", value=where)
            name = "gradgap_user_policy_" + os.path.splitext(os.path.basename(where))[0]
            module_spec = importlib.util.spec_from_file_location(name, where)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except GradgapError:
        raise
    except Exception as exc:  # the user's code: report it on one line
        raise GradgapValueError(f"module={where[:60]!r}: import failed ({type(exc).__name__}: {str(exc)[:80]})",
                                field="module", value=where) from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise GradgapValueError(f"module={where[:60]!r}: has no function {func[:40]!r}", field="module", value=spec)
    try:
        policy = fn()
    except GradgapError:
        raise
    except Exception as exc:
        raise GradgapValueError(f"{func[:40]}(): raised {type(exc).__name__}: {str(exc)[:100]}", field="module",
                                value=spec) from None
    if not isinstance(policy, CustomPolicy):
        raise GradgapTypeError(f"{func[:40]}(): returned {type(policy).__name__}, not a CustomPolicy",
                               field="module", value=spec)
    return policy

