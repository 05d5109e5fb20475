"""Continuation log-likelihoods that share a prefix, with the prefix computed once per batch.

Exposure ranks an identifier's true value among hundreds of same-format candidates, each the
continuation of the same record prefix. Scoring every ``prefix + candidate`` whole repeats the
prefix's forward pass once per candidate, and the prefix is most of the text (a record up to the
identifier, against a value of a few tokens). Here the prefix's keys and values are computed
once per batch (one sequence), repeated across the batch, and only the candidates' own tokens
run through the model. The log-probabilities are those of the whole-sequence pass up to float
rounding (tested against it on every supported architecture).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import torch

# Below this many shared tokens the cache saves too little to be worth a second pass.
MIN_SHARED = 4


def _cache_arg(model) -> str:
    """The forward argument that takes a cache: ``cache`` in transformers 5 (where
    ``past_key_values`` is deprecated and warns), ``past_key_values`` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.no_grad()
def shared_prefix_logliks(model, ids: Sequence[list[int]], starts: Sequence[int], *,
                          pad_id: int = 0, batch_size: int = 128) -> np.ndarray | None:
    """``sum_{t >= starts[j]} log p(ids[j][t] | ids[j][:t])`` for sequences sharing a prefix.

    Args:
        ids: token id lists (each starting with ``<s>``) whose first ``min(starts)`` tokens
            are equal.
        starts: per sequence, the first token position that counts (``>= 1``).

    Returns:
        ``(len(ids),)`` sums, or ``None`` when the shared part is too short to save anything
        (the caller then scores whole sequences). The cache is asked for explicitly: models
        the suite trains are saved with ``use_cache=False`` in their config.
    """
    keep = min(starts) - 1  # cached tokens; the run starts at the token predicting ``min(starts)``
    if keep < MIN_SHARED:
        return None
    prefix = ids[0][:keep]
    if any(x[:keep] != prefix for x in ids):
        raise ValueError("sequences given to shared_prefix_logliks must share their first "
                         "min(starts) - 1 tokens")
    device = next(model.parameters()).device
    out = np.empty(len(ids))
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # little padding per batch
    pre = torch.tensor([prefix], device=device)
    for b in range(0, len(order), batch_size):
        idx = order[b: b + batch_size]
        width = max(len(ids[i]) for i in idx) - keep
        batch = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), keep + width), dtype=torch.long)
        mask[:, :keep] = 1
        for row, i in enumerate(idx):
            batch[row, : len(ids[i]) - keep] = torch.tensor(ids[i][keep:])
            mask[row, keep: len(ids[i])] = 1
        first = model(input_ids=pre, attention_mask=torch.ones_like(pre), use_cache=True)
        cache = first["cache"] if "cache" in first else first["past_key_values"]
        cache.batch_repeat_interleave(len(idx))
        positions = torch.arange(keep, keep + width, device=device).expand(len(idx), -1)
        logits = model(input_ids=batch.to(device), attention_mask=mask.to(device),
                       **{_cache_arg(model): cache}, position_ids=positions,
                       use_cache=True).logits
        logp = torch.log_softmax(logits[:, :-1].float(), -1)  # (B, W-1, V): predicts t + 1
        tok = logp.gather(-1, batch[:, 1:].to(device)[..., None]).squeeze(-1).double().cpu()
        for row, i in enumerate(idx):
            # token t (absolute) is predicted at suffix position t - 1 - keep
            out[i] = float(tok[row, starts[i] - 1 - keep: len(ids[i]) - 1 - keep].sum())
    return out
