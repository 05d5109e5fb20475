"""`forget request ...`: submit and manage erasure requests in a ledger."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from forget.commands._common import console, err_console

app = typer.Typer(help="Erasure requests: submit, list, show, verify identity, extend, reject.",
                  no_args_is_help=True)

LEDGER = typer.Option(..., "--ledger", help="Ledger: a SQLite path or a SQLAlchemy URL.")
KEY_DIR = typer.Option(None, "--key-dir",
                       help="Directory of the ledger secret and signing key (default: "
                            "FORGET_LEDGER_SECRET / FORGET_SIGNING_KEY, else under the key home "
                            "~/.config/forget/keys, never beside the database).")
JSON = typer.Option(False, "--json", help="Print machine-readable JSON instead of a summary.")


def _emit(obj: object) -> None:
    """Machine-readable output: plain JSON on stdout (no colours, no wrapping)."""
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def _open(ledger: str, key_dir: Path | None, *, create: bool = False):  # noqa: ANN202
    from forget.ledger import Ledger

    return Ledger(ledger, key_dir=key_dir, create=create)


def _print_record(rec, as_json: bool, title: str) -> None:  # noqa: ANN001
    if as_json:
        _emit(rec.to_dict())
        return
    d = rec.to_dict()
    table = Table(title=title, show_header=False)
    for key in ("request_id", "state", "stage", "ground", "channel", "received_at",
                "verified_at", "due_at", "days_left", "overdue", "extension_months",
                "identifier_counts", "models", "datasets", "lease_owner", "shredded"):
        val = d[key]
        if key == "due_at" and rec.paused and not rec.terminal:
            val = f"{val} (clock paused: identity unverified)"
        if key in ("models", "datasets") and not val:
            val = "all registered"
        table.add_row(key, str(val))
    console.print(table)


@app.command("submit")
def submit_cmd(
    ledger: str = LEDGER,
    name: str | None = typer.Option(None, "--name", help="The subject's name."),
    email: list[str] = typer.Option([], "--email", help="An email address (repeatable)."),
    phone: list[str] = typer.Option([], "--phone", help="A phone number (repeatable)."),
    national_id: str | None = typer.Option(None, "--national-id", help="A national id number."),
    ground: str | None = typer.Option(None, "--ground",
                                      help="Legal ground, Art. 17(1)(a)-(f): a, b, c, d, e or f."),
    request_id: str | None = typer.Option(None, "--request-id",
                                          help="Your idempotency key (default: a fresh id)."),
    model: list[str] = typer.Option([], "--model", help="Limit to a model (repeatable; "
                                                        "default: all registered models)."),
    dataset: list[str] = typer.Option([], "--dataset", help="Limit to a dataset (repeatable)."),
    channel: str = typer.Option("cli", "--channel", help="How the request arrived."),
    file: Path | None = typer.Option(
        None, "--file", help="REQUEST.json (or - for stdin) instead of the flags; see above."),
    key_dir: Path | None = KEY_DIR,
    as_json: bool = JSON,
) -> None:
    """Submit an erasure request; prints its request id (resubmitting unchanged is a no-op).

    Prefer --file: identifiers given as flags stay in shell history and /proc/*/cmdline.
    REQUEST.json (every field optional except what identifies the subject and the ground):

    {"request_id": "r-1", "ground": "a", "channel": "email",
    "subject": {"name": "...", "emails": ["..."], "phones": ["..."],
    "ids": {"national_id": "...", "account": "..."}},
    "scope": {"models": ["mv-..."], "datasets": ["..."]},
    "received_at": "2026-12-01T09:00:00+00:00"}

    ground: Art. 17(1)(a)-(f) as a..f. Unknown fields are refused by name.
    """
    from forget.commands._common import read_input
    from forget.ledger import DeletionRequest, InvalidRequestError

    if file is not None:
        if name or email or phone or national_id:
            raise InvalidRequestError("give the subject either with --file or with flags, not both")
        req = DeletionRequest.from_json(read_input(file, "request file"))
        if request_id is not None or ground is not None:  # flags override the file
            d = req.to_dict()
            d["request_id"] = request_id or d["request_id"]
            d["ground"] = ground or d["ground"]
            req = DeletionRequest.from_dict(d)
    else:
        kw = {"request_id": request_id} if request_id else {}
        req = DeletionRequest(name=name, emails=tuple(email), phones=tuple(phone),
                              other_ids=(("national_id", national_id),) if national_id else (),
                              ground=ground, models=tuple(model), datasets=tuple(dataset),
                              channel=channel, **kw)
    with _open(ledger, key_dir, create=True) as led:
        rec = led.submit(req)
    if as_json:
        _emit(rec.to_dict())
    else:
        print(rec.request_id)  # stdout: the id alone, for scripts; the summary goes to stderr
        err_console.print(f"[green]{rec.state.value}[/] ground Art. {rec.ground}, "
                          f"{sum(rec.identifier_counts.values())} identifier(s); deadline clock "
                          f"{'paused until identity is verified' if rec.paused else 'running'}",
                          highlight=False)


@app.command("list")
def list_cmd(
    ledger: str = LEDGER,
    overdue: bool = typer.Option(False, "--overdue", help="Only unfinished requests past their "
                                                          "deadline."),
    state: list[str] = typer.Option([], "--state", help="Only requests in this state "
                                                        "(repeatable)."),
    key_dir: Path | None = KEY_DIR,
    as_json: bool = JSON,
) -> None:
    """List requests with their state and days left."""
    from forget.errors import InvalidInputError
    from forget.ledger import State

    try:
        states = [State(s) for s in state] or None
    except ValueError:
        raise InvalidInputError("unknown --state: use one of " + ", ".join(s.value for s in State)) from None
    with _open(ledger, key_dir) as led:
        recs = led.list(states=states, overdue=overdue)
    if as_json:
        _emit([r.to_dict() for r in recs])
        return
    table = Table(title=f"{len(recs)} request(s)" + (" overdue" if overdue else ""))
    for col in ("request id", "state", "received", "due", "days left"):
        table.add_column(col, justify="right" if col == "days left" else "left")
    for r in recs:
        left = "-" if r.terminal else (f"{r.days_left()} (paused)" if r.paused else str(r.days_left()))
        style = "red" if r.overdue else None
        table.add_row(r.request_id, r.state.value, r.received_at.date().isoformat(),
                      "-" if r.terminal else r.due_at.date().isoformat(), left, style=style)
    console.print(table)


@app.command("show")
def show_cmd(
    request_id: str = typer.Argument(..., help="The request id."),
    ledger: str = LEDGER,
    key_dir: Path | None = KEY_DIR,
    as_json: bool = JSON,
) -> None:
    """Show one request and its events (never its identifiers)."""
    with _open(ledger, key_dir) as led:
        rec = led.get(request_id)
        events = led.events(request_id)
    if as_json:
        _emit({**rec.to_dict(), "events": [e.to_dict() for e in events]})
        return
    _print_record(rec, False, "request")
    table = Table(title="events")
    for col in ("#", "at", "kind", "data"):
        table.add_column(col)
    for e in events:
        table.add_row(str(e.seq), e.at, e.kind, json.dumps(e.data, sort_keys=True))
    console.print(table)


@app.command("verify-identity")
def verify_identity_cmd(
    request_id: str = typer.Argument(..., help="The request id."),
    ledger: str = LEDGER,
    method: str = typer.Option("manual", "--method", help="How identity was verified "
                                                          "(a short name)."),
    key_dir: Path | None = KEY_DIR,
    as_json: bool = JSON,
) -> None:
    """Record that the subject's identity was verified (the deadline clock resumes)."""
    with _open(ledger, key_dir) as led:
        rec = led.verify_identity(request_id, method=method)
    _print_record(rec, as_json, "identity verified")


@app.command("extend")
def extend_cmd(
    request_id: str = typer.Argument(..., help="The request id."),
    ledger: str = LEDGER,
    months: int = typer.Option(..., "--months", help="1 or 2 further months."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded; no personal data)."),
    key_dir: Path | None = KEY_DIR,
    as_json: bool = JSON,
) -> None:
    """Extend the deadline once, by up to two months, before the first deadline passes."""
    with _open(ledger, key_dir) as led:
        rec = led.extend(request_id, months=months, reason=reason)
    _print_record(rec, as_json, "deadline extended")


@app.command("reject")
def reject_cmd(
    request_id: str = typer.Argument(..., help="The request id."),
    ledger: str = LEDGER,
    reason: str = typer.Option(..., "--reason", help="Why (recorded; no personal data)."),
    key_dir: Path | None = KEY_DIR,
    as_json: bool = JSON,
) -> None:
    """Reject the request, with a reason."""
    with _open(ledger, key_dir) as led:
        rec = led.reject(request_id, reason=reason)
    _print_record(rec, as_json, "rejected")
