"""The fine-tuning recipe recorded in a model's card, and whether exact retraining is available.

See :mod:`forget.models.finetune` for the card layout. A recipe can be re-run (``retrain``) when
its base directory still holds the same weights; a model without one can still be retrained
exactly when it is one of the suite's own sizes (trained from scratch by ``forget model train``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forget.errors import (
    BaseModelChangedError,
    InvalidInputError,
    ModelNotFoundError,
    RetrainUnavailableError,
)

RECIPE_FORMAT = 1


def card_or_none(model_dir: Path | str) -> dict[str, Any]:
    """The card of ``model_dir``, or ``{}`` when it has none."""
    from forget.models.registry import read_card

    try:
        return read_card(model_dir)
    except (ModelNotFoundError, ValueError):
        return {}


# -- the recipe, for exact retraining --------------------------------------------------------
def recipe_of(model_dir: Path | str, *, registry: Path | str | None = None
              ) -> dict[str, Any] | None:
    """The recorded fine-tuning recipe of ``model_dir``'s line: its own card's, else its
    nearest ancestor's (through ``parent`` in the registry: a model unlearned from a fine-tune
    is retrained by its fine-tune's recipe); ``None`` when there is none."""
    from forget.errors import ForgetError
    from forget.models.registry import ModelRegistry, read_card

    card = card_or_none(model_dir)
    seen: set[str] = set()
    while card:
        if isinstance(card.get("recipe"), dict):
            return card["recipe"]
        parent = card.get("parent")
        if not parent or parent in seen:
            return None
        seen.add(parent)
        try:
            card = read_card(ModelRegistry(registry).get(parent).path)
        except (ForgetError, ValueError, OSError):
            return None
    return None


def check_base(recipe: dict[str, Any]) -> Path:
    """The recipe's base directory, after checking it is still there with the same weights.

    Raises:
        RetrainUnavailableError: the recipe is of an unknown format.
        BaseModelChangedError: the base is gone or its weights changed.
    """
    from forget.models.io import weights_sha256

    if recipe.get("format") != RECIPE_FORMAT:
        raise RetrainUnavailableError(
            f"exact retraining is unavailable: the recipe has format {recipe.get('format')!r}, "
            f"this suite reads format {RECIPE_FORMAT}; fine-tune again with `forget model "
            "finetune`")
    path, want = Path(recipe["base"]["path"]), recipe["base"]["sha256"]
    try:
        have = weights_sha256(path) if (path / "config.json").is_file() else None
    except ModelNotFoundError:
        have = None
    if have is None:
        raise BaseModelChangedError(
            f"exact retraining is unavailable: the base model of the recipe is no longer at "
            f"{path}; restore it there (weights sha256 {want[:12]}...) or fine-tune again with "
            "`forget model finetune`")
    if have != want:
        raise BaseModelChangedError(
            f"exact retraining is unavailable: the base model at {path} changed since the "
            f"fine-tune (weights sha256 {have[:12]}..., recorded {want[:12]}...); restore the "
            "original base there or fine-tune again with `forget model finetune`")
    return path


def no_recipe_message(model: str | None) -> str:
    """Why ``retrain`` cannot run on a model without recipe or suite size, and the fix."""
    where = f" for {model}" if model else ""
    return (f"exact retraining is unavailable{where}: the model has no recorded training "
            "recipe (it was not fine-tuned by the suite) and is not one of the suite's own "
            "sizes; fine-tune it from its base with `forget model finetune --base DIR --data "
            "PATH --out DIR` to record one, or use another method")


def retrain_unavailable_reason(model_dir: Path | str, *,
                               registry: Path | str | None = None) -> str | None:
    """``None`` when exact retraining is available for ``model_dir`` (a recorded recipe whose
    base is unchanged, or one of the suite's own sizes), else the reason in one line."""
    recipe = recipe_of(model_dir, registry=registry)
    if recipe is not None:
        try:
            check_base(recipe)
        except RetrainUnavailableError as e:
            return str(e)
        return None
    if _suite_size(model_dir) is not None:
        return None
    return no_recipe_message(str(model_dir))


def _suite_size(model_dir: Path | str) -> str | None:
    """The suite's own size of ``model_dir`` (its card's, else matched from its config)."""
    from types import SimpleNamespace

    from transformers import AutoConfig

    from forget.methods.retrain import infer_size
    from forget.models.train import SIZES

    size = card_or_none(model_dir).get("size")
    if size in SIZES:
        return size
    try:
        config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
        return infer_size(SimpleNamespace(config=config))
    except (InvalidInputError, AttributeError, OSError, ValueError):
        return None


def base_trained_on(base_dir: Path | str) -> set[str]:
    """Record ids the base itself was trained on, as far as its card says (none without one):
    a recipe re-run from a base that saw a record would not erase it."""
    card = card_or_none(base_dir)
    ids = set(card.get("training_record_ids") or ())
    if isinstance(card.get("recipe"), dict):
        ids |= set(card["recipe"].get("training_record_ids") or ())
    return ids
