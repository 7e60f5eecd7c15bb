r"""A TRL GRPO script with the gradgap probe: TRL's script conventions (``TrlParser``, ``ScriptArguments``,
``GRPOConfig``) plus two lines (``add_gradgap``), runnable as it is on the embedded tiny preset (CPU, no download).

    HF_HUB_OFFLINE=1 python examples/grpo_gradgap.py --output_dir runs/example --max_steps 20 \
        --per_device_train_batch_size 16 --num_generations 4 --max_completion_length 3 --learning_rate 0.02 \
        --optim sgd --lr_scheduler_type constant --bf16 false --report_to tensorboard --logging_steps 1

Without ``--dataset_name`` it trains the tiny warm-started model on the ``copy`` task (answer length
``--tiny_length``). With ``--dataset_name`` a local JSON-lines or parquet file, ``--model`` a local model and
``--prompt_column`` / ``--answer_column`` naming its columns, it trains on that math set with math-verify rewards
and a held-out evaluation (``--dataset_test_split`` names the split; a file without one is split by hash).
The probe's fields go to ``<output_dir>/gradgap/metrics.jsonl`` and, as ``gradgap/*``, to ``report_to``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig, GRPOTrainer, ScriptArguments, TrlParser


@dataclass
class GradgapArguments:
    """The probe's options (prefixed so that they never clash with TRL's)."""

    gradgap_gap_every: int = field(default=10, metadata={"help": "Gradient Gap every k steps"})
    gradgap_eval_every: int = field(default=10, metadata={"help": "held-out evaluation every k steps"})
    gradgap_constants_every: int = field(default=50, metadata={"help": "L_o, G_o every k steps (0 = never)"})
    tiny_length: int = field(default=2, metadata={"help": "answer length T of the tiny copy task"})
    cache_dir: str | None = field(default=None, metadata={"help": "warm-start cache of the tiny model"})
    model: str | None = field(default=None, metadata={"help": "local model path (with --dataset_name)"})
    prompt_column: str = field(default="prompt", metadata={"help": "dataset column holding the question"})
    answer_column: str = field(default="answer", metadata={"help": "dataset column holding the reference"})
    eval_samples: int = field(default=4, metadata={"help": "samples per held-out prompt (dataset runs)"})
    instruction: str | None = field(default=None, metadata={"help": "text appended to each prompt (default: "
                                                                    "reason step by step, answer in \\boxed{})"})


def build(script_args: ScriptArguments, training_args: GRPOConfig, gg: GradgapArguments):
    """(model, tokenizer, train dataset, reward functions, evaluator)."""
    if script_args.dataset_name is None:
        from datasets import Dataset

        from gradgap.experiments.grpo.presets import resolve_preset
        from gradgap.experiments.grpo.run import copy_reward
        from gradgap.experiments.grpo.tiny import CopyTask, success_probability, warm_started_model

        cfg = resolve_preset("tiny", length=gg.tiny_length, cache_dir=gg.cache_dir)
        model, tok, _ = warm_started_model(cfg)
        task = CopyTask(cfg.length, cfg.seed)
        train = Dataset.from_list(task.rows(512, split="train"))
        eval_ids, plen = task.encode(tok, task.rows(32, split="eval"))

        def evaluator(m):
            return success_probability(m, eval_ids.to(m.device), plen, temperature=training_args.temperature)

        return model, tok, train, [copy_reward], evaluator
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gradgap.experiments.grpo.evaluation import load_local_math, math_verify_reward, sampled_evaluator

    extra = {} if gg.instruction is None else {"instruction": gg.instruction}
    splits = load_local_math(script_args.dataset_name, prompt_column=gg.prompt_column,
                             answer_column=gg.answer_column, train_split=script_args.dataset_train_split,
                             test_split=script_args.dataset_test_split, **extra)
    tok = AutoTokenizer.from_pretrained(gg.model)
    model = AutoModelForCausalLM.from_pretrained(gg.model)
    evaluator = sampled_evaluator(tok, splits["test"], n=gg.eval_samples,
                                  max_new_tokens=training_args.max_completion_length,
                                  temperature=training_args.temperature)
    return model, tok, splits["train"], [math_verify_reward], evaluator


def main(script_args: ScriptArguments, training_args: GRPOConfig, gg: GradgapArguments) -> GRPOTrainer:
    import os

    from gradgap.experiments.grpo.callback import add_gradgap

    model, tok, train, rewards, evaluator = build(script_args, training_args, gg)
    trainer = GRPOTrainer(model=model, reward_funcs=rewards, args=training_args, train_dataset=train,
                          processing_class=tok)
    # the two lines a practitioner adds to their own script:
    add_gradgap(trainer, os.path.join(training_args.output_dir, "gradgap"), gap_every=gg.gradgap_gap_every,
                eval_every=gg.gradgap_eval_every, constants_every=gg.gradgap_constants_every, evaluator=evaluator)
    trainer.train()
    return trainer


if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, GRPOConfig, GradgapArguments))
    main(*parser.parse_args_and_config())
