"""``grad_diff``: gradient ascent on the forget set plus a retain term (Liu et al. 2022).

The retain term is the NLL of retain text (gradient difference) or KL(original ‖ current)
on it; ``retain_weight`` balances the two.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from forget.core import losses as L
from forget.core.method import METHODS
from forget.core.trainer import UnlearnLoss, launch_token_mean, lm_logits
from forget.methods._gradient import GradientConfig, GradientMethod, retain_term


@dataclass
class GradDiffConfig(GradientConfig):
    """Ascent on forget + ``retain_weight`` x retain NLL (or KL)."""


class GradDiffLoss:
    def __init__(self, config: GradDiffConfig) -> None:
        self.config = config

    def __call__(self, model: torch.nn.Module, batch: dict, ref_model: torch.nn.Module | None
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        f = batch["forget"]
        forget = launch_token_mean(L.gradient_ascent_loss(lm_logits(model, f), f["labels"]),
                                   f["labels"])
        keep = retain_term(self.config.retain_loss, model, batch, ref_model)
        return forget + self.config.retain_weight * keep, {"forget": float(forget.detach()),
                                                           "retain": float(keep.detach())}


class GradDiff(GradientMethod):
    """Gradient difference."""

    name = "grad_diff"
    config_class = GradDiffConfig

    def make_loss(self, config: GradDiffConfig) -> UnlearnLoss:
        return GradDiffLoss(config)


METHODS.register("grad_diff", GradDiff)
