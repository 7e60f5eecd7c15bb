r"""Mutation testing of claims: wrong variants must be rejected.

For a claim in the claim language (it carries a :class:`~gradgap.proofs_check.claims.Relation`), mutants are generated
from the syntax tree of its relation (the hypotheses are left alone):

* ``flip``: the relation reversed (``>=`` becomes ``<=``, ``>`` becomes ``<``);
* ``const``: a number, or a family constant ``L_o``/``G_o``, off by a factor 2 in the *unsafe* direction;
* ``drop``: one factor of a product (or the divisor of a quotient) dropped;
* ``exp``: a constant exponent off by one.

A syntactic change can make a claim *weaker* (then it is no wrong variant). So a generated mutant is kept only
if it is unsafe: at sample points of the family that satisfy the hypotheses, its margin is smaller than the
original's at most points where they differ. Each kept mutant runs the generic search; it is *killed* when it
FAILS. A claim without a relation may provide ``Claim.mutants`` (wrong variants, each a claim whose checks
should fail); it overrides generation. Claims expected to fail get no generated mutants.

The mutation score is killed / total; ``gradgap check --mutants`` prints it and the test suite requires 100% on
the built-ins.
"""

from __future__ import annotations

import ast
import copy
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np

from gradgap.proofs_check import expressions as ex
from gradgap.proofs_check import search
from gradgap.proofs_check.claims import Claim, ClaimResult, Profile, Relation, Status, get_profile
from gradgap.proofs_check.families import instance_strategy
from gradgap.proofs_check.report import run_all
from gradgap.proofs_check.search import relation_claim
from gradgap.proofs_check.tolerances import SCREEN_RTOL

__all__ = ["MutationOutcome", "format_outcome", "generate", "mutants_of", "outcome_json", "run_mutation"]

#: sample points used to decide which direction of a mutation is the unsafe one
SAMPLE_POINTS: Final[int] = 40
_FLIP: Final[dict[str, str]] = {">=": "<=", ">": "<", "<=": ">=", "<": ">"}


def _walk_positions(node: ast.AST, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], ast.AST]]:
    yield path, node
    for name, value in ast.iter_fields(node):
        if isinstance(value, ast.AST):
            yield from _walk_positions(value, (*path, name))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, ast.AST):
                    yield from _walk_positions(item, (*path, name, i))


def _replace_at(root: ast.expr, path: tuple[Any, ...], new: ast.expr) -> ast.expr:
    if not path:
        return new
    root = copy.deepcopy(root)
    parent: Any = root
    for step in path[:-1]:
        parent = parent[step] if isinstance(step, int) else getattr(parent, step)
    last = path[-1]
    if isinstance(last, int):
        parent[last] = new
    else:
        setattr(parent, last, new)
    return ast.fix_missing_locations(root)


def _scaled(node: ast.expr, factor: float) -> ast.expr:
    if isinstance(node, ast.Constant):
        value = node.value * factor
        if isinstance(node.value, int) and float(value).is_integer():
            value = int(value)
        return ast.Constant(value)
    op: ast.operator = ast.Mult() if factor > 1 else ast.Div()
    return ast.BinOp(left=copy.deepcopy(node), op=op, right=ast.Constant(2))


def _side_mutants(side: ast.expr) -> Iterator[tuple[str, ast.expr]]:
    """(kind, mutated side) for every position of one side of the relation."""
    for path, node in _walk_positions(side):
        if isinstance(node, ast.Constant) and node.value != 0:
            for f in (2.0, 0.5):
                yield f"const {ast.unparse(node)}->{ast.unparse(_scaled(node, f))}", _replace_at(side, path,
                                                                                                _scaled(node, f))
        if isinstance(node, ast.Name) and node.id in ("L_o", "G_o"):
            for f in (2.0, 0.5):
                yield f"const {node.id}->{ast.unparse(_scaled(node, f))}", _replace_at(side, path, _scaled(node, f))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            yield f"drop {ast.unparse(node.left)}", _replace_at(side, path, copy.deepcopy(node.right))
            yield f"drop {ast.unparse(node.right)}", _replace_at(side, path, copy.deepcopy(node.left))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            yield f"drop /{ast.unparse(node.right)}", _replace_at(side, path, copy.deepcopy(node.left))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and isinstance(node.right, ast.Constant):
            for delta in (1, -1):
                e = node.right.value + delta
                if e == 0:
                    continue
                new = ast.BinOp(left=copy.deepcopy(node.left), op=ast.Pow(), right=ast.Constant(e))
                yield f"exp {ast.unparse(node.right)}->{e}", _replace_at(side, path, new)


def generate(text: str) -> list[tuple[str, str]]:
    r"""Every syntactic mutant of a relation, as ``(kind, relation text)``, deduplicated, before the unsafe
    filter.

    >>> [k for k, _ in generate("J*(1 - J) <= 1/4")][:3]
    ['flip', 'drop J', 'drop 1 - J']
    """
    rel = ex.parse_relation(text)
    out: list[tuple[str, str]] = []
    if rel.op in _FLIP:
        out.append(("flip", f"{ast.unparse(rel.lhs)} {_FLIP[rel.op]} {ast.unparse(rel.rhs)}"))
    for kind, lhs in _side_mutants(rel.lhs):
        out.append((kind, f"{ast.unparse(lhs)} {rel.op} {ast.unparse(rel.rhs)}"))
    for kind, rhs in _side_mutants(rel.rhs):
        out.append((kind, f"{ast.unparse(rel.lhs)} {rel.op} {ast.unparse(rhs)}"))
    seen: set[str] = {rel.unparse()}
    unique: list[tuple[str, str]] = []
    for kind, mutated in out:
        canon = ex.parse_relation(mutated).unparse()
        if canon not in seen:
            seen.add(canon)
            unique.append((kind, mutated))
    return unique


def _sample_envs(relation: Relation, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Float environments at random points of the family that satisfy the hypotheses: instances from the
    family's registry strategy within the relation's sizes (derandomised draws), a seeded direction and step."""

    comp = search._compile(relation)
    rng = np.random.default_rng(seed)
    envs: list[dict[str, Any]] = []
    for inst in _random_instances(relation, 20 * n, seed):
        if len(envs) >= n:
            break
        case = search.Case(inst, tuple(rng.normal(size=len(inst.theta))), float(rng.uniform()))
        env = search._float_env(comp, case)
        if env is not None and search._given_hold_float(comp, env):
            envs.append(env)
    return envs


def _random_instances(relation: Relation, n: int, seed: int) -> list[Any]:
    """Up to ``n`` distinct instances of the relation's family and sizes, drawn by the registry's strategy."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    out: dict[Any, None] = {}  # insertion-ordered set

    @hypothesis_seed(seed)
    @settings(max_examples=n, database=None, deadline=None, phases=(Phase.generate,), print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(instance_strategy(relation.family, relation.sizes, cap=4))
    def collect(inst: Any) -> None:
        out.setdefault(inst)

    collect()
    return list(out)


def _unsafe(original: ex.ParsedRelation, mutant: ex.ParsedRelation, envs: Sequence[dict[str, Any]]) -> bool:
    """Whether the mutant is a *stronger* statement at the sample: smaller margin where the margins differ."""
    lower = higher = 0
    for env in envs:
        a, b = ex.margin(original, env), ex.margin(mutant, env)
        if not (math.isfinite(a) and math.isfinite(b)):
            continue
        tol = SCREEN_RTOL * ex.scale(original, env)
        if b < a - tol:
            lower += 1
        elif b > a + tol:
            higher += 1
    return lower > 0 and lower >= higher


def mutants_of(claim: Claim) -> list[Claim]:
    """The wrong variants of ``claim``: its own ``mutants()``, else the unsafe generated ones (relation
    claims expected to hold), else none."""
    if claim.mutants is not None:
        return list(claim.mutants())
    if claim.relation is None or claim.expect != "holds":
        return []
    rel = claim.relation
    original = ex.parse_relation(rel.claim)
    envs = _sample_envs(rel, SAMPLE_POINTS)
    out: list[Claim] = []
    for kind, text in generate(rel.claim):
        mutated = ex.parse_relation(text)
        if kind != "flip" and not _unsafe(original, mutated, envs):
            continue
        mrel = replace(rel, claim=text)
        out.append(relation_claim(f"{claim.id}~{kind.replace(' ', '_')}", mrel, title=f"mutant ({kind})",
                                  statement=" ", source=f"mutant of {claim.id}"))
    return out


@dataclass(frozen=True)
class MutationOutcome:
    """Per claim: the mutants and whether each was killed (status FAILS)."""

    rows: tuple[tuple[str, str, str, bool], ...]  # (claim id, mutant id, status, killed)
    without_mutants: tuple[str, ...]

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def killed(self) -> int:
        return sum(1 for row in self.rows if row[3])

    @property
    def score(self) -> float:
        return 1.0 if not self.rows else self.killed / self.total


def run_mutation(claims: Sequence[Claim], profile: Profile | str = "ci", *, progress: bool | None = None,
                 runner: Callable[[Claim, Profile], ClaimResult] | None = None) -> MutationOutcome:
    """Generate and run the mutants of every claim; a mutant is killed when its status is FAILS."""

    prof = get_profile(profile)
    rows: list[tuple[str, str, str, bool]] = []
    without: list[str] = []
    pairs: list[tuple[str, Claim]] = []
    for claim in claims:
        mts = mutants_of(claim)
        if not mts:
            without.append(claim.id)
        pairs.extend((claim.id, m) for m in mts)
    if runner is None:
        results = run_all([m for _, m in pairs], prof, progress=progress)
    else:
        results = [runner(m, prof) for _, m in pairs]
    for (cid, m), res in zip(pairs, results, strict=True):
        status = res.evidence.status
        rows.append((cid, m.id, status.value, status is Status.FAILS))
    return MutationOutcome(tuple(rows), tuple(without))


def format_outcome(outcome: MutationOutcome) -> str:
    """A table of mutants and the mutation score."""
    lines = [f"{'claim':32}  {'mutant':56}  {'status':9}  killed"]
    for cid, mid, status, killed in outcome.rows:
        lines.append(f"{cid:32}  {mid:56}  {status:9}  {'yes' if killed else 'NO (survived)'}")
    if outcome.without_mutants:
        lines.append(f"claims without mutants: {', '.join(outcome.without_mutants)}")
    lines.append(f"mutation score: {outcome.killed}/{outcome.total} = {100 * outcome.score:.1f}%")
    return "\n".join(lines)


def outcome_json(outcome: MutationOutcome) -> dict[str, Any]:
    return {"mutants": [{"claim": c, "mutant": m, "status": s, "killed": k} for c, m, s, k in outcome.rows],
            "without_mutants": list(outcome.without_mutants),
            "summary": {"total": outcome.total, "killed": outcome.killed, "score": outcome.score}}
