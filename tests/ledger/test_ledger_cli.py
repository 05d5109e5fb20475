"""The command line: forget request ... and forget ledger verify / checkpoint."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from forget.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:  # noqa: ANN001
    try:
        main(list(argv))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("cmd", [
    ["request"], ["request", "submit"], ["request", "list"], ["request", "show"],
    ["request", "verify-identity"], ["request", "extend"], ["request", "reject"],
    ["ledger"], ["ledger", "verify"], ["ledger", "checkpoint"],
])
def test_every_command_has_help(capsys, cmd: list[str]) -> None:  # noqa: ANN001
    code, out, _ = run(capsys, *cmd, "--help")
    assert code == 0 and "Usage" in out


def test_request_lifecycle_on_the_command_line(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    db = str(tmp_path / "l.db")
    code, out, _ = run(capsys, "request", "submit", "--ledger", db, "--name", "Cli Person",
                       "--email", "cli@example.org", "--email", "cli2@example.org",
                       "--phone", "+1 555 0100", "--national-id", "AB123", "--ground", "b",
                       "--request-id", "cli-1")
    assert code == 0 and out.strip() == "cli-1"
    code, out, _ = run(capsys, "request", "submit", "--ledger", db, "--name", "Cli Person",
                       "--email", "cli@example.org", "--email", "cli2@example.org",
                       "--phone", "+1 555 0100", "--national-id", "AB123", "--ground", "b",
                       "--request-id", "cli-1")
    assert code == 0 and out.strip() == "cli-1"  # idempotent
    code, _, err = run(capsys, "request", "submit", "--ledger", db, "--name", "Other",
                       "--ground", "b", "--request-id", "cli-1")
    assert code == 2 and "different content" in err and "Other" not in err
    code, out, _ = run(capsys, "request", "submit", "--ledger", db, "--email", "x@y.org",
                       "--ground", "a")
    assert code == 0 and out.strip().startswith("req-")

    req = {"request_id": "cli-file", "subject": {"emails": ["file@example.org"]}, "ground": "c",
           "scope": {"models": ["tiny"]}}
    (tmp_path / "r.json").write_text(json.dumps(req))
    code, out, _ = run(capsys, "request", "submit", "--ledger", db, "--file",
                       str(tmp_path / "r.json"))
    assert code == 0 and out.strip() == "cli-file"

    code, out, _ = run(capsys, "request", "list", "--ledger", db)
    assert code == 0 and "cli-1" in out and "received" in out and "paused" in out
    code, out, _ = run(capsys, "request", "verify-identity", "cli-1", "--ledger", db)
    assert code == 0 and "identity_verified" in out
    code, out, _ = run(capsys, "request", "extend", "cli-1", "--ledger", db, "--months", "2",
                       "--reason", "many models")
    assert code == 0 and "extended" in out
    code, _, err = run(capsys, "request", "extend", "cli-1", "--ledger", db, "--months", "1",
                       "--reason", "again")
    assert code == 2 and "once" in err
    code, out, _ = run(capsys, "request", "reject", "cli-file", "--ledger", db, "--reason",
                       "Art. 17(3)(b)")
    assert code == 0 and "rejected" in out

    code, out, _ = run(capsys, "request", "list", "--ledger", db, "--json")
    rows = {r["request_id"]: r for r in json.loads(out)}
    assert rows["cli-1"]["state"] == "extended" and rows["cli-1"]["days_left"] >= 88
    assert rows["cli-file"]["state"] == "rejected" and rows["cli-file"]["days_left"] is None
    code, out, _ = run(capsys, "request", "list", "--ledger", db, "--overdue", "--json")
    assert code == 0 and json.loads(out) == []
    code, out, _ = run(capsys, "request", "show", "cli-1", "--ledger", db, "--json")
    shown = json.loads(out)
    assert [e["kind"] for e in shown["events"]] == ["submitted", "identity_verified", "extended"]
    for needle in ("Cli Person", "cli@example.org", "555", "AB123"):
        assert needle not in out
    code, _, err = run(capsys, "request", "show", "nope", "--ledger", db)
    assert code == 2 and "no request" in err


def test_bad_input_on_the_command_line_writes_nothing(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    db = tmp_path / "l.db"
    for args in (["--email", "not-an-email", "--ground", "a"], ["--ground", "a"],
                 ["--name", "A B", "--ground", "z"]):
        code, _, err = run(capsys, "request", "submit", "--ledger", str(db), *args)
        assert code == 2 and "error" in err and "not-an-email" not in err
    (tmp_path / "bad.json").write_bytes(b'{"subject": {"name": "\xff"}, "ground": "a"}')
    code, _, err = run(capsys, "request", "submit", "--ledger", str(db), "--file",
                       str(tmp_path / "bad.json"))
    assert code == 2 and "UTF-8" in err
    if db.exists():
        con = sqlite3.connect(db)
        assert con.execute("SELECT count(*) FROM ledger_events").fetchone()[0] == 0
        con.close()
    code, _, err = run(capsys, "request", "list", "--ledger", str(tmp_path / "missing.db"))
    assert code == 2 and "no ledger" in err


def test_ledger_verify_and_checkpoint(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    db, cp = str(tmp_path / "l.db"), str(tmp_path / "out" / "cp.json")
    for i in range(3):
        run(capsys, "request", "submit", "--ledger", db, "--email", f"v{i}@example.org",
            "--ground", "a", "--request-id", f"v-{i}")
    code, out, _ = run(capsys, "ledger", "checkpoint", "--ledger", db, "--out", cp)
    assert code == 0 and Path(cp).exists()
    assert json.loads(Path(cp).read_text())["size"] == 3
    code, out, _ = run(capsys, "ledger", "verify", "--ledger", db, "--checkpoint", cp)
    assert code == 0 and "intact" in out
    code, out, _ = run(capsys, "ledger", "verify", "--ledger", db, "--json")
    assert code == 0 and json.loads(out)["ok"] is True

    con = sqlite3.connect(db)
    con.execute("UPDATE ledger_events SET body = replace(body, '17(1)(a)', '17(1)(f)') "
                "WHERE seq = 2")
    con.commit()
    con.close()
    code, _, err = run(capsys, "ledger", "verify", "--ledger", db)
    assert code == 1 and "position 2" in err
    code, out, _ = run(capsys, "ledger", "verify", "--ledger", db, "--json")
    assert code == 1 and json.loads(out)["first_bad"] == 2
    code, _, err = run(capsys, "ledger", "checkpoint", "--ledger", db, "--out", cp)
    assert code == 2 and "refusing" in err


def test_verify_with_a_bad_checkpoint_file(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    db, cp = str(tmp_path / "l.db"), tmp_path / "cp.json"
    run(capsys, "request", "submit", "--ledger", db, "--email", "c@example.org", "--ground", "a")
    run(capsys, "ledger", "checkpoint", "--ledger", db, "--out", str(cp))
    d = json.loads(cp.read_text())
    d["head"] = "00" * 32
    cp.write_text(json.dumps(d))
    code, _, err = run(capsys, "ledger", "verify", "--ledger", db, "--checkpoint", str(cp))
    assert code == 1 and "signature" in err
    cp.write_text("not json")
    code, _, err = run(capsys, "ledger", "verify", "--ledger", db, "--checkpoint", str(cp))
    assert code == 2 and "checkpoint" in err
