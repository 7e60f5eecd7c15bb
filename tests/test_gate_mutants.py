"""The gate kills fixed source mutants: each edit of ``theory/`` or ``numerics/`` below turns
``gradgap check --profile ci --fail-fast`` red (exit 1).

Each mutant is applied in a temporary copy of the source folders (never the working tree); the copy shadows the
installed package through ``PYTHONPATH`` (checked by ``run_gate``). The unmutated gate is green at the ci profile
in ``test_unmutated_gate_is_green_with_fail_fast``. The sampled mutation score over generated mutants is
``bench/bench_mutation.py`` (README "Mutation score").
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from gradgap.proofs_check import source_mutants as sm

#: (name, file, exact text, replacement): the wrong edits the gate must reject
FIXED: list[tuple[str, str, str, str]] = [
    ("softmax Gradient Gap sign flipped (theory)", "theory/softmax.py",
     "theta, J, F, e_bar_C - e_bar_W,", "theta, J, F, e_bar_W - e_bar_C,"),
    ("Theorem 1's constant 8 -> 4 (threshold module)", "theory/one_step_threshold.py",
     "(2.0 * (L + 8.0 * G * G))", "(2.0 * (L + 4.0 * G * G))"),
    ("Monte Carlo standard error x10 (mean)", "numerics/montecarlo.py",
     "stderr=np.sqrt(moments.variance / moments.count)", "stderr=10 * np.sqrt(moments.variance / moments.count)"),
    ("Monte Carlo standard error x10 (Gradient Gap)", "numerics/montecarlo.py",
     "stderr=se, n=n)", "stderr=10 * se, n=n)"),
    ("logsumexp without the max shift", "numerics/logspace.py",
     "np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m",
     "np.log(np.sum(np.exp(a), axis=axis, keepdims=True))"),
    ("tokens L_o 1/2 -> 1", "theory/tokens.py",
     'value=sp.S.Half,\n        attainment="maximum" if V == 2',
     'value=sp.S.One,\n        attainment="maximum" if V == 2'),
    ("factor (1 - J) dropped from the structured grad J", "numerics/_routes.py",
     "return np.exp(parts.log_j + parts.log_1mj) * parts.gap", "return np.exp(parts.log_j) * parts.gap"),
    ("tokens overflow guard disabled", "numerics/tokens.py",
     "if not np.all((total >= _SAFE_LOW) & (total <= _SAFE_HIGH)):", "if False:"),
    ("sharp-constant search halved", "numerics/algorithms.py",
     "return 0.5 * float(np.linalg.eigvalsh(-H)[-1])", "return 0.25 * float(np.linalg.eigvalsh(-H)[-1])"),
    ("tokens G_o sqrt(2T) -> sqrt(4T)", "theory/tokens.py", "value=sp.sqrt(2 * T),", "value=sp.sqrt(4 * T),"),
    ("softmax Gradient Gap sign flipped (numerics)", "numerics/softmax.py",
     "q_plus - pi, q_minus - pi, q_plus - q_minus)", "q_plus - pi, q_minus - pi, q_minus - q_plus)"),
]

#: seconds one mutated gate may take (a killed mutant stops at its first red claim)
LIMIT = 300
#: the control runs the whole gate (nothing fails, so nothing stops it early)
CONTROL_LIMIT = 900
CONTROL = "unmutated control"
#: mutated gates run side by side (the CI machine has 2 cores)
WORKERS = 2


@pytest.fixture(scope="module")
def root():
    return sm.source_root()


def _gate_on(root, name: str, path: str | None = None, old: str = "", new: str = "",
             limit: float = LIMIT) -> tuple[int | None, float, str]:
    """The fail-fast ci gate on a copy of the source, mutated unless ``path`` is ``None`` (the control)."""
    tree = sm.copy_tree(root, sm.scratch())
    try:
        if path is not None:
            sm.apply(tree, sm.fixed_mutant(root, path, old, new, kind=name))
        return sm.run_gate(tree, ["--profile", "ci", "--fail-fast"], limit)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


@pytest.fixture(scope="module")
def gate_results(root):
    """The unmutated control and every fixed mutant's gate run, ``WORKERS`` at a time (the control, a whole
    gate run, first): name -> (exit code, seconds, output tail)."""
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {CONTROL: pool.submit(_gate_on, root, CONTROL, limit=CONTROL_LIMIT)}
        futures.update({f[0]: pool.submit(_gate_on, root, *f) for f in FIXED})
        return {name: fut.result() for name, fut in futures.items()}


@pytest.mark.slow
def test_unmutated_gate_is_green_with_fail_fast(gate_results):
    """The control: the same command on an unmutated copy exits 0, so each red run below is the mutant's doing."""
    code, seconds, tail = gate_results[CONTROL]
    assert code == 0, f"control: exit {code} after {seconds:.0f} s\n{tail}"
    assert "claims as expected" in tail


@pytest.mark.slow
@pytest.mark.parametrize("name", [f[0] for f in FIXED])
def test_fixed_mutant_turns_the_gate_red(gate_results, name):
    code, seconds, tail = gate_results[name]
    assert code == 1, f"{name}: exit {code} after {seconds:.0f} s\n{tail}"
    assert "fail-fast: stopped at" in tail


def test_fixed_mutants_apply_to_the_current_source(root):
    """Every fixed edit still names text that occurs exactly once (a refactor must update this list)."""
    for name, path, old, new in FIXED:
        mutant = sm.fixed_mutant(root, path, old, new, kind=name)
        assert mutant.patched((root / path).read_text()) != (root / path).read_text()


def test_generated_mutants_are_well_formed(root):
    """The generator's edits apply at their recorded positions and parse."""
    import ast

    mutants = sm.generate(root, ("numerics",))
    assert len(mutants) > 100
    for m in sm.sample(mutants, 40, 0):
        ast.parse(m.patched((root / m.path).read_text()))
