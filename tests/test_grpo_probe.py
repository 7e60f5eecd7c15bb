"""The GRPO probe on real TRL runs of the tiny preset (CPU): metrics, the Gradient Gap against per-sample scores,
TRL's update against the group identity, and the error paths of a run.

Marked ``llm``: skipped cleanly when trl is not installed.
"""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("trl")
torch = pytest.importorskip("torch")

from gradgap.experiments.grpo.presets import resolve_preset  # noqa: E402
from gradgap.experiments.grpo.probe import NonFiniteLossError, RewardFunctionError, completion_log_probs  # noqa: E402
from gradgap.experiments.grpo.run import run_one  # noqa: E402
from gradgap.proofs_check import tolerances  # noqa: E402
from gradgap.theory.instances import GradgapValueError  # noqa: E402

pytestmark = pytest.mark.llm

#: TRL's fused log-prob kernel computes in float32 even for a float64 model (trl/kernels/chunked_logprob.py);
#: the lead moves this entry into proofs_check/tolerances.py as TRL_FP32.
TRL_FP32 = getattr(tolerances, "TRL_FP32", (1e-5, 1e-9))

LENGTH = 2


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("gradgap-cache"))


def _cfg(cache_dir: str, **kw):
    base = dict(length=LENGTH, steps=2, cache_dir=cache_dir, lr=0.02, eval_prompts=16)
    base.update(kw)
    return resolve_preset("tiny", **base)


def _read(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_tiny_run_writes_one_checked_record_per_step(tmp_path, cache_dir):
    optim, lr = "sgd", 0.02
    cfg = _cfg(cache_dir, steps=3, optim=optim, lr=lr, gap_every=1, eval_every=1)  # every field at every step
    res = run_one(cfg, tmp_path, quiet=True)
    recs = _read(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in recs] == [1, 2, 3]
    assert res.status in ("OK", "COLLAPSED") and res.summary["steps_done"] == 3
    prev = res.summary["initial_eval_success"]
    assert 0 < prev < 1
    for r in recs:
        assert r["learning_rate"] == pytest.approx(lr)
        assert 0 <= r["success_rate"] <= 1 and len(r["per_prompt_success"]) == cfg.prompts_per_step
        assert r["success_rate"] == pytest.approx(sum(r["per_prompt_success"]) / cfg.prompts_per_step)
        assert 0 <= r["frac_zero_variance_groups"] <= 1
        assert 1 <= r["mean_response_length"] <= cfg.effective_max_completion_length
        assert r["gap_route"] == "signed_objective"
        assert r["update_route"] == "post_clip_gradient"
        assert r["update_norm"] == pytest.approx(lr * r["grad_norm_clipped"])
        if r["gap_groups"] > 0:
            assert r["gradient_gap_norm"] > 0
            assert -1 - 1e-9 <= r["alignment"] <= 1 + 1e-9
            assert r["delta_mu"] == pytest.approx(r["alignment"] * r["gradient_gap_norm"])
        else:
            assert r["gradient_gap_norm"] is None
        assert 0 < r["eval_success_rate"] < 1
        assert r["eval_log_odds"] == pytest.approx(math.log(r["eval_success_rate"] / (1 - r["eval_success_rate"])))
        assert r["delta_eval_success_rate"] == pytest.approx(r["eval_success_rate"] - prev)
        prev = r["eval_success_rate"]
    first = recs[0]
    assert first["constants_step"] == 1 and first["G_o"] > 0 and first["L_o"] >= 0
    if first.get("delta_mu") is not None and first["delta_mu"] > 0:
        expected = first["delta_mu"] / (2 * (first["L_o"] + 8 * first["G_o"] ** 2))
        assert first["predicted_safe_step"] == pytest.approx(expected)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == res.status


def test_default_cadence_records_cheap_fields_every_step_and_the_rest_on_schedule(tmp_path, cache_dir):
    cfg = _cfg(cache_dir, steps=12)
    assert (cfg.gap_every, cfg.eval_every, cfg.constants_every) == (10, 10, 50)
    run_one(cfg, tmp_path, quiet=True)
    recs = _read(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in recs] == list(range(1, 13))
    for r in recs:  # the cheap fields, at every step
        for key in ("learning_rate", "success_rate", "per_prompt_success", "frac_zero_variance_groups",
                    "mean_response_length", "update_norm", "grad_norm_clipped", "gap_groups", "time_s"):
            assert r[key] is not None, (r["step"], key)
        gap_step = r["step"] in (1, 11)
        if not gap_step or r["gap_groups"] == 0:
            assert r["gradient_gap_norm"] is None and r["alignment"] is None
        else:
            assert r["gradient_gap_norm"] > 0 and r["alignment"] is not None
        assert r["constants_step"] == 1  # step 1, next at step 51
        assert ("eval_success_rate" in r) == (r["step"] in (10, 12)), r["step"]  # every 10 steps and the last
    assert [recs[i]["eval_span"] for i in (9, 11)] == [10, 2]


def test_micro_batch_without_mixed_group_costs_no_backward(tmp_path):
    from gradgap.experiments.grpo.probe import GradgapProbe

    probe = GradgapProbe(tmp_path / "m.jsonl", optim="sgd", constants_every=0)
    ids = torch.zeros(4, 3, dtype=torch.long)
    logps = torch.zeros(4, 3, requires_grad=True)  # no trainer, no model: a backward would fail on _params()
    inputs = {"gradgap_coef": torch.zeros(4), "completion_mask": torch.ones(4, 3), "completion_ids": ids}
    probe.accumulate_gap(None, None, inputs, logps)
    assert probe._gap is None and probe.cost_calls["gap"] == 1


def test_adamw_update_from_moments_equals_realised_parameter_change(tmp_path, cache_dir):
    runs = {}
    for route in ("adam_state", "realised_change"):
        cfg = _cfg(cache_dir, steps=2, optim="adamw", lr=1e-3, update_route=route, constants_every=0, gap_every=1,
                   eval_every=1)
        run_one(cfg, tmp_path / route, quiet=True)
        runs[route] = _read(tmp_path / route / "metrics.jsonl")
    for a, b in zip(runs["adam_state"], runs["realised_change"], strict=True):
        assert (a["update_route"], b["update_route"]) == ("adam_state", "realised_change")
        assert a["eval_success_rate"] == b["eval_success_rate"]  # same seed: the same trajectory
        for key in ("update_norm", "alignment"):
            if a[key] is not None:
                rtol, atol = TRL_FP32  # the realised change is a float32 difference of parameters
                assert abs(a[key] - b[key]) <= atol + rtol * abs(b[key]), (key, a[key], b[key])


def _per_sample_scores(model, inputs) -> torch.Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(inputs["completion_ids"].shape[0]):
        row = [inputs[k][i : i + 1] for k in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")]
        lp = completion_log_probs(model, *row)
        grads = torch.autograd.grad(lp.sum(), params, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                               for p, g in zip(params, grads, strict=True)]))
    return torch.stack(rows)


def _assert_close_vec(a: torch.Tensor, b: torch.Tensor, tol, what: str) -> None:
    rtol, atol = tol
    err = float((a - b).norm())
    bound = atol + rtol * float(b.norm())
    assert err <= bound, f"{what}: |a-b|={err:.3g} > {bound:.3g} (rtol={rtol}, atol={atol}), |b|={float(b.norm()):.3g}"


def test_gradient_gap_signed_objective_equals_per_sample_scores_and_group_identity(tmp_path, cache_dir):
    seen: dict = {}

    def on_gap(trainer, model, inputs, gap):
        m = trainer.accelerator.unwrap_model(model)
        seen["S"] = _per_sample_scores(m, inputs)
        seen["gap"] = torch.cat([g.reshape(-1) for g in gap]).clone()
        seen["inputs"] = {k: v.clone() for k, v in inputs.items() if torch.is_tensor(v)}

    # float64 parameters; several prompts so that several groups are mixed
    cfg = _cfg(cache_dir, steps=1, dtype="float64", prompts_per_step=6, lr=0.01, seed=1)
    run_one(cfg, tmp_path, on_gap=on_gap, quiet=True)
    S, gap, inp = seen["S"], seen["gap"], seen["inputs"]
    # G_o: the largest score norm over the first constants_samples completions (one batched forward in the probe)
    (rec,) = _read(tmp_path / "metrics.jsonl")
    g_o = float(S[: cfg.constants_samples].norm(dim=1).max())
    rtol, atol = TRL_FP32
    assert abs(rec["G_o"] - g_o) <= atol + rtol * g_o, (rec["G_o"], g_o)
    G = cfg.num_generations
    group, success, adv = inp["gradgap_group"], inp["gradgap_success"], inp["advantages"].double()
    per_group, identity_lhs, identity_rhs = [], [], []
    for q in group.unique():
        m = group == q
        s = success[m]
        k = int(s.sum())
        if 0 < k < G:
            gap_q = S[m][s > 0.5].mean(0) - S[m][s < 0.5].mean(0)
            per_group.append(gap_q)
            # TRL: A = (r - p) / (std + 1e-4), std Bessel-corrected => sum A s = G p(1-p)/(std + 1e-4) * gap_q
            p = k / G
            std = math.sqrt(G / (G - 1) * p * (1 - p))
            identity_lhs.append((adv[m][:, None] * S[m]).sum(0))
            identity_rhs.append(G * p * (1 - p) / (std + 1e-4) * gap_q)
    assert per_group, "no mixed group in the batch: change the seed"
    direct = torch.stack(per_group).mean(0)
    _assert_close_vec(gap, direct, TRL_FP32, "signed-objective gap vs per-sample scores")
    for lhs, rhs in zip(identity_lhs, identity_rhs, strict=True):
        _assert_close_vec(lhs, rhs, TRL_FP32, "sum_i A_i s_i vs sqrt(G(G-1)) sqrt(p(1-p)) (s+ - s-)")


def test_reward_function_that_raises_is_one_line_error(tmp_path, cache_dir):
    def broken(prompts, completions, **_):
        raise ZeroDivisionError("boom")

    with pytest.raises(RewardFunctionError, match=r"reward_funcs=\['broken'\]: raised ZeroDivisionError: boom"):
        run_one(_cfg(cache_dir, steps=1), tmp_path, reward_funcs=[broken], quiet=True)


def test_dataset_without_needed_columns_is_rejected(tmp_path, cache_dir):
    from datasets import Dataset

    ds = Dataset.from_list([{"question": "12=", "solution": "12"}] * 8)
    with pytest.raises(GradgapValueError, match=r"dataset columns=\['question', 'solution'\]: missing"):
        run_one(_cfg(cache_dir, steps=1), tmp_path, train_dataset=ds, quiet=True)


def test_non_finite_loss_is_one_line_error(tmp_path, cache_dir):
    with pytest.raises(NonFiniteLossError, match=r"loss=nan: non-finite GRPO loss at step \d+"):
        run_one(_cfg(cache_dir, steps=4, lr=1e38, constants_every=0), tmp_path, quiet=True)
