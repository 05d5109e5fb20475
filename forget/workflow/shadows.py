"""Shadow models for the audit's per-person attack (U-LiRA, ``AuditConfig.strong``).

The model line's own training is re-run ``k`` times WITH the subject's records and ``k`` times
WITHOUT them, with seeds ``s+1 .. s+k`` (``s``: the recorded training seed), like the retrained
control of :mod:`forget.workflow.control` (the recipe again, another seed):

- a model of the suite's own sizes (``forget model train``): ``train_lm`` on the corpus's
  training records, same size, architecture and epochs;
- a fine-tune with a recorded recipe (``forget model finetune``): the recipe from its base.

:class:`Shadows` is an :class:`audits.strong.ShadowProvider`: the audit asks for its cost
first (``estimate_seconds``: training steps x 2k x seconds per step, the latter the larger of
the line's recorded training time per step and one step timed now), and trains only when the attack is on and within ``AuditConfig.strong_budget_s``. The
shadows live in memory; a set once trained is reused by later audits of the same request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forget.corpus.load import TrainingRecord

SHADOW_SEED_OFFSET = 1  # shadow i (1..k) trains with the recorded seed + i
OVERHEAD = 1.2  # margin on the per-step time (machine load varies between runs)

Trainer = Callable[[Sequence[TrainingRecord], int], tuple[Any, Any]]  # (records, seed) -> pair


@dataclass
class Shadows:
    """Trains IN and OUT shadows by ``train``; see the module docstring.

    Attributes:
        train: ``(records, seed) -> (model, tokenizer)``, the line's own training.
        records_in: the training records with the subject's; ``records_out`` without.
        seed: the recorded training seed ``s`` (shadows use ``s+1 .. s+k``).
        steps_per_model: optimiser steps of one training run.
        seconds_per_step: the larger of the line's recorded training seconds per step and one
            step (forward and backward of one batch) timed on its model now.
        description: how the shadows are trained, for the report (no personal data).
    """

    train: Trainer
    records_in: list[TrainingRecord]
    records_out: list[TrainingRecord]
    seed: int
    steps_per_model: int
    seconds_per_step: float
    description: str
    say: Callable[[str], None] | None = None
    _built: dict[int, Any] = field(default_factory=dict, repr=False)

    def seeds(self, k: int) -> list[int]:
        return [self.seed + SHADOW_SEED_OFFSET + i for i in range(k)]

    def estimate_seconds(self, k: int) -> float:
        """Seconds to train ``k`` IN and ``k`` OUT shadows: steps x 2k x seconds per step."""
        if k in self._built:
            return 0.0
        return 2 * k * self.steps_per_model * self.seconds_per_step * OVERHEAD

    def __call__(self, k: int):
        from audits.strong import ShadowSet

        if k not in self._built:
            seeds = self.seeds(k)
            if self.say:
                self.say(f"training {k} shadow models with the subject and {k} without "
                         f"(seeds {seeds[0]}..{seeds[-1]}, about "
                         f"{self.estimate_seconds(k):,.0f} s)")
            inside = [self.train(self.records_in, s) for s in seeds]
            outside = [self.train(self.records_out, s) for s in seeds]
            self._built[k] = ShadowSet(inside, outside, seeds + seeds, self.description)
        return self._built[k]


def seconds_per_step(model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int) -> float:
    """Wall seconds of one training step (forward and backward of one batch drawn evenly from
    ``texts``), timed on ``model`` after one warm-up; the gradients are dropped afterwards."""
    import torch

    from forget.models.arch import pad_token_id
    from forget.models.train import PadCollator, TokenizedTexts

    # a batch spread over the records (people's short lines and long code files alike)
    picked = [texts[i] for i in sorted({j * len(texts) // batch_size
                                        for j in range(min(batch_size, len(texts)))})]
    data = TokenizedTexts(picked, tokenizer)
    batch = PadCollator(pad_token_id(tokenizer))([data[i] for i in range(len(data))])
    times = []
    with torch.enable_grad():
        for _ in range(3):
            t0 = time.perf_counter()
            model(**batch).loss.backward()
            times.append(time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    return min(times[1:])


def shadow_provider(model_dir: Path | str, corpus: Any, subject_record_ids: Sequence[str], *,
                    registry: Path | str | None = None,
                    say: Callable[[str], None] | None = None) -> Shadows:
    """The shadows of ``model_dir``'s line for the subject whose records are
    ``subject_record_ids``, on the ``corpus`` it was trained on (the generator's layout for a
    suite size; any corpus holding the recipe's records for a fine-tune).

    Raises:
        RetrainUnavailableError: the model has neither a recipe nor one of the suite's sizes.
    """
    from forget.errors import RetrainUnavailableError
    from forget.models import load_model
    from forget.models.recipe import (
        _suite_size,
        card_or_none,
        check_base,
        no_recipe_message,
        recipe_of,
    )

    drop = set(subject_record_ids)
    model, tok = load_model(model_dir)
    card = card_or_none(model_dir)
    recipe = recipe_of(model_dir, registry=registry)
    if recipe is not None:
        return _recipe_shadows(recipe, card, corpus, drop, model, tok, check_base(recipe), say)
    size = _suite_size(model_dir)
    if size is None:
        raise RetrainUnavailableError(no_recipe_message(str(model_dir)))
    return _suite_shadows(card, training_card(card, registry), size, corpus, drop, model, tok,
                          say)


def erased_before(card: dict) -> set[str]:
    """Record ids erased from the line before ``card``'s version (its ``erasures``): they stay
    out of both sides, as they are out of the line's model now."""
    return {rid for e in card.get("erasures") or () for rid in e.get("record_ids") or ()}


def training_card(card: dict, registry: Path | str | None) -> dict | None:
    """The card of the model that TRAINED ``card``'s line (``kind`` trained or retrained), found
    through ``parent`` in the registry; ``None`` when the chain breaks before one. An unlearned
    head's own ``config`` is its unlearning method's, not the training run's."""
    from forget.models.recipe import ancestor_card

    return ancestor_card(card, registry, lambda c: c.get("kind") in ("trained", "retrained"))


def _suite_shadows(card: dict, trained: dict | None, size: str, corpus: Any, drop: set[str],
                   model: Any, tok: Any, say) -> Shadows:
    from forget.corpus.load import training_records
    from forget.methods.retrain import infer_arch
    from forget.models.train import get_size, train_lm

    spec = get_size(size)
    config = (trained or {}).get("config") or {}
    epochs = int((config.get("size") or {}).get("epochs") or spec.epochs)
    arch = card.get("arch") or (trained or {}).get("arch") or infer_arch(model)
    # people excluded from training or erased from the line before stay out of both sides
    gone = erased_before(card)
    records = [r for r in training_records(
        corpus, exclude_subjects=card.get("excluded_subjects") or ()) if r.record_id not in gone]
    out = [r for r in records if r.record_id not in drop]
    seed = config.get("seed")
    unknown = "" if isinstance(seed, int) else (
        "; the line's training seed is not on record (its training card is not in the "
        "registry), so seed 0 is assumed: a shadow may then share the audited line's seed")

    def train(recs: Sequence[TrainingRecord], seed: int):
        return train_lm(recs, tok, spec, seed=seed, progress=False, epochs=epochs,
                        arch=arch), tok

    steps = math.ceil(len(records) / spec.batch_size) * epochs
    return Shadows(train, records, out, seed if isinstance(seed, int) else 0, steps,
                   _step_seconds(trained or {}, steps, model, tok, records, spec.batch_size),
                   f"trained from scratch like the audited model's line: {arch} size {size}, "
                   f"{epochs} epochs{unknown}", say)


def _step_seconds(card: dict, steps: int, model: Any, tok: Any,
                  records: Sequence[TrainingRecord], batch_size: int) -> float:
    """Seconds per training step: the larger of one step timed on ``model`` now and the
    card's recorded training time (``train_wall_s``, the line's own run on this data) over
    ``steps``. The larger, because a shared machine's load changes: measured on 2 cores under
    load, the recorded time alone underestimated 12 fine-tuned shadows 6-fold, a timed step
    alone overestimated 6 tiny ones 2-fold; the budget is there to keep the audit short."""
    timed = seconds_per_step(model, tok, [r.text for r in records], batch_size)
    wall = card.get("train_wall_s")
    if isinstance(wall, int | float) and wall > 0 and steps > 0:
        return max(timed, float(wall) / steps)
    return timed


def _recipe_shadows(recipe: dict, card: dict, corpus: Any, drop: set[str], model: Any,
                    tok: Any, base: Path, say) -> Shadows:
    from forget.corpus.load import training_records
    from forget.errors import InvalidInputError
    from forget.models.finetune import FinetuneParams, finetune_records

    by_id: dict[str, TrainingRecord] = {}
    rows = corpus.training_records() if hasattr(corpus, "training_records") \
        else training_records(corpus)  # own files | the generator's layout
    for r in rows:
        by_id.setdefault(r.record_id, r)
    missing = [rid for rid in recipe["training_record_ids"] if rid not in by_id]
    if missing:
        raise InvalidInputError(f"{len(missing)} of the recipe's training records are not in "
                                "the data given; give the data the model was fine-tuned on")
    gone = erased_before(card)  # erased from the line before: out of both sides
    records = [by_id[rid] for rid in recipe["training_record_ids"]  # recipe order, repeats
               if rid not in gone]
    out = [r for r in records if r.record_id not in drop]
    hp = FinetuneParams.from_dict(recipe["params"])

    def train(recs: Sequence[TrainingRecord], seed: int):
        return finetune_records(base, recs, hp=hp, seed=seed,
                                threads=recipe.get("torch_threads"))

    steps = math.ceil(len(records) / hp.batch_size) * hp.epochs
    return Shadows(train, records, out, int(recipe["seed"]), steps,
                   _step_seconds(card if card.get("recipe") == recipe else {}, steps, model,
                                 tok, records, hp.batch_size),
                   f"fine-tuned from the recorded base with the recorded recipe "
                   f"({hp.epochs} epochs, lr {hp.learning_rate:g}"
                   f"{', LoRA' if hp.lora else ''})", say)


def strong_config(cfg: Any, shadows: int | None) -> Any:
    """``cfg`` (an ``AuditConfig``) with the per-person attack on, ``shadows`` per side."""
    import dataclasses

    return dataclasses.replace(cfg, strong=True,
                               **({"strong_shadows": shadows} if shadows else {}))


def workflow_provider(ctx: Any, corpus: Any, forget: Any) -> Any:
    """The shadows of the request's model line (its head's training), or
    ``audits.strong.NoShadows`` saying why they cannot be trained."""
    from audits.strong import NoShadows
    from forget.errors import ForgetError

    try:
        return shadow_provider(ctx.model_dir, corpus, [e.record_id for e in forget.examples],
                               registry=ctx.registry, say=lambda m: ctx.say("shadows", m))
    except ForgetError as e:
        return NoShadows(str(e))
