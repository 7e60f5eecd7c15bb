"""The probe in two processes over gloo (CPU), DDP and FSDP2 through accelerate, against one process on the same
global batch: Gradient Gap, alignment, update, constants and safe step agree (float32: ``TRL_FP32``; the
curvature ``L_o`` is compared in float64 only, see below). Also: DeepSpeed and FSDP1 are refused in one line,
and distributed-ness is read from accelerate's state.

The harness is :mod:`gradgap.experiments.grpo.dist_check` (three launches, about 30 s each on 2 cores). Marked
``llm``: it runs whenever the llm extra is installed (CI installs it).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest

pytest.importorskip("accelerate")
pytest.importorskip("trl")

from gradgap.proofs_check import tolerances

pytestmark = pytest.mark.llm

RTOL32, ATOL32 = tolerances.TRL_FP32
RTOL64, ATOL64 = tolerances.EXACT
COMPARED = ("gradient_gap_norm", "alignment", "delta_mu", "grad_norm_clipped", "update_norm", "G_o",
            "predicted_safe_step", "gap_groups", "update_route")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(mode: str, out) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    mod = ["-m", "gradgap.experiments.grpo.dist_check", "--mode", mode, "--out", str(out)]
    if mode == "single":
        cmd = [sys.executable, *mod]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
               "127.0.0.1", "--master_port", str(_port()), *mod]
    done = subprocess.run(cmd, env=env, capture_output=True, timeout=300, cwd=out.parent)
    assert done.returncode == 0, done.stderr.decode()[-1500:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    d = tmp_path_factory.mktemp("dist")
    return {m: _launch(m, d / f"{m}.json") for m in ("single", "ddp", "fsdp2")}


def _close(a, b, rtol: float, atol: float) -> bool:
    if a is None or b is None or isinstance(a, str):
        return a == b
    return abs(a - b) <= atol + rtol * abs(b)


@pytest.mark.parametrize("mode", ["ddp", "fsdp2"])
def test_two_processes_measure_what_one_process_measures(results, mode):
    single, multi = results["single"], results[mode]
    assert multi["topology"]["num_processes"] == 2
    assert set(multi) == set(single)
    for variant, recs in single.items():
        if variant == "topology":
            continue
        float64 = variant.endswith("float64")
        rtol, atol = (RTOL64, ATOL64) if float64 else (RTOL32, ATOL32)
        # L_o is a second difference of float32 log-probs at step h = 1e-2: its float32 resolution is
        # eps32 * |log pi| / h^2 ~ 5e-3, far above TRL_FP32; compared in float64, where it is ~1e-11
        keys = (*COMPARED, "L_o") if float64 else COMPARED
        assert len(multi[variant]) == len(recs) == 2
        for step, (one, two) in enumerate(zip(recs, multi[variant], strict=True), start=1):
            assert one["gradient_gap_norm"] > 0 and one["G_o"] > 0 and one["L_o"] > 0  # a zero gap cannot pass
            bad = {k: (one[k], two[k]) for k in keys if not _close(two[k], one[k], rtol, atol)}
            assert not bad, f"{mode} {variant} step {step}: {bad}"


def _acc(dt, n: int = 2, fsdp2: bool = False):
    return SimpleNamespace(distributed_type=dt, num_processes=n, is_fsdp2=fsdp2, is_main_process=True)


def test_topology_is_read_from_accelerate_and_deepspeed_is_refused_in_one_line():
    from accelerate.utils import DistributedType

    from gradgap.experiments.grpo.probe import UnsupportedTopologyError, topology

    assert topology(_acc(DistributedType.NO, 1)) == ("single", 1)
    # a process group may exist (torchrun) while the trainer is not distributed: that is one process
    assert topology(_acc(DistributedType.NO, 2)) == ("single", 1)
    assert topology(_acc(DistributedType.MULTI_GPU, 8)) == ("ddp", 8)
    assert topology(_acc(DistributedType.MULTI_CPU, 2)) == ("ddp", 2)
    assert topology(_acc(DistributedType.FSDP, 4, fsdp2=True)) == ("fsdp2", 4)
    for dt, fsdp2, needle in ((DistributedType.DEEPSPEED, False, "DeepSpeed"), (DistributedType.FSDP, False, "FSDP2")):
        with pytest.raises(UnsupportedTopologyError) as info:
            topology(_acc(dt, 2, fsdp2))
        msg = str(info.value)
        assert needle in msg and "\n" not in msg and len(msg) < 200
