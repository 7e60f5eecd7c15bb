r"""``gradgap derive FAMILY --size ...``: the SymPy closed forms of one policy structure, its constants, and
which identities SymPy proved (difference simplified to exactly 0).

Examples::

    gradgap derive softmax --size K=3 --correct 0
    gradgap derive tokens --size T=2,V=3 --min-correct 1
    gradgap derive shared_tokens --size d=2,T=3,V=3 --correct 0,1 --json

No sympy at import time (it is imported by the theory modules when the command runs).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from gradgap.proofs_check.commands import instances, parsing
from gradgap.proofs_check.commands.instances import check_family
from gradgap.theory.instances import GradgapValueError

#: supported sizes per family: name -> (min, max, default)
SIZES: dict[str, dict[str, tuple[int, int, int]]] = {
    "softmax": {"K": (2, 8, 3)},
    "tokens": {"T": (1, 6, 2), "V": (2, 4, 3)},
    "shared_tokens": {"d": (1, 3, 2), "T": (1, 8, 2), "V": (2, 6, 3)},
    "autoregressive": {"T": (1, 3, 2), "V": (2, 3, 2)},
    "contextual": {"P": (1, 3, 2), "A": (2, 4, 2), "d": (1, 3, 1)},
}

#: text output abbreviates expressions longer than this many characters (``--json`` never does)
TEXT_LIMIT = 600

_EPILOG = """\
sizes and defaults:
  softmax        K=2..8 (default K=3); --correct (default 0)
  tokens         T=1..6, V=2..4 (default T=2,V=3); target (default all zeros) via --target;
                 reward: exact match, or at least m matching positions with --min-correct m
  shared_tokens  d=1..3, T=1..8, V=2..6 (default d=2,T=2,V=3); --correct (default 0);
                 features phi(v)_i = (v+1)^(i+1) mod 5 - 2 unless --features '[[...], ...]' (V x d);
                 biases zero unless --bias. Identities are proved with symbolic features and biases.
  contextual     P=1..3, A=2..4, d=1..3 (default P=2,A=2,d=1); --correct as JSON, one set per prompt
                 (default '[[0],[1],...]': x mod A); features phi(x,a)_i = ((x+1)(a+1)^(i+1)) mod 5 - 2
                 unless --features '[[[...], ...], ...]' (P x A x d). Identities are proved with symbolic
                 features and prompt weights.
The closed forms depend on the structure only (parameters are the symbols theta_i).
Identity proofs: tokens T=6,V=4,m=3 takes about a minute; everything else seconds.
"""


def parse_size(family: str, text: str | None) -> dict[str, int]:
    """``K=3`` / ``T=2,V=3`` into a dict of ints, with defaults and range checks per family."""
    return parsing.parse_sizes(text, SIZES[family])


def _defaults(family: str, size: dict[str, int]) -> dict[str, Any]:
    """The zero-parameter structure of ``family`` at ``size`` (the fields not typed on the command line)."""
    if family == "softmax":
        return {"logits": (0.0,) * size["K"], "correct": [0]}
    if family == "tokens":
        return {"logits": ((0.0,) * size["V"],) * size["T"], "target": (0,) * size["T"]}
    if family == "autoregressive":
        V = size["V"]
        return {"logits": tuple(((0.0,) * V,) * V**t for t in range(size["T"])), "target": (0,) * size["T"]}
    if family == "contextual":
        from gradgap.theory.contextual import example_instance as contextual_example

        base = contextual_example(P=size["P"], A=size["A"], d=size["d"])
        return {"theta": (0.0,) * size["d"], "features": base.features, "correct": base.correct}
    from gradgap.theory.shared_tokens import example_instance as shared_example

    base = shared_example(d=size["d"], T=size["T"], V=size["V"], correct=[0])
    return {"theta": (0.0,) * size["d"], "features": base.features, "correct": [0], "T": size["T"]}


def build_instance(args: argparse.Namespace) -> Any:
    """The structure-only instance named by the arguments (zero parameters)."""
    family = check_family(args.family)
    size = parse_size(family, args.size)
    texts = {"correct": args.correct} if family not in ("tokens", "autoregressive") else {
        "target": args.target, "min_correct": args.min_correct}
    if family == "autoregressive":
        texts["eos"] = args.eos
    if family == "contextual":
        texts |= {"features": args.features}
    if family == "shared_tokens":
        texts |= {"features": args.features, "bias": args.bias}
        if args.features is not None:
            rows = parsing.parse_table("features", args.features)
            if len(rows) != size["V"] and "V=" in (args.size or ""):
                raise GradgapValueError(f"features={parsing.short(args.features)!r}: has {len(rows)} rows but "
                                        f"--size says V={size['V']}", field="features", value=args.features)
    return instances.build_instance(family, texts, _defaults(family, size))


def derive(inst: Any, *, prove: bool = True) -> dict[str, Any]:
    """The closed forms, constants and identity results of ``inst``'s structure, as plain data."""
    import sympy as sp

    from gradgap.proofs_check import families

    module = families.theory_module(inst)
    start = time.perf_counter()
    cf = module.closed_forms(inst)
    forms = {name: {"text": str(expr), "latex": sp.latex(expr)} for name, expr in cf.named().items()}
    built = time.perf_counter() - start
    identities = []
    if prove:
        for r in module.prove_identities(inst):
            identities.append({"name": r.name, "proved": r.proved, "detail": r.detail,
                               "seconds": round(r.seconds, 3)})
    return {
        "family": cf.family,
        "structure": cf.structure,
        "parameters": [str(s) for s in cf.theta],
        "closed_forms": forms,
        "constants": module.constants(inst).as_dict(),
        "identities": identities,
        "all_proved": all(r["proved"] for r in identities),
        "seconds": {"closed_forms": round(built, 3), "proofs": round(time.perf_counter() - start - built, 3)},
    }


def _clip(text: str) -> str:
    return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT] + f" ... [{len(text)} characters; see --json]"


def format_text(report: dict[str, Any]) -> str:
    lines = [f"gradgap derive {report['family']}: {report['structure']}",
             f"parameters: {', '.join(report['parameters'])}", "", "closed forms:"]
    for name, form in report["closed_forms"].items():
        lines.append(f"  {name} = {_clip(form['text'])}")
        lines.append(f"    LaTeX: {_clip(form['latex'])}")
    lines += ["", "constants:"]
    for name, c in report["constants"].items():
        value = "not established" if c["value"] is None else f"{c['value']} ~ {c['numeric']} ({c['attainment']})"
        lines.append(f"  {name} = {value}")
        lines.append(f"    {c['proof']}")
    if report["identities"]:
        lines += ["", "identities (proved = difference simplified to exactly 0):"]
        for r in report["identities"]:
            mark = "PROVED    " if r["proved"] else "NOT PROVED"
            lines.append(f"  {mark} {r['name']}  [{r['seconds']} s]")
            lines.append(f"    {r['detail']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    inst = build_instance(args)
    report = derive(inst, prove=not args.no_proofs)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_text(report))
    return 0 if report["all_proved"] else 1


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "derive", help="SymPy closed forms, constants and proved identities of one policy structure",
        description="Closed forms (readable and LaTeX), family constants and the identities SymPy proves "
                    "(difference simplified to exactly 0) for one policy structure. Exit 1 if an identity "
                    "could not be proved.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("family", metavar="FAMILY", help="softmax, tokens, shared_tokens, autoregressive or contextual")
    p.add_argument("--size", default=None, help="sizes as NAME=INT,...: K=3 | T=2,V=3 | d=2,T=3,V=3")
    p.add_argument("--correct", default=None, help="correct arms / vocabulary subset, e.g. 0,2 (default 0)")
    p.add_argument("--target", default=None, help="tokens: target response o*, e.g. 1,0 (default all 0)")
    p.add_argument("--min-correct", default=None, help="tokens: reward 1 iff at least m positions match")
    p.add_argument("--features", default=None, help="shared_tokens: V x d features as JSON; contextual: P x A x d")
    p.add_argument("--bias", default=None, help="shared_tokens: V biases as JSON (default zeros)")
    p.add_argument("--eos", default=None, help="autoregressive: end-of-sequence token")
    p.add_argument("--no-proofs", action="store_true", help="skip the identity proofs")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
