"""Epoch checkpoints of a training run: what ``rewind`` starts from.

A model trained or fine-tuned with ``checkpoint_every=N`` keeps, beside its weights, the
trainable parameters after every N-th epoch (the last epoch is the model itself) in
``checkpoints/``: one safetensors file per epoch and ``index.json`` (epoch, global step,
file, sha256, and the schedule the run followed). Only trainable parameters are kept: every
weight of a model trained from scratch or fully fine-tuned, the adapters of a LoRA
fine-tune. The optimiser state is not kept (a rewound run starts AdamW afresh), which keeps a
checkpoint the size of the weights.

The files are not part of the model's weight hash (``weights_sha256`` hashes the top-level
weight files); ``index.json`` records each file's sha256 and a file that does not match is
refused when it is read.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from forget.errors import InvalidInputError, MalformedDataError
from forget.models.recipe import _file_sha256 as _sha256

DIR = "checkpoints"
INDEX = "index.json"
FORMAT = 1


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    """The trainable parameters of ``model`` by name, detached, on the CPU, contiguous."""
    return {n: p.detach().to("cpu").contiguous().clone()
            for n, p in model.named_parameters() if p.requires_grad}


def check_every(every: int, epochs: int) -> int:
    """``every`` validated against a run of ``epochs`` epochs (0: no checkpoints)."""
    if every < 0:
        raise InvalidInputError(f"checkpoint_every must be >= 0 (0: none), got {every}")
    if every and every >= epochs:
        raise InvalidInputError(
            f"checkpoint_every={every} keeps no checkpoint in a {epochs}-epoch run (the last "
            f"epoch is the model itself); use a value below {epochs}")
    return every


class EpochSaver:
    """Saves the trainable parameters after every ``every``-th epoch (not the last) into
    ``folder``; ``entries`` lists what was saved. Used through :func:`saver_callback`."""

    def __init__(self, folder: Path, every: int, epochs: int) -> None:
        self.folder, self.every, self.epochs = Path(folder), every, epochs
        self.entries: list[dict[str, Any]] = []

    def save(self, model: Any, epoch: int, step: int) -> None:
        from safetensors.torch import save_file

        if not self.every or epoch % self.every or epoch >= self.epochs:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"epoch-{epoch:04d}.safetensors"
        save_file(trainable_state(model), str(path))
        self.entries.append({"epoch": epoch, "step": step, "file": path.name,
                             "sha256": _sha256(path)})

    def writer(self, schedule: dict[str, Any]) -> Callable[[Path], None] | None:
        """The ``save_model(extra=...)`` that moves the checkpoints into a model directory
        (``None`` when none was saved)."""
        if not self.entries:
            return None
        index = {"format": FORMAT, "epochs": self.epochs, "every": self.every,
                 "schedule": schedule, "entries": self.entries}

        def write(model_dir: Path) -> None:
            dest = Path(model_dir) / DIR
            dest.mkdir()
            for e in self.entries:
                shutil.copy2(self.folder / e["file"], dest / e["file"])
            (dest / INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")

        return write

    def card_entry(self) -> dict[str, Any]:
        return {"every": self.every, "epochs": [e["epoch"] for e in self.entries]}


def saver_callback(saver: EpochSaver) -> Any:
    """A transformers ``TrainerCallback`` that calls ``saver`` at each epoch's end (on the
    main process only under a launch)."""
    from transformers import TrainerCallback

    class SaveEpochs(TrainerCallback):
        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                saver.save(kwargs["model"], round(state.epoch), state.global_step)

    return SaveEpochs()


def read_index(model_dir: Path | str) -> dict[str, Any] | None:
    """The checkpoint index of ``model_dir`` (``None`` when it has none)."""
    path = Path(model_dir) / DIR / INDEX
    if not path.is_file():
        return None
    try:
        index = json.loads(path.read_text())
        _ = [(e["epoch"], e["step"], e["file"], e["sha256"]) for e in index["entries"]]
        _ = index["epochs"], index["schedule"]
    except (ValueError, KeyError, TypeError):
        raise MalformedDataError(f"{path} is not a checkpoint index written by the suite; "
                                 "remove the checkpoints folder or retrain the model") from None
    return index


def pick(index: dict[str, Any], epoch: int) -> dict[str, Any] | None:
    """The latest checkpoint at or before ``epoch`` (``None``: rewind to the start)."""
    found = [e for e in index["entries"] if e["epoch"] <= epoch]
    return max(found, key=lambda e: e["epoch"]) if found else None


def load_entry(model_dir: Path | str, entry: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The parameters of one checkpoint, its sha256 checked first."""
    from safetensors.torch import load_file

    path = Path(model_dir) / DIR / entry["file"]
    if not path.is_file() or _sha256(path) != entry["sha256"]:
        raise MalformedDataError(
            f"checkpoint {path} is missing or does not match the sha256 in its index; it was "
            "changed after training: rewinding from it would not be what was recorded")
    return load_file(str(path))
