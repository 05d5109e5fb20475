"""Issue 20 on the command line: certificates need a trusted key; bad input gives one line,
exit 2, and writes nothing. ``forget.cli.main`` runs in this process (no model is needed)."""

from __future__ import annotations

import json

import pytest
from cert_helpers import issue_test_certificate
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from forget import certificate as C
from forget.cli import main
from forget.ledger import DeletionRequest, Ledger


@pytest.fixture
def forget(capsys, monkeypatch):
    """``forget *args`` -> (exit code, stdout, stderr); ``stdin=`` feeds standard input."""
    import io
    import sys

    def run(*args: str, stdin: str | None = None):
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
        with pytest.raises(SystemExit) as e:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        return e.value.code, out, err
    return run


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def issued(tmp_path):
    led, cert = issue_test_certificate(tmp_path / "ledger.db")
    path = cert.write(tmp_path / "cert.json")
    led.close()
    return tmp_path / "ledger.db", path


# -- item 1: a certificate a third party can rely on -----------------------------------------
def test_certificate_verify_needs_a_trusted_key(forget, issued, tmp_path):
    db, cert = issued
    code, out, _ = forget("certificate", "verify", cert)
    assert code == 1 and "signature valid, signer NOT trusted" in out
    code, out, _ = forget("ledger", "export-public-key", "--ledger", db, "--out",
                          tmp_path / "pub.json")
    assert code == 0, out
    code, out, _ = forget("certificate", "verify", cert, "--public-key", tmp_path / "pub.json")
    assert code == 0 and "certificate verifies" in out
    code, out, _ = forget("certificate", "verify", cert, "--ledger", db)
    assert code == 0 and "certificate verifies" in out
    key = json.loads((tmp_path / "pub.json").read_text())["public_key"]
    code, out, _ = forget("certificate", "verify", cert, "--public-key", key)
    assert code == 0


def test_an_edited_certificate_re_signed_with_another_key_fails(forget, issued, tmp_path):
    db, cert = issued
    forget("ledger", "export-public-key", "--ledger", db, "--out", tmp_path / "pub.json")
    forged = C.Certificate.read(cert)
    forged.audit = {"verdict": "pass", "report_sha256": "0" * 64}
    C.sign(forged, Ed25519PrivateKey.generate())
    forged.write(tmp_path / "forged.json")
    code, out, _ = forget("certificate", "verify", tmp_path / "forged.json")
    assert code == 1 and "NOT trusted" in out  # never exit 0 on the embedded key
    for trust in (["--public-key", tmp_path / "pub.json"], ["--ledger", db]):
        code, out, _ = forget("certificate", "verify", tmp_path / "forged.json", *trust)
        assert code == 1 and "does NOT verify" in out


def test_a_certificate_of_another_ledger_fails(forget, issued, tmp_path):
    _, cert = issued
    Ledger(tmp_path / "other.db").close()
    code, out, _ = forget("certificate", "verify", cert, "--ledger", tmp_path / "other.db")
    assert code == 1 and "same_ledger" in out
    forget("ledger", "export-public-key", "--ledger", tmp_path / "other.db", "--out",
           tmp_path / "other.pub")
    code, out, _ = forget("certificate", "verify", cert, "--public-key", tmp_path / "other.pub")
    assert code == 1


@pytest.mark.parametrize("content", ["[1, 2]", "{}", "not json", '{"format": 3}'])
def test_a_malformed_certificate_is_one_line_exit_2(forget, tmp_path, content):
    (tmp_path / "c.json").write_text(content)
    code, _, err = forget("certificate", "verify", tmp_path / "c.json", "--public-key", "ab" * 32)
    assert code == 2
    assert "certificate" in _one_error_line(err)
    assert (tmp_path / "c.json").read_text() == content


def test_a_bad_public_key_is_one_line_exit_2(forget, issued):
    _, cert = issued
    code, _, err = forget("certificate", "verify", cert, "--public-key", "xyz")
    assert code == 2 and "public key" in _one_error_line(err)


# -- item 5: bad input: one line, exit 2, nothing written ------------------------------------
@pytest.mark.parametrize("content", [b"", b"my notes\nmore notes\n", b"\x00" * 64])
def test_ledger_verify_never_touches_a_file_that_is_not_a_ledger(forget, tmp_path, content):
    notes = tmp_path / "notes.txt"
    notes.write_bytes(content)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = forget("ledger", "verify", "--ledger", notes)
    assert code == 2 and "not a ledger" in _one_error_line(err)
    assert notes.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_ledger_verify_does_not_create_a_missing_ledger(forget, tmp_path):
    code, _, err = forget("ledger", "verify", "--ledger", tmp_path / "sub" / "none.db")
    assert code == 2 and "no ledger database" in _one_error_line(err)
    assert not (tmp_path / "sub").exists()


def test_ledger_verify_only_reads_a_real_ledger(forget, issued):
    db, _ = issued
    before = db.read_bytes()
    code, out, _ = forget("ledger", "verify", "--ledger", db)
    assert code == 0 and "intact" in out
    assert db.read_bytes() == before


def test_unknown_request_fields_are_named_and_nothing_is_written(forget, tmp_path):
    req = {"request_id": "r-9", "ground": "a", "subjekt": {},
           "subject": {"name": "Ada Example", "email": ["ada@example.org"]}}
    (tmp_path / "req.json").write_text(json.dumps(req))
    code, _, err = forget("request", "submit", "--ledger", tmp_path / "l.db", "--file",
                          tmp_path / "req.json")
    line = _one_error_line(err)
    assert code == 2 and "'subjekt'" in line and "subject" in line
    assert not (tmp_path / "l.db").exists()
    del req["subjekt"]
    code, _, err = forget("request", "submit", "--ledger", tmp_path / "l.db", "--file", "-",
                          stdin=json.dumps(req))
    line = _one_error_line(err)
    assert code == 2 and "'email' (did you mean 'emails'?)" in line
    assert "ada@" not in line and "Ada" not in line
    assert not (tmp_path / "l.db").exists()


def test_request_submit_reads_stdin_and_documents_the_file(forget, tmp_path):
    req = {"request_id": "r-7", "ground": "a",
           "subject": {"name": "Ada Example", "emails": ["ada@example.org"]}}
    code, out, _ = forget("request", "submit", "--ledger", tmp_path / "l.db", "--file", "-",
                          stdin=json.dumps(req))
    assert code == 0 and out.strip() == "r-7"
    code, out, _ = forget("request", "submit", "--help")
    assert code == 0 and "REQUEST.json" in out and '"subject"' in out and "stdin" in out


def test_an_audit_config_error_is_one_line_exit_2(forget, issued, tmp_path):
    db, _ = issued
    (tmp_path / "bad.json").write_text('{"bootstrap": -1}')
    events = len(Ledger(db, create=False).events())
    code, _, err = forget("process", "r-1", "--ledger", db, "--model", tmp_path, "--data",
                          tmp_path, "--out", tmp_path / "o", "--audit-config",
                          tmp_path / "bad.json")
    assert code == 2 and "bootstrap" in _one_error_line(err)
    assert len(Ledger(db, create=False).events()) == events and not (tmp_path / "o").exists()


def test_guard_errors_are_one_line_exit_2(forget, tmp_path, monkeypatch):
    monkeypatch.setenv("FORGET_GUARD_KEY", "short")
    code, _, err = forget("guard", "add-subject", "--index", tmp_path / "i.json", "--file", "-",
                          stdin='{"name": "Ada Example"}')
    assert code == 2
    _one_error_line(err)


def test_new_guard_key_is_created_0600(forget, tmp_path):
    code, _, _ = forget("guard", "new-key", "--out", tmp_path / "k" / "g.key")
    assert code == 0 and (tmp_path / "k" / "g.key").stat().st_mode & 0o777 == 0o600
    code, _, err = forget("guard", "new-key", "--out", tmp_path / "k" / "g.key")
    assert code == 2



def test_a_read_only_ledger_refuses_writes_on_postgres(pg_url, tmp_path):
    from sqlalchemy import exc

    with Ledger(pg_url, key_dir=tmp_path / "keys") as led:
        led.submit(DeletionRequest(request_id="r-1", emails=("a@example.org",), ground="a"))
    with Ledger(pg_url, key_dir=tmp_path / "keys", read_only=True) as led:
        assert led.verify().ok and led.get("r-1").state.value == "received"
        with pytest.raises(exc.DBAPIError):
            led.verify_identity("r-1")


def test_process_with_a_missing_model_folder_names_it_and_writes_nothing(forget, issued,
                                                                          tmp_path):
    db, _ = issued
    events = len(Ledger(db, create=False).events())
    code, _, err = forget("process", "r-1", "--ledger", db, "--model", tmp_path / "nonexistent",
                          "--data", tmp_path, "--out", tmp_path / "o")
    line = _one_error_line(err)
    assert code == 2 and "does not exist" in line and "nonexistent" in line
    assert "register_external" not in line
    assert len(Ledger(db, create=False).events()) == events and not (tmp_path / "o").exists()


def test_a_worker_with_a_typo_in_its_method_exits_2_before_claiming(forget, issued, tmp_path):
    db, _ = issued
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "forget_model.json").write_text('{"version": "mv-x"}')
    events = len(Ledger(db, create=False).events())
    code, _, err = forget("worker", "--ledger", db, "--model", tmp_path / "m", "--data", tmp_path,
                          "--out", tmp_path / "o", "--method", "npoo", "--once")
    assert code == 2 and "npo" in _one_error_line(err)
    assert len(Ledger(db, create=False).events()) == events and not (tmp_path / "o").exists()


def test_a_worker_takes_the_per_person_attack_options(forget, issued, tmp_path, corpus_dir,
                                                      monkeypatch):
    """`forget worker --strong --shadows K` runs every request it claims with the per-person
    attack, as `forget process --strong` does."""
    import forget.worker as W

    seen = {}

    def fake_run_worker(led, **kw):
        seen.update(kw)
        return W.WorkerStats("w-test")
    monkeypatch.setattr(W, "run_worker", fake_run_worker)
    db, _ = issued
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "forget_model.json").write_text('{"version": "mv-x"}')
    code, out, err = forget("worker", "--ledger", db, "--model", tmp_path / "m", "--data",
                            corpus_dir, "--out", tmp_path / "o", "--once", "--strong",
                            "--shadows", "3")
    assert code in (0, None), err
    assert seen["strong"] is True and seen["shadows"] == 3
