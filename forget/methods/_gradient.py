"""What the gradient methods share: a config base, the retain term and ``run``.

A gradient method only says what its loss is (``make_loss``) and whether it needs the frozen
original as a reference; training, stopping and bookkeeping are the same for all of them.
"""

from __future__ import annotations

import copy
import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from forget.core import losses as L
from forget.core.criteria import extraction_criterion
from forget.core.data import Example, ForgetSet, RetainSet
from forget.core.method import Method, MethodConfig, UnlearnResult
from forget.core.trainer import (
    Criterion,
    TokenizedExamples,
    TrainSpec,
    UnlearnLoss,
    launch_token_mean,
    lm_logits,
    run_unlearning,
)
from forget.errors import InvalidInputError
from forget.models.arch import ensure_pad_token

RETAIN_TERMS = ("nll", "kl", "none")


@dataclass
class GradientConfig(MethodConfig):
    """Shared optimisation settings.

    Attributes:
        learning_rate: AdamW step size, constant schedule (few steps: no warm-up).
        batch_size: forget examples per step (each paired with one retain example).
        check_every: steps between two evaluations of the forget criterion.
        retain_weight: weight of the retain term (0 disables it).
        retain_loss: ``nll`` (keep modelling retain text), ``kl`` (stay close to the
            original's distribution on it) or ``none``.
    """

    max_steps: int = 60
    learning_rate: float = 5e-4
    batch_size: int = 8
    check_every: int = 1
    retain_weight: float = 1.0
    retain_loss: str = "nll"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.retain_loss not in RETAIN_TERMS:
            raise InvalidInputError(
                f"retain_loss must be one of {', '.join(RETAIN_TERMS)}, got {self.retain_loss!r}")
        if self.learning_rate <= 0 or self.batch_size < 1 or self.check_every < 1:
            raise InvalidInputError("learning_rate must be > 0, batch_size and check_every >= 1")

    def spec(self) -> TrainSpec:
        return TrainSpec(self.max_steps, self.learning_rate, self.batch_size, self.check_every,
                         self.seed)


def retain_term(kind: str, model: torch.nn.Module, batch: dict[str, dict[str, torch.Tensor]],
                ref_model: torch.nn.Module | None) -> torch.Tensor:
    """The retain loss on ``batch["retain"]``: NLL, KL(original ‖ current), or zero."""
    if kind == "none" or "retain" not in batch:
        return torch.zeros((), device=batch["forget"]["input_ids"].device)
    r = batch["retain"]
    logits = lm_logits(model, r)
    if kind == "nll":
        return launch_token_mean(L.nll_loss(logits, r["labels"]), r["labels"])
    if ref_model is None:
        raise InvalidInputError("retain_loss='kl' needs the original model as reference")
    with torch.no_grad():
        ref = lm_logits(ref_model, r)
    return launch_token_mean(L.kl_to_reference(logits, ref, r["labels"]), r["labels"])


class GradientMethod(Method):
    """Base of methods trained by ``UnlearnTrainer`` with an extraction stop criterion."""

    needs_reference: ClassVar[bool] = False

    @abstractmethod
    def make_loss(self, config: Any) -> UnlearnLoss:
        """The objective for this config."""

    def uses_reference(self, config: Any) -> bool:
        return self.needs_reference or getattr(config, "retain_loss", "") == "kl"

    def criterion(self, tokenizer: Any, forget: ForgetSet, config: Any,
                  original: Any) -> Criterion:
        """When to stop: by default, when no identifier of the forget set is extracted."""
        return extraction_criterion(tokenizer, forget.prompts())

    def forget_examples(self, forget: ForgetSet, config: Any) -> list[Example]:
        """The forget examples as trained on (code_eraser adds detected spans)."""
        return forget.examples

    def prepare(self, model: Any, config: Any) -> Any:
        """The model to train: a copy of ``model`` (the original stays untouched)."""
        return copy.deepcopy(model)

    def finish(self, trained: Any, config: Any) -> tuple[Any, Any]:
        """``(model, adapter)`` to return; plain methods have no adapter."""
        return trained, None

    def run(self, *, model: Any, tokenizer: Any, forget: ForgetSet, retain: RetainSet,
            config: MethodConfig | None = None) -> UnlearnResult:
        cfg = self.check_config(config)
        ensure_pad_token(tokenizer)
        if not forget.examples:
            raise InvalidInputError("the forget set is empty: nothing to unlearn")
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed)
        ref = model if self.uses_reference(cfg) else None
        examples = self.forget_examples(forget, cfg)
        forget = ForgetSet(examples, forget.subject_id, forget.holdout, forget.kinds)
        flags = [p.requires_grad for p in model.parameters()]
        try:
            out = run_unlearning(
                self.prepare(model, cfg), tokenizer, TokenizedExamples(examples, tokenizer),
                TokenizedExamples(retain.examples, tokenizer) if retain.examples else None,
                self.make_loss(cfg), cfg.spec(), ref_model=ref,
                criterion=self.criterion(tokenizer, forget, cfg, model))
        finally:  # the reference is the caller's model: give back its flags
            for p, f in zip(model.parameters(), flags, strict=True):
                p.requires_grad_(f)
        new, adapter = self.finish(out.model, cfg)
        return UnlearnResult(
            model=new, method=self.name, steps=out.steps, tokens_processed=out.tokens_processed,
            wall_time_s=time.perf_counter() - t0, config=cfg.to_dict(),
            config_hash=cfg.config_hash(), guarantee=self.guarantee, adapter=adapter,
            stopped_by=out.stopped_by, history=out.history)
