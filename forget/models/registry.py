"""The model registry: every saved model version with its hash, lineage and training data.

Layout: a directory holding ``models.jsonl``, one JSON line per registered version, appended
under an exclusive file lock (several workers may register at once). Each model directory also
carries its own card (``forget_model.json``), so a model copied elsewhere still says what it is.
The default registry is ``$FORGET_REGISTRY`` or ``.forget/registry`` under the current directory.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from forget.errors import ModelNotFoundError, RegistryError, UnknownNameError
from forget.models.io import CARD_NAME, weights_sha256


def default_registry_dir() -> Path:
    return Path(os.environ.get("FORGET_REGISTRY", ".forget/registry"))


@dataclass
class ModelVersion:
    """One registered model. ``kind`` is trained | retrained | unlearned."""

    version: str
    sha256: str
    path: str
    kind: str
    created: str
    parent: str | None = None
    size: str | None = None
    method: str | None = None
    excluded_subjects: list[str] = field(default_factory=list)
    training_record_ids: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    data_sha256: dict = field(default_factory=dict)


def new_card(*, kind: str, parent: str | None = None, **fields) -> dict:
    """A card to pass to ``save_model``; ``sha256`` and ``version`` are filled in on save."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    return {"kind": kind, "parent": parent, "created": now, **fields}


def read_card(model_dir: Path | str) -> dict:
    """The card saved inside a model directory (``ModelNotFoundError`` if absent)."""
    path = Path(model_dir) / CARD_NAME
    if not path.is_file():
        raise ModelNotFoundError(
            f"{model_dir} has no {CARD_NAME}; it was not saved by the suite "
            "(bring it in with `forget model import --model DIR --out NEW_DIR`)"
        )
    return json.loads(path.read_text())


class ModelRegistry:
    """Versions, hashes and lineage of the models the suite has written."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root else default_registry_dir()
        self.index = self.root / "models.jsonl"

    def register(self, model_dir: Path | str) -> ModelVersion:
        """Register the model saved in ``model_dir`` (its card and a fresh weights hash).

        Under a multi-process launch rank 0 registers and every rank gets its version."""
        from forget._dist import on_main

        return on_main(lambda: self._register(Path(model_dir).resolve()))

    def _register(self, model_dir: Path) -> ModelVersion:
        card = read_card(model_dir)
        sha = weights_sha256(model_dir)
        if sha != card.get("sha256"):
            raise RegistryError(
                f"weights in {model_dir} do not match their card (sha256 {sha[:12]} vs "
                f"{str(card.get('sha256'))[:12]}); the files were changed after saving"
            )
        known = {f.name for f in ModelVersion.__dataclass_fields__.values()}
        mv = ModelVersion(**{k: v for k, v in card.items() if k in known} | {"path": str(model_dir)})
        self.root.mkdir(parents=True, exist_ok=True)
        with self.index.open("a", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                if any(v.version == mv.version and v.path == mv.path for v in self.list()):
                    return mv
                f.write(json.dumps(asdict(mv), sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return mv

    def list(self) -> list[ModelVersion]:
        if not self.index.is_file():
            return []
        out = []
        for no, line in enumerate(self.index.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(ModelVersion(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as e:
                raise RegistryError(f"{self.index}:{no} is not a valid registry line ({e})") from None
        return out

    def get(self, version: str) -> ModelVersion:
        for mv in self.list():
            if mv.version == version:
                return mv
        raise UnknownNameError(f"model version {version!r} is not in the registry {self.index}")

    def lineage(self, version: str) -> list[ModelVersion]:
        """The version and its ancestors, newest first."""
        chain, seen = [], set()
        cur: str | None = version
        while cur and cur not in seen:
            seen.add(cur)
            mv = self.get(cur)
            chain.append(mv)
            cur = mv.parent
        return chain
