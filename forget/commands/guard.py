"""`forget guard ...`: filter text through the guardrails; add subjects to an index.

``forget guard --index FILE < text > filtered`` streams stdin to stdout through the guard
(forgotten subjects from the index, plus Presidio's offline PII recognizers).
``forget guard add-subject --index FILE --file IDENTIFIERS.json`` (``--file -``: stdin) adds a
subject (creating the index when the file does not exist); the flags ``--name/--email/--phone
/--id`` do the same but leave identifiers in shell history and ``/proc/*/cmdline``. ``forget guard new-key --out FILE``
writes a fresh key.

The index key never sits in the index file. It is read from ``--key-file FILE`` (the file's
bytes, surrounding whitespace stripped; ``new-key`` writes 64 hex characters) or, when no
key file is given, from the environment variable ``FORGET_GUARD_KEY`` (its UTF-8 bytes). At
least 16 bytes. Exit codes: 0 done, 1 the policy blocked the text, 2 bad input (index, key).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import typer

from forget.commands._common import console, err_console

KEY_ENV = "FORGET_GUARD_KEY"

app = typer.Typer(
    help="Filter text so forgotten subjects and personal data are not shown "
         f"(key: --key-file or ${KEY_ENV}).",
    invoke_without_command=True,
)

_INDEX_HELP = "Index file (keyed hashes only)."
_KEY_HELP = f"File holding the index key (default: the {KEY_ENV} environment variable)."


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _key(key_file: Path | None) -> bytes:
    if key_file is not None:
        if not key_file.is_file():
            raise _fail(f"no key file at {key_file}; make one with `forget guard new-key --out FILE`")
        return key_file.read_bytes().strip()
    value = os.environ.get(KEY_ENV)
    if not value:
        raise _fail(f"no index key: pass --key-file FILE or set {KEY_ENV}")
    return value.encode("utf-8")


@app.callback(invoke_without_command=True)
def guard_cmd(
    ctx: typer.Context,
    index: Path | None = typer.Option(None, "--index", help=_INDEX_HELP),
    key_file: Path | None = typer.Option(None, "--key-file", help=_KEY_HELP),
    strict: bool = typer.Option(False, "--strict",
                                help="Block the whole text if it mentions a forgotten subject."),
    no_presidio: bool = typer.Option(False, "--no-presidio",
                                     help="Only the index and obfuscated emails."),
    report: Path | None = typer.Option(None, "--report",
                                       help="Write the findings (no text) as JSON here."),
) -> None:
    """Filter stdin to stdout (streaming), one output line per input line; see the
    subcommands for managing an index."""
    if ctx.invoked_subcommand is not None:
        return
    if index is None:
        raise _fail("missing --index FILE (create one with `forget guard add-subject`)")
    from guardrails import ForgottenIndex, Guard, GuardrailError, Policy, StreamFilter

    try:
        guard = Guard(ForgottenIndex.load(index, _key(key_file)),
                      policy=Policy.strict() if strict else Policy(), use_presidio=not no_presidio)
        filt = StreamFilter(guard)
        for line in sys.stdin:
            sys.stdout.write(filt.push(line))
            if filt.blocked:
                break
        sys.stdout.write(filt.flush())
        sys.stdout.flush()
    except GuardrailError as e:
        raise _fail(str(e)) from None
    findings = filt.findings
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps({"blocked": filt.blocked, "findings": [
            {"entity": f.entity, "start": f.start, "end": f.end, "score": f.score,
             "action": f.action.value, "recognizer": f.explanation.recognizer,
             "normalisation": list(f.explanation.normalisation)} for f in findings]},
            indent=2, sort_keys=True) + "\n")
    acted = sum(f.action.value != "allow" for f in findings)
    err_console.print(f"guard: {len(findings)} findings, {acted} acted on"
                      + (", text blocked" if filt.blocked else ""), highlight=False)
    if filt.blocked:
        raise typer.Exit(1)


@app.command("add-subject")
def add_subject_cmd(
    index: Path = typer.Option(..., "--index", help=_INDEX_HELP + " Created if missing."),
    name: list[str] = typer.Option([], "--name", help="Full name (repeatable)."),
    email: list[str] = typer.Option([], "--email", help="Email address (repeatable)."),
    phone: list[str] = typer.Option([], "--phone", help="Phone number (repeatable)."),
    id_: list[str] = typer.Option([], "--id", help="Account or national id (repeatable)."),
    ref: str | None = typer.Option(None, "--ref",
                                   help="Opaque subject reference, e.g. the request id."),
    file: Path | None = typer.Option(
        None, "--file", help='JSON file of identifiers, or - for stdin: {"name": ..., '
        '"email": [...], "phone": [...], "id": [...]} (each a string or a list). Preferred '
        "to the flags, which leave identifiers in shell history and the process list."),
    key_file: Path | None = typer.Option(None, "--key-file", help=_KEY_HELP),
) -> None:
    """Add a subject's identifiers to an index (only keyed hashes are written)."""
    from forget.commands._common import read_json_object
    from guardrails import ForgottenIndex, GuardrailError, Identifiers

    if file is not None and (name or email or phone or id_):
        raise _fail("give the identifiers either with --file or with flags, not both")
    key = _key(key_file)
    try:
        ids = (Identifiers.from_mapping(read_json_object(file, "identifiers file"))
               if file is not None else Identifiers(name, email, phone, id_))
        idx = ForgottenIndex.load(index, key) if index.exists() else ForgottenIndex(key)
        before = len(idx)
        subject = idx.add(ids, ref=ref)
        idx.save(index)
    except GuardrailError as e:
        raise _fail(str(e)) from None
    console.print_json(data={"index": str(index), "ref": subject, "forms_added": len(idx) - before,
                             "subjects": len(idx.refs)})


@app.command("new-key")
def new_key_cmd(out: Path = typer.Option(..., "--out", help="Key file to write (mode 0600).")) -> None:
    """Write a fresh random index key (64 hex characters)."""
    if out.exists():
        raise _fail(f"{out} exists; refusing to overwrite a key (an index needs its own key)")
    from forget.keys import write_new_key

    if not write_new_key(out, secrets.token_hex(32).encode() + b"\n"):
        raise _fail(f"{out} exists; refusing to overwrite a key (an index needs its own key)")
    console.print(f"wrote a new key to {out}")
