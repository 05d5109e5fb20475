"""`forget corpus ...`: a reusable keyed-hash index of the user's own corpus, and one pass
that scopes every pending request.

``forget corpus index --data PATH --out DIR`` reads every record once and writes the index
(keyed term hashes and row numbers; no text, no identifier, no record id) to ``DIR`` and its
key to the key home (``$FORGET_KEY_HOME/corpus-index/``), never beside the index. Scoping a
request with the index then reads only the records it names (see
:mod:`forget.corpus.index`). Prints a short summary; the manifest is ``DIR/manifest.json``.

``forget corpus scope --ledger URL --data PATH`` finds the records of every pending
(identity-verified) request, or of the ``--request`` ids given, in ONE pass over the corpus
on datatrove (``--engine datatrove``, ``--workers`` processes; see
:mod:`forget.workflow.scope_engine`) or in this process (``--engine scan``), and writes
request id -> record ids and counts to ``--out`` (no identifier). It reads the ledger and
changes nothing in it: each request's workflow records its own scope.
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

app = typer.Typer(help="Index a corpus, or scope every pending request in one pass.",
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


@app.command("scope")
def scope_cmd(
    ledger: str = typer.Option(..., "--ledger", help="Ledger URL (sqlite:///ledger.db, "
                               "postgresql+psycopg://...) or a path."),
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    text_field: str = text_field_option(),
    id_field: str | None = id_field_option(),
    group_field: str | None = group_field_option(),
    request: list[str] | None = typer.Option(None, "--request", help="A request id to scope (repeat "
                                      "it); default: every identity-verified request."),
    engine: str = typer.Option("datatrove", "--engine", help="datatrove (one pass, "
                               "--workers processes) or scan (one pass in this process)."),
    workers: int = typer.Option(2, "--workers", min=1, help="datatrove worker processes."),
    tasks: int | None = typer.Option(None, "--tasks", min=1, help="Shards of the corpus "
                                     "(default: --workers)."),
    presidio: bool = typer.Option(False, "--presidio/--no-presidio", help="Also count "
                                  "Presidio's findings in the records found."),
    out: Path = typer.Option(..., "--out", help="JSON file: request id -> record ids, "
                             "counts."),
    key_dir: Path | None = typer.Option(None, "--key-dir", help="The ledger's key directory."),
) -> None:
    """Scope every pending request in one pass over --data; writes --out."""
    from forget.commands._common import write_json
    from forget.corpus import Corpus, open_corpus
    from forget.errors import InvalidInputError
    from forget.ledger import Ledger, State

    if engine not in ("datatrove", "scan"):
        raise InvalidInputError(f"--engine {engine!r} is not known; use datatrove or scan")
    corpus = open_corpus(data, text_field=text_field, id_field=id_field,
                         group_field=group_field)
    led = Ledger(ledger, key_dir=key_dir, create=False)
    ids = list(dict.fromkeys(request or ())) or [
        r.request_id for r in led.list(states=[State.IDENTITY_VERIFIED])]
    if not ids:
        raise InvalidInputError("no identity-verified request is pending in the ledger; "
                                "name requests with --request")
    requests = {rid: led.identifiers(rid) for rid in ids}
    if engine == "datatrove":
        from forget.workflow.scope_engine import scope_pending

        scopes = scope_pending(corpus, requests, workers=workers, tasks=tasks,
                               use_presidio=presidio)
    elif isinstance(corpus, Corpus):
        from forget.workflow.scope import scope_records

        scopes = {rid: scope_records(corpus, i, use_presidio=presidio)
                  for rid, i in requests.items()}
    else:
        from forget.workflow.scope_text import scope_text_many

        scopes = scope_text_many(corpus, requests, use_presidio=presidio)
    write_json(out, {"engine": engine, "requests": {
        rid: sc.summary() | {"subject_id": sc.subject_id, "found_by": sc.details}
        for rid, sc in scopes.items()}})
    table = Table(title=f"{len(scopes)} request(s) scoped in one pass ({engine})")
    table.add_column("request")
    table.add_column("records", justify="right")
    table.add_column("matched kinds")
    for rid, sc in scopes.items():
        table.add_row(rid, str(len(sc.record_ids)),
                      ", ".join(f"{k} {v}" for k, v in sc.matched_kinds.items()))
    console.print(table)
