"""`forget model train`: corpus -> tokenizer -> trained model -> saved, registered, measured."""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from forget._dist import on_main
from forget.corpus.load import Corpus, load_corpus, training_records
from forget.models.checkpoints import EpochSaver, check_every
from forget.models.io import save_model
from forget.models.memorization import memorization_table
from forget.models.registry import ModelRegistry, ModelVersion, new_card
from forget.models.tokenizer import strip_spans, train_tokenizer
from forget.models.train import get_arch, get_size, size_dict, size_schedule, train_lm


@dataclass
class TrainOutcome:
    version: ModelVersion
    path: Path
    memorization: dict
    train_records: int


def tokenizer_texts(corpus: Corpus) -> list[str]:
    """Train-split texts with every identifier span cut out (the same for every exclusion)."""
    rows = [r for r in corpus.people + corpus.code + corpus.canaries if r["split"] == "train"]
    return [strip_spans(r["text"], r["spans"]) for r in rows]


def train_model(
    data: Path | str, out: Path | str, *, size: str = "tiny",
    exclude_subjects: Iterable[str] = (), seed: int = 0, registry: Path | str | None = None,
    progress: bool = True, epochs: int | None = None, arch: str = "llama",
    checkpoint_every: int = 0,
) -> TrainOutcome:
    """Train, save (atomically), register, and measure memorization (``memorization.json``).

    ``arch`` is the architecture built (``forget.models.train.ARCHS``; the demo's is llama);
    the card records it beside the size. ``checkpoint_every=N`` keeps the weights after every
    N-th epoch in ``checkpoints/`` (what the ``rewind`` method starts from)."""
    spec = get_size(size)
    get_arch(arch)
    check_every(checkpoint_every, epochs or spec.epochs)
    corpus = load_corpus(data)
    excluded = sorted(set(exclude_subjects))
    records = training_records(corpus, exclude_subjects=excluded)
    random.seed(seed)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    tokenizer = train_tokenizer(tokenizer_texts(corpus), vocab_size=spec.vocab_size)
    with tempfile.TemporaryDirectory(prefix="forget-checkpoints-") as tmp:
        saver = EpochSaver(Path(tmp), checkpoint_every, epochs or spec.epochs)
        model = train_lm(records, tokenizer, spec, seed=seed, progress=progress, epochs=epochs,
                         arch=arch, checkpoints=saver if checkpoint_every else None)
        train_wall_s = round(time.perf_counter() - t0, 1)
        manifest = corpus.root / "manifest.json"
        card = new_card(
            kind="retrained" if excluded else "trained",
            size=size,
            arch=arch,
            excluded_subjects=excluded,
            training_record_ids=sorted({r.record_id for r in records}),
            config={"size": size_dict(spec) | ({"epochs": epochs} if epochs else {}),
                    "seed": seed, "arch": arch},
            train_wall_s=train_wall_s,
            data_sha256=(json.loads(manifest.read_text())["sha256"] if manifest.is_file()
                         else {}),
        )
        if saver.entries:
            card["checkpoints"] = saver.card_entry()
        schedule = size_schedule(spec, len(records), epochs, seed)
        path = save_model(model, tokenizer, out, card=card, extra=saver.writer(schedule))
    version = ModelRegistry(registry).register(path)
    table = memorization_table(model, tokenizer, corpus, excluded_subjects=set(excluded))
    text = json.dumps(table, indent=2, sort_keys=True) + "\n"
    on_main(lambda: (path / "memorization.json").write_text(text))
    return TrainOutcome(version, path, table, len(records))
