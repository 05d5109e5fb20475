from __future__ import annotations

import json

import pytest

from forget import certificate as C
from forget.errors import MalformedDataError
from forget.ledger import DeletionRequest, Ledger


@pytest.fixture
def issued(tmp_path):
    led = Ledger(tmp_path / "ledger.db")
    led.submit(DeletionRequest(request_id="r-1", name="Ada Example",
                               emails=("ada@example.org",), ground="b"))
    led.verify_identity("r-1")
    led.scope("r-1", details={"records": 3})
    led.start_unlearning("r-1", method="npo")
    rec = led.record_audit("r-1", passed=True, details={"verdict": "pass"})
    seq = max(e.seq for e in led.events("r-1"))
    cert = C.issue(led, "r-1", event_seq=seq,
                   model_before={"version": "mv-a", "sha256": "a" * 64},
                   model_after={"version": "mv-b", "sha256": "b" * 64},
                   method="npo", method_config_hash="c" * 16, guarantee="empirical",
                   audit={"verdict": "pass", "report_sha256": "d" * 64},
                   issued_at="2026-11-23T00:00:00+00:00")
    assert rec.state.value == "auditing"
    return led, cert


def test_certificate_verifies_alone_and_against_the_ledger(issued, tmp_path):
    led, cert = issued
    path = cert.write(tmp_path / "cert.json")
    again = C.Certificate.read(path)
    assert C.verify(again).ok
    res = C.verify(again, ledger=led)
    assert res.ok, res.message
    assert "Ada" not in path.read_text() and "ada@" not in path.read_text()


@pytest.mark.parametrize("field, value", [
    ("method", "retrain"),
    ("model_after", {"version": "mv-x", "sha256": "e" * 64}),
    ("audit", {"verdict": "fail", "report_sha256": "d" * 64}),
    ("request_id", "r-2"),
])
def test_any_edit_breaks_the_signature(issued, field, value):
    _, cert = issued
    setattr(cert, field, value)
    res = C.verify(cert)
    assert not res.ok and not res.checks["signature"]


def test_wrong_ledger_or_untrusted_key_is_detected(issued, tmp_path):
    _, cert = issued
    other = Ledger(tmp_path / "other.db")
    res = C.verify(cert, ledger=other)
    assert not res.ok and not res.checks["same_ledger"]
    assert not C.verify(cert, public_key="00" * 32).ok


def test_event_rewritten_in_ledger_is_detected(issued):
    led, cert = issued
    cert.ledger["event_hash"] = "f" * 64
    C.sign(cert, led.keys.signing_key)  # a correctly signed certificate pointing at a wrong event
    res = C.verify(cert, ledger=led)
    assert res.checks["signature"] and not res.checks["event_in_chain"]


def test_malformed_certificate_file(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(MalformedDataError):
        C.Certificate.read(tmp_path / "x.json")
