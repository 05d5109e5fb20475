"""`forget certificate verify FILE [--ledger URL]`: check a deletion certificate."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from forget.commands._common import console

app = typer.Typer(help="Deletion certificates.", no_args_is_help=True)


@app.command("verify")
def verify_cmd(
    file: Path = typer.Argument(..., help="The certificate JSON file."),
    ledger: str | None = typer.Option(None, "--ledger", help="Ledger URL: also check the chain."),
    key_dir: Path | None = typer.Option(None, "--key-dir", help="The ledger's key directory."),
    public_key: str | None = typer.Option(
        None, "--public-key", help="Trusted Ed25519 public key (hex) to check the signature with."),
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
) -> None:
    """Check the signature and, with --ledger, the event and checkpoint in the ledger's chain.

    Exit 0 when every check holds, 1 otherwise.
    """
    import json

    from forget import certificate as C

    cert = C.Certificate.read(file)
    led = None
    if ledger:
        from forget.ledger import Ledger

        led = Ledger(ledger, key_dir=key_dir, create=False)
    res = C.verify(cert, ledger=led, public_key=public_key)
    if as_json:
        typer.echo(json.dumps({"ok": res.ok, "checks": res.checks, "message": res.message}))
    else:
        t = Table(title=f"certificate for request {cert.request_id}")
        t.add_column("check")
        t.add_column("result")
        for k, v in res.checks.items():
            t.add_row(k, "[green]ok[/]" if v else "[red]FAILED[/]")
        console.print(t)
        console.print(f"method {cert.method}, audit verdict {cert.audit.get('verdict')}, model "
                      f"{cert.model_before.get('sha256', '')[:12]} -> "
                      f"{cert.model_after.get('sha256', '')[:12]}")
        console.print(("[green]" if res.ok else "[red]") + res.message)
    raise typer.Exit(0 if res.ok else 1)
