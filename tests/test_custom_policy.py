"""Users' own policies (``gradgap.proofs_check.custom``): a policy written as a plain torch function against the
prefix-tree programme of the autoregressive family, the example module through ``gradgap gap custom``, claim files,
bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given

from gradgap.numerics import autoregressive as na
from gradgap.proofs_check import custom
from gradgap.proofs_check.cli import main
from gradgap.proofs_check.tolerances import EXACT, close
from gradgap.theory.instances import Autoregressive, GradgapError
from tests.strategies import autoregressive_instances
from tests.twins import assert_close

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = f"{ROOT / 'examples' / 'custom_policy.py'}:make_policy"


def as_custom(inst: Autoregressive) -> custom.CustomPolicy:
    """The instance written as a user would: log pi(o) = sum over the ended prefix of log-softmax of its row."""
    V, T, eos = inst.V, inst.T, inst.eos

    def log_prob(theta: torch.Tensor, o: tuple[int, ...]) -> torch.Tensor:
        total = torch.zeros((), dtype=torch.float64)
        offset, code = 0, 0
        for t in range(T):
            row = theta[(offset + code) * V:(offset + code + 1) * V]
            total = total + torch.log_softmax(row, 0)[o[t]]
            if o[t] == eos:
                break
            offset, code = offset + V**t, code * V + o[t]
        return total

    responses = inst.responses()
    return custom.CustomPolicy.from_log_prob(log_prob, inst.theta, responses, inst.reward)


@given(autoregressive_instances(max_params=14))
def test_custom_torch_function_vs_autoregressive_prefix_dp(inst: Autoregressive) -> None:
    rep = custom.report(as_custom(inst))
    assert close(rep["J"], na.success_rate(inst), EXACT)
    assert close(rep["log_odds"], na.log_odds(inst), EXACT)
    assert_close("gradient_gap", "custom autograd vs prefix DP", inst, rep["gradient_gap"], na.gradient_gap(inst),
                 EXACT)
    assert_close("grad_J", "custom autograd vs prefix DP", inst, rep["grad_J"], na.grad_success_rate(inst), EXACT)
    rep_enum = custom.report(as_custom(inst), "enumerate")
    assert_close("gradient_gap", "custom enumerate vs prefix DP", inst, rep_enum["gradient_gap"],
                 na.gradient_gap(inst), EXACT)


def test_gap_custom_example_module_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gap", "custom", "--module", EXAMPLE, "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    policy = custom.load_policy(EXAMPLE)
    # independent of the report: pi((2, 0)) straight from the module's log-probabilities
    logp = policy.log_probs(torch.tensor(policy.theta, dtype=torch.float64)).detach().numpy()
    assert close(rep["J"], float(np.exp(logp[policy.rewards.index(1)])), EXACT)
    assert close(rep["log_odds"], math.log(rep["J"] / (1 - rep["J"])), EXACT)
    assert rep["enumerate_vs_autograd"] <= EXACT[1] + EXACT[0] * rep["gradient_gap_norm"]
    assert_close("grad_J", "report vs J(1-J) g", policy, rep["grad_J"],
                 rep["J"] * (1 - rep["J"]) * np.asarray(rep["gradient_gap"]), EXACT)


def test_custom_claim_file_true_claims_hold_and_the_false_one_is_refuted(capsys: pytest.CaptureFixture[str]) -> None:
    claims = str(ROOT / "examples" / "custom_claims.toml")
    assert main(["gap", "custom", "--module", EXAMPLE, "--claims", claims, "--json", "--points", "40"]) == 0
    out = json.loads(capsys.readouterr().out)
    status = {c["id"]: c["status"] for c in out["claims"]}
    assert status == {"custom-variance-times-gap": "HOLDS", "custom-small-gap-step-raises-ell": "HOLDS",
                      "custom-any-step-raises-J": "FAILS"}
    bad = next(c for c in out["claims"] if c["id"] == "custom-any-step-raises-J")["counterexample"]
    assert bad["lhs"] < bad["rhs"]  # J_next < J at the reported point


def test_unnormalised_log_probs_are_refused() -> None:
    policy = custom.CustomPolicy(lambda th: torch.stack([th[0], th[0]]), (0, 1), (0.0,))
    with pytest.raises(GradgapError, match="normalised"):
        custom.report(policy)


@pytest.mark.parametrize("spec, needle", [
    ("no_colon", "MODULE:FUNCTION"),
    ("missing_file.py:f", "no such file"),
    (f"{ROOT / 'examples' / 'custom_policy.py'}:nope", "no function"),
    (f"{ROOT / 'examples' / 'custom_policy.py'}:TinyLM", "not a CustomPolicy"),
])
def test_gap_custom_bad_module_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], spec: str, needle: str) -> None:
    assert main(["gap", "custom", "--module", spec]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err, err


def test_rewards_must_have_both_outcomes() -> None:
    with pytest.raises(GradgapError, match="one correct and one wrong"):
        custom.CustomPolicy(lambda th: th, (1, 1), (0.0, 0.0))
