"""``shard_retrain``: exact deletion from a sharded model (SISA over LoRA adapters).

For a model trained with ``forget model finetune --shards S --slices R``: the shards holding
the subject's records retrain from the checkpoint saved before the earliest slice that held
them, on the same slices without those records, with the same seeds and order; every other
shard's adapter is carried over byte for byte; the shards are combined again. The result is
bitwise the model sharded training without the records would have produced (see
:mod:`forget.models.sharded`), at the cost of the retrained slices only.

Records erased from the line earlier are not in the retain set, so they stay out too: a later
request never brings back an earlier one's records, whatever method made the head. A head
without shard checkpoints (unlearned by another method) is retrained from its nearest sharded
ancestor, without every record erased since.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from forget.core.data import ForgetSet, RetainSet
from forget.core.method import METHODS, Method, MethodConfig, UnlearnResult
from forget.corpus.load import TrainingRecord
from forget.errors import RetrainUnavailableError
from forget.methods.retrain import EXACT_AUDIT

GUARANTEE = ("exact: the shards that held the subject's records were retrained from the "
             "checkpoint before those records, with the same seeds and order, and the others "
             "kept unchanged, so the model is the one sharded training would have produced "
             "without the records. It assumes the base model never saw the subject (the model "
             "card says what the base was trained on) and covers the records found for the "
             "request; records of the person that the search did not find are not covered")


@dataclass
class ShardRetrainConfig(MethodConfig):
    """Retraining the affected shards.

    Attributes:
        max_steps: not used (the affected slices run their whole schedule); kept for the
            common interface.
        seed_offset: 0 for the deletion; another value retrains the affected shards from
            scratch with other seeds (an audit control that never saw the records).
    """

    max_steps: int = 0
    seed_offset: int = 0


def sharded_source(model_dir: Path | str | None, registry: Path | str | None = None
                   ) -> Path | None:
    """The directory whose shard checkpoints a deletion starts from: ``model_dir`` itself,
    else its nearest sharded ancestor in the registry; ``None`` when there is none."""
    from forget.models.recipe import ancestor_card, card_or_none
    from forget.models.registry import ModelRegistry
    from forget.models.sharded import has_shards

    if model_dir is None or not Path(model_dir).is_dir():
        return None
    if has_shards(model_dir):
        return Path(model_dir)
    found = ancestor_card(card_or_none(model_dir), registry,
                          lambda c: bool(c.get("sharded")) and c.get("version") is not None
                          and has_shards(ModelRegistry(registry).get(c["version"]).path))
    return Path(ModelRegistry(registry).get(found["version"]).path) if found else None


def kept_texts(forget: ForgetSet, retain: RetainSet) -> tuple[dict[str, TrainingRecord],
                                                               set[str]]:
    """The training texts a retrain may use (the retain set without the forget set) by record
    id, and the ids to remove. Records erased earlier are not in the retain set, so a plan
    record missing here stays out too."""
    texts: dict[str, TrainingRecord] = {}
    for e in retain.examples:
        texts.setdefault(e.record_id, TrainingRecord(e.record_id, e.text, e.source))
    remove = {e.record_id for e in forget.examples}
    for rid in remove:
        texts.pop(rid, None)
    return texts, remove


class ShardRetrain(Method):
    """Exact deletion by retraining only the shards (and slices) that held the records."""

    name = "shard_retrain"
    config_class = ShardRetrainConfig
    guarantee = GUARANTEE
    audit_requirements: ClassVar[dict[str, Any]] = EXACT_AUDIT

    def run(self, *, model: Any, tokenizer: Any, forget: ForgetSet, retain: RetainSet,
            config: MethodConfig | None = None) -> UnlearnResult:
        from forget.methods.retrain import _model_dir
        from forget.models.finetune import FinetuneParams
        from forget.models.shard_train import retrain_shards, sharded_cost
        from forget.models.sharded import read_manifest

        cfg = self.check_config(config)
        t0 = time.perf_counter()
        source = sharded_source(_model_dir(model))
        if source is None:
            raise RetrainUnavailableError(
                "shard_retrain needs a sharded model (trained with `forget model finetune "
                "--shards S`); this model has no shard checkpoints: use retrain")
        texts, remove = kept_texts(forget, retain)
        new, run = retrain_shards(source, texts, remove, seed_offset=cfg.seed_offset)
        manifest = read_manifest(source)
        hp = FinetuneParams.from_dict(manifest["recipe"]["params"])
        full = sharded_cost(run.manifest, hp)
        kept = sorted({rid for shard in run.manifest["plan"] for ids in shard for rid in ids})
        return UnlearnResult(
            model=new, method=self.name, steps=run.steps, tokens_processed=run.tokens,
            wall_time_s=time.perf_counter() - t0,
            config=cfg.to_dict() | {
                "shards_retrained": {str(s): r for s, r in sorted(run.affected.items())},
                "shards": manifest["shards"], "slices": manifest["slices"],
                "steps_full_sharded_training": full,
                "share_of_sharded_training": round(run.steps / full, 4) if full else None,
                "from": str(source)},
            config_hash=cfg.config_hash(), guarantee=self.guarantee, stopped_by="max_steps",
            save_extra=run.write, trained_record_ids=kept)


METHODS.register("shard_retrain", ShardRetrain)
