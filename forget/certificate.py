"""The signed deletion certificate.

A certificate states, for one request id (never an identifier): the model before and after
(registry versions and sha256 of the weights), the method and its config hash, what the method
guarantees, the audit's verdict and the sha256 of its report, and where the request's audit
event sits in the ledger's hash chain, with a signed checkpoint that covers it. It is signed
with the ledger's Ed25519 key over its RFC 8785 canonical JSON, so anyone holding the ledger's
public key can check it, and anyone holding the ledger can check the chain position too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from forget.errors import DataNotFoundError, ForgetError, InvalidInputError, MalformedDataError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from forget.ledger import Ledger

FORMAT = "forget-suite.deletion-certificate"
VERSION = 1


@dataclass
class Certificate:
    """A deletion certificate; ``signature`` covers every other field."""

    request_id: str
    ledger_id: str
    issued_at: str
    model_before: dict[str, str]
    model_after: dict[str, str]
    method: str
    method_config_hash: str
    guarantee: str
    audit: dict[str, Any]
    ledger: dict[str, Any]
    formal_guarantee: dict[str, Any] | None = None
    format: str = FORMAT
    version: int = VERSION
    public_key: str = ""
    signature: str = field(default="", repr=False)

    def body(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("signature")
        return d

    def signed_bytes(self) -> bytes:
        return rfc8785.dumps(self.body())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def write(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())
        return path

    @classmethod
    def read(cls, path: Path | str) -> Certificate:
        path = Path(path)
        if not path.is_file():
            raise DataNotFoundError(f"no certificate at {path}")
        try:
            data = json.loads(path.read_text())
            if data.get("format") != FORMAT:
                raise MalformedDataError(f"{path} is not a deletion certificate (format field)")
            return cls(**data)
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as e:
            raise MalformedDataError(f"{path} is not a valid certificate ({type(e).__name__})") from None


def sign(cert: Certificate, signing_key: Ed25519PrivateKey) -> Certificate:
    """Fill ``public_key`` and ``signature`` using an Ed25519 private key."""
    cert.public_key = signing_key.public_key().public_bytes_raw().hex()
    cert.signature = signing_key.sign(cert.signed_bytes()).hex()
    return cert


def issue(ledger: Ledger, request_id: str, *, event_seq: int, model_before: dict, model_after: dict,
          method: str, method_config_hash: str, guarantee: str, audit: dict,
          formal_guarantee: dict | None = None, issued_at: str) -> Certificate:
    """Checkpoint the ledger (covering ``event_seq``) and sign a certificate for the request."""
    events = {e.seq: e for e in ledger.events(request_id)}
    if event_seq not in events:
        raise InvalidInputError(f"event {event_seq} does not belong to this request")
    cp = ledger.checkpoint()
    cert = Certificate(
        request_id=request_id, ledger_id=ledger.ledger_id, issued_at=issued_at,
        model_before=model_before, model_after=model_after, method=method,
        method_config_hash=method_config_hash, guarantee=guarantee, audit=audit,
        formal_guarantee=formal_guarantee,
        ledger={"event_seq": event_seq, "event_hash": events[event_seq].hash,
                "event_kind": events[event_seq].kind, "checkpoint": cp.to_dict()},
    )
    return sign(cert, ledger.keys.signing_key)


@dataclass
class CertificateCheck:
    ok: bool
    checks: dict[str, bool]
    message: str


def verify(cert: Certificate, *, ledger: Ledger | None = None, public_key: str | None = None) -> CertificateCheck:
    """Check the signature (against ``public_key`` when given, else the embedded key) and,
    with ``ledger``, that the event and checkpoint are in that ledger's verified chain."""
    checks: dict[str, bool] = {}
    key_hex = public_key or cert.public_key
    checks["trusted_key"] = public_key is None or public_key == cert.public_key
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(
            bytes.fromhex(cert.signature), cert.signed_bytes())
        checks["signature"] = True
    except (InvalidSignature, ValueError):
        checks["signature"] = False
    checks["checkpoint_covers_event"] = cert.ledger["event_seq"] <= cert.ledger["checkpoint"]["size"]
    if ledger is not None:
        from forget.ledger.chain import Checkpoint

        checks["same_ledger"] = ledger.ledger_id == cert.ledger_id
        try:
            checks["ledger_key"] = ledger.keys.public_key.hex() == cert.public_key
        except ForgetError:  # a verifier holding the database but not the key directory
            checks["ledger_key"] = cert.ledger["checkpoint"]["public_key"] == cert.public_key
        cp = Checkpoint.from_dict(cert.ledger["checkpoint"])
        report = ledger.verify(checkpoint=cp)
        checks["chain_and_checkpoint"] = report.ok
        ev = [e for e in ledger.events(cert.request_id) if e.seq == cert.ledger["event_seq"]]
        checks["event_in_chain"] = bool(ev) and ev[0].hash == cert.ledger["event_hash"]
    ok = all(checks.values())
    failed = [k for k, v in checks.items() if not v]
    msg = "certificate verifies" if ok else f"certificate does NOT verify: {', '.join(failed)}"
    return CertificateCheck(ok, checks, msg)
