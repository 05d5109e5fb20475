"""``UnlearnTrainer``: the HF ``Trainer`` with forget/retain batches, a frozen reference model,
a pluggable loss and early stopping on a forget criterion.

Each training item pairs one forget example with a retain example drawn at random, so the
Trainer's own sampler, distributed sharding and ``accelerate launch`` work unchanged. The loss
is any callable ``loss(model, batch, ref_model) -> (scalar, parts)``; methods supply theirs
(LLM losses here; a diffusion text encoder supplies its own datasets and collator through
``run_unlearning(..., collator=...)``: any batch of dicts of tensors works, and the token count
uses each part's ``attention_mask`` where it has one).
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch.utils.data import Dataset
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback

from forget._dist import (
    check_can_train,
    per_device_batch,
    same_on_every_rank,
    sum_over_ranks,
    token_share,
    world_size,
)
from forget.core import losses as L
from forget.core.data import Example

MAX_LENGTH = 256


class UnlearnLoss(Protocol):
    """A method's objective on one paired batch; returns the loss and named parts (floats)."""

    def __call__(self, model: torch.nn.Module, batch: dict[str, dict[str, torch.Tensor]],
                 ref_model: torch.nn.Module | None) -> tuple[torch.Tensor, dict[str, float]]: ...


def span_token_mask(offsets: Sequence[tuple[int, int]], spans: Sequence[dict]) -> list[int]:
    """1 for each token whose character range overlaps a span, else 0 (offsets from the
    tokenizer's ``return_offsets_mapping``; special tokens have (0, 0) and never overlap)."""
    out = []
    for a, b in offsets:
        out.append(int(b > a and any(a < sp["end"] and sp["start"] < b for sp in spans)))
    return out


class TokenizedExamples(Dataset):
    """Examples tokenized once, ending with ``</s>``; items carry a ``span_mask`` (sensitive
    tokens) built by character-offset overlap with each example's spans."""

    def __init__(self, examples: Sequence[Example], tokenizer: Any,
                 max_length: int = MAX_LENGTH) -> None:
        self.items: list[dict[str, list[int]]] = []
        if not examples:
            return
        enc = tokenizer([e.text for e in examples], truncation=True, max_length=max_length - 1,
                        return_offsets_mapping=True)
        for e, ids, offs in zip(examples, enc["input_ids"], enc["offset_mapping"], strict=True):
            mask = span_token_mask(offs, e.spans)
            self.items.append({"input_ids": ids + [tokenizer.eos_token_id], "span_mask": mask + [0]})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.items[i]


class PairedDataset(Dataset):
    """Item i = forget example i with a retain example drawn by a generator seeded with
    (seed, epoch, i): the pairing is a function of the item and the epoch, not of the order
    items are read in, so a multi-process launch (each process reads its own items) pairs
    exactly as one process does. ``epoch`` is advanced by ``EpochCounter``."""

    def __init__(self, forget: Dataset, retain: Dataset | None, seed: int = 0) -> None:
        self.forget, self.retain = forget, retain
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.forget)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {"forget": self.forget[i]}
        if self.retain is not None and len(self.retain):  # type: ignore[arg-type]
            rng = random.Random((self.seed * 1_000_003 + self.epoch) * 1_000_003 + i)
            item["retain"] = self.retain[rng.randrange(len(self.retain))]  # type: ignore[arg-type]
        return item


class EpochCounter(TrainerCallback):
    """Tells a ``PairedDataset`` which epoch begins (before its first item is read)."""

    def __init__(self, dataset: PairedDataset) -> None:
        self.dataset, self.begun = dataset, 0

    def on_epoch_begin(self, args: TrainingArguments, state: Any, control: Any,
                       **kwargs: Any) -> Any:
        self.dataset.epoch, self.begun = self.begun, self.begun + 1
        return control


def pad_batch(rows: Sequence[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad; ``labels`` are -100 on padding, ``span_mask`` 0 there. Shapes (B, T)."""
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    span = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        attn[i, :n] = 1
        if "span_mask" in r:
            span[i, :n] = torch.tensor(r["span_mask"])
    return {"input_ids": ids, "attention_mask": attn, "labels": ids.masked_fill(attn == 0, -100),
            "span_mask": span}


class PairCollator:
    """Collates paired items into ``{"forget": batch, "retain": batch}``."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, dict[str, torch.Tensor]]:
        out = {"forget": pad_batch([it["forget"] for it in items], self.pad_id)}
        if all("retain" in it for it in items):
            out["retain"] = pad_batch([it["retain"] for it in items], self.pad_id)
        return out


def lm_logits(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits (B, T, V) of a causal LM on a padded batch."""
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def launch_token_mean(loss: torch.Tensor, labels: torch.Tensor,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """A token-mean ``loss`` (``losses.masked_ce``, ``kl_to_reference``) over this process's
    selected tokens, rescaled under a multi-process launch so that the processes' averaged
    gradients are those of the token mean over the launch's whole batch, as one process
    computes it (``loss`` itself outside a launch)."""
    if world_size() == 1:
        return loss
    return loss * token_share(L.selected_count(labels, mask))


Criterion = Callable[[torch.nn.Module], tuple[bool, dict[str, float]]]


class ForgetCriterionCallback(TrainerCallback):
    """Every ``every`` steps, evaluates ``criterion(model)``; stops training once it holds."""

    def __init__(self, criterion: Criterion, every: int = 1) -> None:
        self.criterion, self.every = criterion, max(1, every)
        self.met_at: int | None = None
        self.history: list[dict[str, Any]] = []

    def on_step_end(self, args: TrainingArguments, state: Any, control: Any,
                    **kwargs: Any) -> Any:
        if state.global_step % self.every:
            return control
        model = kwargs["model"]
        was_training = model.training
        model.eval()
        ok, info = self.criterion(model)
        ok = same_on_every_rank(ok)  # every process must stop at the same step
        model.train(was_training)
        self.history.append({"step": state.global_step, "met": ok, **info})
        if ok:
            self.met_at = state.global_step
            control.should_training_stop = True
        return control


class UnlearnTrainer(Trainer):
    """A ``Trainer`` whose loss is an ``UnlearnLoss`` over forget/retain batches.

    Args:
        loss: the objective.
        ref_model: a frozen reference (NPO, KL terms); moved to the training device, never
            updated.
        All other arguments are ``Trainer``'s (``train_dataset`` is a ``PairedDataset``).
    """

    def __init__(self, *args: Any, loss: UnlearnLoss, ref_model: torch.nn.Module | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unlearn_loss = loss
        self.ref_model = ref_model
        if ref_model is not None:
            ref_model.eval().requires_grad_(False)
            self.ref_model = ref_model.to(self.args.device)
        self.loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides for GA
        self.tokens_processed = 0
        self.loss_parts: list[dict[str, float]] = []

    def compute_loss(self, model: torch.nn.Module, inputs: dict[str, Any],
                     return_outputs: bool = False,
                     num_items_in_batch: torch.Tensor | int | None = None) -> Any:
        loss, parts = self.unlearn_loss(model, inputs, self.ref_model)
        if model.training:
            self.tokens_processed += int(sum(int(b["attention_mask"].sum()) for b in inputs.values()
                                             if isinstance(b, dict) and "attention_mask" in b))
            self.loss_parts.append(parts)
        return (loss, None) if return_outputs else loss


@dataclass
class TrainSpec:
    """Optimisation settings shared by the gradient methods."""

    max_steps: int
    learning_rate: float
    batch_size: int = 8
    check_every: int = 2
    seed: int = 0
    weight_decay: float = 0.0


@dataclass
class TrainOutcome:
    model: torch.nn.Module
    steps: int
    tokens_processed: int
    stopped_by: str
    wall_time_s: float
    history: list[dict[str, Any]] = field(default_factory=list)


def plain_model(trainer: Trainer) -> torch.nn.Module:
    """The trained model without accelerate's wrappers. Its mixed-precision ``forward`` wrapper
    closes over this object, so any copy of the model (an audit's relearning or int8 attack)
    would otherwise keep running these weights."""
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    model.__dict__.pop("forward", None)
    return model


def run_unlearning(model: torch.nn.Module, tokenizer: Any, forget: Dataset,
                   retain: Dataset | None, loss: UnlearnLoss, spec: TrainSpec, *,
                   ref_model: torch.nn.Module | None = None,
                   criterion: Criterion | None = None,
                   collator: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None
                   ) -> TrainOutcome:
    """Train ``model`` in place with ``loss`` until ``criterion`` holds or ``max_steps``.

    ``collator`` batches the paired items (default: padding token ids with the tokenizer's
    pad id; ``tokenizer`` may then be None).
    """
    t0 = time.perf_counter()
    history: list[dict[str, Any]] = []
    if criterion is not None:
        model.eval()
        ok, info = criterion(model)
        ok = same_on_every_rank(ok)  # under a launch, every process trains or none does
        history.append({"step": 0, "met": ok, **info})
        if ok or spec.max_steps == 0:
            return TrainOutcome(model, 0, 0, "already" if ok else "max_steps",
                                time.perf_counter() - t0, history)
    check_can_train("this unlearning run")
    callback = ForgetCriterionCallback(criterion, spec.check_every) if criterion else None
    with tempfile.TemporaryDirectory(prefix="forget-unlearn-") as tmp:
        args = TrainingArguments(
            output_dir=tmp, max_steps=spec.max_steps, learning_rate=spec.learning_rate,
            per_device_train_batch_size=per_device_batch(spec.batch_size),
            lr_scheduler_type="constant",
            warmup_steps=0, weight_decay=spec.weight_decay, save_strategy="no", report_to=[],
            logging_strategy="no", use_cpu=not torch.cuda.is_available(), seed=spec.seed,
            data_seed=spec.seed, dataloader_num_workers=0, disable_tqdm=True,
            remove_unused_columns=False,
        )
        paired = PairedDataset(forget, retain, spec.seed)
        trainer = UnlearnTrainer(
            model=model, args=args, train_dataset=paired,
            data_collator=collator or PairCollator(tokenizer.pad_token_id), loss=loss, ref_model=ref_model,
            callbacks=[EpochCounter(paired), *([callback] if callback else [])],
        )
        trainer.remove_callback(PrinterCallback)  # it would print the final metrics dict
        trainer.train()
    model = plain_model(trainer)
    model.eval()
    steps = trainer.state.global_step
    if callback is not None:
        history += callback.history
    parts = trainer.loss_parts
    if parts:
        history.append({"step": steps, "last_loss_parts": parts[-1]})
    met = callback is not None and callback.met_at is not None
    if callback is not None and not met and steps % callback.every:
        ok, info = callback.criterion(model)  # the last steps were not checked yet
        history.append({"step": steps, "met": ok, **info})
        met = ok
    tokens = sum_over_ranks(trainer.tokens_processed)  # each process counted its own share
    return TrainOutcome(model, steps, tokens, "criterion" if met else "max_steps",
                        time.perf_counter() - t0, history)
