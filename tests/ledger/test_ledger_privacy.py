"""No plaintext personal data at rest, in events, logs or errors; crypto-shredding works."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from ledger_helpers import finish, make_request

from forget.ledger import InvalidRequestError, Ledger, ShreddedError
from forget.ledger.crypto import open_sealed

PEOPLE = [
    dict(request_id="priv-1", name="Zebulon Quartermaine", emails=("zebulon.q@mailhost.test",),
         phones=("+44 20 7946 0321",), other_ids=(("national_id", "QX123456Z"),), ground="a"),
    dict(request_id="priv-2", name="Ådélïne Þórsdóttir", emails=("adeline.t@mailhost.test",
                                                                 "a.thors@other.test"),
         phones=("+354 555 0199",), ground="c"),
]


def _needles(p: dict) -> list[bytes]:
    vals = [p["name"], *p["emails"], *p["phones"], *(v for _, v in p.get("other_ids", ()))]
    out = set()
    for v in vals:
        for form in (v, v.lower(), v.upper(), v.replace(" ", "")):
            out.add(form.encode("utf-8"))
            out.add(form.encode("utf-16-le"))
    for part in p["name"].split():
        out.add(part.encode())
    return sorted(out)


def _haystack(db: Path) -> dict[str, bytes]:
    files = {}
    for f in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}-journal")):
        if f.exists():
            files[f.name] = f.read_bytes()
    return files


def test_no_identifier_in_database_wal_or_logs(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "ledger.db"
    led = Ledger(db)
    for p in PEOPLE:
        led.submit(make_request(**p))
        led.verify_identity(p["request_id"])
        led.record_step(p["request_id"], "scope", "done", {"records": ["rec-00017"]})
    led.claim("w1", 30)
    # the WAL must hold the writes at this point (checked before any checkpoint)
    files = _haystack(db)
    assert any(name.endswith("-wal") and data for name, data in files.items())
    logs = "\n".join(r.getMessage() for r in caplog.records).encode()
    events = b"".join(e.to_dict().__repr__().encode() for e in led.events())
    for p in PEOPLE:
        for needle in _needles(p):
            for name, data in {**files, "logs": logs, "events": events}.items():
                assert needle not in data, f"identifier found in {name}"
    # ...while the ledger can still decrypt them for processing
    ids = led.identifiers("priv-2")
    assert ids.name == PEOPLE[1]["name"] and ids.emails == PEOPLE[1]["emails"]
    assert led.find(kind="email", value="A.Thors@OTHER.test") == ["priv-2"]
    led.close()


def test_after_completion_decryption_is_impossible(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    led = Ledger(db)
    led.submit(make_request(**PEOPLE[0]))
    led.verify_identity("priv-1")
    con = sqlite3.connect(db)
    wrapped, ct = con.execute("SELECT k.wrapped_key, r.identifiers_ct FROM ledger_keys k JOIN "
                              "ledger_requests r ON r.id = k.request_id").fetchone()
    con.close()
    data_key = led.keys.unwrap(wrapped, "priv-1")
    assert open_sealed(data_key, ct, "priv-1")  # opens while the request is open
    finish(led, "priv-1")
    with pytest.raises(ShreddedError, match="crypto-shredded"):
        led.identifiers("priv-1")
    # the wrapped key is gone from the database file and the WAL (secure_delete + truncate)
    for name, data in _haystack(db).items():
        assert wrapped not in data, f"wrapped data key still in {name}"
        assert data_key not in data
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM ledger_keys").fetchone()[0] == 0
    ct_after = con.execute("SELECT identifiers_ct FROM ledger_requests").fetchone()[0]
    con.close()
    # the ciphertext remains; with the ledger secret and no data key it is noise
    with pytest.raises(ShreddedError):
        open_sealed(led.keys._sub["wrap"], ct_after, "priv-1")
    report = led.verify()
    assert report.ok, report.message  # the chain still verifies
    assert led.find(kind="name", value="zebulon quartermaine") == ["priv-1"]  # blind index stays
    led.close()


@pytest.mark.parametrize("text", [
    "subject Zebulon Quartermaine did not answer",
    "ZEBULON  quartermaine",
    "contact zebulon.q@mailhost.test",
    "someone@else.example is not the subject",  # any email address
    "called +44 (20) 7946-0321 twice",
    "id qx123456z checked",
])
def test_reasons_and_details_with_personal_data_are_refused(ledger: Ledger, text: str) -> None:
    ledger.submit(make_request(**PEOPLE[0]))
    n = len(ledger.events())
    for call in (lambda: ledger.reject("priv-1", reason=text),
                 lambda: ledger.fail("priv-1", reason=text, retryable=True),
                 lambda: ledger.extend("priv-1", months=1, reason=text),
                 lambda: ledger.record_step("priv-1", "scope", "done", {"note": [text]})):
        with pytest.raises(InvalidRequestError) as e:
            call()
        for needle in ("Zebulon", "zebulon", "7946", "QX123", "someone@"):
            assert needle not in str(e.value)
    assert len(ledger.events()) == n


def test_benign_reasons_pass(ledger: Ledger) -> None:
    ledger.submit(make_request(**PEOPLE[0]))
    ledger.record_step("priv-1", "scope", "done", {"records": 12, "sha256": "deadbeef" * 8,
                                                   "note": "Quarterly review"})
    ledger.reject("priv-1", reason="Art. 17(3)(e): legal claims")


def test_repr_and_errors_carry_no_identifiers() -> None:
    req = make_request(**PEOPLE[0])
    assert "Zebulon" not in repr(req) and "mailhost" not in repr(req)
    assert "Zebulon" not in repr(req.identifiers)
