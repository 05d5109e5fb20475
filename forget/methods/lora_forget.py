"""``lora_forget``: one small LoRA adapter per erasure request (GS-LoRA-style continual
forgetting, Zhao et al. 2024).

Each request adds a LoRA adapter on the FFN projections (Llama ``gate_proj up_proj
down_proj``, GPT-2 ``mlp.c_fc mlp.c_proj``, ...: ``forget.models.arch``) and trains only it, with a bounded forget loss (SimNPO's, or GS-LoRA's ``relu(bound - CE)``),
the retain NLL and a group-lasso penalty ``Σ_g ‖θ_g‖₂`` whose groups are the adapter's modules (one group = A and
B of one projection in one layer), so modules that are not needed shrink to zero and each
request's adapter stays small. Earlier adapters stay active and frozen. ``merge=True``
returns one merged model; ``merge=False`` also returns the peft model with every request's
adapter kept separate (``UnlearnResult.adapter``), to pass to the next request.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from forget.core import losses as L
from forget.core.method import METHODS
from forget.core.trainer import UnlearnLoss, lm_logits
from forget.errors import InvalidInputError
from forget.methods._gradient import GradientConfig, GradientMethod, retain_term
from forget.models.arch import lora_targets

ADAPTER_PREFIX = "forget_"


@dataclass
class LoraForgetConfig(GradientConfig):
    """One adapter per request.

    Attributes:
        rank: LoRA rank r; alpha: LoRA scaling numerator (scale = alpha / r).
        target_modules: the modules to adapt; empty (the default) takes the feed-forward
            projections of the model's architecture (``forget.models.arch.lora_targets``).
        group_lasso_weight: weight of Σ_g ‖θ_g‖₂ over the adapter's module groups.
        forget_loss: ``simnpo`` (reference-free, bounded below; the default) or
            ``bounded_ga`` (GS-LoRA's ``relu(bound - CE_forget)``).
        beta: SimNPO's inverse temperature.
        forget_bound: for ``bounded_ga``, the forget CE beyond which ascent stops pushing.
        merge: return only the merged model (True) or also keep the adapters separate.
    """

    max_steps: int = 150
    # A fresh adapter starts at zero (B = 0): it needs a larger step than full fine-tuning
    # (tiny model: 1e-2 forgets in ~70 steps with retain perplexity within x1.05).
    learning_rate: float = 1e-2
    rank: int = 4
    alpha: int = 8
    target_modules: tuple[str, ...] = ()
    group_lasso_weight: float = 1e-3
    forget_loss: str = "simnpo"
    beta: float = 2.5
    forget_bound: float = 12.0
    merge: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.forget_loss not in ("simnpo", "bounded_ga"):
            raise InvalidInputError(
                f"forget_loss must be simnpo or bounded_ga, got {self.forget_loss!r}")
        if self.rank < 1 or self.group_lasso_weight < 0:
            raise InvalidInputError("lora_forget needs rank >= 1 and a non-negative "
                                    "group_lasso_weight")


def adapter_groups(model: torch.nn.Module, adapter: str) -> dict[str, list[torch.Tensor]]:
    """The adapter's parameters grouped by the module they adapt (A and B together)."""
    groups: dict[str, list[torch.Tensor]] = defaultdict(list)
    for name, p in model.named_parameters():
        for part in (f".lora_A.{adapter}.", f".lora_B.{adapter}."):
            if part in name:
                groups[name.split(part)[0]].append(p)
    return dict(groups)


class LoraForgetLoss:
    def __init__(self, config: LoraForgetConfig, adapter: str) -> None:
        self.config, self.adapter = config, adapter

    def __call__(self, model: torch.nn.Module, batch: dict, ref_model: torch.nn.Module | None
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        f = batch["forget"]
        logits = lm_logits(model, f)
        ce = L.masked_ce(logits, f["labels"])
        if self.config.forget_loss == "simnpo":
            logp, n = L.sequence_logprob(logits, f["labels"])
            forget = L.simnpo_loss(logp, n, self.config.beta)
        else:
            forget = torch.relu(self.config.forget_bound - ce)
        keep = retain_term(self.config.retain_loss, model, batch, ref_model)
        groups = adapter_groups(model, self.adapter)
        sparse = L.group_lasso(torch.cat([p.flatten() for p in ps]) for ps in groups.values())
        loss = forget + self.config.retain_weight * keep + self.config.group_lasso_weight * sparse
        return loss, {"forget_ce": float(ce.detach()), "retain": float(keep.detach()),
                      "group_lasso": float(sparse.detach())}


class LoraForget(GradientMethod):
    """Per-request LoRA adapters on the FFN layers with a group-sparse penalty."""

    name = "lora_forget"
    config_class = LoraForgetConfig

    def __init__(self) -> None:
        self.adapter = ADAPTER_PREFIX + "0"

    def prepare(self, model: Any, config: LoraForgetConfig) -> Any:
        targets, fan_in_fan_out = lora_targets(model, scope="ffn", method=self.name)
        lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0,
                          target_modules=list(config.target_modules) or targets, bias="none",
                          fan_in_fan_out=fan_in_fan_out, task_type="CAUSAL_LM")
        if isinstance(model, PeftModel):  # a later request: add a new adapter, freeze the rest
            peft_model = copy.deepcopy(model)
            self.adapter = f"{ADAPTER_PREFIX}{len(peft_model.peft_config)}"
            peft_model.add_adapter(self.adapter, lora)
            peft_model.base_model.set_adapter(list(peft_model.peft_config))
        else:
            self.adapter = ADAPTER_PREFIX + "0"
            peft_model = get_peft_model(copy.deepcopy(model), lora, adapter_name=self.adapter)
        for name, p in peft_model.named_parameters():
            p.requires_grad_(f".{self.adapter}." in name)
        return peft_model

    def make_loss(self, config: LoraForgetConfig) -> UnlearnLoss:
        return LoraForgetLoss(config, self.adapter)

    def finish(self, trained: Any, config: LoraForgetConfig) -> tuple[Any, Any]:
        merged = copy.deepcopy(trained).merge_and_unload()
        merged.eval()
        return merged, (None if config.merge else trained)


def adapter_size(model: Any, adapter: str, tol: float = 1e-6) -> dict[str, int]:
    """Parameters of one adapter, and how many of its groups are still non-zero."""
    groups = adapter_groups(model, adapter)
    alive = sum(1 for ps in groups.values()
                if float(torch.cat([p.flatten() for p in ps]).norm()) > tol)
    params = sum(p.numel() for ps in groups.values() for p in ps)
    return {"parameters": params, "groups": len(groups), "nonzero_groups": alive}


METHODS.register("lora_forget", LoraForget)
