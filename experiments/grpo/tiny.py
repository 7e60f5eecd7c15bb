r"""The embedded default: a tiny Qwen2-architecture model, a character tokenizer and the ``copy`` task, all local.

The task: the prompt is a digit string of length :math:`T` followed by ``=``; the one correct completion
:math:`o^\star` is the same digits followed by the end-of-sequence token. The reward is 1 for that exact token
sequence and 0 otherwise, so with plain sampling at temperature :math:`\tau` the success rate of a prompt is known
exactly, :math:`J_q = \pi_\theta(o^\star \mid q)`, from one teacher-forced forward pass — the evaluation uses
this instead of sampling.

A random model has :math:`J_q \approx 10^{-T}`; a short supervised warm start brings the mean success rate on
held-out prompts to ``warm_start_target`` (strictly between 0 and 1). The warm-started weights are cached under
``<cache>/tiny/<hash>/`` keyed by everything that determines them, so a sweep over learning rates reuses them.

Notation: :math:`T` -> ``length``, :math:`J_q` -> ``success_probability``, :math:`\ell_q = \log J_q/(1-J_q)`
-> ``log_odds``.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import torch

from gradgap.experiments.grpo.config import GrpoRunConfig, TinyModelSpec, config_hash
from gradgap.theory.instances import GradgapValueError

__all__ = [
    "CopyTask",
    "build_model",
    "build_tokenizer",
    "cache_root",
    "warm_started_model",
]

EOS: Final[str] = "<eos>"
SEP: Final[str] = "="
DIGITS: Final[str] = "0123456789"
#: bump when the task, tokenizer or warm start changes meaning, so stale caches are not reused
CACHE_VERSION: Final[int] = 3


def build_tokenizer():
    """A character-level tokenizer (``<eos>``, ``=``, digits) wrapped in ``PreTrainedTokenizerFast``.

    The end-of-sequence token doubles as the padding token, so a sampled pad ends the completion.

    >>> tok = build_tokenizer()
    >>> tok("12=")["input_ids"], tok.decode([3, 4, 0], skip_special_tokens=True)
    ([3, 4, 1], '12')
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {EOS: 0, SEP: 1, **{d: 2 + i for i, d in enumerate(DIGITS)}}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=EOS))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"<eos>|."), behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token=EOS, pad_token=EOS)
    tok.padding_side = "left"
    return tok


def build_model(spec: TinyModelSpec, *, vocab_size: int, max_positions: int, seed: int, dtype: torch.dtype):
    """A randomly initialised ``Qwen2ForCausalLM`` of the given size (tied embeddings)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=max(64, max_positions),
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=0,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(dtype)
    model.generation_config.eos_token_id = 0
    model.generation_config.pad_token_id = 0
    return model


@dataclass(frozen=True)
class CopyTask:
    r"""Repeat a digit string of length :math:`T`; reward 1 for the exact answer followed by end of sequence.

    >>> task = CopyTask(length=3, seed=0)
    >>> row = task.rows(1, split="train")[0]
    >>> row["prompt"][-1], len(row["answer"])
    ('=', 3)
    """

    length: int
    seed: int = 0

    def _digits(self, rng: random.Random) -> str:
        return "".join(rng.choice(DIGITS) for _ in range(self.length))

    def rows(self, n: int, *, split: str) -> list[dict[str, str]]:
        """``n`` rows ``{"prompt", "answer"}``; ``split`` in ``train``, ``eval``, ``warm`` draws disjoint seeds."""
        offset = {"train": 0, "eval": 1, "warm": 2}[split]
        rng = random.Random(1_000_003 * self.seed + 7919 * offset + self.length)
        out = []
        for _ in range(n):
            digits = self._digits(rng)
            out.append({"prompt": digits + SEP, "answer": digits})
        return out

    @staticmethod
    def reward(prompts: Sequence[str], completions: Sequence[str], completion_ids: Sequence[Sequence[int]],
               answer: Sequence[str], **_: Any) -> list[float]:
        """TRL reward function: 1.0 iff the completion is exactly the answer (no extra token before the end)."""
        out = []
        for text, ids, ans in zip(completions, completion_ids, answer, strict=True):
            digits = [int(t) for t in ids if int(t) != 0]
            ok = text == ans and len(digits) == len(ans)
            out.append(1.0 if ok else 0.0)
        return out

    def encode(self, tok, rows: Sequence[dict[str, str]]) -> tuple[torch.Tensor, int]:
        """Teacher-forcing ids ``prompt + answer + eos`` (all rows have the same length) and the prompt length."""
        ids = [tok(r["prompt"])["input_ids"] + tok(r["answer"])["input_ids"] + [tok.eos_token_id] for r in rows]
        return torch.tensor(ids, dtype=torch.long), self.length + 1


def sequence_log_prob(model, ids: torch.Tensor, prompt_len: int, *, temperature: float = 1.0) -> torch.Tensor:
    r""":math:`\log \pi_\theta(o^\star \mid q)` per row: teacher-forced sum of the answer's token log-probabilities."""
    logits = model(input_ids=ids).logits[:, prompt_len - 1 : -1, :]
    logits = (logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits) / temperature
    logp = torch.log_softmax(logits, dim=-1)
    return logp.gather(-1, ids[:, prompt_len:, None]).squeeze(-1).sum(-1)


@torch.no_grad()
def success_probability(model, ids: torch.Tensor, prompt_len: int, *, temperature: float = 1.0) -> torch.Tensor:
    r"""Exact per-prompt success rate :math:`J_q = \pi_\theta(o^\star\mid q)` (float64 tensor)."""
    was_training = model.training
    model.eval()
    try:
        return sequence_log_prob(model, ids, prompt_len, temperature=temperature).double().exp()
    finally:
        model.train(was_training)


def log_odds(j: float) -> float:
    r""":math:`\ell = \log J - \log(1-J)`, clipped to :math:`\pm 40` at the ends."""
    if j <= 0.0:
        return -40.0
    if j >= 1.0:
        return 40.0
    return max(-40.0, min(40.0, math.log(j) - math.log1p(-j)))


def cache_root(cfg: GrpoRunConfig) -> Path:
    """``cfg.cache_dir``, else ``$GRADGAP_CACHE``, else ``~/.cache/gradgap``."""
    if cfg.cache_dir:
        return Path(cfg.cache_dir)
    env = os.environ.get("GRADGAP_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "gradgap"


def warm_start_key(cfg: GrpoRunConfig) -> dict[str, Any]:
    """Everything that determines the warm-started weights (and nothing else: not lr, loss type, steps...)."""
    return {
        "version": CACHE_VERSION,
        "task": cfg.task,
        "length": cfg.length,
        "seed": cfg.seed,
        "spec": None if cfg.tiny_model is None else cfg.tiny_model.__dict__,
        "target": cfg.warm_start_target,
        "max_steps": cfg.warm_start_max_steps,
        "lr": cfg.warm_start_lr,
        "temperature": cfg.temperature,
        "eval_prompts": cfg.eval_prompts,
    }


#: rotary position embeddings have no weights, so one generous context length serves every task length
MAX_POSITIONS: Final[int] = 4096


def _supervised_warm_start(model, tok, task: CopyTask, cfg: GrpoRunConfig, log) -> dict[str, Any]:
    """Adam on the teacher-forced log-likelihood of the answers until the held-out mean J reaches the target."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    train_rows = task.rows(4096, split="warm")
    # the run's own evaluation prompts: its J0 (measured before step 1) is the matched held-out J
    held_ids, plen = task.encode(tok, task.rows(cfg.eval_prompts, split="eval"))
    ids_all, _ = task.encode(tok, train_rows)
    held_ids, ids_all = held_ids.to(device), ids_all.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.warm_start_lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    def held_out_j() -> float:
        return float(success_probability(model, held_ids, plen, temperature=cfg.temperature).mean())

    j = held_out_j()
    step = 0
    t0 = time.perf_counter()
    before = [p.detach().clone() for p in model.parameters()]
    while j < cfg.warm_start_target and step < cfg.warm_start_max_steps:
        before = [p.detach().clone() for p in model.parameters()]
        idx = torch.randint(0, ids_all.shape[0], (64,), generator=gen).to(device)
        model.train()
        loss = -sequence_log_prob(model, ids_all[idx], plen).mean() / (cfg.length + 1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        j = held_out_j()
        if log is not None and step % 10 == 0:
            log(f"warm start T={cfg.length}: step {step} loss {float(loss):.3f} J {j:.3f}")
    if j >= cfg.warm_start_target:
        j = _match_target(model, before, held_out_j, cfg.warm_start_target)
    model.zero_grad(set_to_none=True)
    model.to("cpu")
    return {"warm_start_steps": step, "warm_start_success": j, "warm_start_seconds": time.perf_counter() - t0}


#: the warm start's held-out J is matched to the target within this (bisection on the last step)
MATCH_TOL: Final[float] = 0.005


@torch.no_grad()
def _match_target(model, before: list[torch.Tensor], held_out_j, target: float) -> float:
    r"""Bisect on the last supervised step, :math:`\theta(\alpha) = \theta_a + \alpha(\theta_b - \theta_a)`,
    until the held-out J is within :data:`MATCH_TOL` of ``target``: the warm starts of every length then begin
    at the same :math:`J_0` (the report requires a spread of at most 0.02)."""
    after = [p.detach().clone() for p in model.parameters()]
    lo, hi = 0.0, 1.0  # J(theta(lo)) < target <= J(theta(hi))
    j = held_out_j()
    for _ in range(30):
        if abs(j - target) <= MATCH_TOL:
            break
        mid = (lo + hi) / 2
        for p, a, b in zip(model.parameters(), before, after, strict=True):
            p.copy_(a + mid * (b - a))
        j = held_out_j()
        lo, hi = (mid, hi) if j < target else (lo, mid)
    return j


def warm_started_model(cfg: GrpoRunConfig, *, log=None):
    """The tokenizer and the warm-started tiny model for ``cfg`` (loaded from the cache when present).

    Returns ``(model, tokenizer, info)`` where ``info`` records the warm start (steps, held-out J, cache path,
    whether it was a cache hit).
    """
    from transformers import Qwen2ForCausalLM

    if cfg.model != "tiny" or cfg.task != "copy":
        raise GradgapValueError(f"model={cfg.model!r}: warm start is only defined for the tiny copy task",
                                field="model", value=cfg.model)
    dtype = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}[cfg.dtype]
    tok = build_tokenizer()
    key = warm_start_key(cfg)
    path = cache_root(cfg) / "tiny" / config_hash(key)
    info_file = path / "warm_start.json"
    if info_file.is_file():
        model = Qwen2ForCausalLM.from_pretrained(path, dtype=torch.float32).to(dtype)
        info = json.loads(info_file.read_text())
        info.update(cache_hit=True, cache_path=str(path))
        return model, tok, info
    assert cfg.tiny_model is not None
    model = build_model(cfg.tiny_model, vocab_size=len(tok), max_positions=MAX_POSITIONS, seed=cfg.seed,
                        dtype=torch.float32)
    info = _supervised_warm_start(model, tok, CopyTask(cfg.length, cfg.seed), cfg, log)
    if not 0.0 < info["warm_start_success"] < 1.0:
        raise GradgapValueError(
            f"warm_start_success={info['warm_start_success']:.3g}: the warm start must leave the success rate "
            "strictly between 0 and 1; raise warm_start_max_steps or lower warm_start_target",
            field="warm_start_success", value=info["warm_start_success"])
    info["key"] = key
    info["parameters"] = sum(p.numel() for p in model.parameters())
    # write to a temporary folder then rename: a killed sweep never leaves a half-written cache entry
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    (tmp / "warm_start.json").write_text(json.dumps(info, indent=1))
    try:
        os.replace(tmp, path)
    except OSError:  # another process won the race: use its copy
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    info.update(cache_hit=False, cache_path=str(path))
    return model.to(dtype), tok, info
