"""The fine-tuning recipe recorded in a model's card, and whether exact retraining is available.

See :mod:`forget.models.finetune` for the card layout. A recipe can be re-run (``retrain``) when
its base directory still holds the same weights; a model without one can still be retrained
exactly when it is one of the suite's own sizes (trained from scratch by ``forget model train``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
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


def describe_data(corpus: Any) -> dict[str, Any]:
    """What identifies a corpus's training data, as a recipe records it (no record text):
    path, layout (``files`` | ``generated``), format, rows, sha256 of each file, the
    fingerprint over them and the field names."""
    from forget.corpus import Corpus
    from forget.corpus.load import REQUIRED

    if isinstance(corpus, Corpus):
        files = {name: _file_sha256(corpus.root / name) for name in REQUIRED}
        info = {"layout": "generated", "format": "jsonl", "rows": len(corpus.people) + len(corpus.code) + len(corpus.canaries),
                "files": files,
                "fingerprint": hashlib.sha256(json.dumps(
                    {"layout": "generated", "files": files}, sort_keys=True).encode()
                ).hexdigest(),
                "text_field": None, "id_field": None, "group_field": None}
    else:
        info = {"layout": "files", "format": corpus.format, "rows": len(corpus),
                "files": corpus.data_sha256, "fingerprint": corpus.fingerprint,
                "text_field": corpus.text_field, "id_field": corpus.id_field,
                "group_field": corpus.group_field}
    return {"path": str(Path(corpus.root).resolve())} | info


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def data_mismatch(recipe: dict[str, Any], corpus: Any, *, strict: bool = False) -> str | None:
    """Why ``corpus`` cannot stand for the data a recipe was fine-tuned on, or ``None``.

    The layout and the text and id fields must match (record ids are what a re-run selects
    records by, the text field what it trains on). With ``strict``, the files' fingerprint must
    match too; without, changed files pass (an organisation may since have deleted an erased
    person's rows from its files: the recipe's other records keep their ids).
    """
    want, have = recipe.get("data") or {}, describe_data(corpus)
    for key, option in (("layout", "--data"), ("text_field", "--text-field"),
                        ("id_field", "--id-field")):
        if want.get(key) != have[key]:
            return (f"the data given has {key} {have[key]!r}, the model was fine-tuned with "
                    f"{want.get(key)!r}; give the same {option} as `forget model finetune` did")
    if strict and want.get("fingerprint") != have["fingerprint"]:
        return (f"the data at {have['path']} is not the data the model was fine-tuned on "
                f"(fingerprint {have['fingerprint'][:12]}..., recorded "
                f"{str(want.get('fingerprint'))[:12]}...); give the original files")
    return None


# -- the recipe, for exact retraining --------------------------------------------------------
def ancestor_card(card: dict[str, Any], registry: Path | str | None,
                  found: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The first of ``card`` and its ancestors (through ``parent`` in the registry) for which
    ``found`` holds; ``None`` when the chain ends, loops or breaks before one."""
    from forget.errors import ForgetError
    from forget.models.registry import ModelRegistry, read_card

    seen: set[str] = set()
    while card:
        if found(card):
            return card
        parent = card.get("parent")
        if not parent or parent in seen:
            return None
        seen.add(parent)
        try:
            card = read_card(ModelRegistry(registry).get(parent).path)
        except (ForgetError, ValueError, OSError):
            return None
    return None


def recipe_of(model_dir: Path | str, *, registry: Path | str | None = None
              ) -> dict[str, Any] | None:
    """The recorded fine-tuning recipe of ``model_dir``'s line: its own card's, else its
    nearest ancestor's (through ``parent`` in the registry: a model unlearned from a fine-tune
    is retrained by its fine-tune's recipe); ``None`` when there is none."""
    card = ancestor_card(card_or_none(model_dir), registry,
                         lambda c: isinstance(c.get("recipe"), dict))
    return card["recipe"] if card is not None else None


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
