r"""A grid of GRPO runs (learning rate x length x loss type x seed) that survives ``kill -9``.

Each finished run is appended to ``DIR/runs.jsonl`` as one line written by a single ``os.write`` on a file opened
with ``O_APPEND`` and then ``fsync``-ed, so a line is either there whole or not at all. On start the sweep reads
the file, drops a torn last line if a kill left one, and skips every cell whose key is already recorded: no
finished run is lost or repeated. A run that was interrupted starts again in ``DIR/runs/<key>/``: from its
last TRL checkpoint when checkpoints are on (``save_every`` > 0: ``run_one`` finds ``checkpoint-<step>`` and
resumes, keeping the probe's records up to that step), else from scratch.

Two sweeps never share a folder: the first holds an exclusive ``flock`` on ``DIR/.sweep.lock`` (released by the
kernel when its process ends, ``kill -9`` included) and a second one on the same ``--out`` stops with a one-line
error naming the first (its pid and start time), exit 2.

Copy task: all cells share ``max_completion_length = max(lengths) + 1`` (unless the base config fixes it), so
``dr_grpo``'s constant normaliser does not change with the length — the point of the comparison. Dataset tasks
(``gsm8k``, ``math``) have no answer length to set: their length axis is the completion budget, each cell runs
with ``max_completion_length = T`` (a real axis: the realised response lengths, ``mean_response_length``, follow
the budget where completions are cut off).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from gradgap.experiments.grpo.config import GrpoRunConfig, config_hash
from gradgap.experiments.grpo.run import RunResult, run_one
from gradgap.proofs_check.atomic import atomic_write_text
from gradgap.theory.instances import GradgapError, GradgapValueError

__all__ = ["SweepLockedError", "append_record", "cell_key", "folder_lock", "read_records", "sweep"]

RUNS_FILE = "runs.jsonl"
LOCK_FILE = ".sweep.lock"


class SweepLockedError(GradgapValueError):
    """Another sweep holds the output folder."""


@contextlib.contextmanager
def folder_lock(directory: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive, non-blocking ``flock`` on ``DIR/.sweep.lock`` for the body; the file names the holder."""
    path = Path(directory) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 60, 0).decode(errors="replace").strip() or "a process"
        os.close(fd)
        where = str(directory)
        where = where if len(where) <= 40 else "..." + where[-37:]
        raise SweepLockedError(f"out={where!r}: another sweep is running here ({holder}); wait for it or use "
                               "another --out", field="out", value=str(directory)) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def cell_key(cfg: GrpoRunConfig) -> str:
    """A readable unique key of a cell: ``T4-grpo-group-sgd-lr0.1-s0-<hash of the whole config>``."""
    data = cfg.to_dict()
    for name in ("cache_dir", "threads", "report_to", "logging_steps"):  # where and how, not what is computed
        data.pop(name, None)
    return (f"T{cfg.length}-{cfg.loss_type}-{cfg.scale_rewards}-{cfg.optim}-lr{cfg.lr:.6g}-s{cfg.seed}-"
            f"{config_hash(data)[:8]}")


def read_records(directory: str | os.PathLike, *, repair: bool = False) -> list[dict[str, Any]]:
    """The records of ``DIR/runs.jsonl``; a torn last line (no newline) is ignored, and cut off with ``repair``."""
    path = Path(directory) / RUNS_FILE
    if not path.is_file():
        return []
    raw = path.read_bytes()
    end = raw.rfind(b"\n") + 1
    if repair and end < len(raw):
        with open(path, "r+b") as fh:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
    out = []
    for line in raw[:end].splitlines():
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # cannot happen with whole-line writes; tolerated rather than fatal
    return out


def append_record(directory: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one record as one line with a single ``write`` on an ``O_APPEND`` descriptor, then ``fsync``."""
    data = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(Path(directory) / RUNS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(f"short write to {RUNS_FILE}: {written} of {len(data)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)


def quiet_run(cfg: GrpoRunConfig, out: str | os.PathLike) -> RunResult:
    """:func:`run_one` without TRL's console printer (the sweep prints one status line per run)."""
    return run_one(cfg, out, quiet=True)


def grid(base: GrpoRunConfig, *, lrs: Sequence[float], lengths: Sequence[int], loss_types: Sequence[str],
         seeds: Sequence[int] = (0,)) -> list[GrpoRunConfig]:
    """The cells in run order: length, loss type, seed, then increasing learning rate."""
    if not lrs or not lengths or not loss_types or not seeds:
        raise GradgapValueError("grid: lrs, lengths, loss_types and seeds must all be non-empty", field="grid",
                                value=None)
    mcl = base.max_completion_length or max(lengths) + 1
    cells = []
    for length in lengths:
        # copy task: T is the answer length, the budget is shared; dataset tasks: T is the completion budget
        cell_mcl = mcl if base.task == "copy" else int(length)
        for loss in loss_types:
            for seed in seeds:
                for lr in sorted(lrs):
                    cells.append(base.replace(lr=float(lr), length=int(length), loss_type=loss, seed=int(seed),
                                              max_completion_length=cell_mcl))
    return cells


def sweep(base: GrpoRunConfig, out: str | os.PathLike, *, lrs: Sequence[float], lengths: Sequence[int],
          loss_types: Sequence[str], seeds: Sequence[int] = (0,),
          run_fn: Callable[..., RunResult] = quiet_run, log: Callable[[str], None] | None = print,
          show_progress: bool = True) -> list[dict[str, Any]]:
    """Run every cell not yet in ``DIR/runs.jsonl``; return all records (old and new).

    A run that raises is recorded ``FAILED`` with the one-line reason and the sweep goes on; ``KeyboardInterrupt``
    stops it (the interrupted cell is not recorded and runs again next time).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out):
        return _sweep_locked(base, out, lrs=lrs, lengths=lengths, loss_types=loss_types, seeds=seeds,
                             run_fn=run_fn, log=log, show_progress=show_progress)


def _sweep_locked(base: GrpoRunConfig, out: Path, *, lrs: Sequence[float], lengths: Sequence[int],
                  loss_types: Sequence[str], seeds: Sequence[int], run_fn: Callable[..., RunResult],
                  log: Callable[[str], None] | None, show_progress: bool) -> list[dict[str, Any]]:
    cells = grid(base, lrs=lrs, lengths=lengths, loss_types=loss_types, seeds=seeds)
    manifest = {"base": base.to_dict(), "lrs": sorted(float(x) for x in lrs), "lengths": [int(x) for x in lengths],
                "loss_types": list(loss_types), "seeds": [int(s) for s in seeds]}

    atomic_write_text(out / "sweep.json", json.dumps(manifest, indent=1, sort_keys=True))
    records = read_records(out, repair=True)
    done = {r.get("key") for r in records}
    todo = [c for c in cells if cell_key(c) not in done]
    if log is not None and len(todo) < len(cells):
        log(f"resuming: {len(cells) - len(todo)} of {len(cells)} runs already in {RUNS_FILE}")
    bar = None
    if show_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc="grpo sweep", unit="run")
    try:
        for i, cfg in enumerate(todo, start=len(cells) - len(todo) + 1):
            key = cell_key(cfg)
            run_dir = out / "runs" / key
            if run_dir.exists() and not cfg.save_every:  # left by an interrupted attempt without checkpoints
                shutil.rmtree(run_dir)  # (with checkpoints, run_one resumes from the last one)
            t0 = time.perf_counter()
            try:
                res = run_fn(cfg, run_dir)
            except GradgapError as exc:
                res = RunResult("FAILED", f"{type(exc).__name__}: {exc}", {})
            except Exception as exc:  # a crash inside TRL or torch: recorded, the sweep goes on
                first = (str(exc).splitlines() or [""])[0][:200]
                res = RunResult("FAILED", f"{type(exc).__name__}: {first}", {})
            rec = {"key": key, "lr": cfg.lr, "length": cfg.length, "loss_type": cfg.loss_type,
                   "scale_rewards": cfg.scale_rewards, "optim": cfg.optim, "seed": cfg.seed,
                   "status": res.status, "reason": res.reason, "summary": res.summary,
                   "seconds": time.perf_counter() - t0, "config": cfg.to_dict()}
            append_record(out, rec)
            records.append(rec)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"last {res.status}")
            if log is not None:
                msg = (f"[{i}/{len(cells)}] T={cfg.length} {cfg.loss_type} lr={cfg.lr:g} seed={cfg.seed}: "
                       f"{res.status} ({res.reason}) {rec['seconds']:.1f}s")
                (bar.write if bar is not None else log)(msg)
    finally:
        if bar is not None:
            bar.close()
    return records
