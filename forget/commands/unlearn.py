"""`forget unlearn`: run one method on one subject and save the result as a new model version.

No ledger: this is the engineer's direct tool. The original model directory is only read;
the new model is written atomically to ``--out`` and registered with the original as parent.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from forget.commands._common import (
    DATA_HELP,
    console,
    group_field_option,
    id_field_option,
    open_data,
    text_field_option,
    write_json,
)


def unlearn_cmd(
    model: Path = typer.Option(..., "--model", help="Model directory to unlearn from (read only)."),
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    text_field: str = text_field_option(),
    id_field: str | None = id_field_option(),
    group_field: str | None = group_field_option(),
    subject: str = typer.Option(..., "--subject", help="Subject id to forget, e.g. S0003."),
    method: str = typer.Option(..., "--method", help="Unlearning method (see `--help`)."),
    out: Path = typer.Option(..., "--out", help="New directory for the unlearned model."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Cap on optimiser steps."),
    registry: Path | None = typer.Option(
        None, "--registry", help="Model registry directory (default: $FORGET_REGISTRY or "
        ".forget/registry)."),
) -> None:
    """Forget one subject with one method; save and register the new model version.

    Methods: retrain, gradient_ascent, grad_diff, npo, simnpo, code_eraser, lora_forget.
    """
    from audits.extraction import greedy_hits
    from forget.core import get_method, subject_sets
    from forget.errors import InvalidInputError, ModelNotFoundError
    from forget.models import ModelRegistry, load_model, read_card, save_model
    from forget.models.registry import new_card

    if out.exists() and any(out.iterdir()):
        raise InvalidInputError(f"{out} already exists and is not empty; choose a new --out")
    impl = get_method(method)  # an unknown name fails before any loading
    corpus = open_data(data, text_field=text_field, id_field=id_field, group_field=group_field,
                       command="unlearn")
    net, tok = load_model(model)
    try:
        parent = read_card(model)
    except ModelNotFoundError:
        parent = {}
    # subjects the parent was trained without or already unlearned stay out of the retain set
    earlier = [s for s in parent.get("excluded_subjects", []) if s != subject]
    fset, rset = subject_sets(corpus, subject, already_forgotten=earlier)
    cfg = impl.config_class(**({"max_steps": max_steps} if max_steps is not None else {}))
    prompts = fset.prompts()
    before = sum(greedy_hits(net, tok, prompts))
    t0 = time.perf_counter()
    result = impl.run(model=net, tokenizer=tok, forget=fset, retain=rset, config=cfg)
    after = sum(greedy_hits(result.model, tok, prompts))
    card = new_card(
        kind="unlearned", parent=parent.get("version"), method=method, size=parent.get("size"),
        config=result.config, config_hash=result.config_hash, guarantee=result.guarantee,
        formal_guarantee=result.formal_guarantee,
        excluded_subjects=sorted(set(parent.get("excluded_subjects", [])) | {subject}),
        unlearned_record_ids=sorted(e.record_id for e in fset.examples),
        training_record_ids=parent.get("training_record_ids", []),
        data_sha256=parent.get("data_sha256", {}),
    )
    path = save_model(result.model, tok, out, card=card, extra=result.save_extra)
    version = ModelRegistry(registry).register(path)
    summary = result.summary() | {
        "version": version.version, "parent": version.parent, "subject": subject,
        "extraction": {"probes": len(prompts), "before": before, "after": after},
        "total_wall_time_s": time.perf_counter() - t0,
    }
    write_json(path / "unlearn.json", summary)
    table = Table(title=f"unlearned subject {subject} with {method}")
    table.add_column("")
    table.add_column("value", justify="right")
    for key, value in (
        ("steps", str(result.steps)), ("stopped by", result.stopped_by),
        ("tokens processed", f"{result.tokens_processed:,}"),
        ("wall time", f"{result.wall_time_s:.1f} s"),
        ("identifiers extracted (greedy)", f"{before} -> {after} of {len(prompts)}"),
        ("guarantee", result.guarantee.split(":")[0]), ("config hash", result.config_hash[:12]),
    ):
        table.add_row(key, value)
    console.print(table)
    console.print(f"[green]saved[/] {path} version [bold]{version.version}[/] "
                  f"(parent {version.parent}); summary in {path / 'unlearn.json'}")
    if after:
        console.print(f"[yellow]warning:[/] {after} identifier(s) still extracted; "
                      "raise --max-steps or choose another method")
