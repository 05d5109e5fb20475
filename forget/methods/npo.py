"""``npo``: Negative Preference Optimization (Zhang et al. 2024) with a retain term.

The forget term ``-(2/β) log σ(-β (log πθ(y|x) - log πref(y|x)))`` is bounded below, unlike
gradient ascent, so it slows down as the forget set's likelihood falls under the reference's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from forget.core import losses as L
from forget.core.method import METHODS
from forget.core.trainer import UnlearnLoss, lm_logits
from forget.errors import InvalidInputError
from forget.methods._gradient import GradientConfig, GradientMethod, retain_term


@dataclass
class NPOConfig(GradientConfig):
    """NPO + ``retain_weight`` x retain term.

    Attributes:
        beta: NPO's inverse temperature (the paper's 0.1). Larger values saturate once the
            summed log-likelihood has fallen a few nats under the reference's, before the
            identifier tokens themselves are forgotten.
    """

    beta: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta <= 0:
            raise InvalidInputError(f"beta must be positive, got {self.beta}")


class NPOLoss:
    def __init__(self, config: NPOConfig) -> None:
        self.config = config

    def __call__(self, model: torch.nn.Module, batch: dict, ref_model: torch.nn.Module | None
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        if ref_model is None:
            raise InvalidInputError("npo needs the original model as reference")
        f = batch["forget"]
        logp, _ = L.sequence_logprob(lm_logits(model, f), f["labels"])
        with torch.no_grad():
            ref_logp, _ = L.sequence_logprob(lm_logits(ref_model, f), f["labels"])
        forget = L.npo_loss(logp, ref_logp, self.config.beta)
        keep = retain_term(self.config.retain_loss, model, batch, ref_model)
        return forget + self.config.retain_weight * keep, {"forget": float(forget.detach()),
                                                           "retain": float(keep.detach())}


class NPO(GradientMethod):
    """NPO against the frozen original."""

    name = "npo"
    config_class = NPOConfig
    needs_reference = True

    def make_loss(self, config: NPOConfig) -> UnlearnLoss:
        return NPOLoss(config)


METHODS.register("npo", NPO)
