"""`forget model ...`: train, fine-tune or import a model; list versions; line heads."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import typer
from rich.table import Table

from forget.commands._common import (
    DATA_HELP,
    check_data,
    console,
    group_field_option,
    id_field_option,
    text_field_option,
)

app = typer.Typer(help="Train and list models (the tiny demo LM, its registry, line heads).",
                  no_args_is_help=True)
REGISTRY_HELP = "Model registry directory (default: $FORGET_REGISTRY or .forget/registry)."


def memorization_rich(table: dict) -> Table:
    t = Table(title="memorization: share of subjects whose identifier greedy decoding reproduces")
    for col in ("split", "subjects", "phone", "email", "national_id", "any"):
        t.add_column(col, justify="right" if col != "split" else "left")
    for split, row in table["subjects"].items():
        t.add_row(split, str(row["subjects"]),
                  *(f"{row[k]:.0%}" for k in ("phone", "email", "national_id", "any")))
    for name, group in (("canary", table["canaries"]), ("code secret", table["code_secrets"])):
        for k, v in group.items():
            t.add_row(f"{name} {k}", str(v["n"]), "", "", "", f"{v['rate']:.0%}")
    return t


@app.command("train")
def train_cmd(
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    text_field: str = text_field_option(),
    id_field: str | None = id_field_option(),
    group_field: str | None = group_field_option(),
    out: Path = typer.Option(..., "--out", help="New directory for the model (never overwritten)."),
    size: str = typer.Option("tiny", "--size", help="tiny (tests, <30 s) or demo (1-2 min)."),
    arch: str = typer.Option("llama", "--arch", help="Architecture built from its transformers "
                             "config: llama, gpt2, gpt_neox, qwen2 or opt."),
    exclude_subject: list[str] = typer.Option(
        [], "--exclude-subject", help="Train without this subject (repeatable): the gold standard."),
    seed: int = typer.Option(0, "--seed"),
    epoch_checkpoints: int = typer.Option(
        0, "--epoch-checkpoints", help="Keep the weights after every N-th epoch in "
        "checkpoints/ (the rewind method starts from them; costs one model's size each)."),
    registry: Path | None = typer.Option(None, "--registry", help=REGISTRY_HELP),
) -> None:
    """Train the demo LM from scratch; save, register, and print its memorization table."""
    from forget._quiet import is_verbose
    from forget.models.build import train_model

    check_data(data, text_field=text_field, id_field=id_field, group_field=group_field,
               command="model train")
    t0 = time.perf_counter()
    # quiet: a spinner of our own; --verbose: the Trainer's bar and loss lines instead
    status = (contextlib.nullcontext() if is_verbose()
              else console.status(f"training the {size} model"))
    with status:
        res = train_model(data, out, size=size, exclude_subjects=exclude_subject, seed=seed,
                          registry=registry, progress=is_verbose(), arch=arch,
                          checkpoint_every=epoch_checkpoints)
    console.print(memorization_rich(res.memorization))
    console.print(
        f"[green]saved[/] {res.path} version [bold]{res.version.version}[/] "
        f"({res.train_records} training texts, {time.perf_counter() - t0:.0f} s); "
        f"table in {res.path / 'memorization.json'}"
    )


@app.command("finetune")
def finetune_cmd(
    base: Path = typer.Option(..., "--base", help="Base causal LM directory (save_pretrained, "
                              "with its tokenizer)."),
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    text_field: str = text_field_option(),
    id_field: str | None = id_field_option(),
    group_field: str | None = group_field_option(),
    out: Path = typer.Option(..., "--out", help="New directory for the model (never overwritten)."),
    epochs: int = typer.Option(3, "--epochs", help="Passes over the data."),
    lr: float | None = typer.Option(
        None, "--lr", help="Peak learning rate (default 5e-5; with --lora 2e-4)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Records per optimiser step."),
    max_length: int = typer.Option(512, "--max-length", help="Tokens per record (truncated)."),
    seed: int = typer.Option(0, "--seed", help="Seeds data order and LoRA initialisation."),
    lora: bool = typer.Option(False, "--lora", help="Train LoRA adapters on the attention "
                              "projections, merged into the base at the end."),
    shards: int | None = typer.Option(
        None, "--shards", help="Train S LoRA adapters, each on its own shard of the data (a "
        "person's records stay in one shard): deleting a person then retrains one shard "
        "(method shard_retrain, exact)."),
    slices: int = typer.Option(1, "--slices", help="With --shards: split each shard into R "
                               "slices trained in order, a checkpoint after each (a deletion "
                               "retrains from the slice before the person's records)."),
    combine: str = typer.Option("merge", "--combine", help="With --shards: how the adapters "
                                "are served: merge (mean of their weight deltas, one pass) or "
                                "ensemble (mean of their next-token distributions, S passes)."),
    base_trained_on: str | None = typer.Option(
        None, "--base-trained-on", help="With --shards: what the base was trained on, in "
        "words, for the model card (exact deletion assumes it never saw the people)."),
    lora_r: int = typer.Option(8, "--lora-r", help="LoRA rank (--lora, --shards)."),
    lora_targets: str | None = typer.Option(
        None, "--lora-targets", help="Comma-separated module names to adapt, or all-linear "
        "(default: the attention projections of the architecture)."),
    epoch_checkpoints: int = typer.Option(
        0, "--epoch-checkpoints", help="Keep the weights after every N-th epoch in "
        "checkpoints/ (the rewind method starts from them; costs one model's size each)."),
    registry: Path | None = typer.Option(None, "--registry", help=REGISTRY_HELP),
) -> None:
    """Fine-tune a base model on your data; save and register it with its full recipe, so
    `retrain` can later re-run it exactly without an erased person's records. With --shards,
    train sharded, sliced LoRA adapters so a deletion retrains only one shard (SISA)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from forget._quiet import is_verbose
    from forget.models.finetune import FinetuneParams, finetune

    lora = lora or shards is not None
    targets = tuple(t.strip() for t in lora_targets.split(",") if t.strip()) if lora_targets \
        else None
    hp = FinetuneParams(epochs=epochs, learning_rate=lr or (2e-4 if lora else 5e-5),
                        batch_size=batch_size, max_length=max_length, lora=lora, lora_r=lora_r,
                        lora_alpha=2 * lora_r, lora_target_modules=targets)
    if shards is not None and epoch_checkpoints:
        from forget.errors import InvalidInputError

        raise InvalidInputError("--epoch-checkpoints does not apply with --shards (a sharded "
                                "fine-tune keeps a checkpoint after every slice); drop one")
    if shards is not None:
        _finetune_sharded(base, data, out, hp=hp, seed=seed, shards=shards, slices=slices,
                          combine=combine, registry=registry, fields=(text_field, id_field,
                                                                      group_field),
                          base_note=base_trained_on)
        return
    t0 = time.perf_counter()
    # quiet: a progress bar of our own; --verbose: the Trainer's bar and loss lines instead
    bar = Progress("fine-tuning", BarColumn(), MofNCompleteColumn(), "steps",
                   TimeElapsedColumn(), console=console, transient=True,
                   disable=is_verbose())
    with bar:
        task = bar.add_task("fine-tuning", total=None)
        res = finetune(base, data, out, text_field=text_field, id_field=id_field,
                       group_field=group_field, hp=hp, seed=seed, registry=registry,
                       progress=is_verbose(), checkpoint_every=epoch_checkpoints,
                       on_step=lambda done, total: bar.update(task, completed=done, total=total))
    console.print(
        f"[green]saved[/] {res.path} version [bold]{res.version.version}[/] "
        f"(fine-tuned{' with LoRA, merged' if lora else ''} on {res.records} records, "
        f"{res.steps} steps, {res.wall_time_s:.0f} s training, "
        f"{time.perf_counter() - t0:.0f} s in all); recipe in {res.path / 'forget_model.json'}")


def _finetune_sharded(base: Path, data: Path, out: Path, *, hp, seed: int, shards: int,
                      slices: int, combine: str, registry: Path | None,
                      fields: tuple[str, str | None, str | None],
                      base_note: str | None) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from forget.models.shard_train import finetune_sharded

    t0 = time.perf_counter()
    bar = Progress("training shards", BarColumn(), MofNCompleteColumn(), "slices",
                   TimeElapsedColumn(), console=console, transient=True)
    with bar:
        task = bar.add_task("shards", total=shards * slices)
        res = finetune_sharded(
            base, data, out, shards=shards, slices=slices, text_field=fields[0],
            id_field=fields[1], group_field=fields[2], hp=hp, seed=seed, registry=registry,
            combine=combine, base_note=base_note,
            on_slice=lambda s, r, steps: bar.advance(task))
    sharding = res.recipe["sharding"]
    console.print(f"[green]saved[/] {res.path} version [bold]{res.version.version}[/]",
                  highlight=False)
    console.print(f"{shards} shards x {slices} slices of LoRA adapters on {res.records} records, "
                  f"grouped by {sharding['grouping']}, served as {combine}; {res.steps} steps, "
                  f"{res.wall_time_s:.0f} s training, {time.perf_counter() - t0:.0f} s in all",
                  highlight=False, soft_wrap=True)
    console.print(f"checkpoints in {res.path / 'shards'}: deleting a person retrains their "
                  "shard only (method shard_retrain, exact)", highlight=False, soft_wrap=True)
    console.print(f"the base saw: {res.recipe['base']['trained_on']}", highlight=False,
                  soft_wrap=True)


@app.command("list")
def list_cmd(
    registry: Path | None = typer.Option(None, "--registry", help=REGISTRY_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List registered model versions with their hash, parent and kind."""
    import json
    from dataclasses import asdict

    from forget.models.registry import ModelRegistry

    versions = ModelRegistry(registry).list()
    if as_json:
        rows = [{k: v for k, v in asdict(m).items() if k != "training_record_ids"} for m in versions]
        typer.echo(json.dumps(rows, indent=2))
        return
    t = Table(title=f"models in {ModelRegistry(registry).index}")
    for col in ("version", "kind", "size", "parent", "method", "excluded", "sha256", "path"):
        t.add_column(col)
    for m in versions:
        t.add_row(m.version, m.kind, m.size or "", m.parent or "", m.method or "",
                  str(len(m.excluded_subjects)), m.sha256[:12], m.path)
    console.print(t)


@app.command("head")
def head_cmd(
    ledger: str = typer.Option(..., "--ledger", help="Ledger URL or path."),
    model: Path = typer.Option(..., "--model", help="Any version of the model line."),
    key_dir: Path | None = typer.Option(None, "--key-dir", help="The ledger's key directory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """The version of a model line serving now, and the erasures that moved it there."""
    import json
    from dataclasses import asdict

    from forget.ledger import Ledger
    from forget.models import read_card
    from forget.workflow.lines import line_of

    line = line_of(read_card(model))
    with Ledger(ledger, key_dir=key_dir, create=False) as led:
        head, erasures = led.model_head(line), led.line_erasures(line)
    info = {"line": line, "head": asdict(head) if head else None, "erasures": erasures}
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    if head is None:
        console.print(f"model line {line}: no request was processed on it in this ledger; "
                      "it serves its first version")
        return
    t = Table(title=f"model line {line}")
    t.add_column("")
    t.add_column("value")
    for k, v in (("head (serving now)", head.version), ("sha256", head.sha256[:16]),
                 ("path", head.path), ("head moves", str(head.generation)),
                 ("erasures, oldest first", ", ".join(erasures) or "none")):
        t.add_row(k, v)
    console.print(t)


@app.command("import")
def import_cmd(
    model: Path = typer.Option(..., "--model", help="Your causal LM directory (save_pretrained, "
                               "with its tokenizer); only read."),
    out: Path = typer.Option(..., "--out", help="New directory for the suite's copy."),
    registry: Path | None = typer.Option(None, "--registry", help=REGISTRY_HELP),
) -> None:
    """Bring in a model the suite did not train (no recorded recipe: no exact retraining)."""
    from forget.models.adopt import import_model

    with console.status("importing the model"):
        res = import_model(model, out, registry=registry)
    console.print(
        f"[green]imported[/] {res.arch} model ({res.parameters:,} parameters) to {res.path}, "
        f"version [bold]{res.version}[/]; it has no recorded training recipe, so exact "
        "retraining is unavailable for it (`forget model finetune` records one)")
