"""Key material and the cryptography of the ledger.

Two long-lived keys belong to a ledger:

- the **ledger secret** (32 random bytes). Sub-keys are derived from it with HKDF-SHA256:
  the blind-index key (HMAC-SHA256 of normalised identifiers, for lookup), the wrapping key
  (AES-GCM, wraps each request's data key), and the key of the idempotency fingerprint.
- the **signing key** (Ed25519) that signs checkpoints.

Where they live, in this order of precedence:

1. ``key_dir`` given to :class:`~forget.ledger.Ledger` (``--key-dir`` on the command line):
   files ``ledger.secret`` (hex) and ``signing.key`` (PKCS#8 PEM), created mode 0600 in a
   0700 directory when a new ledger is created; ``signing.pub`` (hex) beside them.
2. environment variables ``FORGET_LEDGER_SECRET`` (64 hex characters) and
   ``FORGET_SIGNING_KEY`` (64 hex characters: the raw Ed25519 private key; or PEM text).
3. for a SQLite file ``L``: a directory under the key home (``$FORGET_KEY_HOME``, else
   ``~/.config/forget/keys``), named after ``L``'s absolute path (created as in 1); never
   beside the database (see :mod:`forget.keys`).
   PostgreSQL needs 1 or 2: a database server has no natural place for files.

Each request's identifiers are encrypted (AES-256-GCM, the request id as associated data)
under a fresh per-subject data key; the data key is stored wrapped under the wrapping key.
Completion deletes the wrapped data key: crypto-shredding.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from forget.ledger.chain import canonical
from forget.ledger.errors import KeyMaterialError, ShreddedError

log = logging.getLogger(__name__)

ENV_SECRET = "FORGET_LEDGER_SECRET"
ENV_SIGNING = "FORGET_SIGNING_KEY"
SECRET_FILE = "ledger.secret"
SIGNING_FILE = "signing.key"
PUBLIC_FILE = "signing.pub"
_HOW = (f"keep them in a key directory (--key-dir / key_dir=, files {SECRET_FILE} and "
        f"{SIGNING_FILE}) or set {ENV_SECRET} and {ENV_SIGNING}; see forget/ledger/README.md")


def _derive(secret: bytes, label: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=f"forget-ledger/{label}".encode()).derive(secret)


@dataclass(frozen=True, repr=False)
class KeyMaterial:
    """The ledger secret and signing key, with the sub-keys derived from the secret."""

    secret: bytes
    signing_key: Ed25519PrivateKey
    source: str = "memory"
    _sub: dict[str, bytes] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if len(self.secret) < 32:
            raise KeyMaterialError(f"the ledger secret must be at least 32 bytes; {_HOW}")
        for label in ("index", "wrap", "check", "content"):
            self._sub[label] = _derive(self.secret, label)

    def __repr__(self) -> str:  # never print key bytes
        return f"KeyMaterial(source={self.source!r})"

    @classmethod
    def generate(cls) -> KeyMaterial:
        """Fresh random keys (kept in memory until saved)."""
        return cls(secrets.token_bytes(32), Ed25519PrivateKey.generate(), "memory")

    @property
    def public_key(self) -> bytes:
        """Raw Ed25519 public key (32 bytes)."""
        return self.signing_key.public_key().public_bytes_raw()

    def fingerprint(self) -> str:
        """A check value recorded in the ledger to recognise its own secret (reveals nothing)."""
        return hmac.new(self._sub["check"], b"forget-ledger key check", hashlib.sha256).hexdigest()[:32]

    def blind_index(self, kind: str, normalised: str) -> str:
        """HMAC-SHA256 of ``kind:normalised`` under the blind-index key (hex)."""
        msg = f"{kind}\x00{normalised}".encode()
        return hmac.new(self._sub["index"], msg, hashlib.sha256).hexdigest()

    def content_fingerprint(self, content: dict[str, Any]) -> str:
        """Keyed fingerprint of a request's content, for idempotency (hex)."""
        return hmac.new(self._sub["content"], canonical(content), hashlib.sha256).hexdigest()

    def wrap(self, data_key: bytes, request_id: str) -> bytes:
        """Encrypt a data key under the wrapping key; bound to ``request_id``."""
        return seal(self._sub["wrap"], data_key, request_id)

    def unwrap(self, wrapped: bytes, request_id: str) -> bytes:
        """Inverse of :meth:`wrap`."""
        try:
            return open_sealed(self._sub["wrap"], wrapped, request_id)
        except ShreddedError:
            raise KeyMaterialError(
                f"a data key does not open under this ledger secret: the secret is wrong; {_HOW}"
            ) from None

    def to_env(self) -> dict[str, str]:
        """The two environment variables that carry these keys (for PostgreSQL deployments)."""
        raw = self.signing_key.private_bytes_raw()
        return {ENV_SECRET: self.secret.hex(), ENV_SIGNING: raw.hex()}

    def save(self, key_dir: Path | str) -> Path:
        """Write the keys into ``key_dir`` (0700), files 0600; never overwrites a file."""
        d = Path(key_dir)
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        pem = self.signing_key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption())
        _write_new(d / SECRET_FILE, self.secret.hex().encode() + b"\n", 0o600)
        _write_new(d / SIGNING_FILE, pem, 0o600)
        _write_new(d / PUBLIC_FILE, self.public_key.hex().encode() + b"\n", 0o644)
        return d


def seal(key: bytes, plaintext: bytes, aad: str) -> bytes:
    """AES-256-GCM: ``nonce (12) || ciphertext+tag``, ``aad`` authenticated."""
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad.encode())


def open_sealed(key: bytes, sealed: bytes, aad: str) -> bytes:
    """Inverse of :func:`seal`; :class:`ShreddedError` when it does not open."""
    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], aad.encode())
    except (InvalidTag, ValueError):
        raise ShreddedError("the ciphertext does not open under this key") from None


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` atomically with ``mode``; leave an existing file alone."""
    from forget.keys import write_new_key

    write_new_key(path, data, mode=mode)


def _parse_signing(text: str, where: str) -> Ed25519PrivateKey:
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError("not Ed25519")
            return key
        raw = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
        return Ed25519PrivateKey.from_private_bytes(raw)
    except ValueError:
        raise KeyMaterialError(
            f"the signing key in {where} is unreadable: expected an Ed25519 private key as 64 hex "
            f"characters or PKCS#8 PEM; {_HOW}") from None


def _parse_secret(text: str, where: str) -> bytes:
    text = text.strip()
    try:
        raw = bytes.fromhex(text) if len(text) % 2 == 0 and len(text) >= 64 else b""
        if not raw:
            raw = base64.b64decode(text, validate=True)
    except ValueError:
        raw = b""
    if len(raw) < 32:
        raise KeyMaterialError(
            f"the ledger secret in {where} is unreadable: expected at least 32 bytes as hex "
            f"(64 characters); {_HOW}")
    return raw


def from_env() -> KeyMaterial | None:
    """Keys from ``FORGET_LEDGER_SECRET`` / ``FORGET_SIGNING_KEY``; None if neither is set."""
    s, k = os.environ.get(ENV_SECRET), os.environ.get(ENV_SIGNING)
    if not s and not k:
        return None
    if not (s and k):
        missing = ENV_SIGNING if s else ENV_SECRET
        raise KeyMaterialError(f"{missing} is not set while its partner is: set both; {_HOW}")
    return KeyMaterial(_parse_secret(s, ENV_SECRET), _parse_signing(k, ENV_SIGNING), "environment")


def from_dir(key_dir: Path | str, *, create: bool) -> KeyMaterial:
    """Keys from ``key_dir``; with ``create``, generate them when the directory holds none."""
    d = Path(key_dir)
    secret_f, signing_f = d / SECRET_FILE, d / SIGNING_FILE
    if create and not secret_f.exists() and not signing_f.exists():
        KeyMaterial.generate().save(d)
    missing = [f.name for f in (secret_f, signing_f) if not f.exists()]
    if missing:
        raise KeyMaterialError(
            f"the ledger's key material is missing ({', '.join(missing)} not found in its key "
            "directory). Without the secret, identifiers cannot be looked up or decrypted and "
            f"checkpoints cannot be signed: restore the key files from your backup; {_HOW}")
    for f in (secret_f, signing_f):
        if f.stat().st_mode & 0o077:
            log.warning("ledger key file %s is readable by other users; chmod 600 it", f.name)
    try:
        secret_text, signing_text = secret_f.read_text(), signing_f.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise KeyMaterialError(f"cannot read the ledger key files ({type(e).__name__}); {_HOW}") from None
    return KeyMaterial(_parse_secret(secret_text, SECRET_FILE),
                       _parse_signing(signing_text, SIGNING_FILE), f"key directory {d}")
