"""``simnpo``: SimNPO (Fan et al. 2024): NPO without a reference model.

Forget term ``-(2/β) log σ(-(β/|y|) log πθ(y|x) - γ)``: the log-likelihood is normalised by
the sequence length, so long and short records are forgotten at the same pace, and the margin
γ sets how far below zero the normalised likelihood is pushed.
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
class SimNPOConfig(GradientConfig):
    """SimNPO + ``retain_weight`` x retain term.

    Attributes:
        beta: inverse temperature (> 0).
        gamma: reward margin (>= 0); the paper's default is 0 for most tasks.
    """

    beta: float = 2.5
    gamma: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta <= 0 or self.gamma < 0:
            raise InvalidInputError("simnpo needs beta > 0 and gamma >= 0")


class SimNPOLoss:
    def __init__(self, config: SimNPOConfig) -> None:
        self.config = config

    def __call__(self, model: torch.nn.Module, batch: dict, ref_model: torch.nn.Module | None
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        f = batch["forget"]
        logp, n = L.sequence_logprob(lm_logits(model, f), f["labels"])
        forget = L.simnpo_loss(logp, n, self.config.beta, self.config.gamma)
        keep = retain_term(self.config.retain_loss, model, batch, ref_model)
        return forget + self.config.retain_weight * keep, {"forget": float(forget.detach()),
                                                           "retain": float(keep.detach())}


class SimNPO(GradientMethod):
    """Reference-free, length-normalised NPO."""

    name = "simnpo"
    config_class = SimNPOConfig

    def make_loss(self, config: SimNPOConfig) -> UnlearnLoss:
        return SimNPOLoss(config)


METHODS.register("simnpo", SimNPO)
