"""GRPO measurement: the theory's quantities on real TRL ``GRPOTrainer`` runs (docs/grpo.md).

Modules: :mod:`~numerics.grpo.config` (frozen :class:`GrpoRunConfig`), :mod:`~numerics.grpo.presets`
(``tiny``, ``tiny-100m``, ``qwen2.5-math-7b``, dry-run plan), :mod:`~numerics.grpo.tiny` (local model,
tokenizer, copy task, cached warm start), :mod:`~numerics.grpo.probe` (trainer subclass + callback writing
``metrics.jsonl``), :mod:`~numerics.grpo.run` (one run), :mod:`~numerics.grpo.sweep` (resumable grid),
:mod:`~numerics.grpo.bench` (probe overhead).

Importing this package, ``config`` or ``presets`` needs neither torch's GPU stack nor trl: the optional ``llm``
extra is imported by ``tiny``, ``probe``, ``run`` (inside :func:`~numerics.grpo.run.run_one`) and ``bench`` only.
"""

from __future__ import annotations

from numerics.grpo.config import LOSS_TYPES, OPTIMS, SCALE_REWARDS, GrpoRunConfig, TinyModelSpec
from numerics.grpo.presets import PRESETS, plan, resolve_preset

__all__ = [
    "LOSS_TYPES",
    "OPTIMS",
    "PRESETS",
    "SCALE_REWARDS",
    "GrpoRunConfig",
    "TinyModelSpec",
    "plan",
    "resolve_preset",
]
