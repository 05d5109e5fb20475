"""Deletion requests: the subject's identifiers, scope, legal ground; validation and normalisation.

A :class:`DeletionRequest` is validated when it is built, so a bad request never reaches the
ledger. Error messages say which field is wrong (``email #2``) but never echo its value, and
``repr`` redacts the identifiers, so a request can be logged safely.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from forget.ledger.errors import InvalidRequestError

# Art. 17(1) GDPR, points (a)-(f). Canonical form "17(1)(x)"; "x", "(x)", "art. 17(1)(x)" accepted.
GROUNDS: dict[str, str] = {
    "17(1)(a)": "the personal data are no longer necessary for the purposes they were collected for",
    "17(1)(b)": "the data subject withdraws consent and there is no other legal ground",
    "17(1)(c)": "the data subject objects under Art. 21(1) or 21(2)",
    "17(1)(d)": "the personal data have been unlawfully processed",
    "17(1)(e)": "erasure is required to comply with a legal obligation",
    "17(1)(f)": "the data were collected in relation to information society services to a child",
}

# Limits: generous for real requests, small enough that a request cannot bloat the ledger.
MAX_PAYLOAD_BYTES = 16 * 1024  # the whole request as JSON
MAX_IDENTIFIERS = 32
MAX_LEN = {"name": 200, "email": 254, "phone": 32, "id": 128, "scope": 128, "channel": 64}

_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_ID_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(?:\.[^@\s.]+)+")
_PHONE = re.compile(r"\+?[0-9 ().\-/]{5,32}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RESERVED_KINDS = ("name", "email", "phone")
# Request kinds are carried by the identifiers: a person has a name/email/phone/ids, a leaked
# secret is an id of its kind (``api_key``, ...), and a concept to erase from an image model
# (a likeness, an artist's style) is an id of this kind: ``other_ids=(("concept", "..."),)``.
CONCEPT_KIND = "concept"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_request_id() -> str:
    """A fresh opaque request id (used when the requester gives none)."""
    return f"req-{uuid.uuid4().hex}"


def parse_ground(value: str | None) -> str:
    """Return the canonical legal ground ``"17(1)(x)"`` for ``"x"``, ``"(x)"``, ``"Art. 17(1)(x)"``."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(
            "a legal ground is required: one of Art. 17(1)(a)-(f), e.g. --ground b")
    v = re.sub(r"[\s.]|^art", "", value.strip().lower())
    m = re.fullmatch(r"(?:17\(1\))?\(?([a-f])\)?", v)
    if not m:
        raise InvalidRequestError(
            "unknown legal ground: use one of a, b, c, d, e, f (Art. 17(1)(a)-(f) GDPR)")
    return f"17(1)({m.group(1)})"


def normalise(kind: str, value: str) -> str:
    """Normalised form of an identifier, used for the blind index and the leak check.

    NFKC and case folding everywhere; emails keep their punctuation, phones keep digits only,
    names collapse whitespace, other ids drop spaces and hyphens.
    """
    v = unicodedata.normalize("NFKC", value).strip()
    if kind == "email":
        return v.casefold()
    if kind == "phone":
        return re.sub(r"\D", "", v)
    if kind == "name":
        return " ".join(v.casefold().split())
    return re.sub(r"[\s\-]", "", v).casefold()


def _text(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidRequestError(f"{what} must be text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequestError(f"{what} is not valid UTF-8 text; re-encode the input as UTF-8") from None
    value = value.strip()
    if not value:
        raise InvalidRequestError(f"{what} is empty; remove it or give a value")
    if len(value) > limit:
        raise InvalidRequestError(f"{what} is too long (over {limit} characters)")
    if _CONTROL.search(value):
        raise InvalidRequestError(f"{what} contains control characters; remove them")
    return value


def _strings(values: Any, what: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        values = (values,)
    if not isinstance(values, Iterable):
        raise InvalidRequestError(f"{what} must be a list of text values")
    return tuple(values)


@dataclass(frozen=True)
class Identifiers:
    """A subject's identifiers. ``repr`` shows counts only, never values."""

    name: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    other_ids: tuple[tuple[str, str], ...] = ()  # (kind, value), e.g. ("national_id", "...")

    def items(self) -> list[tuple[str, str]]:
        """All identifiers as ``(kind, value)`` pairs, in a stable order."""
        out: list[tuple[str, str]] = [("name", self.name)] if self.name else []
        out += [("email", e) for e in self.emails] + [("phone", p) for p in self.phones]
        return out + list(self.other_ids)

    def counts(self) -> dict[str, int]:
        """How many identifiers of each kind (safe to record: no values)."""
        out: dict[str, int] = {}
        for kind, _ in self.items():
            out[kind] = out.get(kind, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (contains personal data: never log or store it in clear)."""
        return {"name": self.name, "emails": list(self.emails), "phones": list(self.phones),
                "ids": {k: v for k, v in self.other_ids}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Identifiers:
        """Inverse of :meth:`to_dict`."""
        return cls(name=d.get("name"), emails=tuple(d.get("emails", ())),
                   phones=tuple(d.get("phones", ())),
                   other_ids=tuple(sorted((k, v) for k, v in d.get("ids", {}).items())))

    def __repr__(self) -> str:
        return f"Identifiers(<{len(self.items())} redacted>)"


@dataclass(frozen=True)
class DeletionRequest:
    """A right-to-be-forgotten request as received; validated on construction.

    Attributes:
        request_id: the requester's idempotency key (opaque; a fresh one when not given).
        name, emails, phones, other_ids: the subject's identifiers (at least one).
        ground: legal ground, Art. 17(1)(a)-(f); stored as ``"17(1)(x)"``.
        models, datasets: the scope; empty means every registered model / dataset.
        received_at: when the request was received (timezone-aware; stored in UTC).
        channel: how it arrived (``api``, ``cli``, ``email``, ``web``...).
    """

    request_id: str = field(default_factory=new_request_id)
    name: str | None = field(default=None, repr=False)
    emails: tuple[str, ...] = field(default=(), repr=False)
    phones: tuple[str, ...] = field(default=(), repr=False)
    other_ids: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    ground: str | None = None
    models: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    received_at: datetime = field(default_factory=utcnow)
    channel: str = "api"

    def __post_init__(self) -> None:
        s = object.__setattr__
        if not isinstance(self.request_id, str) or not _REQUEST_ID.fullmatch(self.request_id):
            raise InvalidRequestError(
                "request id must be 1-128 characters of letters, digits and . _ : - "
                "(and must not be personal data)")
        name = None if self.name is None else _text(self.name, "name", MAX_LEN["name"])
        emails = tuple(_text(e, f"email #{i}", MAX_LEN["email"])
                       for i, e in enumerate(_strings(self.emails, "emails"), 1))
        for i, e in enumerate(emails, 1):
            if not _EMAIL.fullmatch(e):
                raise InvalidRequestError(f"email #{i} is malformed: expected local-part@domain.tld")
        phones = tuple(_text(p, f"phone #{i}", MAX_LEN["phone"])
                       for i, p in enumerate(_strings(self.phones, "phones"), 1))
        for i, p in enumerate(phones, 1):
            if not _PHONE.fullmatch(p) or not 5 <= len(re.sub(r"\D", "", p)) <= 15:
                raise InvalidRequestError(
                    f"phone #{i} is malformed: expected 5-15 digits, optionally with + ( ) - . /")
        other = self.other_ids.items() if isinstance(self.other_ids, Mapping) else self.other_ids
        ids: list[tuple[str, str]] = []
        for i, pair in enumerate(other or (), 1):
            if not (isinstance(pair, tuple | list) and len(pair) == 2):
                raise InvalidRequestError(f"other id #{i} must be a (kind, value) pair")
            kind, value = pair
            if not isinstance(kind, str) or not _ID_KIND.fullmatch(kind) or kind in _RESERVED_KINDS:
                raise InvalidRequestError(
                    f"other id #{i} has a bad kind: use lowercase letters, digits, underscores "
                    "(e.g. national_id), not name/email/phone")
            ids.append((kind, _text(value, f"other id #{i}", MAX_LEN["id"])))
        if not (name or emails or phones or ids):
            raise InvalidRequestError(
                "the request names no subject: give at least a name, an email, a phone or an id")
        if len(emails) + len(phones) + len(ids) + (1 if name else 0) > MAX_IDENTIFIERS:
            raise InvalidRequestError(f"too many identifiers (over {MAX_IDENTIFIERS}); split the request")
        models = tuple(_text(m, "model name", MAX_LEN["scope"]) for m in _strings(self.models, "models"))
        datasets = tuple(_text(d, "dataset name", MAX_LEN["scope"])
                         for d in _strings(self.datasets, "datasets"))
        if len(models) > 64 or len(datasets) > 64:
            raise InvalidRequestError("scope lists at most 64 models and 64 datasets")
        received = self.received_at
        if not isinstance(received, datetime) or received.tzinfo is None:
            raise InvalidRequestError("received_at must be a timezone-aware datetime (e.g. UTC)")
        s(self, "name", name)
        s(self, "emails", emails)
        s(self, "phones", phones)
        s(self, "other_ids", tuple(sorted(ids)))
        s(self, "ground", parse_ground(self.ground))
        s(self, "models", models)
        s(self, "datasets", datasets)
        s(self, "received_at", received.astimezone(UTC))
        s(self, "channel", _text(self.channel, "channel", MAX_LEN["channel"]))
        if len(json.dumps(self.to_dict(), ensure_ascii=False).encode()) > MAX_PAYLOAD_BYTES:
            raise InvalidRequestError(
                f"the request is too large (over {MAX_PAYLOAD_BYTES} bytes as JSON); shorten it")

    @property
    def identifiers(self) -> Identifiers:
        """The subject's identifiers."""
        return Identifiers(self.name, self.emails, self.phones, self.other_ids)

    def content(self) -> dict[str, Any]:
        """What idempotency compares: identifiers (normalised), ground and scope.

        The receipt time and channel are left out: a retried submission arrives later.
        """
        return {"identifiers": sorted([k, normalise(k, v)] for k, v in self.identifiers.items()),
                "ground": self.ground, "models": sorted(self.models),
                "datasets": sorted(self.datasets)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the same shape :meth:`from_dict` reads (contains personal data)."""
        return {"request_id": self.request_id, "subject": self.identifiers.to_dict(),
                "ground": self.ground, "scope": {"models": list(self.models),
                                                 "datasets": list(self.datasets)},
                "received_at": self.received_at.isoformat(), "channel": self.channel}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeletionRequest:
        """Build from a dict: ``{"request_id", "subject": {"name", "emails", "phones", "ids"},
        "ground", "scope": {"models", "datasets"}, "received_at", "channel"}``."""
        if not isinstance(d, Mapping):
            raise InvalidRequestError("a request must be a JSON object")
        top = ("request_id", "subject", "ground", "scope", "received_at", "channel")
        unknown = set(d) - set(top)
        if unknown:
            raise InvalidRequestError(
                f"the request has unknown field(s) {_names(unknown, top)}; "
                f"allowed: {', '.join(top)} (see REQUEST.json in the README)")
        subject = d.get("subject") or {}
        scope = d.get("scope") or {}
        if not isinstance(subject, Mapping) or not isinstance(scope, Mapping):
            raise InvalidRequestError("'subject' and 'scope' must be JSON objects")
        sub = ("name", "emails", "phones", "ids")
        bad = set(subject) - set(sub)
        if bad:
            raise InvalidRequestError(
                f"the subject has unknown field(s) {_names(bad, sub)}; allowed: "
                f"{', '.join(sub)} (see REQUEST.json in the README)")
        ids = subject.get("ids") or {}
        if not isinstance(ids, Mapping):
            raise InvalidRequestError("subject 'ids' must be an object of kind -> value")
        kw: dict[str, Any] = {}
        if d.get("request_id") is not None:
            kw["request_id"] = d["request_id"]
        if d.get("received_at") is not None:
            try:
                kw["received_at"] = datetime.fromisoformat(str(d["received_at"]))
            except ValueError:
                raise InvalidRequestError("received_at must be an ISO 8601 time") from None
        return cls(name=subject.get("name"), emails=subject.get("emails") or (),
                   phones=subject.get("phones") or (), other_ids=tuple(ids.items()),
                   ground=d.get("ground"), models=scope.get("models") or (),
                   datasets=scope.get("datasets") or (), channel=d.get("channel") or "api", **kw)

    @classmethod
    def from_json(cls, data: bytes | str) -> DeletionRequest:
        """Parse a request from JSON text or UTF-8 bytes (size-checked before parsing)."""
        if isinstance(data, bytes):
            if len(data) > MAX_PAYLOAD_BYTES:
                raise InvalidRequestError(
                    f"the request is too large (over {MAX_PAYLOAD_BYTES} bytes); shorten it")
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidRequestError("the request is not valid UTF-8; re-encode it as UTF-8") from None
        if len(data.encode("utf-8", "surrogatepass")) > MAX_PAYLOAD_BYTES:
            raise InvalidRequestError(
                f"the request is too large (over {MAX_PAYLOAD_BYTES} bytes); shorten it")
        try:
            obj = json.loads(data)
        except json.JSONDecodeError as e:
            raise InvalidRequestError(f"the request is not valid JSON (line {e.lineno}, column {e.colno})") from None
        return cls.from_dict(obj)

    def __repr__(self) -> str:
        return (f"DeletionRequest(request_id={self.request_id!r}, "
                f"identifiers=<{len(self.identifiers.items())} redacted>, ground={self.ground!r}, "
                f"models={self.models!r}, datasets={self.datasets!r}, "
                f"received_at={self.received_at.isoformat()!r}, channel={self.channel!r})")


_FIELD_LIKE = re.compile(r"[a-z_][a-z0-9_]{0,31}")


def _names(unknown: set, allowed: tuple[str, ...]) -> str:
    """Unknown field names for an error message, with a "did you mean" where one is close.

    Only names shaped like field names (lower-case letters, digits, _) are shown: a key that
    is not (e.g. a value typed where a key belongs) could be personal data, so it is counted.
    """
    import difflib

    shown, hidden = [], 0
    for k in sorted(map(str, unknown)):
        if not _FIELD_LIKE.fullmatch(k):
            hidden += 1
            continue
        near = difflib.get_close_matches(k, allowed, n=1)
        shown.append(repr(k) + (f" (did you mean {near[0]!r}?)" if near else ""))
    if hidden:
        shown.append(f"{hidden} more not shown (not shaped like a field name)")
    return ", ".join(shown)
