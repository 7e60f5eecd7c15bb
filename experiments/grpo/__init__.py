"""GRPO measurement: the theory's quantities on real TRL ``GRPOTrainer`` runs (docs/grpo.md).

Modules: :mod:`~.config` (frozen :class:`GrpoRunConfig`), :mod:`~.presets`
(``tiny``, ``tiny-100m``, ``qwen2.5-math-7b``, dry-run plan), :mod:`~.tiny` (local model,
tokenizer, copy task, cached warm start), :mod:`~.probe` (trainer subclass + callback writing
``metrics.jsonl``), :mod:`~.run` (one run), :mod:`~.sweep` (resumable grid),
:mod:`~.bench` (probe overhead).

Importing this package, ``config`` or ``presets`` needs neither torch's GPU stack nor trl: the optional ``llm``
extra is imported by ``tiny``, ``probe``, ``run`` (inside :func:`~.run.run_one`) and ``bench`` only.
"""

from __future__ import annotations

from gradgap.experiments.grpo.config import LOSS_TYPES, OPTIMS, SCALE_REWARDS, GrpoRunConfig, TinyModelSpec
from gradgap.experiments.grpo.presets import PRESETS, plan, resolve_preset

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
