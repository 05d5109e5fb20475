"""Load and save diffusion pipelines with their registry card, atomically.

A pipeline directory is what ``save_pretrained`` writes (``model_index.json``, ``unet/``,
``text_encoder/``, ...) plus the suite's card ``forget_model.json``; its sha256 is taken over
the weight files of all its subfolders (:func:`forget.models.io.weights_sha256`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from forget.diffusion import require_diffusers
from forget.errors import InvalidInputError, ModelNotFoundError
from forget.models.io import CARD_NAME, weights_sha256


def is_pipeline_dir(path: Path | str) -> bool:
    return (Path(path) / "model_index.json").is_file()


def load_pipeline(path: Path | str, *, device: str = "cpu") -> Any:
    """``StableDiffusionPipeline.from_pretrained(path)`` from local files only, no safety
    checker, progress bars off."""
    d = require_diffusers()
    path = Path(path)
    if not is_pipeline_dir(path):
        raise ModelNotFoundError(
            f"no diffusion pipeline at {path} (model_index.json missing); save one with "
            "pipeline.save_pretrained(DIR) or build the tiny one with forget.diffusion.build_tiny")
    pipe = d.StableDiffusionPipeline.from_pretrained(
        path, local_files_only=True, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def save_pipeline(pipe: Any, out: Path | str, *, card: dict | None = None,
                  overwrite: bool = False) -> Path:
    """Save ``pipe`` to ``out`` (temporary sibling, then rename); with ``card``, complete it
    with the weights' sha256 and a version and write it inside."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InvalidInputError(f"{out} already exists and is not empty; choose a new folder "
                                "(pipelines are never overwritten in place)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        pipe.save_pretrained(tmp)
        if card is not None:
            card["sha256"] = weights_sha256(tmp)
            card.setdefault("version", "mv-" + card["sha256"][:16])
            (tmp / CARD_NAME).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
