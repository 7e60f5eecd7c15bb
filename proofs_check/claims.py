r"""Claims, checks and evidence: the data model of ``gradgap check``.

A :class:`Claim` is data: an id, a family, a LaTeX statement, its source in the reconstruction, what the
project expects (``"holds"`` or ``"fails"``) and a tuple of *checks*. A check is any callable
``(Profile) -> Evidence``; it reports the strongest evidence it really reached, never more:

==============  ===========================================================================================
strength        meaning
==============  ===========================================================================================
``PROVED``      established symbolically (an identity simplifying to 0, a sign-definite form), stated sizes
``CERTIFIED``   interval arithmetic over a bounded parameter box, with subdivision
``TESTED``      a search with the independent numerics: at least ``Profile.min_examples`` distinct examples
                (the profile's minimum), no counterexample
``CHECKED``     fixed instances, a theory-only grid, or a search below the minimum: "CHECKED on 3 instances"
                (``figures["checked_on"]``), never reported as ``TESTED``
``SIMULATED``   a dynamics experiment
``NONE``        nothing (an error, or an undecided check)
==============  ===========================================================================================

A claim reports no more than its statement received. Its checks are either *routes* to the whole statement
(``aggregate="strongest"``, the default: a proof for stated sizes and a search over instances of the same
identity; the claim holds at the strongest holding check) or *parts* of it (``aggregate="weakest"``: a closed
form proved and a bound only searched; every part must hold, and the claim holds at the weakest). Whatever the
mode, a claim one of whose checks reported ``SIMULATED`` is a statement about trajectories and reports at most
``SIMULATED``: a proved closed form bundled with a simulation does not lift the simulation. A closed form that is
proved on its own is a claim of its own (the ``...-closed-form`` claims of the dynamics).

Outcomes are three-valued (convention 9): :attr:`Status.HOLDS`, :attr:`Status.FAILS` (with a counterexample
re-checked at 50 digits), and :attr:`Status.ERROR` / :attr:`Status.UNDECIDED`, which are never HOLDS.

:func:`run_claim` runs every check of a claim (timing each, turning a crash into ``ERROR``) and combines the
results with :func:`combine`: a verified ``FAILS`` wins, then ``ERROR``, then ``HOLDS`` at the strength the
claim's ``aggregate`` rule gives (capped at ``SIMULATED`` when a check simulated), then ``UNDECIDED``.

A claim over the claim language (see :mod:`gradgap.proofs_check.expressions`) carries a :class:`Relation`; build it with
:func:`gradgap.proofs_check.search.relation_claim`, which adds the generic Hypothesis search as its ``TESTED`` check
(this module imports neither the search nor the families, so the search builds on it without an import cycle);
:mod:`gradgap.proofs_check.mutants` derives its wrong variants from the relation's syntax tree.
A claim without a relation may carry ``mutants``: a callable returning wrong variant claims.

Stable API (other modules build on it; do not rename): ``Strength``, ``Status``, ``Evidence``, ``Profile``,
``PROFILES``, ``get_profile``, ``Check``, ``Relation``, ``Claim``, ``named_check``,
``check_name``, ``combine``, ``run_claim``, ``ClaimResult``, ``Aggregate``, ``AGGREGATES``, ``mutant_claim``.

>>> ev = Evidence.holds(Strength.PROVED, {"identities": 3})
>>> ev.status.name, ev.strength.name
('HOLDS', 'PROVED')
"""

from __future__ import annotations

import difflib
import enum
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, Protocol

from gradgap.proofs_check.expressions import relation_latex
from gradgap.theory.instances import FAMILIES, GradgapValueError

__all__ = [
    "AGGREGATES",
    "PROFILES",
    "Aggregate",
    "Check",
    "Claim",
    "ClaimResult",
    "Evidence",
    "Profile",
    "Relation",
    "Status",
    "Strength",
    "check_name",
    "combine",
    "get_profile",
    "mutant_claim",
    "named_check",
    "run_claim",
]


class Strength(enum.IntEnum):
    r"""Evidence levels, ordered: ``NONE < SIMULATED < CHECKED < TESTED < CERTIFIED < PROVED``.

    >>> Strength.CHECKED < Strength.TESTED < Strength.PROVED
    True
    """

    NONE = 0
    SIMULATED = 1
    CHECKED = 2
    TESTED = 3
    CERTIFIED = 4
    PROVED = 5


class Status(enum.Enum):
    r"""Outcome of a check or a claim. ``ERROR`` (a crash) and ``UNDECIDED`` (could not conclude) are never
    ``HOLDS``.

    >>> Status.HOLDS.value
    'HOLDS'
    """

    HOLDS = "HOLDS"
    FAILS = "FAILS"
    ERROR = "ERROR"
    UNDECIDED = "UNDECIDED"


@dataclass(frozen=True)
class Evidence:
    r"""What one check (or a whole claim, after :func:`combine`) established.

    ``figures`` holds JSON-ready numbers (``examples``, ``max_violation``, ``min_slack``, ...);
    ``counterexample`` (for ``FAILS``) is a JSON-ready dict that survived the 50-digit re-evaluation;
    ``seconds`` is filled in by :func:`run_claim` when the check does not set it.

    >>> Evidence.fails(Strength.TESTED, {"J": 0.5}, detail="J_next < J").counterexample
    {'J': 0.5}
    """

    status: Status
    strength: Strength
    figures: dict[str, Any] = field(default_factory=dict)
    counterexample: dict[str, Any] | None = None
    detail: str = ""
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.status in (Status.ERROR, Status.UNDECIDED) and self.strength != Strength.NONE:
            object.__setattr__(self, "strength", Strength.NONE)
        if self.status is Status.FAILS and self.counterexample is None:
            object.__setattr__(self, "counterexample", {})

    @classmethod
    def holds(cls, strength: Strength, figures: Mapping[str, Any] | None = None, detail: str = "") -> Evidence:
        """A holding check at ``strength``."""
        return cls(Status.HOLDS, strength, dict(figures or {}), None, detail)

    @classmethod
    def fails(cls, strength: Strength, counterexample: Mapping[str, Any], figures: Mapping[str, Any] | None = None,
              detail: str = "") -> Evidence:
        """A refuted check; ``strength`` is how firmly the refutation is established."""
        return cls(Status.FAILS, strength, dict(figures or {}), dict(counterexample), detail)

    @classmethod
    def checked(cls, status: Status, count: int, what: str, figures: Mapping[str, Any] | None = None,
                counterexample: Mapping[str, Any] | None = None, detail: str = "") -> Evidence:
        """A check on ``count`` fixed ``what`` (instances, grid points): strength ``CHECKED``, with
        ``figures["checked_on"] = "<count> <what>"`` (shown as "CHECKED on 3 instances").

        >>> Evidence.checked(Status.HOLDS, 3, "instances").figures["checked_on"]
        '3 instances'
        """
        figs = {**dict(figures or {}), "checked_on": f"{count} {what}"}
        cx = None if counterexample is None else dict(counterexample)
        return cls(status, Strength.CHECKED, figs, cx, detail)

    @classmethod
    def sampled(cls, distinct: int, profile: Profile, figures: Mapping[str, Any] | None = None, detail: str = "",
                what: str = "distinct examples") -> Evidence:
        r"""A holding search over ``distinct`` distinct examples: ``TESTED`` when that reaches the profile's
        ``min_examples``, else ``CHECKED`` on that many (the detail says so). ``figures["distinct_examples"]``
        records the count either way.

        >>> p = PROFILES["ci"]
        >>> Evidence.sampled(p.min_examples, p).strength.name, Evidence.sampled(3, p).strength.name
        ('TESTED', 'CHECKED')
        """
        figs = {**dict(figures or {}), "distinct_examples": int(distinct)}
        if distinct >= profile.min_examples:
            return cls(Status.HOLDS, Strength.TESTED, figs, None, detail)
        short = f"only {distinct} {what}, below the {profile.name} minimum of {profile.min_examples} for TESTED"
        return cls.checked(Status.HOLDS, int(distinct), what, figs, detail=f"{detail}; {short}" if detail else short)

    @classmethod
    def error(cls, detail: str, figures: Mapping[str, Any] | None = None) -> Evidence:
        """A check that crashed or could not run."""
        return cls(Status.ERROR, Strength.NONE, dict(figures or {}), None, detail)

    @classmethod
    def undecided(cls, detail: str, figures: Mapping[str, Any] | None = None) -> Evidence:
        """A check that ran but could not conclude (e.g. a form that did not simplify)."""
        return cls(Status.UNDECIDED, Strength.NONE, dict(figures or {}), None, detail)


@dataclass(frozen=True)
class Profile:
    r"""How hard the checks work: ``quick`` (seconds), ``ci`` (the gate, all built-ins in <= 120 s on 2 cores),
    ``thorough`` (deep runs).

    Fields: ``examples`` Hypothesis examples per search; ``size_cap`` an upper cap applied to every size
    parameter range (K, T, V, d) of a search; ``seeds`` seeds of random configurations and trajectories;
    ``trajectories`` and ``steps`` for dynamics checks; ``grid`` points per axis for grid scans;
    ``derandomize`` whether Hypothesis runs derandomised (reproducible gate); ``min_examples`` the number of
    distinct examples a holding search needs to be reported ``TESTED`` (below it: ``CHECKED`` on that many).
    """

    name: str
    examples: int
    size_cap: int
    seeds: tuple[int, ...]
    trajectories: int
    steps: int
    grid: int
    derandomize: bool = True
    min_examples: int = 10


PROFILES: Final[dict[str, Profile]] = {
    "quick": Profile("quick", examples=50, size_cap=3, seeds=(0,), trajectories=2, steps=20, grid=5,
                     min_examples=10),
    "ci": Profile("ci", examples=120, size_cap=4, seeds=(0, 1), trajectories=4, steps=40, grid=9, min_examples=25),
    "thorough": Profile("thorough", examples=1500, size_cap=6, seeds=(0, 1, 2, 3, 4), trajectories=20,
                        steps=200, grid=25, derandomize=False, min_examples=250),
}


def get_profile(name: str | Profile) -> Profile:
    """The profile called ``name``; a :class:`~gradgap.theory.instances.GradgapValueError` with "did you mean" else."""
    if isinstance(name, Profile):
        return name
    if name in PROFILES:
        return PROFILES[name]
    close = difflib.get_close_matches(str(name), list(PROFILES), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise GradgapValueError(f"profile={name!r}: unknown; choose one of {', '.join(PROFILES)}{hint}",
                            field="profile", value=name)


class Check(Protocol):
    """A check: ``check(profile) -> Evidence``. It may carry a ``name`` attribute (see :func:`named_check`)."""

    def __call__(self, profile: Profile, /) -> Evidence: ...


@dataclass(frozen=True)
class _NamedCheck:
    name: str
    fn: Callable[[Profile], Evidence]

    def __call__(self, profile: Profile) -> Evidence:
        return self.fn(profile)


def named_check(name: str, fn: Callable[[Profile], Evidence]) -> Check:
    """Wrap ``fn`` so that reports call it ``name`` (e.g. ``"prove_identities"``, ``"hypothesis-search"``)."""
    return _NamedCheck(name, fn)


def check_name(check: Callable[..., Any]) -> str:
    """The report name of a check: its ``name`` attribute, else its ``__name__``, else its type name."""
    name = getattr(check, "name", None) or getattr(check, "__name__", None)
    if name is None and hasattr(check, "func"):  # functools.partial
        name = getattr(check.func, "__name__", None)
    return str(name or type(check).__name__)


#: the size parameters of each family, with the default inclusive ranges of a search (read off the instance
#: types, where each family describes itself)
SIZE_PARAMETERS: Final[dict[str, dict[str, tuple[int, int]]]] = {
    name: dict(cls.SIZE_PARAMETERS) for name, cls in FAMILIES.items()}
#: the direction kinds of a relation: unit gradient gap, the policy gradient grad J, a random unit vector
DIRECTIONS: Final[tuple[str, ...]] = ("gap", "grad", "random")


@dataclass(frozen=True)
class Relation:
    r"""A statement in the claim language over one family: for every instance with sizes in ``sizes``, every
    direction of kind ``direction`` and every free scalar in ``ranges`` satisfying the hypotheses ``given``,
    the relation ``claim`` holds.

    ``sizes`` maps size parameters (``K``; ``T``, ``V``; ``d``, ``T``, ``V``) to inclusive ``(lo, hi)``;
    missing ones take :data:`SIZE_PARAMETERS` defaults. ``ranges`` maps free scalars (``eta``) to ``(lo, hi)``;
    ``eta`` defaults to ``(0, 10)``. Texts are parsed by :mod:`gradgap.proofs_check.expressions` (AST whitelist).
    """

    claim: str
    family: str
    sizes: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    direction: str = "gap"
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    given: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.family not in SIZE_PARAMETERS:
            close = difflib.get_close_matches(self.family, list(SIZE_PARAMETERS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise GradgapValueError(f"family={self.family!r}: unknown; choose one of "
                                    f"{', '.join(SIZE_PARAMETERS)}{hint}", field="family", value=self.family)
        if self.direction not in DIRECTIONS:
            raise GradgapValueError(f"direction={self.direction!r}: unknown; choose one of {', '.join(DIRECTIONS)}",
                                    field="direction", value=self.direction)
        allowed = SIZE_PARAMETERS[self.family]
        sizes = dict(allowed)
        for key, rng in dict(self.sizes).items():
            if key not in allowed:
                raise GradgapValueError(f"sizes.{key}={rng!r}: not a size parameter of family {self.family!r} "
                                        f"(use {', '.join(allowed)})", field=f"sizes.{key}", value=rng)
            lo, hi = _pair(f"sizes.{key}", rng, integer=True)
            minimum = 1 if key in ("T", "d", "P") else 2
            if lo < minimum or hi < lo:
                raise GradgapValueError(f"sizes.{key}={rng!r}: need {minimum} <= lo <= hi",
                                        field=f"sizes.{key}", value=rng)
            sizes[key] = (int(lo), int(hi))
        object.__setattr__(self, "sizes", dict(sorted(sizes.items())))
        ranges = {"eta": (0.0, 10.0)}
        for key, rng in dict(self.ranges).items():
            if key != "eta":
                raise GradgapValueError(f"ranges.{key}={rng!r}: not a free scalar (only eta)",
                                        field=f"ranges.{key}", value=rng)
            lo, hi = _pair(f"ranges.{key}", rng, integer=False)
            if not (0 <= lo <= hi) or hi > 1e6:
                raise GradgapValueError(f"ranges.{key}={rng!r}: need 0 <= lo <= hi <= 1e6",
                                        field=f"ranges.{key}", value=rng)
            ranges[key] = (float(lo), float(hi))
        object.__setattr__(self, "ranges", ranges)
        object.__setattr__(self, "given", tuple(self.given))

    def __hash__(self) -> int:
        return hash((self.claim, self.family, tuple(self.sizes.items()), self.direction,
                     tuple(self.ranges.items()), self.given))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready description (for reports and LaTeX)."""
        return {"family": self.family, "sizes": {k: list(v) for k, v in self.sizes.items()},
                "direction": self.direction, "ranges": {k: list(v) for k, v in self.ranges.items()},
                "given": list(self.given), "claim": self.claim}


def _pair(name: str, value: Any, *, integer: bool) -> tuple[float, float]:
    ok = isinstance(value, list | tuple) and len(value) == 2 and all(
        isinstance(v, int if integer else int | float) and not isinstance(v, bool) for v in value)
    if not ok:
        kind = "integers" if integer else "numbers"
        raise GradgapValueError(f"{name}={value!r}: must be a [lo, hi] pair of {kind}", field=name, value=value)
    return value[0], value[1]


#: how the checks of a claim add up: each a route to the whole statement, or each a part of it
Aggregate = Literal["strongest", "weakest"]
AGGREGATES: Final[tuple[str, ...]] = ("strongest", "weakest")


@dataclass(frozen=True)
class Claim:
    r"""A statement of the theory plus the checks that establish (or refute) it.

    ``id`` is unique (kebab-case); ``family`` is ``softmax``, ``tokens``, ``shared_tokens`` or ``all``;
    ``statement`` is LaTeX: display math, or text with inline ``$...$`` math when it contains ``$``;
    ``source`` names the reconstruction section and its label (e.g.
    ``"§2.1 item 2, DERIVED"``); ``expect`` is ``"holds"`` or ``"fails"`` (a refuted statement kept as a
    regression check: reported REFUTED, and the gate goes red if it ever stops failing); ``checks`` are
    ``(Profile) -> Evidence`` callables; ``relation`` is set for claims in the claim language (then mutants
    are generated from its syntax tree); ``mutants`` optionally returns wrong variants (each a Claim whose
    checks should FAIL); ``closed_forms`` optionally returns ``(caption, LaTeX)`` pairs for ``gradgap latex``;
    ``aggregate`` says how the checks add up (see :func:`combine`): ``"strongest"`` when each check addresses
    the whole statement, ``"weakest"`` when each establishes a part of it; ``requires`` is the strength the
    claim must reach at its expected status (lower is ``evidence regressed``, see
    :mod:`gradgap.proofs_check.evidence`); ``cross_check`` evaluates the theory's closed forms against the
    independent numerics at a few random points of the claim's families on every run
    (:mod:`gradgap.proofs_check.consistency`).
    """

    id: str
    title: str
    family: str
    statement: str
    source: str
    checks: tuple[Check, ...]
    expect: Literal["holds", "fails"] = "holds"
    relation: Relation | None = None
    mutants: Callable[[], Sequence[Claim]] | None = None
    closed_forms: Callable[[], Sequence[tuple[str, str]]] | None = None
    aggregate: Aggregate = "strongest"
    requires: Strength = Strength.NONE
    cross_check: bool = False

    def __post_init__(self) -> None:
        if not self.id or any(c.isspace() for c in self.id):
            raise GradgapValueError(f"id={self.id!r}: must be a non-empty word without spaces", field="id",
                                    value=self.id)
        if self.expect not in ("holds", "fails"):
            raise GradgapValueError(f"expect={self.expect!r}: must be 'holds' or 'fails' (claim {self.id})",
                                    field="expect", value=self.expect)
        if self.aggregate not in AGGREGATES:
            raise GradgapValueError(f"aggregate={self.aggregate!r}: must be one of {', '.join(AGGREGATES)} "
                                    f"(claim {self.id})", field="aggregate", value=self.aggregate)
        object.__setattr__(self, "checks", tuple(self.checks))

    @property
    def latex_statement(self) -> str:
        """The LaTeX statement: ``statement``, or for a claim in the claim language given without one, its
        relation typeset now (LaTeX is built only when ``gradgap latex`` or a report asks, never at load)."""
        if self.statement or self.relation is None:
            return self.statement
        return relation_latex(self.relation.claim, self.relation.given)

    @property
    def expected_status(self) -> Status:
        """``HOLDS`` or ``FAILS``: what the gate requires."""
        return Status.HOLDS if self.expect == "holds" else Status.FAILS

    def with_changes(self, **changes: Any) -> Claim:
        """A copy with some fields replaced (used by mutants)."""
        return replace(self, **changes)


def mutant_claim(of: str, kind: str, *checks: Check, family: str = "all") -> Claim:
    """A wrong variant of claim ``of`` for mutation testing: id ``<of>~<kind>``, whose ``checks`` should FAIL
    (see :mod:`gradgap.proofs_check.mutants`).

    >>> mutant_claim("gain-limits", "rate_1/G").id
    'gain-limits~rate_1/G'
    """
    return Claim(id=f"{of}~{kind}", title=f"mutant ({kind})", family=family, statement=" ",
                 source=f"mutant of {of}", checks=checks)


_PRIORITY: Final[dict[Status, int]] = {Status.FAILS: 3, Status.ERROR: 2, Status.HOLDS: 1, Status.UNDECIDED: 0}


def combine(results: Sequence[tuple[str, Evidence]], *, aggregate: Aggregate = "strongest") -> Evidence:
    r"""Combine named check results into the claim's evidence, claiming no more than was reached.

    A ``FAILS`` (the strongest refutation) wins over ``ERROR``, which wins over ``HOLDS``, which wins over
    ``UNDECIDED``. With ``aggregate="strongest"`` (each check a route to the whole statement) a holding claim
    gets the *maximum* strength among its holding checks; with ``aggregate="weakest"`` (each check a part of
    the statement) every part must hold (an undecided part leaves the claim ``UNDECIDED``) and the claim gets
    the *minimum*. Either way a holding claim with a check that reported ``SIMULATED`` is a statement about
    trajectories and gets at most ``SIMULATED``. Figures are merged (the decisive check's keys first);
    ``figures["checks"]`` lists every check as ``STATUS/STRENGTH``.

    >>> a = ("proof", Evidence.holds(Strength.PROVED, {"identities": 2}))
    >>> b = ("search", Evidence.holds(Strength.TESTED, {"examples": 100}))
    >>> ev = combine([a, b]); ev.strength.name, ev.figures["examples"]
    ('PROVED', 100)
    >>> combine([a, b], aggregate="weakest").strength.name
    'TESTED'
    >>> combine([a, ("simulation", Evidence.holds(Strength.SIMULATED))]).strength.name
    'SIMULATED'
    >>> combine([a, ("search", Evidence.error("boom"))]).status.name
    'ERROR'
    """
    if aggregate not in AGGREGATES:
        raise GradgapValueError(f"aggregate={aggregate!r}: must be one of {', '.join(AGGREGATES)}",
                                field="aggregate", value=aggregate)
    if not results:
        return Evidence.undecided("no checks")
    status = max((ev.status for _, ev in results), key=_PRIORITY.__getitem__)
    if status is Status.HOLDS and aggregate == "weakest" and any(ev.status is Status.UNDECIDED for _, ev in results):
        status = Status.UNDECIDED
    same = [(n, ev) for n, ev in results if ev.status is status]
    pick = min if status is Status.HOLDS and aggregate == "weakest" else max
    name, decisive = pick(same, key=lambda item: item[1].strength)
    strength = decisive.strength if status in (Status.HOLDS, Status.FAILS) else Strength.NONE
    if status is Status.HOLDS and any(ev.strength is Strength.SIMULATED for _, ev in results):
        strength = min(strength, Strength.SIMULATED)
    figures: dict[str, Any] = dict(decisive.figures)
    for _, ev in results:
        for key, value in ev.figures.items():
            figures.setdefault(key, value)
    figures["checks"] = {n: f"{ev.status.value}/{ev.strength.name}" for n, ev in results}
    details = [f"{n}: {ev.detail}" for n, ev in results if ev.detail]
    detail = "; ".join([f"{name}: {decisive.detail}"] if decisive.detail else []
                       + [d for d in details if not d.startswith(f"{name}: ")])
    return Evidence(status, strength, figures, decisive.counterexample, detail,
                    sum(ev.seconds for _, ev in results))


@dataclass(frozen=True)
class ClaimResult:
    """A claim with its combined evidence and per-check evidence."""

    claim: Claim
    evidence: Evidence
    checks: tuple[tuple[str, Evidence], ...]

    @property
    def regression(self) -> str | None:
        """``evidence regressed: A → B`` when the expected status was reached below ``claim.requires``."""
        from gradgap.proofs_check.evidence import regression

        if self.evidence.status is not self.claim.expected_status:
            return None
        return regression(self.claim.requires, self.evidence.strength)

    @property
    def ok(self) -> bool:
        """Whether the status matches the claim's expectation at the required strength (what the exit code is
        made of)."""
        return self.evidence.status is self.claim.expected_status and self.regression is None


def run_check(check: Check, profile: Profile) -> Evidence:
    """Run one check, timing it; a crash becomes ``ERROR`` with the exception's last frame."""
    start = time.perf_counter()
    try:
        ev = check(profile)
        if not isinstance(ev, Evidence):
            ev = Evidence.error(f"check returned {type(ev).__name__}, not Evidence")
    except Exception as exc:  # a crashing check is an ERROR, never HOLDS
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" if frame else ""
        ev = Evidence.error(f"{type(exc).__name__}: {exc}{where}")
    seconds = time.perf_counter() - start
    return replace(ev, seconds=round(seconds, 3))


def run_claim(claim: Claim, profile: Profile | str = "ci") -> ClaimResult:
    """Run every check of ``claim`` under ``profile`` and combine them (:func:`combine`)."""
    from gradgap.proofs_check import evidence as evid

    prof = get_profile(profile)
    results = tuple((check_name(c), run_check(c, prof)) for c in claim.checks)
    ev = combine(results, aggregate=claim.aggregate)
    ev = evid.missing_proof(ev, results, claim.requires)
    ev = evid.with_scope(ev, results)
    if claim.cross_check:
        from gradgap.proofs_check.consistency import cross_check_claim

        cross = run_check(lambda p: cross_check_claim(claim, p), prof)
        results = (*results, ("theory-vs-numerics", cross))
        ev = evid.apply_cross_check(ev, cross)
    return ClaimResult(claim, ev, results)
