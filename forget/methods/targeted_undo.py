"""``targeted_undo``: identifier-token ascent, noise on the weights that carry the identifiers,
repair by distillation on retain text.

A cheaper, targeted cousin of ``undo``:

1. token-selective unlearning (as ``code_eraser`` does for secrets): gradient ascent only on
   the identifier tokens of the subject's records, a small descent on their other tokens, and
   the retain term; stopped by the extraction criterion. This is the teacher;
2. find the weight matrices that carry the identifiers: the gradient of the identifier tokens'
   NLL under the *original* model, relative to each matrix's norm; the top ``noise_share`` of
   matrices (by that ratio) are blended with a fresh initialisation
   (``θ <- (1-α) θ + α β N``), the rest are left as the teacher has them;
3. distil the teacher into the partly noised copy on the retain texts (KL) for
   ``distil_steps`` steps: less is broken than by ``undo``, so less repair is needed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from forget.core import losses as L
from forget.core.data import ForgetSet, RetainSet
from forget.core.method import METHODS, MethodConfig, UnlearnResult
from forget.core.trainer import TokenizedExamples, UnlearnLoss, lm_logits, pad_batch
from forget.errors import InvalidInputError
from forget.methods._gradient import GradientConfig, GradientMethod, retain_term
from forget.methods.undo import noise_and_distil


@dataclass
class TargetedUndoConfig(GradientConfig):
    """Selective ascent, targeted noise, distillation.

    Attributes:
        gamma: weight of the descent on the forget records' non-identifier tokens (keeps the
            sentence around an identifier intact while the identifier is pushed away).
        alpha: share of each selected matrix replaced by noise.
        beta: scale of the noise relative to a fresh initialisation.
        noise_share: share of the weight matrices (2-D parameters) noised, those with the
            largest identifier gradient relative to their norm (1.0: all of them, as undo).
        distil_steps: distillation steps on the retain texts.
        distil_learning_rate: AdamW step size for distillation.
    """

    max_steps: int = 60
    learning_rate: float = 5e-4
    gamma: float = 0.1
    # The strongest setting of bench/frontier.py (bench/results/frontier.json): with half
    # the matrices 80% noised and 80 distillation steps, every privacy check passed for 2 of
    # 4 subjects, but retain perplexity stayed above the audit's 1.5x for all 4, so no subject
    # passed; more repair (steps or step size) is the open question.
    alpha: float = 0.8
    beta: float = 1.0
    noise_share: float = 0.5
    distil_steps: int = 80
    distil_learning_rate: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gamma < 0:
            raise InvalidInputError(f"targeted_undo's gamma must be >= 0, got {self.gamma}")
        if not 0.0 <= self.alpha <= 1.0 or self.beta < 0:
            raise InvalidInputError("targeted_undo needs 0 <= alpha <= 1 and beta >= 0, got "
                                    f"alpha={self.alpha}, beta={self.beta}")
        if not 0.0 < self.noise_share <= 1.0:
            raise InvalidInputError("targeted_undo's noise_share is a share of the weight "
                                    f"matrices: use 0 < noise_share <= 1, got {self.noise_share}")
        if self.distil_steps < 1 or self.distil_learning_rate <= 0:
            raise InvalidInputError("targeted_undo needs distil_steps >= 1 and "
                                    "distil_learning_rate > 0 to repair the noised weights")


class SelectiveLoss:
    """-CE(identifier tokens) + gamma CE(other forget tokens) + retain_weight x retain term."""

    def __init__(self, config: TargetedUndoConfig) -> None:
        self.config = config

    def __call__(self, model: torch.nn.Module, batch: dict, ref_model: torch.nn.Module | None
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        c, f = self.config, batch["forget"]
        logits = lm_logits(model, f)
        ident = f["span_mask"]  # (B, T) 1 on identifier tokens
        ce_id = L.masked_ce(logits, f["labels"], ident)
        ce_other = L.masked_ce(logits, f["labels"], f["attention_mask"] * (1 - ident))
        keep = retain_term(c.retain_loss, model, batch, ref_model)
        loss = -ce_id + c.gamma * ce_other + c.retain_weight * keep
        return loss, {"ce_identifiers": float(ce_id.detach()),
                      "ce_other": float(ce_other.detach()), "retain": float(keep.detach())}


def carrier_matrices(model: torch.nn.Module, tokenizer: Any, forget: ForgetSet, share: float,
                     batch_size: int = 8) -> set[str]:
    """Names of the ``share`` of 2-D parameters whose identifier-NLL gradient is largest
    relative to their norm (``‖∂NLL/∂W‖ / ‖W‖``), measured on ``model`` (the original)."""
    data = TokenizedExamples(forget.examples, tokenizer)
    params = {n: p for n, p in model.named_parameters() if p.ndim == 2}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    for p in model.parameters():
        p.requires_grad_(True)
    model.zero_grad(set_to_none=True)
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(data), batch_size):
            batch = pad_batch([data[j] for j in range(i, min(i + batch_size, len(data)))],
                              tokenizer.pad_token_id)
            nll = L.masked_ce(lm_logits(model, batch), batch["labels"], batch["span_mask"])
            nll.backward()
        score = {n: float(p.grad.norm() / p.detach().norm().clamp_min(1e-12))
                 for n, p in params.items() if p.grad is not None}
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])
    ranked = sorted(score, key=score.get, reverse=True)  # type: ignore[arg-type]
    return set(ranked[:max(1, round(share * len(ranked)))])


class TargetedUndo(GradientMethod):
    """Identifier-token ascent, noise on the identifier-carrying matrices, distillation."""

    name = "targeted_undo"
    config_class = TargetedUndoConfig

    def make_loss(self, config: TargetedUndoConfig) -> UnlearnLoss:
        return SelectiveLoss(config)

    def run(self, *, model: Any, tokenizer: Any, forget: ForgetSet, retain: RetainSet,
            config: MethodConfig | None = None) -> UnlearnResult:
        cfg = self.check_config(config)
        t0 = time.perf_counter()
        if not any(e.spans for e in forget.examples):
            raise InvalidInputError("targeted_undo needs identifier spans in the forget set; "
                                    "use undo for records without marked identifiers")
        first = super().run(model=model, tokenizer=tokenizer, forget=forget, retain=retain,
                            config=cfg)
        carriers = carrier_matrices(model, tokenizer, forget, cfg.noise_share)
        return noise_and_distil(self, cfg, first, tokenizer, forget, retain, t0,
                                select=lambda name, p: name in carriers)


METHODS.register("targeted_undo", TargetedUndo)
