r"""Drop-in use: the probe on a practitioner's own ``trl.GRPOTrainer``, in two lines.

.. code-block:: python

    from gradgap.experiments.grpo.callback import add_gradgap

    trainer = GRPOTrainer(model=..., reward_funcs=..., args=GRPOConfig(...), train_dataset=...)
    add_gradgap(trainer, "runs/gradgap")          # metrics.jsonl + gradgap/* in report_to
    trainer.train()

TRL has no public hook for what the probe needs (the rewards of a generation batch, the per-token
log-probabilities of the loss), so :func:`add_gradgap` mixes :class:`~.probe.GradgapTrainerMixin` into the
instance's class (``type(trainer)`` becomes a subclass of it; nothing else changes), registers the
:class:`~.probe.GradgapProbe` as a callback and wires it. Every numeric field of the probe's record goes to the
trainer's own logging as ``gradgap/<field>`` (tensorboard, wandb, trackio see them through ``report_to``), and one
JSON line per optimisation step to ``OUT/metrics.jsonl`` (main process only).

Binary rewards are assumed (success iff the weighted total reward exceeds ``success_threshold``); an
``evaluator(model) -> per-prompt success probabilities`` adds a held-out J (e.g.
:func:`~.evaluation.sampled_evaluator`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

__all__ = ["add_gradgap"]


def add_gradgap(trainer: Any, out_dir: str | os.PathLike, *, gap_every: int = 10, eval_every: int = 10,
                constants_every: int = 50, constants_samples: int = 4, success_threshold: float = 0.5,
                evaluator: Callable[[Any], Any] | None = None, update_route: str = "auto"):
    """Attach the gradgap probe to an existing ``trl.GRPOTrainer`` (before ``train()``); returns the probe.

    The optimiser kind comes from ``trainer.args.optim`` (``sgd`` -> the update is ``-lr * grad``; anything else
    -> AdamW's moments when it is a plain ``torch.optim.AdamW``, else the realised parameter change); the
    temperature from ``trainer.args.temperature``. DeepSpeed and FSDP1 are refused in one line.
    """
    from trl import GRPOTrainer

    from gradgap.experiments.grpo.probe import GradgapProbe, GradgapTrainerMixin
    from gradgap.theory.instances import GradgapTypeError

    if not isinstance(trainer, GRPOTrainer):
        raise GradgapTypeError(f"trainer={type(trainer).__name__}: add_gradgap needs a trl.GRPOTrainer",
                               field="trainer", value=type(trainer).__name__)
    cls = type(trainer)
    if not issubclass(cls, GradgapTrainerMixin):
        trainer.__class__ = type(f"Gradgap{cls.__name__}", (GradgapTrainerMixin, cls), {})
    optim = "sgd" if str(getattr(trainer.args, "optim", "")).split(".")[-1].lower() == "sgd" else "adamw"
    route = update_route if optim == "adamw" else "auto"
    probe = GradgapProbe(os.path.join(os.fspath(out_dir), "metrics.jsonl"), optim=optim, update_route=route,
                         gap_every=gap_every, eval_every=eval_every, constants_every=constants_every,
                         constants_samples=constants_samples, temperature=float(trainer.args.temperature),
                         evaluator=evaluator)
    trainer.gradgap_success_threshold = float(success_threshold)
    trainer.add_callback(probe)
    probe.attach(trainer)
    return probe
