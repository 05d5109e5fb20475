"""`forget corpus ...`: a reusable keyed-hash index of the user's own corpus.

``forget corpus index --data PATH --out DIR`` reads every record once and writes the index
(keyed term hashes and row numbers; no text, no identifier, no record id) to ``DIR`` and its
key to the key home (``$FORGET_KEY_HOME/corpus-index/``), never beside the index. Scoping a
request with the index then reads only the records it names (see
:mod:`forget.corpus.index`). Prints a short summary; the manifest is ``DIR/manifest.json``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from forget.commands._common import (
    DATA_HELP,
    console,
    group_field_option,
    id_field_option,
    text_field_option,
)

app = typer.Typer(help="Index the user's own corpus for scoping requests.",
                  no_args_is_help=True)


@app.command("index")
def index_cmd(
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    out: Path = typer.Option(..., "--out", help="Index directory (new, empty, or an index to "
                             "rebuild)."),
    text_field: str = text_field_option(),
    id_field: str | None = id_field_option(),
    group_field: str | None = group_field_option(),
    num_proc: int | None = typer.Option(None, "--num-proc", min=1,
                                        help="Worker processes (datasets.map num_proc)."),
    key_dir: Path | None = typer.Option(None, "--key-dir", help="Where the index key is "
                                        "written (default: $FORGET_KEY_HOME/corpus-index)."),
) -> None:
    """Index every record of --data so requests are scoped without rescanning it."""
    from forget.corpus import open_corpus
    from forget.corpus.index import build_index

    corpus = open_corpus(data, text_field=text_field, id_field=id_field,
                         group_field=group_field)
    manifest = build_index(corpus, out, num_proc=num_proc, key_dir=key_dir, progress=True)
    table = Table(title=f"corpus index in {out}")
    table.add_column("records", justify="right")
    table.add_column("terms", justify="right")
    table.add_column("postings", justify="right")
    table.add_column("records/s", justify="right")
    c, b = manifest["counts"], manifest["build"]
    table.add_row(str(c["records"]), str(c["terms"]), str(c["postings"]),
                  f"{b['records_per_s']:.0f}" if b["records_per_s"] else "n/a")
    console.print(table)
