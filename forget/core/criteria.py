"""Forget criteria: when is the data gone? Each is ``criterion(model) -> (holds, numbers)``.

Numbers only: a criterion never reports the identifiers it probes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from audits.extraction import Prompt, greedy_hits
from forget.core.data import Example
from forget.core.losses import memorization_accuracy, sequence_logprob
from forget.core.trainer import Criterion, TokenizedExamples, lm_logits, pad_batch


def extraction_criterion(tokenizer: Any, prompts: Sequence[Prompt]) -> Criterion:
    """Holds when greedy decoding reproduces none of the prompts' identifiers."""
    prompts = list(prompts)

    def check(model: torch.nn.Module) -> tuple[bool, dict[str, float]]:
        hits = sum(greedy_hits(model, tokenizer, prompts))
        return hits == 0, {"extracted": float(hits), "probes": float(len(prompts))}

    return check


@torch.no_grad()
def span_memorization(model: torch.nn.Module, tokenizer: Any, examples: Sequence[Example],
                      batch_size: int = 16) -> float:
    """Memorization accuracy (MA) on the examples' span tokens: the share that the model's
    argmax reproduces under teacher forcing (Tirumala et al.; CodeEraser's MA)."""
    data = TokenizedExamples(examples, tokenizer)
    hit = total = 0.0
    device = next(model.parameters()).device
    for i in range(0, len(data), batch_size):
        batch = pad_batch([data[j] for j in range(i, min(i + batch_size, len(data)))],
                          tokenizer.pad_token_id)
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = lm_logits(model, batch)
        n = float((batch["span_mask"][:, 1:].bool() & (batch["labels"][:, 1:] != -100)).sum())
        hit += float(memorization_accuracy(logits, batch["labels"], batch["span_mask"])) * n
        total += n
    return hit / total if total else 0.0


def memorization_criterion(tokenizer: Any, examples: Sequence[Example],
                           threshold: float) -> Criterion:
    """Holds when MA on the examples' spans is under ``threshold`` (e.g. the unseen level)."""

    def check(model: torch.nn.Module) -> tuple[bool, dict[str, float]]:
        ma = span_memorization(model, tokenizer, examples)
        return ma < threshold, {"ma": ma, "ma_threshold": threshold}

    return check


def all_of(*criteria: Criterion) -> Criterion:
    """Holds when every criterion holds; reports all their numbers."""

    def check(model: torch.nn.Module) -> tuple[bool, dict[str, float]]:
        ok, info = True, {}
        for c in criteria:
            c_ok, c_info = c(model)
            ok &= c_ok
            info.update(c_info)
        return ok, info

    return check


@torch.no_grad()
def perplexity(model: torch.nn.Module, tokenizer: Any, examples: Sequence[Example],
               mask_key: str | None = None, batch_size: int = 32) -> float:
    """Token-level perplexity over the examples, padding excluded; with ``mask_key="span_mask"``
    only over the examples' span tokens."""
    data = TokenizedExamples(examples, tokenizer)
    device = next(model.parameters()).device
    nll = count = 0.0
    for i in range(0, len(data), batch_size):
        batch = pad_batch([data[j] for j in range(i, min(i + batch_size, len(data)))],
                          tokenizer.pad_token_id)
        batch = {k: v.to(device) for k, v in batch.items()}
        logp, n = sequence_logprob(lm_logits(model, batch), batch["labels"],
                                   batch[mask_key] if mask_key else None)
        nll -= float(logp.sum())
        count += float(n.sum())
    return math.exp(nll / count) if count else float("nan")
