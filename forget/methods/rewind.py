"""``rewind``: rewind to an epoch checkpoint and train forward without the records (after R2D,
Mu & Klabjan, "Rewind-to-Delete", NeurIPS 2025).

A model trained or fine-tuned with epoch checkpoints (``forget model train|finetune
--epoch-checkpoints N``) kept its trainable parameters after every N-th epoch. To forget a
subject, the run is rewound to the latest checkpoint at least ``rewind_epochs`` epochs before
the end, and the last epochs are run again on the retain set only (the subject's records and
every record erased earlier left out), continuing the recorded learning-rate schedule from
the checkpoint's step. Optionally, Gaussian noise is added to the weights at the end (R2D's
certification step; ``noise_std``).

What it guarantees: nothing formal here. R2D's certificate needs assumptions (smoothness, a
Polyak-Lojasiewicz-type condition, noise calibrated to them) that a transformer does not meet,
and the checkpoint itself was trained on the subject for its first epochs. The cost is the
share of epochs re-run (``rewind_epochs / epochs``, from the checkpoint); the audit decides.
Rewinding to epoch 0 (``rewind_epochs`` >= the run's epochs) is the retraining recipe itself.

Lineage: the checkpoints are read from the model's directory; a model made by ``rewind``
names the checkpointed model it was rewound from (``rewound_from.json``, with that model's
weights sha256), so the next request rewinds the same run, every erased record left out of
the re-run epochs. A model changed by another method since the checkpoints is refused
(``RewindUnavailableError``): rewinding past that method's work would throw it away (after an
``npo`` erasure, rewinding for the next request would bring back what ``npo`` removed).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from forget.core.data import ForgetSet, RetainSet
from forget.core.method import METHODS, Method, MethodConfig, UnlearnResult
from forget.corpus.load import TrainingRecord
from forget.errors import InvalidInputError, RewindUnavailableError
from forget.models.arch import ensure_pad_token
from forget.models.checkpoints import load_entry, pick, read_index

GUARANTEE = ("empirical, audited: the training run was rewound to an epoch checkpoint and its "
             "last epochs run again without the subject's records; the epochs before the "
             "checkpoint saw them, so what remains of them is bounded by the audit, not by a "
             "proof")


@dataclass
class RewindConfig(MethodConfig):
    """Rewind-and-retrain-forward.

    Attributes:
        max_steps: not used (the re-run epochs set the steps); kept for the common interface.
        rewind_epochs: epochs to run again (the checkpoint used is the latest one at least
            this far before the end; more epochs cost more and leave less of the subject).
        noise_std: standard deviation of Gaussian noise added to every weight at the end
            (0: none).
    """

    max_steps: int = 0
    rewind_epochs: int = 5
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rewind_epochs < 1:
            raise InvalidInputError(f"rewind_epochs must be >= 1, got {self.rewind_epochs}")
        if self.noise_std < 0:
            raise InvalidInputError(f"noise_std must be >= 0, got {self.noise_std}")


@dataclass
class Lineage:
    """Where the checkpoints lie and how the run that made them is rebuilt."""

    folder: Path  # the model directory holding checkpoints/
    card: dict[str, Any]
    index: dict[str, Any]


POINTER = "rewound_from.json"  # in a model made by rewind: where its checkpoints lie


def lineage(model_dir: str | None) -> Lineage:
    """The checkpointed run ``model_dir`` comes from: its own checkpoints, or, for a model made
    by ``rewind``, those its pointer file names (checked against the weights it recorded)."""
    from forget.models.io import weights_sha256
    from forget.models.recipe import card_or_none

    if not model_dir or not Path(model_dir).is_dir():
        raise RewindUnavailableError("rewind needs the model's directory (its card and "
                                     "checkpoints); load the model with from_pretrained(path)")
    folder = Path(model_dir)
    pointer = folder / POINTER
    if read_index(folder) is None and pointer.is_file():
        source = json.loads(pointer.read_text())
        folder = Path(source["folder"])
        if not folder.is_dir() or weights_sha256(folder) != source["weights_sha256"]:
            raise RewindUnavailableError(
                f"the checkpointed model this one was rewound from is no longer at {folder} "
                "with the weights it had; restore it there, or use retrain")
    card = card_or_none(folder)
    index = read_index(folder)
    if index is not None:
        return Lineage(folder, card, index)
    if card.get("kind") == "unlearned" and card.get("method") != "rewind":
        raise RewindUnavailableError(
            f"the model's line was changed by {card.get('method')!r} since its checkpoints "
            "were saved (or it kept none); rewinding would throw that erasure away: use retrain")
    raise RewindUnavailableError(
        "the model's line kept no epoch checkpoints; train or fine-tune it with "
        "--epoch-checkpoints N (`forget model train|finetune`), or use retrain")


def _pointer_writer(line: Lineage) -> Any:
    from forget.models.io import weights_sha256

    body = {"folder": str(line.folder.resolve()), "weights_sha256": weights_sha256(line.folder)}
    return lambda model_dir: (Path(model_dir) / POINTER).write_text(
        json.dumps(body, indent=2, sort_keys=True) + "\n")


def _start_model(line: Lineage, tokenizer: Any, entry: dict[str, Any] | None) -> tuple[Any, bool]:
    """The model at the checkpoint (``entry``; ``None``: the run's start), in train mode, and
    whether it carries LoRA adapters (merged at the end)."""
    from transformers import set_seed

    card = line.card
    recipe = card.get("recipe")
    if recipe and recipe.get("sharding"):
        raise RewindUnavailableError("a sharded model is unlearned by shard_retrain, not rewind")
    if recipe:
        from forget.models.finetune import FinetuneParams, _with_lora, load_base
        from forget.models.recipe import check_base

        hp = FinetuneParams.from_dict(recipe["params"])
        model, _ = load_base(check_base(recipe))
        if hp.lora:
            set_seed(int(recipe["seed"]))
            model = _with_lora(model, hp)
        lora = hp.lora
    else:
        from forget.models.train import build_model, get_size

        if not card.get("size"):
            raise RewindUnavailableError("the checkpointed model has neither a fine-tuning "
                                         "recipe nor one of the suite's sizes in its card")
        model = build_model(tokenizer, get_size(card["size"]), int(card["config"]["seed"]),
                            card.get("arch") or "llama")
        lora = False
    if entry is not None:
        state = load_entry(line.folder, entry)
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        if set(state) != trainable:
            raise RewindUnavailableError(
                f"checkpoint epoch {entry['epoch']} does not hold the parameters the rebuilt "
                "model trains (another architecture or LoRA setting); use retrain")
        model.load_state_dict(state, strict=False)
    model.train()
    return model, lora


def _resumed_trainer() -> type:
    """The HF Trainer with its own optimiser (as the original run had it) and the recorded
    schedule's learning rate from the checkpoint's step on (``lr_factor``)."""
    from transformers import Trainer

    class Resumed(Trainer):
        lr_factor: Any = None

        def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
            if self.lr_scheduler is None:
                self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
                    optimizer if optimizer is not None else self.optimizer, self.lr_factor)
            return self.lr_scheduler

    return Resumed


def _forward(model: Any, tokenizer: Any, texts: list[str], schedule: dict[str, Any],
             start_step: int, epochs: int, max_length: int) -> int:
    """Train ``model`` ``epochs`` epochs on ``texts``, the learning rate following the recorded
    schedule from ``start_step``; returns the optimiser steps taken."""
    from transformers import get_scheduler
    from transformers.trainer_callback import PrinterCallback

    from forget.models.arch import pad_token_id
    from forget.models.train import PadCollator, TokenizedTexts, quiet_training_args

    _Resumed = _resumed_trainer()  # noqa: N806 (a class)
    dataset = TokenizedTexts(texts, tokenizer, max_length=max_length)
    steps = math.ceil(len(dataset) / schedule["batch_size"]) * epochs
    probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    factor = get_scheduler(schedule["scheduler"], probe,
                           num_warmup_steps=schedule["warmup_steps"],
                           num_training_steps=schedule["total_steps"]).lr_lambdas[0]
    seed = int(schedule["seed"]) + start_step  # another data order than the original's epochs
    with tempfile.TemporaryDirectory(prefix="forget-rewind-") as tmp:
        args = quiet_training_args(
            tmp, batch_size=schedule["batch_size"], epochs=epochs,
            learning_rate=schedule["learning_rate"], scheduler=schedule["scheduler"],
            warmup_steps=0, weight_decay=schedule["weight_decay"], steps=steps, seed=seed,
            progress=False)
        trainer = _Resumed(model=model, args=args, train_dataset=dataset,
                           data_collator=PadCollator(pad_token_id(tokenizer)))
        trainer.lr_factor = lambda s: factor(s + start_step)
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    return steps


def add_noise(model: Any, std: float, seed: int) -> None:
    """Add N(0, std^2) to every parameter of ``model`` in place (seeded)."""
    if std <= 0:
        return
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=torch.float32).to(p) * std)


class Rewind(Method):
    """Rewind the training run to an epoch checkpoint, re-run the rest without the records."""

    name = "rewind"
    config_class = RewindConfig
    guarantee = GUARANTEE

    def run(self, *, model: Any, tokenizer: Any, forget: ForgetSet, retain: RetainSet,
            config: MethodConfig | None = None) -> UnlearnResult:
        from forget.methods.retrain import _model_dir
        from forget.models.finetune import torch_threads
        from forget.models.train import MAX_LENGTH

        cfg = self.check_config(config)
        ensure_pad_token(tokenizer)
        t0 = time.perf_counter()
        line = lineage(_model_dir(model))
        schedule, total = line.index["schedule"], int(line.index["epochs"])
        entry = pick(line.index, total - cfg.rewind_epochs)
        start_epoch, start_step = (entry["epoch"], entry["step"]) if entry else (0, 0)
        forget_ids = {e.record_id for e in forget.examples}
        kept: dict[str, Any] = {}
        for e in retain.examples:
            if e.record_id not in forget_ids:
                kept.setdefault(e.record_id, e)
        recipe = line.card.get("recipe")
        # the original run's records without the forget set, repeats kept: the recipe's order,
        # or (a suite size) the retain set's, as retraining takes them
        order = ([rid for rid in recipe["training_record_ids"] if rid in kept] if recipe
                 else [e.record_id for e in retain.examples if e.record_id not in forget_ids])
        if not order:
            raise InvalidInputError("no retain record to train forward on; is the data the "
                                    "one the model was trained on?")
        records = [TrainingRecord(rid, kept[rid].text, kept[rid].source) for rid in order]
        max_length = int(recipe.get("max_length") or MAX_LENGTH) if recipe else MAX_LENGTH
        with torch_threads(schedule.get("threads")):
            net, lora = _start_model(line, tokenizer, entry)
            steps = _forward(net, tokenizer, [r.text for r in records], schedule, start_step,
                             total - start_epoch, max_length)
        if lora:
            net = net.merge_and_unload()
        add_noise(net, cfg.noise_std, cfg.seed)
        net.eval()
        lengths = [min(len(ids) + 1, max_length)
                   for ids in tokenizer([r.text for r in records])["input_ids"]]
        return UnlearnResult(
            model=net, method=self.name, steps=steps,
            tokens_processed=sum(lengths) * (total - start_epoch),
            wall_time_s=time.perf_counter() - t0,
            config=cfg.to_dict() | {"resolved": {"from_epoch": start_epoch, "epochs": total,
                                                 "from_step": start_step,
                                                 "share_of_epochs": round(
                                                     (total - start_epoch) / total, 4)}},
            config_hash=cfg.config_hash(), guarantee=self.guarantee, stopped_by="max_steps",
            save_extra=_pointer_writer(line), history=[{"stage": "rewind", "from_epoch": start_epoch, "to_epoch": total,
                      "records": len(records), "steps": steps}])


METHODS.register("rewind", Rewind)
