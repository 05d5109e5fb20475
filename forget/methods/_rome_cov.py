"""The key covariance ``C`` of one MLP layer, estimated once per model and layer, then cached.

``C`` depends only on the weights before the edited matrix, so edits of that matrix (several
facts in a row) keep it valid. The cache is in memory, keyed by the weights' digest, the
layer, the sample size, the ridge and the texts; ``FORGET_ROME_CACHE`` (a directory) adds a
disk cache that outlives the process. It holds second moments of activations, no text.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from forget.methods._rome_math import second_moment
from forget.methods._rome_model import corpus_keys, weights_digest

_MEMORY: dict[str, torch.Tensor] = {}
_MAX_ENTRIES = 8


def cache_key(model, layer: int, texts: list[str], max_keys: int, ridge: float, seed: int) -> str:
    h = hashlib.sha256()
    h.update(weights_digest(model).encode())
    h.update(f"|{layer}|{max_keys}|{ridge}|{seed}|".encode())
    for t in texts:
        h.update(hashlib.sha256(t.encode()).digest())
    return h.hexdigest()


def key_covariance(model, tokenizer, layer: int, texts: list[str], *, max_keys: int,
                   ridge: float, seed: int = 0) -> torch.Tensor:
    """``C`` (``(m, m)``, float64) over at most ``max_keys`` positions of ``texts``."""
    key = cache_key(model, layer, list(texts), max_keys, ridge, seed)
    if key in _MEMORY:
        return _MEMORY[key]
    disk = os.environ.get("FORGET_ROME_CACHE")
    path = Path(disk) / f"cov-{key[:32]}.pt" if disk else None
    if path is not None and path.is_file():
        cov = torch.load(path, weights_only=True)
    else:
        keys = corpus_keys(model, tokenizer, layer, texts, max_keys=max_keys, seed=seed)
        cov = second_moment(keys, ridge)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            torch.save(cov, tmp)
            tmp.replace(path)
    if len(_MEMORY) >= _MAX_ENTRIES:
        _MEMORY.pop(next(iter(_MEMORY)))
    _MEMORY[key] = cov
    return cov
