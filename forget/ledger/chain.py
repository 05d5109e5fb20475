"""The hash chain and signed checkpoints, as pure functions.

Event ``n`` (1-based) is stored as its canonical JSON bytes ``b_n`` (RFC 8785) and the hash
``h_n = sha256(h_{n-1} || b_n)`` with ``h_0`` = 32 zero bytes. Each body carries its own
``seq`` so a moved event is caught even where its bytes are intact. A checkpoint signs
``(ledger id, size, head hash, time)`` with Ed25519; kept outside the database it catches
truncation and a chain rewritten consistently from some point on.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from forget.errors import InvalidInputError
from forget.ledger.errors import LedgerIntegrityError

GENESIS = bytes(32)
_encoder = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                            allow_nan=False)
# The C encoder built once (JSONEncoder.encode rebuilds it on every call): compact, sorted,
# UTF-8 text as is, NaN refused; unknown types raise TypeError.
_c_encode = (json.encoder.c_make_encoder({}, None, json.encoder.encode_basestring, None, ":",
                                         ",", True, False, False)
             if json.encoder.c_make_encoder is not None else None)


_str = json.encoder.encode_basestring  # a JSON string literal, UTF-8 kept as is


def _dumps(obj: Any) -> str:
    if _c_encode is None:  # no C accelerator (e.g. PyPy)
        return _encoder.encode(obj)
    return "".join(_c_encode(obj, 0))


# Numbers the fast path must not emit itself: a float (fraction or exponent) or an integer of
# 16+ digits (perhaps beyond 2**53). In compact JSON a number follows '":' (an object value)
# or '[' / ',' (an array element). Object values are checked with a literal-prefixed regex
# (fast); arrays only when a digit or '-' follows '[' or ',' at all, found with C-speed
# translate and substring search. A match inside a string is harmless: that event just takes the
# exact path. (Times such as "T10:00:00.5Z" never match: their ':' follows a digit.)
_VALUE_NUM = re.compile(r'":-?(?:\d+[.eE]|\d{16})')
_ARRAY_NUM = re.compile(r"[\[,]-?(?:\d+[.eE]|\d{16})")
# digits and '-' -> '0', '[' -> ',': then ",0" appears iff a number may start an array element
_ARRAY_MAP = bytes.maketrans(b"123456789-[", b"0000000000,")


def _fast_text(obj: Any) -> str | None:
    """Compact sorted JSON of ``obj`` when it is already RFC 8785, else None."""
    try:
        text = _dumps(obj)
    except (TypeError, ValueError, RecursionError):
        return None
    if not text.isascii() or _VALUE_NUM.search(text):
        return None
    if b",0" in text.encode("ascii").translate(_ARRAY_MAP) and _ARRAY_NUM.search(text):
        return None
    return text


def canonical_event(seq: int, at: str, kind: str, request: str | None,
                    data: Mapping[str, Any]) -> bytes:
    """``canonical({"seq", "at", "kind", "request", "data"})``, the envelope written directly.

    The envelope's keys are fixed, so their sorted order is too (at, data, kind, request, seq);
    only ``data`` goes through the encoder. Falls back to :func:`canonical` when any part is
    not simple (the property tests check both agree).
    """
    text = _fast_text(data)
    if (text is None or type(seq) is not int or not 0 <= seq < 10**15
            or not (at.isascii() and kind.isascii() and (request is None or request.isascii()))):
        return canonical({"seq": seq, "at": at, "kind": kind, "request": request, "data": data})
    req = "null" if request is None else _str(request)
    return f'{{"at":{_str(at)},"data":{text},"kind":{_str(kind)},"request":{req},"seq":{seq}}}'.encode("ascii")


def canonical(obj: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of ``obj`` (keys must be text).

    Fast path: compact sorted ``json.dumps`` output is already RFC 8785 when it is ASCII
    (key order by UTF-16 code units equals code point order there) and holds no float and no
    integer beyond 2**53 (ECMAScript number formatting differs from Python's for floats).
    Anything else goes through ``rfc8785.dumps``. The property tests check both agree.
    """
    text = _fast_text(obj)
    return rfc8785.dumps(obj) if text is None else text.encode("ascii")


def chain_hash(prev: bytes, body: bytes) -> bytes:
    """``sha256(prev || body)``."""
    return hashlib.sha256(prev + body).digest()


@dataclass(frozen=True)
class ChainResult:
    """Outcome of walking a chain.

    Attributes:
        ok: no break found.
        size: number of events read.
        head: hex hash after the last good event.
        first_bad: 1-based position of the first broken event, or None.
        message: what was found, in words.
        hashes: recomputed hex hash at each requested position (for checkpoints).
        last_state: for each request, ``(seq, state)`` of its last state-changing event.
        last_head: for each model line, ``(seq, version)`` of its last head event.
    """

    ok: bool
    size: int
    head: str
    first_bad: int | None
    message: str
    hashes: dict[int, str]
    last_state: dict[str, tuple[int, str]]
    last_head: dict[str, tuple[int, str]] = field(default_factory=dict)


def walk(rows: Iterable[tuple[int, str | bytes, bytes | str]], *,
         want: Iterable[int] = ()) -> ChainResult:
    """Verify ``(seq, body, stored hash)`` rows given in ``seq`` order (hash: bytes or hex).

    Stops at the first break: a gap in ``seq`` (deleted event), a body whose own ``seq``
    differs from its position (moved event), or a hash that does not chain (edited,
    reordered or inserted event). ``want`` asks for the recomputed hash at those sizes.
    """
    want = set(want)
    hashes: dict[int, str] = {0: GENESIS.hex()} if 0 in want else {}
    last_state: dict[str, tuple[int, str]] = {}
    last_head: dict[str, tuple[int, str]] = {}
    prev, prev_prev, n = GENESIS, GENESIS, 0
    sha = hashlib.sha256
    loads = json.loads
    for seq, body, stored in rows:
        expected = n + 1
        if seq != expected:
            return ChainResult(False, n, prev.hex(), expected,
                               f"event {expected} is missing (deleted): the chain jumps from "
                               f"{n} to {seq}", hashes, last_state)
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        if type(stored) is not bytes:
            try:
                stored = bytes.fromhex(stored) if isinstance(stored, str) else bytes(stored)
            except (TypeError, ValueError):
                stored = b""
        h = sha(prev + raw).digest()
        if h != stored:
            if n >= 1 and sha(prev_prev + raw).digest() == stored:
                return ChainResult(False, n, prev.hex(), n,
                                   f"event {n} was inserted: event {expected} chains from the "
                                   "event before it", hashes, last_state)
            return ChainResult(False, n, prev.hex(), expected,
                               f"event {expected} does not match its hash: it was edited, "
                               "moved or inserted", hashes, last_state)
        try:
            event = loads(raw)
            own_seq = event["seq"]
        except (ValueError, KeyError, TypeError):
            return ChainResult(False, n, prev.hex(), expected,
                               f"event {expected} is not a ledger event (unreadable JSON)",
                               hashes, last_state)
        if own_seq != seq:
            return ChainResult(False, n, prev.hex(), expected,
                               f"event {expected} carries position {own_seq}: events were "
                               "reordered", hashes, last_state)
        data = event.get("data")
        if isinstance(data, dict) and "to" in data and event.get("request"):
            last_state[event["request"]] = (seq, data["to"])
        head = data.get("head") if isinstance(data, dict) else None
        if isinstance(head, dict) and isinstance(head.get("line"), str):
            last_head[head["line"]] = (seq, str(head.get("to")))
        prev_prev, prev, n = prev, h, expected
        if n in want:
            hashes[n] = h.hex()
    return ChainResult(True, n, prev.hex(), None, f"{n} events, chain intact", hashes, last_state,
                       last_head)


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: ledger ``ledger_id`` had ``size`` events with head ``head`` at ``time``.

    ``public_key`` and ``signature`` are hex. The signed bytes are the RFC 8785 JSON of
    ``{"ledger", "size", "head", "time", "version"}``.
    """

    ledger_id: str
    size: int
    head: str
    time: str
    public_key: str
    signature: str
    version: int = 1

    def signed_bytes(self) -> bytes:
        """The exact bytes the signature covers."""
        return rfc8785.dumps({"ledger": self.ledger_id, "size": self.size, "head": self.head,
                              "time": self.time, "version": self.version})

    @classmethod
    def sign(cls, key: Ed25519PrivateKey, *, ledger_id: str, size: int, head: str,
             time: str) -> Checkpoint:
        """Sign a checkpoint with ``key``."""
        pub = key.public_key().public_bytes_raw().hex()
        unsigned = cls(ledger_id, size, head, time, pub, "")
        return cls(ledger_id, size, head, time, pub, key.sign(unsigned.signed_bytes()).hex())

    def signature_ok(self, public_key: bytes | None = None) -> bool:
        """Whether the signature verifies under ``public_key`` (default: the one it carries)."""
        try:
            pub = Ed25519PublicKey.from_public_bytes(public_key or bytes.fromhex(self.public_key))
            pub.verify(bytes.fromhex(self.signature), self.signed_bytes())
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the exported file holds)."""
        return asdict(self)

    def write(self, path: Path | str | os.PathLike[str]) -> Path:
        """Write to ``path`` as JSON (keep it outside the database: that is its value)."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        except OSError as e:
            raise InvalidInputError(
                f"cannot write the checkpoint file ({type(e).__name__}: {e.strerror}); choose a "
                "writable --out path") from None
        return path

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Checkpoint:
        """Inverse of :meth:`to_dict`; raises :class:`LedgerIntegrityError` when malformed."""
        try:
            cp = cls(str(d["ledger_id"]), int(d["size"]), str(d["head"]), str(d["time"]),
                     str(d["public_key"]), str(d["signature"]), int(d.get("version", 1)))
        except (KeyError, TypeError, ValueError):
            raise LedgerIntegrityError(
                "the checkpoint is malformed: expected ledger_id, size, head, time, public_key, "
                "signature (write one with `forget ledger checkpoint`)") from None
        return cp

    @classmethod
    def read(cls, path: Path | str | os.PathLike[str]) -> Checkpoint:
        """Read a checkpoint file written by :meth:`write`."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as e:
            raise LedgerIntegrityError(
                f"cannot read the checkpoint file ({type(e).__name__}); pass a file written by "
                "`forget ledger checkpoint`") from None
