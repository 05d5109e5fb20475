"""`forget data ...`: generate the synthetic corpora."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from forget.commands._common import console

app = typer.Typer(help="Synthetic corpora with ground truth.", no_args_is_help=True)


@app.command("generate")
def generate_cmd(
    out: Path = typer.Option(..., "--out", help="Directory to write the corpora into."),
    subjects: int = typer.Option(40, "--subjects", min=1, help="Number of fictitious people."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same bytes."),
) -> None:
    """Generate fictitious people, their records, a code corpus and canaries (deterministic)."""
    from forget.corpus import GenerateConfig, generate

    with console.status("generating corpora"):
        manifest = generate(out, GenerateConfig(subjects=subjects, seed=seed))
    table = Table(title=f"corpora in {out}")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, n in manifest["counts"].items():
        table.add_row(name, str(n))
    console.print(table)
