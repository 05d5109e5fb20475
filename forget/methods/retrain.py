"""``retrain``: train a fresh model from scratch on the retain set (the exact gold standard).

A model fine-tuned by the suite (``forget model finetune``) is retrained by its recorded recipe
instead: the same base, parameters and seed, on the recipe's training records that are still in
the retain set and not in the forget set (records erased earlier are not in the retain set, so
they stay out), in the recipe's order. A model with neither a recipe nor one of the suite's
sizes cannot be retrained exactly: ``RetrainUnavailableError``.

The retain set built by ``subject_sets`` is the original training set without the subject's
records (repeats included), and the tokenizer was trained with every identifier removed, so
the result is the model that would exist had the subject's data never been collected. It is
also the cost reference every other method is measured against.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from forget.core.data import ForgetSet, RetainSet
from forget.core.method import EXACT, METHODS, Method, MethodConfig, UnlearnResult
from forget.corpus.load import TrainingRecord
from forget.errors import InvalidInputError, RetrainUnavailableError, UnsupportedArchitectureError
from forget.models.train import ARCHS, SIZES, ModelSize, config_dims, get_size, train_lm


@dataclass
class RetrainConfig(MethodConfig):
    """Retraining from scratch.

    Attributes:
        max_steps: not used (retraining runs the size's whole schedule); kept for the
            common interface.
        size: the model size (``tiny``/``demo``); ``None`` infers it from the model's config.
        epochs: ``None`` uses the size's schedule.
        recipe: a fine-tuning recipe (``forget.models.finetune.recipe_of``) to re-run;
            ``None`` reads it from the card of the model's directory, and without one
            retrains the suite's own size from scratch. ``size``, ``epochs`` and ``seed`` do
            not apply to a recipe (it carries its own).
    """

    max_steps: int = 0
    size: str | None = None
    epochs: int | None = None
    recipe: dict | None = None


def infer_size(model: Any) -> str:
    """The named size whose architecture matches ``model``'s config (any of ``ARCHS``:
    retraining rebuilds the same architecture, ``infer_arch``)."""
    kind, hidden, layers, inter = config_dims(model.config)
    for name, s in SIZES.items():
        if kind in ARCHS and (s.hidden, s.layers, s.intermediate) == (hidden, layers, inter):
            return name
    raise InvalidInputError(
        f"the {kind or 'given'} model matches no known size; pass RetrainConfig(size=...) "
        f"with one of {', '.join(SIZES)} (architectures: {', '.join(ARCHS)})")


def infer_arch(model: Any, method: str = "retrain") -> str:
    """The architecture ``train_lm`` rebuilds for ``model`` (its ``config.model_type``)."""
    kind = getattr(model.config, "model_type", "")
    if kind not in ARCHS:
        raise UnsupportedArchitectureError(
            f"{method} cannot rebuild a {kind!r} model from scratch: the suite builds "
            f"{', '.join(ARCHS)}; retrain it from its recorded recipe or choose another method")
    return kind


# a model that never saw the records cannot over-unlearn, and has nothing for an attack to
# recover: the audit judges the base checks' high side (AuditConfig.judge_recovery). Every
# exact method (retrain, shard_retrain) is audited so.
EXACT_AUDIT: dict[str, Any] = {"judge_over_unlearning": False, "judge_recovery": False}


class Retrain(Method):
    """Exact unlearning by retraining without the forget set."""

    name = "retrain"
    config_class = RetrainConfig
    guarantee = EXACT
    audit_requirements: ClassVar[dict[str, Any]] = EXACT_AUDIT

    def run(self, *, model: Any, tokenizer: Any, forget: ForgetSet, retain: RetainSet,
            config: MethodConfig | None = None) -> UnlearnResult:
        cfg = self.check_config(config)
        t0 = time.perf_counter()
        recipe = getattr(cfg, "recipe", None)
        recipe = recipe if recipe is not None else _card_recipe(model)
        if recipe is not None and recipe.get("sharding"):
            return _run_sharded(self, model, forget, retain, cfg, t0)
        if recipe is not None:
            return _run_recipe(self, recipe, forget, retain, cfg, t0)
        size_name = cfg.size or _known_size(model)
        arch = infer_arch(model)
        spec: ModelSize = get_size(size_name)
        forget_ids = {e.record_id for e in forget.examples}
        records = [TrainingRecord(e.record_id, e.text, e.source) for e in retain.examples
                   if e.record_id not in forget_ids]
        new = train_lm(records, tokenizer, spec, seed=cfg.seed, progress=False,
                       epochs=cfg.epochs, arch=arch)
        epochs = cfg.epochs or spec.epochs
        lengths = [len(ids) + 1 for ids in tokenizer([r.text for r in records])["input_ids"]]
        return UnlearnResult(
            model=new, method=self.name,
            steps=math.ceil(len(records) / spec.batch_size) * epochs,
            tokens_processed=sum(lengths) * epochs, wall_time_s=time.perf_counter() - t0,
            config=cfg.to_dict() | {"resolved_size": size_name}, config_hash=cfg.config_hash(),
            guarantee=self.guarantee, stopped_by="max_steps",
            trained_record_ids=sorted({r.record_id for r in records}))


def _model_dir(model: Any) -> str | None:
    name = getattr(model, "name_or_path", None) or getattr(
        getattr(model, "config", None), "_name_or_path", None)
    return str(name) if name else None


def _card_recipe(model: Any) -> dict | None:
    """The recipe recorded for the directory ``model`` was loaded from, if any."""
    from pathlib import Path

    from forget.models.recipe import recipe_of

    where = _model_dir(model)
    return recipe_of(where) if where and Path(where).is_dir() else None


def _known_size(model: Any) -> str:
    """The suite's size of ``model``; ``RetrainUnavailableError`` when it is none of them."""
    from forget.models.recipe import no_recipe_message

    try:
        return infer_size(model)
    except (InvalidInputError, AttributeError):  # AttributeError: a config without the fields
        raise RetrainUnavailableError(no_recipe_message(_model_dir(model))) from None


def _run_recipe(method: Retrain, recipe: dict, forget: ForgetSet, retain: RetainSet,
                cfg: MethodConfig, t0: float) -> UnlearnResult:
    """Re-run a fine-tuning recipe from its (unchanged) base without the forget set."""
    from forget.models.finetune import FinetuneParams, check_base, finetune_records
    from forget.models.recipe import base_trained_on

    base = check_base(recipe)
    forget_ids = {e.record_id for e in forget.examples}
    overlap = base_trained_on(base) & forget_ids
    if overlap:
        raise RetrainUnavailableError(
            f"exact retraining is unavailable: the base model at {base} was itself trained on "
            f"{len(overlap)} of the records to forget; erase them from the base first")
    kept: dict[str, Any] = {}  # record id -> its retain example
    for e in retain.examples:
        kept.setdefault(e.record_id, e)
    records = [TrainingRecord(rid, kept[rid].text, kept[rid].source)
               for rid in recipe["training_record_ids"] if rid in kept and rid not in forget_ids]
    if not records:
        raise InvalidInputError("none of the recipe's training records is in the retain set; "
                                "is the data the one the model was fine-tuned on?")
    hp = FinetuneParams.from_dict(recipe["params"])
    new, tokenizer = finetune_records(base, records, hp=hp, seed=int(recipe["seed"]),
                                      threads=recipe.get("torch_threads"))
    lengths = [len(ids) + 1 for ids in tokenizer([r.text for r in records])["input_ids"]]
    config = {k: v for k, v in cfg.to_dict().items() if k != "recipe"} | {
        "resolved": "recipe", "base_sha256": recipe["base"]["sha256"],
        "recipe_seed": recipe["seed"], "params": recipe["params"]}
    return UnlearnResult(
        model=new, method=method.name,
        steps=math.ceil(len(records) / hp.batch_size) * hp.epochs,
        tokens_processed=sum(lengths) * hp.epochs, wall_time_s=time.perf_counter() - t0,
        config=config, config_hash=cfg.config_hash(), guarantee=EXACT_FINETUNE,
        stopped_by="max_steps", trained_record_ids=sorted({r.record_id for r in records}))


def _run_sharded(method: Retrain, model: Any, forget: ForgetSet, retain: RetainSet,
                 cfg: MethodConfig, t0: float) -> UnlearnResult:
    """A sharded model retrained whole: every shard from its first slice without the forget
    set (the cost ``shard_retrain`` is measured against; the same model, bitwise)."""
    from forget.methods.shard_retrain import GUARANTEE, kept_texts, sharded_source
    from forget.models.shard_train import retrain_shards

    source = sharded_source(_model_dir(model))
    if source is None:
        raise RetrainUnavailableError(
            "exact retraining is unavailable: the model was fine-tuned sharded but its shard "
            "checkpoints (shards/manifest.json) are not in its directory or any ancestor's")
    texts, remove = kept_texts(forget, retain)
    new, run = retrain_shards(source, texts, remove, full=True)
    kept = sorted({rid for shard in run.manifest["plan"] for ids in shard for rid in ids})
    return UnlearnResult(
        model=new, method=method.name, steps=run.steps, tokens_processed=run.tokens,
        wall_time_s=time.perf_counter() - t0,
        config=cfg.to_dict() | {"resolved": "sharded recipe, every shard"},
        config_hash=cfg.config_hash(), guarantee=GUARANTEE, stopped_by="max_steps",
        save_extra=run.write, trained_record_ids=kept)


EXACT_FINETUNE = ("exact: the model was fine-tuned again from the same base with its recorded "
                  "recipe and seed on its training data without the subject's records, so it "
                  "is the model that would exist had the data never been collected")

METHODS.register("retrain", Retrain)
