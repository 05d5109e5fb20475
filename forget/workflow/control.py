"""A measured reference for the audit where exact retraining exists: the retrained control.

Without a control, the audit's pass band is assumed (the subject's records against twins whose
identifiers are fakes). On an organisation's own data that assumption is weak: real names and
addresses are not drawn like the fakes, so a model that never saw the person can still tell
the person's records from their twins (either way). Where the model line has a recorded
fine-tuning recipe (``forget model finetune``), a model that truly never saw the request's
records costs one fine-tune: the recipe re-run without them, with *another seed* (a sharded
model: only the shards that held the records, from scratch with other seeds). The audit then
measures its band on that control (two-sided), so an exact retrain (the recipe's own seed)
passes as a retrain with another seed should, and an approximate method is held to what a
model that never saw the person does.

The control is written under the request's work folder (``control/``), reused when a run
resumes, never registered and never served.
"""

from __future__ import annotations

from typing import Any

CONTROL_SEED_OFFSET = 1  # the control's seed: the recipe's plus this (another run, same recipe)


def recipe_control(ctx: Any, forget: Any, retain: Any) -> Any | None:
    """The retrained control for this request's round, or ``None`` without a recipe."""
    from forget.core import get_method
    from forget.methods.retrain import RetrainConfig
    from forget.models import load_model, save_model
    from forget.models.recipe import recipe_of

    recipe = recipe_of(ctx.model_dir, registry=ctx.registry)
    if recipe is None:
        return None
    path = ctx.work / f"control-{ctx.base.version}"
    if not (path / "config.json").is_file():
        ctx.say("control", "fine-tuning a control without the request's records (the recipe, "
                "another seed): the audit's band is measured on it")
        net, tok = load_model(ctx.model_dir)
        if recipe.get("sharding"):  # the affected shards from scratch with other seeds
            from forget.methods.shard_retrain import ShardRetrainConfig

            res = get_method("shard_retrain").run(
                model=net, tokenizer=tok, forget=forget, retain=retain,
                config=ShardRetrainConfig(seed_offset=CONTROL_SEED_OFFSET))
        else:
            cfg = RetrainConfig(recipe=dict(recipe, seed=int(recipe["seed"])
                                            + CONTROL_SEED_OFFSET))
            res = get_method("retrain").run(model=None, tokenizer=tok, forget=forget,
                                            retain=retain, config=cfg)
        save_model(res.model, tok, path, overwrite=True)
    return load_model(path)[0]
