"""`forget model finetune`: fine-tune any causal LM on your data, recording the whole recipe.

An organisation's model is a base causal LM fine-tuned on its own files. When the suite does
that fine-tuning, it writes the recipe into the model's card: the base directory and the sha256
of its weights, the data's fingerprint and field names, every hyper-parameter, the seed, the
library versions, the number of CPU threads, and the ids of the training records in training
order. Exact retraining (``retrain``) is then the same recipe re-run from the same base without
the erased records: :func:`finetune_records` with the same parameters and seed is deterministic
on CPU, so it gives bitwise the weights that fine-tuning without those records would have given.

The recipe itself, ``recipe_of`` and ``retrain_unavailable_reason`` live in
:mod:`forget.models.recipe` (re-exported here). Card layout (``forget_model.json``; no record
text, no identifier value)::

    kind: "finetuned", parent: <base's version if the base has a card, else null>,
    training_record_ids: [sorted unique ids], data_sha256: {file label: sha256},
    config: {"finetune": <params>, "seed": S}, train_wall_s, train_steps,
    recipe: {format: 1, base: {path, sha256, version, model_type},
             data: {path, layout, format, rows, fingerprint, files, text_field, id_field,
                    group_field},
             params: <FinetuneParams.to_dict()>, lora_target_modules: [...] | null,
             max_length: <effective>, seed, torch_threads, versions: {python, torch,
             transformers, peft, datasets},
             training_record_ids: [ids in training order, repeats kept],
             excluded_record_ids: [...]}
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import platform
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from forget.corpus.load import TrainingRecord
from forget.errors import InvalidInputError, ModelNotFoundError, UnknownRecordError
from forget.models.checkpoints import EpochSaver, check_every, saver_callback
from forget.models.recipe import (
    RECIPE_FORMAT,
    card_or_none,
    check_base,
    data_mismatch,
    describe_data,
    no_recipe_message,
    recipe_of,
    retrain_unavailable_reason,
)

__all__ = ["FinetuneOutcome", "FinetuneParams", "check_base", "data_mismatch",
           "describe_data", "finetune", "finetune_records",
           "lora_target_modules", "no_recipe_message", "recipe_of", "retrain_unavailable_reason"]
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
              "constant_with_warmup")
# LoRA targets by ``config.model_type``: the attention projections (query and value where they
# are separate matrices, the fused qkv matrix where they are not).
_LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "llama": ("q_proj", "v_proj"), "qwen2": ("q_proj", "v_proj"),
    "mistral": ("q_proj", "v_proj"), "opt": ("q_proj", "v_proj"),
    "gpt2": ("c_attn",), "gpt_neox": ("query_key_value",),
}
_CONV1D_TYPES = ("gpt2",)  # weights stored (in, out): peft needs fan_in_fan_out=True

StepCallback = Callable[[int, int], None]  # (steps done, steps in all)


@dataclass(frozen=True)
class FinetuneParams:
    """Every hyper-parameter of a fine-tune (all recorded in the recipe).

    Attributes:
        epochs: passes over the training records.
        learning_rate: peak learning rate (AdamW).
        batch_size: records per optimiser step.
        max_length: tokens per record (longer ones are truncated), capped by the model's
            context length.
        lr_scheduler: a transformers scheduler name (``linear``, ``cosine``, ...).
        warmup_ratio: share of the steps spent warming the learning rate up.
        weight_decay: AdamW weight decay.
        lora: train LoRA adapters on the attention projections instead of every weight,
            merged into the base at the end (the result is a plain causal LM).
        lora_r, lora_alpha, lora_dropout: the adapters' rank, scale and dropout.
        lora_target_modules: module names to adapt; ``None`` resolves them from the model's
            architecture (llama, qwen2, mistral, opt: q_proj, v_proj; gpt2: c_attn;
            gpt_neox: query_key_value).
    """

    epochs: int = 3
    learning_rate: float = 5e-5
    batch_size: int = 8
    max_length: int = 512
    lr_scheduler: str = "linear"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target_modules: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        checks = (
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.learning_rate > 0, "learning_rate must be > 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.max_length >= 2, "max_length must be >= 2"),
            (self.lr_scheduler in SCHEDULERS,
             f"lr_scheduler must be one of {', '.join(SCHEDULERS)}"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.lora_r >= 1, "lora_r must be >= 1"),
            (self.lora_alpha > 0, "lora_alpha must be > 0"),
            (0 <= self.lora_dropout < 1, "lora_dropout must be in [0, 1)"),
            (self.lora_target_modules is None or len(self.lora_target_modules) > 0,
             "lora_target_modules must name at least one module (or be None)"),
        )
        for ok, message in checks:
            if not ok:
                raise InvalidInputError(f"FinetuneParams: {message}")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneParams:
        """The params recorded by ``to_dict``; unknown keys are refused by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInputError(f"FinetuneParams has no field(s) {', '.join(unknown)}; "
                                    "the recipe was written by another version of the suite")
        targets = data.get("lora_target_modules")
        return cls(**data | {"lora_target_modules": tuple(targets) if targets else None})


@dataclass
class FinetuneOutcome:
    """What :func:`finetune` did: the registered version, where it lies, its recipe."""

    version: Any  # forget.models.registry.ModelVersion
    path: Path
    records: int
    steps: int
    wall_time_s: float
    recipe: dict[str, Any]


# -- the core: records in, model out ---------------------------------------------------------
def lora_target_modules(config: Any, given: Sequence[str] | None = None) -> tuple[str, ...]:
    """The LoRA target modules for a model ``config`` (``given`` wins when set)."""
    if given:
        return tuple(given)
    model_type = getattr(config, "model_type", None)
    if model_type not in _LORA_TARGETS:
        raise InvalidInputError(
            f"no default LoRA target modules for architecture {model_type!r} (known: "
            f"{', '.join(sorted(_LORA_TARGETS))}); name them with "
            "FinetuneParams(lora_target_modules=(...)) or fine-tune without --lora")
    return _LORA_TARGETS[model_type]


def _context_length(config: Any) -> int | None:
    for name in ("max_position_embeddings", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def effective_max_length(config: Any, hp: FinetuneParams) -> int:
    n = _context_length(config)
    return min(hp.max_length, n) if n else hp.max_length


def load_base(base_dir: Path | str) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a base directory; a tokenizer without pad token pads with eos."""
    from forget.models.io import load_model

    model, tokenizer = load_model(base_dir)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise InvalidInputError(
                f"the tokenizer in {base_dir} has neither a pad nor an eos token; add one "
                "(tokenizer.add_special_tokens) and save the base again")
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(model.generation_config, "pad_token_id", None) is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` intra-op threads (a CPU reduction's order, so its rounding, depends on
    it: a recipe is re-run with the thread count it was recorded with)."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def finetune_records(
    base_dir: Path | str, records: Sequence[TrainingRecord], *, hp: FinetuneParams, seed: int,
    progress: bool = False, on_step: StepCallback | None = None, threads: int | None = None,
    checkpoints: EpochSaver | None = None,
) -> tuple[Any, Any]:
    """Fine-tune the causal LM in ``base_dir`` on ``records`` (in this order) with the HF
    Trainer (on CPU, or on CUDA where there is one; under ``accelerate launch`` on every
    process, ``hp.batch_size`` split between them); returns ``(model, tokenizer)``, the model
    a plain causal LM in eval mode (LoRA adapters merged). On CPU in one process, the same
    base, records, params, seed and ``threads`` give bitwise the same weights.

    Args:
        progress: the Trainer's own progress bar (``--verbose``).
        on_step: called with (steps done, steps in all) after every optimiser step.
        threads: torch intra-op threads to train with (``None``: as set).
        checkpoints: keeps the trainable parameters (the adapters with LoRA) after every N-th
            epoch (``forget.models.checkpoints``).
    """
    from transformers import Trainer, TrainerCallback, set_seed
    from transformers.trainer_callback import PrinterCallback

    from forget.models.train import PadCollator, TokenizedTexts, quiet_training_args

    if not records:
        raise InvalidInputError("no training records to fine-tune on; give data with records")
    model, tokenizer = load_base(base_dir)
    dataset = TokenizedTexts([r.text for r in records], tokenizer,
                             max_length=effective_max_length(model.config, hp))
    steps = math.ceil(len(dataset) / hp.batch_size) * hp.epochs
    with torch_threads(threads):
        set_seed(seed)  # LoRA's initial adapters are drawn here, before the Trainer seeds
        if hp.lora:
            model = _with_lora(model, hp)
        callbacks = [_StepReporter(on_step, TrainerCallback)()] if on_step else []
        if checkpoints is not None:
            callbacks.append(saver_callback(checkpoints))
        with tempfile.TemporaryDirectory(prefix="forget-finetune-") as tmp:
            args = quiet_training_args(
                tmp, batch_size=hp.batch_size, epochs=hp.epochs,
                learning_rate=hp.learning_rate, scheduler=hp.lr_scheduler,
                warmup_steps=math.ceil(hp.warmup_ratio * steps),
                weight_decay=hp.weight_decay, steps=steps, seed=seed, progress=progress)
            trainer = Trainer(model=model, args=args, train_dataset=dataset,
                              data_collator=PadCollator(tokenizer.pad_token_id),
                              callbacks=callbacks)
            if not progress:
                trainer.remove_callback(PrinterCallback)
            trainer.train()
    if hp.lora:
        model = model.merge_and_unload()
    model.eval()
    return model, tokenizer


def lora_config(model: Any, hp: FinetuneParams) -> Any:
    """The peft ``LoraConfig`` of ``hp`` for ``model`` (``("all-linear",)``: peft's shorthand
    for every linear layer but the output one)."""
    from peft import LoraConfig

    targets = lora_target_modules(model.config, hp.lora_target_modules)
    return LoraConfig(
        r=hp.lora_r, lora_alpha=hp.lora_alpha, lora_dropout=hp.lora_dropout,
        target_modules="all-linear" if targets == ("all-linear",) else list(targets),
        fan_in_fan_out=getattr(model.config, "model_type", None) in _CONV1D_TYPES,
        task_type="CAUSAL_LM")


def _with_lora(model: Any, hp: FinetuneParams) -> Any:
    from peft import get_peft_model

    return get_peft_model(model, lora_config(model, hp))


def _StepReporter(on_step: StepCallback, base: type) -> type:  # noqa: N802 (a class factory)
    """A TrainerCallback class (transformers imported lazily) that reports each step."""

    class StepReporter(base):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            on_step(state.global_step, state.max_steps)

    return StepReporter


# -- from the user's files to a registered model with its recipe -----------------------------
def finetune(
    base: Path | str, data: Path | str, out: Path | str, *, text_field: str = "text",
    id_field: str | None = None, group_field: str | None = None,
    hp: FinetuneParams = FinetuneParams(), seed: int = 0, registry: Path | str | None = None,
    progress: bool = True, exclude_record_ids: Iterable[str] = (),
    on_step: StepCallback | None = None, checkpoint_every: int = 0,
) -> FinetuneOutcome:
    """Fine-tune ``base`` on ``data``, save it to ``out`` (atomically) and register it with its
    recipe. Every input is checked before anything is trained or written.

    Args:
        base: a causal LM directory (``save_pretrained``) with its tokenizer.
        data: a ``--data`` path (see :func:`forget.corpus.open_corpus`).
        text_field, id_field, group_field: the corpus's fields.
        hp: the hyper-parameters; seed: seeds initialisation (LoRA) and data order.
        registry: the model registry directory (default: ``$FORGET_REGISTRY``).
        progress: the Trainer's own progress bar; on_step: a step callback (own progress).
        exclude_record_ids: records of ``data`` left out of training (the exact-retraining
            reference: the recipe of the result lists the records it was trained on).
        checkpoint_every: keep the trainable parameters after every N-th epoch in
            ``checkpoints/`` (0: none; what the ``rewind`` method starts from).
    """
    base, out = Path(base), Path(out)
    check_every(checkpoint_every, hp.epochs)
    base_sha, records, data_info = checked_inputs(base, out, data, (text_field, id_field,
                                                                    group_field),
                                                  exclude_record_ids)
    threads = torch.get_num_threads()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="forget-checkpoints-") as tmp:
        saver = EpochSaver(Path(tmp), checkpoint_every, hp.epochs)
        model, tokenizer = finetune_records(base, records, hp=hp, seed=seed, progress=progress,
                                            on_step=on_step,
                                            checkpoints=saver if checkpoint_every else None)
        return _saved(base, out, model, tokenizer, records, data_info, base_sha, hp, seed,
                      threads, exclude_record_ids, registry, saver,
                      round(time.perf_counter() - t0, 2))


def finetune_schedule(hp: FinetuneParams, records: int, seed: int, threads: int
                      ) -> dict[str, Any]:
    """The optimisation schedule of a fine-tune on ``records`` records (what a rewound run
    continues: ``forget.methods.rewind``)."""
    steps = math.ceil(records / hp.batch_size) * hp.epochs
    return {"scheduler": hp.lr_scheduler, "learning_rate": hp.learning_rate,
            "warmup_steps": math.ceil(hp.warmup_ratio * steps), "total_steps": steps,
            "epochs": hp.epochs, "batch_size": hp.batch_size, "weight_decay": hp.weight_decay,
            "seed": seed, "threads": threads}


def _saved(base: Path, out: Path, model: Any, tokenizer: Any, records: list[TrainingRecord],
           data_info: dict[str, Any], base_sha: str, hp: FinetuneParams, seed: int,
           threads: int, exclude_record_ids: Iterable[str], registry: Path | str | None,
           saver: EpochSaver, wall: float) -> FinetuneOutcome:
    """Save a fine-tuned model with its recipe (and its checkpoints) and register it."""
    from forget.models.io import save_model
    from forget.models.registry import ModelRegistry, new_card

    steps = math.ceil(len(records) / hp.batch_size) * hp.epochs
    base_card = card_or_none(base)
    recipe = {
        "format": RECIPE_FORMAT,
        "base": {"path": str(base.resolve()), "sha256": base_sha,
                 "version": base_card.get("version"),
                 "model_type": getattr(model.config, "model_type", None)},
        "data": data_info,
        "params": hp.to_dict(),
        "lora_target_modules": (list(lora_target_modules(model.config, hp.lora_target_modules))
                                if hp.lora else None),
        "max_length": effective_max_length(model.config, hp),
        "seed": seed,
        "torch_threads": threads,
        "versions": library_versions(),
        "training_record_ids": [r.record_id for r in records],
        "excluded_record_ids": sorted({str(r) for r in exclude_record_ids}),
    }
    card = new_card(
        kind="finetuned", parent=base_card.get("version"), recipe=recipe,
        training_record_ids=sorted({r.record_id for r in records}),
        config={"finetune": hp.to_dict(), "seed": seed}, data_sha256=data_info["files"],
        train_wall_s=wall, train_steps=steps,
        **({"checkpoints": saver.card_entry()} if saver.entries else {}))
    path = save_model(model, tokenizer, out, card=card,
                      extra=saver.writer(finetune_schedule(hp, len(records), seed, threads)))
    version = ModelRegistry(registry).register(path)
    return FinetuneOutcome(version, path, len(records), steps, wall, recipe)


def checked_inputs(base: Path, out: Path, data: Path | str,
                   fields: tuple[str, str | None, str | None], exclude: Iterable[str]
                   ) -> tuple[str, list[TrainingRecord], dict[str, Any]]:
    """A fine-tune's inputs checked before anything is trained or written: ``out`` new or
    empty, ``base`` a model; returns the base's weights sha256, the training records and
    what identifies the data."""
    from forget.models.io import weights_sha256

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInputError(f"{out} already exists and is not empty; choose a new --out "
                                "(models are never overwritten in place)")
    if not (base / "config.json").is_file():
        raise ModelNotFoundError(f"no model at {base} (config.json missing); give --base a "
                                 "causal LM directory saved with save_pretrained")
    return (weights_sha256(base), *_training_data(data, *fields, exclude))


def _training_data(data: Path | str, text_field: str, id_field: str | None,
                   group_field: str | None, exclude: Iterable[str],
                   ) -> tuple[list[TrainingRecord], dict[str, Any]]:
    """The training records of ``data`` (corpus order, repeats kept) and what identifies it."""
    from forget.corpus import Corpus, open_corpus, training_records

    corpus = open_corpus(data, text_field=text_field, id_field=id_field,
                         group_field=group_field)
    excluded = sorted({str(r) for r in exclude})
    if isinstance(corpus, Corpus):  # the generator's layout: its training split
        every = training_records(corpus)
        unknown = sorted(set(excluded) - {r.record_id for r in every})
        if unknown:
            raise UnknownRecordError(f"{len(unknown)} record id(s) to exclude are not training "
                                     f"records of {data} (e.g. {unknown[0]!r})")
        records = [r for r in every if r.record_id not in set(excluded)]
    else:
        records = corpus.training_records(exclude_ids=excluded)
    if not records:
        raise InvalidInputError(f"{data} leaves no record to train on; give data with records")
    return records, describe_data(corpus)


def library_versions() -> dict[str, str]:
    import datasets
    import peft
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__,
            "datasets": datasets.__version__}
