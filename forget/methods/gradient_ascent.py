"""``gradient_ascent``: raise the NLL of the forget set (Jang et al. 2023).

No retain term: the simplest baseline, and the one that damages utility fastest; the
early stop on the extraction criterion is what keeps it usable.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from forget.core import losses as L
from forget.core.method import METHODS
from forget.core.trainer import UnlearnLoss, launch_token_mean, lm_logits
from forget.methods._gradient import GradientConfig, GradientMethod


@dataclass
class GradientAscentConfig(GradientConfig):
    """Gradient ascent only: the retain term is off."""

    retain_weight: float = 0.0
    retain_loss: str = "none"


class GradientAscentLoss:
    def __call__(self, model: torch.nn.Module, batch: dict, ref_model: torch.nn.Module | None
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        f = batch["forget"]
        loss = launch_token_mean(L.gradient_ascent_loss(lm_logits(model, f), f["labels"]),
                                 f["labels"])
        return loss, {"forget": float(loss.detach())}


class GradientAscent(GradientMethod):
    """Negated NLL on the forget set."""

    name = "gradient_ascent"
    config_class = GradientAscentConfig

    def make_loss(self, config: GradientAscentConfig) -> UnlearnLoss:
        return GradientAscentLoss()


METHODS.register("gradient_ascent", GradientAscent)
