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
def span_memorization_counts(model: torch.nn.Module, tokenizer: Any, examples: Sequence[Example],
                             batch_size: int = 16) -> tuple[int, float]:
    """``(reproduced, total)`` span tokens: how many of the examples' span tokens the model's
    argmax reproduces under teacher forcing, out of how many."""
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
    return round(hit), total


def span_memorization(model: torch.nn.Module, tokenizer: Any, examples: Sequence[Example],
                      batch_size: int = 16) -> float:
    """Memorization accuracy (MA) on the examples' span tokens: the share that the model's
    argmax reproduces under teacher forcing (Tirumala et al.; CodeEraser's MA)."""
    hit, total = span_memorization_counts(model, tokenizer, examples, batch_size)
    return hit / total if total else 0.0


def unseen_level(hits: float, total: float) -> tuple[float, float]:
    """The unseen MA level measured on ``total`` never-trained span tokens, and its standard
    error ``sqrt(p(1 - p) / n)``: with few unseen secrets (one file holds about a dozen span
    tokens) the level is itself uncertain by that much."""
    if total <= 0:
        return 0.0, 0.0
    p = hits / total
    return p, math.sqrt(p * (1 - p) / total)


def memorization_criterion(tokenizer: Any, examples: Sequence[Example], threshold: float,
                           tolerance: float = 0.0) -> Criterion:
    """Holds when MA on the examples' spans is at most ``threshold + tolerance`` (e.g. the
    unseen level and its standard error, :func:`unseen_level`): no more memorised than code
    the model never saw, within what that level can tell."""

    def check(model: torch.nn.Module) -> tuple[bool, dict[str, float]]:
        ma = span_memorization(model, tokenizer, examples)
        return ma <= threshold + tolerance, {"ma": ma, "ma_threshold": threshold,
                                             "ma_tolerance": tolerance}

    return check


def context_criterion(tokenizer: Any, examples: Sequence[Example], original_ppl: float,
                      bound: float) -> Criterion:
    """Holds when the perplexity of the examples' tokens outside their spans (the code around
    a secret) is at most ``bound`` times the original model's ``original_ppl``."""

    def check(model: torch.nn.Module) -> tuple[bool, dict[str, float]]:
        ratio = perplexity(model, tokenizer, examples, "context") / original_ppl
        return ratio <= bound, {"context_ppl_ratio": ratio, "context_bound": bound}

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
    only over the examples' span tokens, with ``"context"`` only over the tokens outside them."""
    data = TokenizedExamples(examples, tokenizer)
    device = next(model.parameters()).device
    nll = count = 0.0
    for i in range(0, len(data), batch_size):
        batch = pad_batch([data[j] for j in range(i, min(i + batch_size, len(data)))],
                          tokenizer.pad_token_id)
        batch = {k: v.to(device) for k, v in batch.items()}
        mask = None
        if mask_key == "context":
            mask = batch["attention_mask"] * (1 - batch["span_mask"])
        elif mask_key:
            mask = batch[mask_key]
        logp, n = sequence_logprob(lm_logits(model, batch), batch["labels"], mask)
        nll -= float(logp.sum())
        count += float(n.sum())
    return math.exp(nll / count) if count else float("nan")
