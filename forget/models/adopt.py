"""``forget model import``: bring a model the suite did not write (your own fine-tune) in.

The workflow needs a model directory with the suite's card (its version, weights hash and, as
requests complete, the erasures it carries). A model from elsewhere is loaded with
``from_pretrained`` (any ``AutoModelForCausalLM`` directory with its tokenizer), saved with a
card of kind ``imported`` into a new directory, and registered; the source is only read.

An imported model has no recorded training recipe, so exact retraining is unavailable for it:
requests on it are processed with the approximate methods, and fail (never certify) when none
passes the audit. ``forget model finetune`` records a recipe instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from forget.errors import ModelNotFoundError


@dataclass
class ImportOutcome:
    version: str
    path: Path
    arch: str
    parameters: int


def import_model(source: Path | str, out: Path | str, *,
                 registry: Path | str | None = None) -> ImportOutcome:
    """Copy the causal LM at ``source`` to ``out`` with the suite's card, and register it.

    Raises:
        ModelNotFoundError: ``source`` is not a causal LM directory with a tokenizer.
        InvalidInputError: ``out`` exists and is not empty.
    """
    from forget.models.io import load_model, save_model, weights_sha256
    from forget.models.registry import ModelRegistry, new_card

    source = Path(source)
    if not (source / "config.json").is_file():
        raise ModelNotFoundError(
            f"no model at {source} (config.json missing): give a directory written by "
            "save_pretrained, with its tokenizer")
    try:
        model, tokenizer = load_model(source)
    except (OSError, ValueError, KeyError) as e:
        raise ModelNotFoundError(
            f"{source} could not be loaded as a causal LM with its tokenizer "
            f"({type(e).__name__}); save both with save_pretrained into that directory"
        ) from None
    arch = str(getattr(model.config, "model_type", "unknown"))
    card = new_card(kind="imported", source=str(source.resolve()),
                    source_sha256=weights_sha256(source), arch=arch,
                    training_record_ids=[])
    path = save_model(model, tokenizer, out, card=card)
    version = ModelRegistry(registry).register(path)
    return ImportOutcome(version.version, path, arch,
                         sum(p.numel() for p in model.parameters()))
