"""`forget certificate verify FILE (--public-key KEY | --ledger URL --key-dir DIR)`.

A certificate verifies only against a key the verifier trusts: a key pinned from
``forget ledger export-public-key`` (``--public-key``), or the ledger's own key material
(``--ledger`` with ``--key-dir``, or the ledger's default key directory or environment
variables). The key inside the certificate says who signed it, not whether to trust them.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from forget.commands._common import console

app = typer.Typer(help="Deletion certificates.", no_args_is_help=True)


def _ledger_public_key(key_dir: Path) -> str | None:
    """The public key in a key directory that holds only ``signing.pub`` (a verifier's copy)."""
    from forget.ledger.crypto import PUBLIC_FILE, SECRET_FILE

    pub = key_dir / PUBLIC_FILE
    return str(pub) if pub.is_file() and not (key_dir / SECRET_FILE).exists() else None


@app.command("verify")
def verify_cmd(
    file: Path = typer.Argument(..., help="The certificate JSON file (only read)."),
    public_key: str | None = typer.Option(
        None, "--public-key", help="The ledger's trusted Ed25519 public key: 64 hex characters, "
        "or a file from `forget ledger export-public-key`."),
    ledger: str | None = typer.Option(None, "--ledger", help="Ledger URL: trust its key material "
                                      "and check the event and checkpoint in its chain."),
    key_dir: Path | None = typer.Option(None, "--key-dir", help="The ledger's key directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
) -> None:
    """Check a deletion certificate against a trusted key (and, with --ledger, its chain).

    Exit 0 when signed by the trusted key and every check holds; 1 otherwise, including
    "signature valid, signer NOT trusted" when no trusted key was given. The files are only
    read.
    """
    import json

    from forget import certificate as C

    cert = C.Certificate.read(file)
    trusted = C.parse_public_key(public_key) if public_key else None
    if trusted is None and key_dir is not None and _ledger_public_key(key_dir):
        trusted = C.parse_public_key(_ledger_public_key(key_dir), source="--key-dir")
    led = None
    if ledger:
        from forget.ledger import Ledger

        led = Ledger(ledger, key_dir=key_dir if trusted is None else None, read_only=True)
    try:
        res = C.verify(cert, ledger=led, public_key=trusted)
    finally:
        if led is not None:
            led.close()
    if as_json:
        typer.echo(json.dumps({"ok": res.ok, "trusted": res.trusted, "checks": res.checks,
                               "message": res.message}))
    else:
        t = Table(title=f"certificate for request {cert.request_id}")
        t.add_column("check")
        t.add_column("result")
        for k, v in res.checks.items():
            t.add_row(k, "[green]ok[/]" if v else "[red]FAILED[/]")
        console.print(t)
        console.print(f"method {cert.method}, audit verdict {cert.audit.get('verdict')}, model "
                      f"{cert.model_before.get('sha256', '')[:12]} -> "
                      f"{cert.model_after.get('sha256', '')[:12]}", highlight=False)
        console.print(("[green]" if res.ok else "[red]") + res.message, highlight=False)
    raise typer.Exit(0 if res.ok else 1)
