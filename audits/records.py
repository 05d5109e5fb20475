"""Plain record types of an audit, and masking of identifiers for reports and messages.

A record is a text with identifier spans: ``{"record_id", "text", "spans": [{kind, start,
end}]}`` as JSON rows, or :class:`Record`. Nothing here knows where records come from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from audits.errors import AuditInputError


@dataclass(frozen=True)
class Span:
    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Record:
    """One text and the spans of the identifiers in it."""

    record_id: str
    text: str
    spans: tuple[Span, ...] = ()

    def value(self, span: Span) -> str:
        return self.text[span.start: span.end]


def as_record(row: Record | Mapping) -> Record:
    """Accept a :class:`Record` or a JSON row; validates spans without echoing the text."""
    if isinstance(row, Record):
        return row
    try:
        rid, text = str(row["record_id"]), row["text"]
        spans = tuple(Span(str(s["kind"]), int(s["start"]), int(s["end"]))
                      for s in row.get("spans", ()))
    except (KeyError, TypeError, ValueError) as e:
        raise AuditInputError(
            f"a record needs record_id, text and spans of kind/start/end (missing {e})") from None
    if not isinstance(text, str):
        raise AuditInputError(f"record {rid}: 'text' must be a string")
    for s in spans:
        if not 0 <= s.start < s.end <= len(text):
            raise AuditInputError(f"record {rid}: a {s.kind} span lies outside its text")
    return Record(rid, text, tuple(sorted(spans, key=lambda s: s.start)))


def as_records(rows: Iterable[Record | Mapping]) -> list[Record]:
    return [as_record(r) for r in rows]


def identifiers(records: Iterable[Record], kinds: Iterable[str] | None = None) -> list[tuple[str,
                                                                                           str]]:
    """Unique ``(kind, value)`` pairs in the records' spans, in order of first appearance."""
    wanted = set(kinds) if kinds is not None else None
    seen: dict[tuple[str, str], None] = {}
    for r in records:
        for s in r.spans:
            if wanted is None or s.kind in wanted:
                seen.setdefault((s.kind, r.value(s)), None)
    return list(seen)


_DIGIT_KINDS = {"phone", "national_id", "canary", "ip_address"}


def mask(value: str, kind: str) -> str:
    """A masked form safe for reports: digits kinds keep their format and last two digits
    ("(•••) •••-••76"); an email keeps its top-level domain; other kinds show only their length.
    """
    if kind in _DIGIT_KINDS or re.fullmatch(r"[\d\W]+", value):
        digits = [i for i, c in enumerate(value) if c.isdigit()]
        keep = set(digits[-2:]) if len(digits) > 6 else set()
        return "".join(c if (not c.isalnum() or i in keep) else "•" for i, c in enumerate(value))
    if kind == "email" and "@" in value:
        tld = value.rsplit(".", 1)[-1] if "." in value.rsplit("@", 1)[1] else ""
        return "•••@•••." + tld if tld else "•••@•••"
    return f"[{kind}, {len(value)} chars]"


def scrub(text: str, secrets: Iterable[tuple[str, str]]) -> str:
    """Replace every occurrence of each ``(kind, value)`` in ``text`` by ``[kind]``."""
    for kind, value in sorted(secrets, key=lambda kv: -len(kv[1])):
        if value:
            text = text.replace(value, f"[{kind}]")
    return text
