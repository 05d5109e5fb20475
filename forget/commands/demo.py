"""`forget demo`: build the demo corpus and model (cached) and show what the model memorized."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from forget.commands._common import console, write_json

DEMO_SUBJECTS = 40
DEMO_SEED = 0


DEMO_SHARDS, DEMO_SLICES = 4, 1  # see README "Exact deletion by design" for the measurements
BASE_SEED = 1000  # the base's corpus: other (fictitious) people than the demo corpus's


def demo_finetune_params():
    """The demo's sharded fine-tune: LoRA rank 16 on every linear layer of the base."""
    from forget.models.finetune import FinetuneParams

    return FinetuneParams(epochs=20, learning_rate=3e-3, batch_size=16, max_length=256,
                          lr_scheduler="cosine", lora=True, lora_r=16, lora_alpha=32,
                          lora_target_modules=("all-linear",))


def build_base(out: Path, data: Path, *, registry: Path, progress: bool = False,
               size: str = "demo", arch: str = "llama") -> Path:
    """The demo's base model: the demo architecture pretrained on a corpus of *other* fictitious
    people (another generator seed) and code with every secret cut out, after dropping any text
    that holds an identifier value of the demo corpus. It never saw anybody who may ask for
    erasure, which is what makes deleting from the sharded model exact. ``size`` and ``arch``
    build another of the suite's sizes and architectures the same way (benchmarks)."""
    from forget.corpus import GenerateConfig, generate, load_corpus
    from forget.corpus.load import TrainingRecord
    from forget.models.io import save_model
    from forget.models.registry import ModelRegistry, new_card
    from forget.models.tokenizer import strip_spans, train_tokenizer
    from forget.models.train import get_size, size_dict, train_lm

    other_dir = out / "base-data"
    generate(other_dir, GenerateConfig(subjects=DEMO_SUBJECTS, seed=BASE_SEED))
    other, mine = load_corpus(other_dir), load_corpus(data)
    values = {v for s in mine.subjects for k, v in s["identifiers"].items()
              if k in ("name", "email", "phone", "national_id")}
    texts = [(f"base:{r['record_id']}", r["text"] if r in other.people
              else strip_spans(r["text"], r["spans"]))
             for r in other.people + other.code if r["split"] == "train"]
    texts = [(rid, t) for rid, t in texts if not any(v in t for v in values)]
    t0 = time.perf_counter()
    spec = get_size(size)
    tokenizer = train_tokenizer([strip_spans(r["text"], r["spans"]) for r in
                                 other.people + other.code if r["split"] == "train"],
                                vocab_size=spec.vocab_size)
    model = train_lm([TrainingRecord(rid, t, "base") for rid, t in texts], tokenizer, spec,
                     seed=0, progress=progress, arch=arch)
    note = (f"the {size} {arch} architecture trained from scratch on {len(texts)} texts of a "
            "corpus of "
            f"other fictitious people (generator seed {BASE_SEED}) and code with its secrets "
            "cut out; texts holding any identifier of the demo corpus were dropped")
    card = new_card(kind="base", size=size, arch=arch, trained_on=note,
                    training_record_ids=sorted(rid for rid, _ in texts),
                    config={"size": size_dict(spec), "seed": 0},
                    train_wall_s=round(time.perf_counter() - t0, 1))
    path = save_model(model, tokenizer, out / "models" / "base", card=card)
    ModelRegistry(registry).register(path)
    return path


def ensure_demo_assets(out: Path) -> tuple[Path, Path, bool]:
    """The demo data and demo model under ``out``, built on the first run and reused after:
    a base that never saw the demo's people, fine-tuned on the demo corpus as
    ``DEMO_SHARDS`` sharded LoRA adapters (so a person's deletion retrains one shard).

    Returns (data dir, model dir, whether the model was trained now).
    """
    from forget._quiet import is_verbose
    from forget.corpus import GenerateConfig, generate, load_corpus
    from forget.models.io import load_model
    from forget.models.memorization import memorization_table
    from forget.models.shard_train import finetune_sharded

    data = out / "data"
    manifest = data / "manifest.json"
    cfg = GenerateConfig(subjects=DEMO_SUBJECTS, seed=DEMO_SEED)
    if not manifest.is_file() or json.loads(manifest.read_text())["config"] != cfg.__dict__:
        with console.status("generating the demo corpus"):
            generate(data, cfg)
    model = out / "models" / "demo"
    trained = False
    if not (model / "forget_model.json").is_file():
        registry = out / "registry"
        base = out / "models" / "base"
        if not (base / "forget_model.json").is_file():
            console.print("[bold]training the base model[/] on other people's data (once; "
                          "about 2 minutes on 2 cores)")
            build_base(out, data, registry=registry, progress=is_verbose())
        console.print(f"[bold]fine-tuning the demo model[/] on the demo corpus: "
                      f"{DEMO_SHARDS} LoRA adapters, one per shard of the people (once; about "
                      "3 minutes on 2 cores)")
        with console.status("training shards"):
            finetune_sharded(base, data, model, shards=DEMO_SHARDS, slices=DEMO_SLICES,
                             hp=demo_finetune_params(), seed=0, registry=registry)
        net, tok = load_model(model)
        table = memorization_table(net, tok, load_corpus(data))
        (model / "memorization.json").write_text(json.dumps(table, indent=2, sort_keys=True)
                                                 + "\n")
        trained = True
    return data, model, trained


def demo_cmd(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Folder for the demo's outputs."),
) -> None:
    """Run the demo: corpus and demo model (cached), then a person's erasure request and a leaked
    secret's, each through the whole workflow (scope, unlearn, audit, guard, certificate)."""
    from forget.commands.model import memorization_rich

    t0 = time.perf_counter()
    data, model, trained = ensure_demo_assets(out)
    table = json.loads((model / "memorization.json").read_text())
    console.print(memorization_rich(table))
    train, hold = table["subjects"]["train"], table["subjects"]["holdout"]
    console.print(
        f"By greedy decoding the demo model gives back an identifier of [bold]{train['any']:.0%}"
        f"[/] of the {train['subjects']} people it was trained on and of [bold]{hold['any']:.0%}"
        f"[/] of the {hold['subjects']} it never saw. Each person's records trained one of "
        f"{DEMO_SHARDS} adapters and the adapters are averaged, so little comes back verbatim; "
        "membership inference still singles people out (the audit's original control shows "
        "it): there is something to forget."
    )
    from forget.commands.demo_run import print_summary, run_requests

    requests = print_summary(run_requests(out, data, model), t0)
    write_json(out / "demo_summary.json", {"data": str(data), "model": str(model),
                                           "memorization": table, "trained_now": trained,
                                           "requests": requests,
                                           "wall_seconds": round(time.perf_counter() - t0, 1)})
    console.print(f"[green]outputs in[/] {out} ({time.perf_counter() - t0:.0f} s)")
