"""`forget model finetune --shards S --slices R`, and retraining shards without records.

:func:`finetune_sharded` plans the shards (:mod:`forget.models.shard_plan`), trains every
shard's slices (:mod:`forget.models.sharded`), saves the merged model at the top of ``out``
with the checkpoints under ``out/shards/`` and registers it with its recipe (the recipe of a
plain fine-tune plus ``sharding``). :func:`retrain_shards` is the deletion: the shards whose
records change retrain from the checkpoint before the earliest changed slice, the others are
carried over byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from forget.corpus.load import TrainingRecord
from forget.errors import InvalidInputError
from forget.models.shard_plan import group_keys, shard_plan
from forget.models.sharded import (
    COMBINES,
    FORMAT,
    MANIFEST,
    SHARDS_DIR,
    VERSION,
    SliceCallback,
    checkpoint_name,
    copy_unchanged,
    load_checkpoint,
    merged_model,
    read_manifest,
    save_checkpoint,
    train_slices,
)

UNKNOWN_BASE = ("not recorded: exact deletion assumes the base never saw any record of a person "
                "who may ask for erasure; say what it was trained on with --base-trained-on")
# entities whose shared values link records of one person when the data has no owner column
LINK_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE",
                 "IP_ADDRESS", "UK_NHS", "US_PASSPORT", "US_DRIVER_LICENSE")


def identifier_links(texts: Sequence[str]) -> list[set[str]]:
    """Per text, keyed hashes of the identifiers Presidio's pattern recognizers find in it
    (normalised as the guard normalises them). The key is drawn here and forgotten: the
    hashes only link records to each other and are never written."""
    from guardrails.normalize import compact
    from guardrails.presidio import build_analyzer

    key = secrets.token_bytes(32)
    analyzer = build_analyzer()
    out: list[set[str]] = []
    for text in texts:
        found = analyzer.analyze(text=text, language="en", entities=list(LINK_ENTITIES))
        out.append({hmac.new(key, compact(text[f.start:f.end]).encode(), hashlib.sha256)
                    .hexdigest() for f in found if f.score >= 0.4})
    return out


def plan_records(records: Sequence[TrainingRecord], *, shards: int, slices: int, seed: int,
                 link: bool = True) -> tuple[list[list[list[str]]], str]:
    """The plan as record ids (training order, repeats kept) and how records were grouped:
    ``owner`` (every record has an owner), ``owner+linked``, ``linked`` or ``record``."""
    owners = [r.subject_id for r in records]
    links = identifier_links([r.text for r in records]) if link else None
    groups = group_keys([r.record_id for r in records], owners, links)
    plan = shard_plan(groups, shards=shards, slices=slices, seed=seed)
    owned = sum(o is not None for o in owners)
    grouping = ("owner" if owned == len(records) else
                ("owner+linked" if owned else "linked") if link else
                ("owner" if owned else "record"))
    return [[[records[i].record_id for i in ids] for ids in shard] for shard in plan], grouping


@dataclass
class ShardRun:
    """Shards trained (or retrained): the new manifest and checkpoints, and the cost."""

    manifest: dict[str, Any]
    states: dict[tuple[int, int], dict[str, torch.Tensor]]  # (shard, slice) -> new adapter
    carried: list[str]  # checkpoint files carried over unchanged from ``source``
    source: Path | None
    steps: int = 0
    tokens: int = 0
    wall_s: float = 0.0
    affected: dict[int, int] = field(default_factory=dict)  # shard -> first retrained slice
    final: list[dict[str, torch.Tensor]] = field(default_factory=list)

    def write(self, out: Path) -> None:
        """Write ``shards/`` into the model directory ``out`` (the save_extra of a method)."""
        root = Path(out) / SHARDS_DIR
        root.mkdir(parents=True, exist_ok=True)
        if self.source is not None:
            copy_unchanged(self.source / SHARDS_DIR, root, self.carried)
        for (s, r), state in sorted(self.states.items()):
            sha = save_checkpoint(state, root / checkpoint_name(s, r))
            if sha != self.manifest["checkpoints"][s][r]:
                raise RuntimeError("a checkpoint's bytes differ from the ones hashed")
        (root / MANIFEST).write_text(json.dumps(self.manifest, indent=1, sort_keys=True) + "\n")


def _checkpoint_sha(state: dict[str, torch.Tensor]) -> str:
    from safetensors.torch import save

    return hashlib.sha256(save(state)).hexdigest()


def train_plan(base_dir: Path, by_id: dict[str, TrainingRecord], plan: list[list[list[str]]],
               *, hp: Any, seed: int, threads: int | None = None,
               start: dict[int, int] | None = None, source: Path | None = None,
               old: dict[str, Any] | None = None, on_slice: SliceCallback | None = None
               ) -> ShardRun:
    """Train ``plan`` from ``base_dir``: every shard from slice 0, or with ``start`` only the
    shards named there, each from its slice (the checkpoints before it and every other
    shard's come from ``source``'s manifest ``old``)."""
    from forget.models.finetune import load_base, torch_threads
    from forget.models.sharded import final_states

    t0 = time.perf_counter()
    base, tokenizer = load_base(base_dir)
    shards, slices = len(plan), len(plan[0])
    todo = start if start is not None else dict.fromkeys(range(shards), 0)
    run = ShardRun(manifest={}, states={}, carried=[], source=source, affected=dict(todo))
    shas = [list(old["checkpoints"][s]) if old else [""] * slices for s in range(shards)]
    with torch_threads(threads):
        for s in sorted(todo):
            r0 = todo[s]
            state = (load_checkpoint(source / SHARDS_DIR / checkpoint_name(s, r0 - 1),
                                     old["checkpoints"][s][r0 - 1]) if r0 else None)
            recs = [[by_id[rid] for rid in ids] for ids in plan[s]]
            res = train_slices(base, tokenizer, recs, hp=hp, seed=seed, shard=s, start=r0,
                               state=state, on_slice=on_slice)
            for k, st in enumerate(res.states):
                run.states[(s, r0 + k)] = st
                shas[s][r0 + k] = _checkpoint_sha(st)
            run.steps += res.steps
            run.tokens += res.tokens
    run.carried = [checkpoint_name(s, r) for s in range(shards) for r in range(slices)
                   if (s, r) not in run.states]
    run.manifest = {"checkpoints": shas}
    olds = final_states(source, old) if source is not None and old is not None else None
    run.final = [run.states[(s, slices - 1)] if (s, slices - 1) in run.states
                 else olds[s] for s in range(shards)]  # type: ignore[index]
    run.wall_s = time.perf_counter() - t0
    return run


def manifest_for(*, recipe: dict[str, Any], plan: list[list[list[str]]], shas: list[list[str]],
                 erased: Iterable[str] = ()) -> dict[str, Any]:
    sharding = recipe["sharding"]
    return {"format": FORMAT, "version": VERSION, "shards": sharding["shards"],
            "slices": sharding["slices"], "seed": recipe["seed"],
            "grouping": sharding["grouping"], "combine": sharding["combine"],
            "recipe": recipe, "plan": plan, "checkpoints": shas,
            "erased_record_ids": sorted(set(erased))}


# -- from the user's files to a registered sharded model ------------------------------------
def finetune_sharded(
    base: Path | str, data: Path | str, out: Path | str, *, shards: int, slices: int = 1,
    text_field: str = "text", id_field: str | None = None, group_field: str | None = None,
    hp: Any = None, seed: int = 0, registry: Path | str | None = None,
    combine: str = "merge", link: bool = True, exclude_record_ids: Iterable[str] = (),
    on_slice: SliceCallback | None = None, base_note: str | None = None,
) -> Any:
    """Fine-tune ``shards`` LoRA adapters on ``data`` over ``slices`` slices each, save the
    merged model to ``out`` with its checkpoints and register it (a
    :class:`forget.models.finetune.FinetuneOutcome`). Every input is checked first.

    Args:
        link: without an owner column, link records that share a detected identifier
            (Presidio patterns) into one group; ``False``: each record is its own group.
        combine: what ``load_model`` serves: ``merge`` (one pass) or ``ensemble``.
        base_note: what the base was trained on, in words, for the card (exactness rests
            on the base never having seen a person who may ask for erasure).
    """
    import dataclasses

    from forget.models.finetune import (
        FinetuneOutcome,
        FinetuneParams,
        checked_inputs,
        effective_max_length,
        library_versions,
        lora_target_modules,
    )
    from forget.models.io import save_model
    from forget.models.recipe import RECIPE_FORMAT, card_or_none
    from forget.models.registry import ModelRegistry, new_card

    hp = dataclasses.replace(hp or FinetuneParams(), lora=True)
    if combine not in COMBINES:
        raise InvalidInputError(f"combine must be one of {', '.join(COMBINES)}, not {combine!r}")
    if shards < 1 or slices < 1:
        raise InvalidInputError("--shards and --slices must each be >= 1")
    base, out = Path(base), Path(out)
    base_sha, records, data_info = checked_inputs(base, out, data, (text_field, id_field,
                                                                    group_field),
                                                  exclude_record_ids)
    plan, grouping = plan_records(records, shards=shards, slices=slices, seed=seed, link=link)
    by_id = {r.record_id: r for r in records}
    threads = torch.get_num_threads()
    run = train_plan(base, by_id, plan, hp=hp, seed=seed, threads=threads, on_slice=on_slice)
    from forget.models.finetune import load_base

    base_model, tokenizer = load_base(base)
    model = merged_model(base_model, run.final, hp,
                         combine="sum" if combine == "sum" else "merge")
    base_card = card_or_none(base)
    recipe = {
        "format": RECIPE_FORMAT,
        "base": {"path": str(base.resolve()), "sha256": base_sha,
                 "version": base_card.get("version"),
                 "model_type": getattr(model.config, "model_type", None),
                 "trained_on": base_note or base_card.get("trained_on") or UNKNOWN_BASE},
        "data": data_info, "params": hp.to_dict(),
        "lora_target_modules": list(lora_target_modules(model.config, hp.lora_target_modules)),
        "max_length": effective_max_length(model.config, hp), "seed": seed,
        "torch_threads": threads, "versions": library_versions(),
        "training_record_ids": [r.record_id for r in records],
        "excluded_record_ids": sorted({str(r) for r in exclude_record_ids}),
        "sharding": {"shards": shards, "slices": slices, "grouping": grouping,
                     "combine": combine, "steps": run.steps},
    }
    manifest = manifest_for(recipe=recipe, plan=plan, shas=run.manifest["checkpoints"])
    run.manifest = manifest
    card = new_card(
        kind="finetuned", parent=base_card.get("version"), recipe=recipe,
        training_record_ids=sorted(by_id), config={"finetune": hp.to_dict(), "seed": seed,
                                                   "shards": shards, "slices": slices},
        data_sha256=data_info["files"], train_wall_s=round(run.wall_s, 2),
        train_steps=run.steps, sharded={"shards": shards, "slices": slices,
                                        "combine": combine, "grouping": grouping})
    path = save_model(model, tokenizer, out, card=card, extra=run.write)
    version = ModelRegistry(registry).register(path)
    return FinetuneOutcome(version, path, len(records), run.steps, round(run.wall_s, 2), recipe)


# -- deletion --------------------------------------------------------------------------------
def retrain_shards(model_dir: Path | str, texts: dict[str, TrainingRecord],
                   remove: Iterable[str], *, seed_offset: int = 0, full: bool = False,
                   on_slice: SliceCallback | None = None) -> tuple[Any, ShardRun]:
    """The sharded model of ``model_dir`` without the records ``remove`` (and without any
    record missing from ``texts``: erased earlier): ``(merged model, run)``; ``run.write``
    writes the new ``shards/``. Only the shards holding removed records are retrained, each
    from the slice before its first removed record; with ``seed_offset`` the changed shards
    retrain from slice 0 with other seeds instead (an audit control: another training run
    that never saw the records); with ``full`` every shard retrains from slice 0 (retraining
    the whole sharded model: the cost reference)."""
    from forget.models.finetune import FinetuneParams, load_base
    from forget.models.recipe import check_base
    from forget.models.shard_plan import slices_touched

    model_dir = Path(model_dir)
    old = read_manifest(model_dir)
    recipe = old["recipe"]
    base_dir = check_base(recipe)
    removed = set(remove) | {rid for shard in old["plan"] for ids in shard for rid in ids
                             if rid not in texts}
    touched = slices_touched(old["plan"], removed)
    if not touched and not full:
        raise InvalidInputError("none of the records to remove is in this sharded model's plan "
                                "(already erased, or not its training data)")
    plan = [[[rid for rid in ids if rid not in removed] for ids in shard]
            for shard in old["plan"]]
    hp = FinetuneParams.from_dict(recipe["params"])
    seed = int(recipe["seed"]) + seed_offset
    start = (dict.fromkeys(range(len(plan)), 0) if full
             else dict.fromkeys(touched, 0) if seed_offset else touched)
    run = train_plan(base_dir, texts, plan, hp=hp, seed=seed,
                     threads=recipe.get("torch_threads"), start=start, source=model_dir,
                     old=old, on_slice=on_slice)
    run.manifest = manifest_for(recipe=recipe, plan=plan, shas=run.manifest["checkpoints"],
                                erased=set(old["erased_record_ids"]) | removed)
    if seed_offset:
        run.manifest["seed_offset"] = seed_offset
    base, _ = load_base(base_dir)
    combine = "sum" if old["combine"] == "sum" else "merge"
    return merged_model(base, run.final, hp, combine=combine), run


def sharded_cost(manifest: dict[str, Any], hp: Any) -> int:
    """Gradient steps of training every shard of ``manifest``'s plan from scratch."""
    return sum(math.ceil(len(ids) / hp.batch_size) * hp.epochs
               for shard in manifest["plan"] for ids in shard if ids)

