"""`forget demo`: build the demo corpus and model (cached) and show what the model memorized."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from forget.commands._common import console, write_json

DEMO_SUBJECTS = 40
DEMO_SEED = 0


def ensure_demo_assets(out: Path) -> tuple[Path, Path, bool]:
    """The demo data and demo model under ``out``, built on the first run and reused after.

    Returns (data dir, model dir, whether the model was trained now).
    """
    from forget._quiet import is_verbose
    from forget.corpus import GenerateConfig, generate
    from forget.models.build import train_model

    data = out / "data"
    manifest = data / "manifest.json"
    cfg = GenerateConfig(subjects=DEMO_SUBJECTS, seed=DEMO_SEED)
    if not manifest.is_file() or json.loads(manifest.read_text())["config"] != cfg.__dict__:
        with console.status("generating the demo corpus"):
            generate(data, cfg)
    model = out / "models" / "demo"
    trained = False
    if not (model / "forget_model.json").is_file():
        console.print("[bold]training the demo model[/] (once; about 1-2 minutes on 2 cores)")
        train_model(data, model, size="demo", registry=out / "registry", progress=is_verbose())
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
        f"The demo model reproduces an identifier of [bold]{train['any']:.0%}[/] of the "
        f"{train['subjects']} people it was trained on and of [bold]{hold['any']:.0%}[/] of the "
        f"{hold['subjects']} it never saw: there is something to forget."
    )
    from forget.commands.demo_run import print_summary, run_requests

    requests = print_summary(run_requests(out, data, model), t0)
    write_json(out / "demo_summary.json", {"data": str(data), "model": str(model),
                                           "memorization": table, "trained_now": trained,
                                           "requests": requests,
                                           "wall_seconds": round(time.perf_counter() - t0, 1)})
    console.print(f"[green]outputs in[/] {out} ({time.perf_counter() - t0:.0f} s)")
