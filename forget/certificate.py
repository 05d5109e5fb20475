"""The signed deletion certificate.

A certificate states, for one request id (never an identifier): the model before and after
(registry versions and sha256 of the weights), the method and its config hash, what the method
guarantees, the audit's verdict and the sha256 of its report, and where the request's audit
event sits in the ledger's hash chain, with a signed checkpoint that covers it. It is signed
with the ledger's Ed25519 key over its RFC 8785 canonical JSON.

Trust comes from outside the certificate. The ``public_key`` field only says which key signed;
anyone can re-sign an edited certificate with a fresh key and put that key there. So
:func:`verify` checks the signature against a key the verifier already trusts: a key pinned
from ``forget ledger export-public-key`` (``--public-key``), or the key material of the ledger
itself (``--ledger`` with its key directory). Without one the answer is "signature valid,
signer NOT trusted", which is not a verification. With the ledger, the certificate's event and
checkpoint are also checked against the ledger's verified hash chain.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from forget.errors import DataNotFoundError, InvalidInputError, MalformedDataError

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
        """Write the certificate as JSON (for a verifier: it carries no personal data)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())
        return path

    @classmethod
    def read(cls, path: Path | str) -> Certificate:
        """Read and validate a certificate file (opened read-only; never modified)."""
        path = Path(path)
        if not path.is_file():
            raise DataNotFoundError(f"no certificate at {path}: check the path")
        try:
            data = json.loads(path.read_bytes())
        except (ValueError, UnicodeDecodeError) as e:
            raise MalformedDataError(
                f"{path} is not a valid certificate (not JSON: {type(e).__name__})") from None
        return cls.from_dict(data, where=str(path))

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "the certificate") -> Certificate:
        """Validate the shape of a certificate; :class:`MalformedDataError` naming what is wrong."""
        if not isinstance(data, dict):
            raise MalformedDataError(f"{where} is not a deletion certificate: expected a JSON "
                                     f"object, found a {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise MalformedDataError(f"{where} is not a deletion certificate (format field)")
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING
                    and f.default_factory is MISSING}
        unknown, missing = sorted(set(data) - names), sorted(required - set(data))
        if unknown or missing:
            raise MalformedDataError(
                f"{where} is not a valid certificate: " + "; ".join(
                    x for x in (f"missing field(s) {missing}" if missing else "",
                                f"unknown field(s) {unknown}" if unknown else "") if x))
        types = {"request_id": str, "ledger_id": str, "issued_at": str, "method": str,
                 "method_config_hash": str, "guarantee": str, "public_key": str,
                 "signature": str, "model_before": dict, "model_after": dict, "audit": dict,
                 "ledger": dict}
        bad = sorted(k for k, t in types.items() if k in data and not isinstance(data[k], t))
        led = data.get("ledger", {})
        if isinstance(led, dict) and not (
                isinstance(led.get("event_seq"), int) and isinstance(led.get("event_hash"), str)
                and isinstance(led.get("checkpoint"), dict)):
            bad.append("ledger (event_seq, event_hash, checkpoint)")
        if bad:
            raise MalformedDataError(f"{where} is not a valid certificate: wrong type in {bad}")
        return cls(**data)


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


# The test signing key once committed to the repository by mistake (pgk2/signing.pub, since
# removed). Its private half is public: nothing signed by it is trusted, whoever pins it.
COMPROMISED_KEYS = frozenset({"e5ce8bd042fd62819c0253c495144b9b4900edb4d377a06ad615bfd78cbc0fc7"})
PUBLIC_KEY_FORMAT = "forget-suite.ledger-public-key"


@dataclass
class CertificateCheck:
    """The outcome of :func:`verify`: ``ok`` only with a trusted key and every check holding."""

    ok: bool
    checks: dict[str, bool]
    message: str
    trusted: bool = False


@dataclass(frozen=True)
class TrustedKey:
    """A public key the verifier trusts (pinned), and the ledger it belongs to when known."""

    public_key: str  # hex, 32 bytes
    ledger_id: str | None = None
    source: str = "given"


def parse_public_key(value: str | bytes | Path, *, source: str = "--public-key") -> TrustedKey:
    """A pinned key: 64 hex characters, or a file holding them, the JSON of
    ``forget ledger export-public-key``, or an Ed25519 public key in PEM."""
    from cryptography.hazmat.primitives import serialization

    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    path = Path(text) if len(text) < 4096 and "\n" not in text else None
    if path is not None and path.is_file():
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidInputError(f"cannot read the public key file ({type(e).__name__})") from None
    text = text.strip()
    ledger_id = None
    if text.startswith("{"):
        try:
            d = json.loads(text)
            if d.get("format") != PUBLIC_KEY_FORMAT:
                raise ValueError
            text, ledger_id = str(d["public_key"]), str(d["ledger_id"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InvalidInputError(
                f"{source}: not a public key file written by `forget ledger export-public-key`"
            ) from None
    elif text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise TypeError(type(key).__name__)
            text = key.public_bytes_raw().hex()
        except (ValueError, TypeError, AttributeError):
            raise InvalidInputError(f"{source}: not an Ed25519 public key in PEM") from None
    try:
        raw = bytes.fromhex(text)
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise InvalidInputError(
            f"{source}: expected an Ed25519 public key (64 hex characters, or a file from "
            "`forget ledger export-public-key`), or an existing file") from None
    return TrustedKey(raw.hex(), ledger_id, source)


def _signature_ok(key_hex: str, signature: str, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(
            bytes.fromhex(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify(cert: Certificate, *, ledger: Ledger | None = None,
           public_key: str | TrustedKey | None = None) -> CertificateCheck:
    """Check ``cert`` against a trusted key and, with ``ledger``, against its hash chain.

    The trusted key is ``public_key`` (a pinned key, see :func:`parse_public_key`) or, with
    ``ledger``, the public half of the ledger's own signing key (its key directory or
    environment; never the key recorded in the database, nor the one in the certificate).
    Without a trusted key the result is never ``ok``: at best "signature valid, signer NOT
    trusted".
    """
    from forget.ledger.errors import KeyMaterialError

    trusted = parse_public_key(public_key) if isinstance(public_key, str) else public_key
    if trusted is None and ledger is not None:
        try:
            trusted = TrustedKey(ledger.keys.public_key.hex(), ledger.ledger_id, "ledger keys")
        except KeyMaterialError:  # a verifier with the database but not the key directory
            trusted = None
    body, cp_d = cert.signed_bytes(), cert.ledger["checkpoint"]
    checks: dict[str, bool] = {}
    if trusted is None:
        valid = _signature_ok(cert.public_key, cert.signature, body)
        msg = ("signature valid, signer NOT trusted: pin the ledger's key with --public-key "
               "(from `forget ledger export-public-key`) or give --ledger with --key-dir"
               if valid else "certificate does NOT verify: the signature is invalid")
        return CertificateCheck(False, {"signature_valid": valid, "trusted_key": False}, msg)
    checks["trusted_key"] = trusted.public_key not in COMPROMISED_KEYS
    checks["signature"] = _signature_ok(trusted.public_key, cert.signature, body)
    checks["signed_by_trusted_key"] = cert.public_key == trusted.public_key
    if trusted.ledger_id is not None:
        checks["same_ledger"] = cert.ledger_id == trusted.ledger_id
    from forget.ledger.chain import Checkpoint
    from forget.ledger.errors import LedgerIntegrityError

    try:
        cp = Checkpoint.from_dict(cp_d)
    except LedgerIntegrityError:
        raise MalformedDataError("the certificate's checkpoint is malformed") from None
    checks["checkpoint_signature"] = cp.signature_ok(bytes.fromhex(trusted.public_key))
    checks["checkpoint_of_this_ledger"] = cp.ledger_id == cert.ledger_id
    checks["checkpoint_covers_event"] = 0 < cert.ledger["event_seq"] <= cp.size
    if ledger is not None:
        checks["same_ledger"] = ledger.ledger_id == cert.ledger_id
        checks["chain_and_checkpoint"] = ledger.verify(checkpoint=cp).ok
        ev = [e for e in ledger.events(cert.request_id) if e.seq == cert.ledger["event_seq"]]
        checks["event_in_chain"] = bool(ev) and ev[0].hash == cert.ledger["event_hash"]
    ok = all(checks.values())
    failed = [k for k, v in checks.items() if not v]
    msg = ("certificate verifies (signed by the trusted key"
           + (", event found in the ledger's verified chain)" if ledger is not None else ")")
           if ok else f"certificate does NOT verify: {', '.join(failed)}")
    return CertificateCheck(ok, checks, msg, trusted=True)


def public_key_document(ledger: Ledger) -> dict[str, str]:
    """What ``forget ledger export-public-key`` writes: the key a verifier pins."""
    return {"format": PUBLIC_KEY_FORMAT, "algorithm": "Ed25519", "ledger_id": ledger.ledger_id,
            "public_key": ledger.keys.public_key.hex()}
