"""`forget ledger ...`: verify the request ledger, export signed checkpoints and its public key."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from forget.commands._common import console, err_console
from forget.commands.request import JSON, KEY_DIR, LEDGER, _emit, _open
from forget.errors import InvalidInputError

app = typer.Typer(help="The request ledger: verify its hash chain, export signed checkpoints.",
                  no_args_is_help=True)


@app.command("verify")
def verify_cmd(
    ledger: str = LEDGER,
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="A checkpoint file "
                                           "exported earlier (kept outside the database)."),
    key_dir: Path | None = KEY_DIR,
    as_json: bool = JSON,
) -> None:
    """Verify the chain, checkpoints and request table: exit 0 intact, 1 broken (says where).

    The database is only read: nothing is created or modified, not even a missing file.
    """
    from forget.ledger import Ledger

    with Ledger(ledger, key_dir=key_dir, read_only=True) as led:
        report = led.verify(checkpoint=checkpoint)
    if as_json:
        _emit(report.to_dict())
    elif report.ok:
        console.print(f"[bold green]intact[/]: {report.message}", highlight=False)
        console.print(f"head {report.head}", highlight=False)
    else:
        err_console.print(f"[bold red]BROKEN at position {report.first_bad}[/]: {report.message}",
                          highlight=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


@app.command("checkpoint")
def checkpoint_cmd(
    ledger: str = LEDGER,
    out: Path = typer.Option(..., "--out", help="Where to write the signed checkpoint (JSON); "
                                                "keep it outside the database."),
    key_dir: Path | None = KEY_DIR,
    as_json: bool = JSON,
) -> None:
    """Sign the current head of the chain (after verifying it) and export the checkpoint."""
    with _open(ledger, key_dir) as led:
        cp = led.checkpoint(out=out)
    if as_json:
        _emit(cp.to_dict())
        return
    table = Table(title=f"checkpoint written to {out}", show_header=False)
    for key in ("size", "head", "time", "public_key"):
        table.add_row(key, str(getattr(cp, key)))
    console.print(table)


@app.command("export-public-key")
def export_public_key_cmd(
    ledger: str = LEDGER,
    out: Path = typer.Option(..., "--out", help="Where to write the public key (JSON)."),
    key_dir: Path | None = KEY_DIR,
) -> None:
    """Write the ledger's public signing key: what a third party pins to verify certificates.

    Taken from the ledger's key material (never from the database), so it is the key that
    signs. Hand the file over by a channel the verifier trusts; they run
    `forget certificate verify CERT --public-key FILE`.
    """
    import json

    from forget import certificate as C
    from forget.keys import write_new_key
    from forget.ledger import Ledger

    with Ledger(ledger, key_dir=key_dir, read_only=True) as led:
        doc = C.public_key_document(led)
    blob = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
    if out.exists():
        if out.read_bytes() != blob:
            raise InvalidInputError(f"{out} exists and holds another key: choose another --out")
    else:
        write_new_key(out, blob, mode=0o644)
    console.print(f"public key of ledger {doc['ledger_id']} written to {out}: "
                  f"{doc['public_key']}", highlight=False)
