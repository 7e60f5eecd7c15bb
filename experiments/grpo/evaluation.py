r"""Real rewards and evaluation for math datasets: math-verify answers, local datasets, a held-out sampled J.

- :func:`math_verify_reward`: a TRL reward function, 1.0 when the completion's final answer is mathematically
  equal to the reference (``math_verify.parse`` + ``verify``: ``\boxed{\$18}``, ``18 \text{ dollars}``,
  ``\frac12``, ``x = 3``, ``90^\circ``, ``10\%`` all score right), 0.0 when not, and ``None`` when the reference
  itself cannot be parsed: TRL then gives the completion a zero reward and its group zero advantage, and the probe
  leaves the group out of the gap (:func:`~.probe.gap_coefficients`), as TRL's own ``accuracy_reward`` does.
- :func:`load_local_math`: a JSON-lines or parquet file (or a folder with ``train.*`` and ``test.*``) through
  ``datasets``, with a column mapping to ``prompt`` / ``answer``; GSM8K's ``#### 18`` answers are reduced to the
  number. A single file is split deterministically (by a hash of the prompt, :data:`TEST_FRACTION` held out), so
  training never sees an evaluation prompt.
- :func:`sampled_evaluator`: :math:`J` on held-out prompts from ``n`` samples each:
  :math:`\hat J = \frac1P\sum_q k_q/n` with standard error :math:`\mathrm{sd}_q(k_q/n)/\sqrt P`, and the mean
  per-prompt log-odds :math:`\frac1P\sum_q \log\frac{k_q+1/2}{n-k_q+1/2}` (Jeffreys-smoothed, finite at 0 and n).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from gradgap.theory.instances import GradgapValueError

__all__ = ["TEST_FRACTION", "load_local_math", "math_verify_reward", "sampled_evaluator", "score_answer"]

#: share of a single-file dataset held out for evaluation (by prompt hash)
TEST_FRACTION: Final[float] = 0.1
INSTRUCTION: Final[str] = "\nPlease reason step by step, and put your final answer within \\boxed{}."
_FORMATS: Final[dict[str, str]] = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}


def score_answer(completion: str, reference: str) -> float | None:
    """1.0 / 0.0 by math-verify; ``None`` when the reference cannot be parsed (unscorable)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    configs = [LatexExtractionConfig(), ExprExtractionConfig()]
    gold = parse(f"${reference}$", extraction_config=configs)
    if not gold:
        return None
    pred = parse(completion, extraction_config=configs)
    try:
        return 1.0 if pred and verify(gold, pred) else 0.0
    except Exception:  # math-verify's own timeouts or parser errors: a wrong answer, not a crash of the run
        return 0.0


def math_verify_reward(completions: Sequence[Any], answer: Sequence[str], **_: Any) -> list[float | None]:
    """TRL reward function over ``answer`` (the dataset's reference column); conversational completions too."""
    out = []
    for c, a in zip(completions, answer, strict=True):
        text = c[-1]["content"] if isinstance(c, list) and c and isinstance(c[-1], dict) else str(c)
        out.append(score_answer(text, str(a)))
    return out


def _reference(raw: Any) -> str:
    text = str(raw)
    return text.split("####")[-1].strip().replace(",", "") if "####" in text else text.strip()


def _in_test(prompt: str) -> bool:
    h = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big")
    return h / 2**64 < TEST_FRACTION


def load_local_math(path: str | Path, *, prompt_column: str = "prompt", answer_column: str = "answer",
                    train_split: str = "train", test_split: str = "test", instruction: str = INSTRUCTION):
    """``{"train": Dataset, "test": Dataset}`` with columns ``prompt`` / ``answer`` (see the module docstring)."""
    from datasets import load_dataset

    p = Path(path)
    if p.is_dir():
        files = {}
        for split in (train_split, test_split):
            found = [f for f in sorted(p.iterdir()) if f.stem == split and f.suffix in _FORMATS]
            if not found:
                raise GradgapValueError(f"dataset={str(p)!r}: no {split}.jsonl / {split}.parquet in this folder",
                                        field="dataset", value=str(p))
            files[split] = str(found[0])
    elif p.is_file() and p.suffix in _FORMATS:
        files = {"whole": str(p)}
    else:
        raise GradgapValueError(f"dataset={str(p)[-80:]!r}: not a .jsonl, .json or .parquet file or a folder of them",
                                field="dataset", value=str(p))
    kinds = {_FORMATS[Path(f).suffix] for f in files.values()}
    if len(kinds) != 1:
        raise GradgapValueError(f"dataset={str(p)!r}: mixed file formats {sorted(kinds)}", field="dataset",
                                value=str(p))
    try:
        raw = load_dataset(kinds.pop(), data_files=files)
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0][:100]
        raise GradgapValueError(f"dataset={str(p)[-60:]!r}: could not be read ({type(exc).__name__}: {first})",
                                field="dataset", value=str(p)) from exc
    first_split = next(iter(raw.values()))
    missing = [c for c in (prompt_column, answer_column) if c not in first_split.column_names]
    if missing:
        raise GradgapValueError(f"columns={first_split.column_names}: missing {missing}; map them with "
                                "--prompt_column / --answer_column", field="columns", value=missing)

    def mapped(ds):
        return ds.map(lambda r: {"prompt": str(r[prompt_column]) + instruction, "answer": _reference(r[answer_column])},
                      remove_columns=ds.column_names)

    if "whole" in raw:
        ds = mapped(raw["whole"])
        return {"train": ds.filter(lambda r: not _in_test(r["prompt"])),
                "test": ds.filter(lambda r: _in_test(r["prompt"]))}
    return {"train": mapped(raw[train_split]), "test": mapped(raw[test_split])}


def sampled_evaluator(tokenizer, test_dataset, *, n: int = 4, max_new_tokens: int = 256, temperature: float = 1.0,
                      max_prompts: int = 64, seed: int = 0) -> Callable[[Any], Any]:
    """``evaluator(model) -> per-prompt success estimates k_q / n`` (float64 tensor) on held-out prompts.

    The returned function carries ``samples_per_prompt = n``, so the probe reports the standard error and the
    Jeffreys-smoothed mean per-prompt log-odds alongside :math:`\\hat J`.
    """
    import torch

    rows = [test_dataset[i] for i in range(min(max_prompts, len(test_dataset)))]
    if not rows:
        raise GradgapValueError("test_dataset: empty; the held-out evaluation needs prompts", field="test_dataset",
                                value=0)

    def evaluate(model):
        gen = torch.Generator(device="cpu").manual_seed(seed)
        was = model.training
        model.eval()
        side = tokenizer.padding_side
        tokenizer.padding_side = "left"
        try:
            out = []
            for r in rows:
                enc = tokenizer([r["prompt"]], return_tensors="pt").to(model.device)
                torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
                seqs = model.generate(**enc, do_sample=True, temperature=temperature, top_p=1.0, top_k=0,
                                      num_return_sequences=n, max_new_tokens=max_new_tokens,
                                      pad_token_id=tokenizer.pad_token_id)
                texts = tokenizer.batch_decode(seqs[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                scores = [score_answer(t, r["answer"]) for t in texts]
                out.append(sum(s or 0.0 for s in scores) / n)
            return torch.tensor(out, dtype=torch.float64)
        finally:
            tokenizer.padding_side = side
            model.train(was)

    evaluate.samples_per_prompt = n  # type: ignore[attr-defined]
    return evaluate
