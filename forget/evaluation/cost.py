"""How the cost of an erasure grows with the model and the corpus: pure arithmetic.

The measured figures (``bench/shards.py``, ``bench/frontier.py``, ``bench/batch.py``) are
shares and step counts on small models; :func:`extrapolate` turns them into gradient steps and
GPU-hours for a model of ``params`` parameters fine-tuned on ``tokens`` tokens, under stated
assumptions (:class:`Scale`). The FLOP counts are the usual dense-transformer estimates
(Kaplan et al. 2020): a forward pass costs 2 N FLOPs per token, a backward pass 4 N (2 N
for the activations' gradients, 2 N for the weights'); a frozen base with small adapters
skips the weights' gradients (4 N per token in all); a frozen reference model (NPO, KL) adds
a forward pass (2 N). Attention's share (small at 2k context against 7B) is left out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from forget.errors import InvalidInputError

FLOPS_PER_TOKEN = {"full": 6.0, "adapter": 4.0, "forward": 2.0, "full+reference": 8.0}


@dataclass(frozen=True)
class Scale:
    """The deployment the figures are extrapolated to (every field is an assumption)."""

    params: float = 7e9              # a 7B model
    tokens: float = 1e9              # fine-tuned on a 1B-token corpus
    epochs: float = 1.0              # one pass over it
    tokens_per_step: float = 2 ** 20  # global batch: 512 sequences of 2,048 tokens
    peak_flops: float = 989e12       # one H100 SXM, dense bf16
    mfu: float = 0.4                 # model FLOPs utilisation reached in training

    def __post_init__(self) -> None:
        for k, v in asdict(self).items():
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise InvalidInputError(f"Scale.{k} must be a finite number > 0, got {v!r}")
        if self.mfu > 1:
            raise InvalidInputError(f"Scale.mfu is a share: use 0 < mfu <= 1, got {self.mfu}")


def training_flops(params: float, tokens: float, kind: str = "full") -> float:
    """FLOPs to train on ``tokens`` tokens: ``full`` (every weight), ``adapter`` (frozen base,
    small adapters), ``forward`` (a frozen model's forward pass only), ``full+reference``
    (every weight, plus a frozen reference model's forward pass: NPO, KL to the original)."""
    if kind not in FLOPS_PER_TOKEN:
        raise InvalidInputError(f"kind must be one of {sorted(FLOPS_PER_TOKEN)}, got {kind!r}")
    if params < 0 or tokens < 0:
        raise InvalidInputError("params and tokens must be >= 0")
    return FLOPS_PER_TOKEN[kind] * params * tokens


def gpu_hours(flops: float, scale: Scale) -> float:
    """Hours of one GPU at ``scale.peak_flops`` x ``scale.mfu``."""
    return flops / (scale.peak_flops * scale.mfu) / 3600.0


def shards_touched(shards: int, requests: int) -> float:
    """Expected number of distinct shards holding ``requests`` subjects, each in one shard
    drawn uniformly: ``S (1 - (1 - 1/S)^k)``; one request touches 1, many approach ``S``."""
    if shards < 1 or requests < 0:
        raise InvalidInputError("shards must be >= 1 and requests >= 0")
    return shards * (1.0 - (1.0 - 1.0 / shards) ** requests)


def batched_share(per_request_share: float, requests: int, *, shards: int = 1,
                  shard_share: float | None = None) -> float:
    """Share of a one-piece training that one batch of ``requests`` costs.

    ``shards == 1`` (retraining): one retrain serves the whole batch, whatever its size.
    ``shards > 1`` (sharded training): one request costs ``per_request_share`` (measured: its
    shard retrains from the slice holding its records); in a batch each touched shard
    retrains once, from its earliest touched slice, at worst all of it (``shard_share``: one
    shard's whole training; default: ``per_request_share``). The batch costs the smaller of
    that bound and the requests one by one.
    """
    if per_request_share < 0 or requests < 1 or (shard_share is not None and shard_share < 0):
        raise InvalidInputError("per_request_share and shard_share must be >= 0, requests >= 1")
    if shards == 1:
        return per_request_share
    if requests == 1:
        return per_request_share
    whole = per_request_share if shard_share is None else shard_share
    return min(requests * per_request_share, whole * shards_touched(shards, requests))


def extrapolate(share_of_training: float, scale: Scale, *, kind: str = "full",
                tokens: float | None = None) -> dict[str, float]:
    """Gradient steps, FLOPs and GPU-hours of a deletion costing ``share_of_training`` of one
    training run over the corpus (retraining: 1.0), or, when ``tokens`` is given, of one
    that processes that many tokens whatever the corpus (an empirical method on a forget set).
    """
    if share_of_training < 0:
        raise InvalidInputError("share_of_training must be >= 0")
    seen = tokens if tokens is not None else share_of_training * scale.tokens * scale.epochs
    flops = training_flops(scale.params, seen, kind)
    return {"tokens": seen, "steps": seen / scale.tokens_per_step, "flops": flops,
            "gpu_hours": gpu_hours(flops, scale)}
