"""Load and save models with their tokenizer; content hashes of weights.

Saving writes to a temporary sibling directory and renames it into place, so a failure
half-way never leaves a half-written model where a complete one is expected, and never touches
an existing model directory.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from forget.errors import InvalidInputError, ModelNotFoundError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
CARD_NAME = "forget_model.json"


def weights_sha256(model_dir: Path | str) -> str:
    """sha256 over the weight files of a saved model (names and bytes, in sorted order).

    A directory with no weight file at its top (a diffusers pipeline: ``unet/``,
    ``text_encoder/``, ...) is hashed over the weight files of its subfolders, named by their
    path relative to it.
    """
    model_dir = Path(model_dir)
    files = sorted(p for p in model_dir.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    if not files and model_dir.is_dir():
        files = sorted(p for p in model_dir.rglob("*") if p.suffix in WEIGHT_SUFFIXES
                       and p.is_file() and not any(part.startswith(".") for part in
                                                   p.relative_to(model_dir).parts))
    if not files:
        raise ModelNotFoundError(f"no weight files in {model_dir}; is it a saved model directory?")
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(model_dir)).encode() + b"\0")
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def state_dict_sha256(model: torch.nn.Module) -> str:
    """sha256 over an in-memory model's parameters and buffers (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def load_model(model_dir: Path | str, *, device: str = "cpu", combined: bool = True):
    """Load ``(model, tokenizer)`` from a directory written by ``save_pretrained``. A tokenizer
    without a pad token (GPT-2, Pythia) gets its eos token as pad (``arch.ensure_pad_token``).
    A sharded model whose manifest serves the ensemble loads as the ensemble (``combined``
    False: the merged weights saved at its top, whatever it serves)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from forget.models.arch import ensure_pad_token

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise ModelNotFoundError(
            f"no model at {model_dir} (config.json missing); train one with "
            f"`forget model train --data DIR --out {model_dir}`"
        )
    if combined and _serves_ensemble(model_dir):  # a sharded model served as the exact ensemble
        from forget.models.sharded import load_sharded

        model, tokenizer = load_sharded(model_dir)
        return model.to(device), tokenizer
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True).to(device)
    tokenizer = ensure_pad_token(AutoTokenizer.from_pretrained(model_dir, local_files_only=True))
    model.eval()
    return model, tokenizer


def _serves_ensemble(model_dir: Path) -> bool:
    manifest = model_dir / "shards" / "manifest.json"
    return manifest.is_file() and json.loads(manifest.read_text()).get("combine") == "ensemble"


def save_model(
    model, tokenizer, out: Path | str, *, card: dict | None = None, overwrite: bool = False,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Save model and tokenizer to ``out`` atomically; refuses to overwrite unless asked.

    With ``card``, the model's registry card is completed with the weights' sha256 and written
    as ``CARD_NAME`` inside the directory before it is moved into place. ``extra`` writes more
    files into the directory first (e.g. a certified head), so the hash covers them too.

    Under a multi-process launch only rank 0 writes; every rank returns once the directory is
    in place, with ``card`` completed as rank 0 completed it (:func:`forget._dist.on_main`).
    """
    from forget._dist import on_main

    out, done = on_main(lambda: _save_model(model, tokenizer, Path(out), card=card,
                                            overwrite=overwrite, extra=extra))
    if card is not None:
        card.update(done)
    return out


def _save_model(model, tokenizer, out: Path, *, card: dict | None, overwrite: bool,
                extra: Callable[[Path], None] | None) -> tuple[Path, dict]:
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InvalidInputError(
            f"{out} already exists and is not empty; choose a new --out (models are never "
            "overwritten in place)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if extra is not None:
            extra(tmp)
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
    return out, card or {}
