from __future__ import annotations

import json

import pytest
from cert_helpers import issue_test_certificate
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from forget import certificate as C
from forget.errors import MalformedDataError
from forget.ledger import Ledger


@pytest.fixture
def issued(tmp_path):
    led, cert = issue_test_certificate(tmp_path / "ledger.db")
    assert led.get("r-1").state.value == "auditing"
    return led, cert


def test_certificate_verifies_against_a_pinned_key_and_the_ledger(issued, tmp_path):
    led, cert = issued
    path = cert.write(tmp_path / "cert.json")
    again = C.Certificate.read(path)
    pinned = C.TrustedKey(led.keys.public_key.hex(), led.ledger_id)
    assert C.verify(again, public_key=pinned).ok
    assert C.verify(again, public_key=led.keys.public_key.hex()).ok
    res = C.verify(again, ledger=led)
    assert res.ok and res.trusted, res.message
    assert "Ada" not in path.read_text() and "ada@" not in path.read_text()


def test_without_a_trusted_key_nothing_verifies(issued):
    _, cert = issued
    res = C.verify(cert)
    assert not res.ok and not res.trusted
    assert res.message.startswith("signature valid, signer NOT trusted")


@pytest.mark.parametrize("field, value", [
    ("method", "retrain"),
    ("model_after", {"version": "mv-x", "sha256": "e" * 64}),
    ("audit", {"verdict": "fail", "report_sha256": "d" * 64}),
    ("request_id", "r-2"),
])
def test_any_edit_breaks_the_signature(issued, field, value):
    led, cert = issued
    setattr(cert, field, value)
    res = C.verify(cert, public_key=led.keys.public_key.hex())
    assert not res.ok and not res.checks["signature"]


@pytest.mark.parametrize("field, value", [
    ("method", "retrain"),
    ("audit", {"verdict": "pass", "report_sha256": "0" * 64}),
    ("request_id", "r-2"),
])
def test_an_edit_re_signed_with_another_key_fails(issued, field, value):
    led, cert = issued
    forged = C.Certificate.from_dict(json.loads(cert.to_json()))
    setattr(forged, field, value)
    C.sign(forged, Ed25519PrivateKey.generate())  # a fresh key, put into public_key
    assert C.verify(forged).message.startswith("signature valid, signer NOT trusted")
    for res in (C.verify(forged, public_key=led.keys.public_key.hex()),
                C.verify(forged, ledger=led)):
        assert not res.ok and not res.checks["signature"]
        assert not res.checks["signed_by_trusted_key"]


def test_a_certificate_from_another_ledger_fails(issued, tmp_path):
    led, cert = issued
    other = Ledger(tmp_path / "other.db")
    res = C.verify(cert, ledger=other)
    assert not res.ok and not res.checks["same_ledger"] and not res.checks["signature"]
    pinned = C.parse_public_key(json.dumps(C.public_key_document(other)))
    assert not C.verify(cert, public_key=pinned).ok
    # the other ledger's operator re-signs it: still not this ledger's certificate
    C.sign(cert, other.keys.signing_key)
    res = C.verify(cert, public_key=pinned)
    assert not res.ok and not res.checks["same_ledger"]


def test_the_compromised_test_key_is_never_trusted(issued):
    _, cert = issued
    leaked = next(iter(C.COMPROMISED_KEYS))
    res = C.verify(cert, public_key=leaked)
    assert not res.ok and not res.checks["trusted_key"]


def test_event_rewritten_in_ledger_is_detected(issued):
    led, cert = issued
    cert.ledger["event_hash"] = "f" * 64
    C.sign(cert, led.keys.signing_key)  # a correctly signed certificate pointing at a wrong event
    res = C.verify(cert, ledger=led)
    assert res.checks["signature"] and not res.checks["event_in_chain"]


@pytest.mark.parametrize("content", [
    json.dumps({"format": "other"}), "[1, 2, 3]", '"text"', "{not json",
    json.dumps({"format": C.FORMAT}),
    json.dumps({"format": C.FORMAT, "request_id": 1}),
])
def test_malformed_certificate_file(tmp_path, content):
    (tmp_path / "x.json").write_text(content)
    with pytest.raises(MalformedDataError):
        C.Certificate.read(tmp_path / "x.json")


def test_malformed_nested_fields_are_typed_errors(issued, tmp_path):
    led, cert = issued
    d = json.loads(cert.to_json())
    d["ledger"] = {"event_seq": "x"}
    with pytest.raises(MalformedDataError):
        C.Certificate.from_dict(d)
    d = json.loads(cert.to_json())
    d["ledger"]["checkpoint"] = {"size": 1}
    with pytest.raises(MalformedDataError):
        C.verify(C.Certificate.from_dict(d), public_key=led.keys.public_key.hex())
