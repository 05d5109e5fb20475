"""Scoping any text corpus, without ground truth; the spans found become the audit's.

:func:`scope_text_records` finds the records of a :class:`~forget.corpus.TextCorpus` that
mention a request's identifiers, as :func:`forget.workflow.scope.scope_records` does for the
generator's corpus: a throwaway ``guardrails.ForgottenIndex`` (keyed hashes of the
identifiers' normalised forms and name variants) runs ``find`` on each record. With
``index_dir`` (a :mod:`forget.corpus.index` built by ``forget corpus index``) only the
records the index names as candidates are read and checked, which finds exactly the same
records; without it, every record is checked in Arrow batches.

For each record found, the returned :class:`~forget.workflow.scope.Scope` carries spans
(kind, start, end; never values): the identifiers' matches (``name``, ``email``, ``phone``,
and an other id under its request kind, e.g. ``national_id``), then the personal data
Presidio's offline recognizers see in the same record (:data:`PRESIDIO_KINDS` maps its
entity types to the audit's kinds). A Presidio span overlapping an identifier's is dropped;
of overlapping Presidio spans the longest (then highest-scoring) is kept.
:func:`audit_records` turns them into the audit's member records, so ``audits.run_audit``
and its twins (``audits.twins.make_twins``: every span replaced by a same-format fake) work
on a corpus with no ground truth.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forget.corpus.load import Corpus
from forget.corpus.text import TextCorpus, TextRecord
from forget.errors import InvalidInputError, UnsupportedCorpusError
from forget.workflow.scope import Scope, index_mapping

if TYPE_CHECKING:
    from guardrails import ForgottenIndex, Guard, IndexMatch

# Presidio entity type -> the audit's span kind (audits.twins.FakeMaker makes a fake of each).
PRESIDIO_KINDS = {
    "PERSON": "name", "EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone",
    "US_SSN": "national_id", "US_ITIN": "national_id", "UK_NHS": "national_id",
    "US_PASSPORT": "national_id", "US_DRIVER_LICENSE": "national_id",
    "LOCATION": "address", "DATE_TIME": "dob", "IP_ADDRESS": "ip_address",
    "CREDIT_CARD": "credit_card", "IBAN_CODE": "iban", "US_BANK_NUMBER": "account",
    "CRYPTO": "account", "MEDICAL_LICENSE": "license",
}
# Entity types not turned into spans: a URL names a site more often than a person, and the
# guard's policy leaves URLs alone too.
PRESIDIO_SKIPPED = frozenset({"URL"})
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_SUBJECT = "subject"  # ref of the name, emails and phones; other ids get refs "id0", "id1", ...


def subject_index(identifiers: Any) -> tuple[ForgottenIndex, dict[str, list[str]],
                                             dict[str, str]]:
    """A throwaway ``ForgottenIndex`` of the request's identifiers, the ``{kind: [values]}``
    mapping it was built from, and the span kind of each other id's ref."""
    from guardrails import ForgottenIndex

    mapping = index_mapping(identifiers)
    if not mapping:
        raise InvalidInputError("the request has no identifier to search the data for")
    index = ForgottenIndex(ForgottenIndex.generate_key())  # this search only
    main = {k: list(v) for k, v in (("name", [identifiers.name] if identifiers.name else []),
                                    ("email", identifiers.emails),
                                    ("phone", identifiers.phones)) if v}
    if main:
        index.add(main, ref=_SUBJECT)
    id_kinds: dict[str, str] = {}
    for k, (kind, value) in enumerate(identifiers.other_ids):
        ref = f"id{k}"
        index.add({"email" if "@" in value else "id": [value]}, ref=ref)
        id_kinds[ref] = kind if _KIND.match(str(kind)) else "id"
    return index, mapping, id_kinds


def _identifier_spans(text: str, matches: list[IndexMatch],
                      id_kinds: dict[str, str]) -> list[dict]:
    """One span per matched region (longest first, no overlaps), kind from the request."""
    out: list[dict] = []
    for m in sorted(matches, key=lambda m: (-(m.end - m.start), m.start, m.ref != _SUBJECT)):
        kind = id_kinds.get(m.ref, m.kind) if m.ref != _SUBJECT else m.kind
        start, end = _widen(text, m.start, m.end, kind)
        if all(end <= s["start"] or start >= s["end"] for s in out):
            out.append({"kind": kind, "start": start, "end": end})
    return sorted(out, key=lambda s: s["start"])


def _widen(text: str, start: int, end: int, kind: str) -> tuple[int, int]:
    """A phone number's span takes in the "(" of its area code and a leading "+" (the index
    matches from the first digit), so a twin's fake replaces the whole number."""
    if kind == "phone":
        if start > 0 and text[start - 1] == "(" and ")" in text[start:end]:
            start -= 1
        if start > 0 and text[start - 1] == "+":
            start -= 1
    return start, end


def _presidio_spans(text: str, guard: Guard, taken: list[dict]) -> list[dict]:
    """Presidio's (and the obfuscated-email recognizer's) findings as spans, mapped to the
    audit's kinds, outside the identifiers' spans and not overlapping each other."""
    found = [f for f in guard.analyze(text) if f.entity not in PRESIDIO_SKIPPED]
    out: list[dict] = []
    for f in sorted(found, key=lambda f: (-(f.end - f.start), -f.score, f.start)):
        if all(f.end <= s["start"] or f.start >= s["end"] for s in taken + out):
            kind = PRESIDIO_KINDS.get(f.entity, f.entity.lower())
            out.append({"kind": kind if _KIND.match(kind) else "pii", "start": f.start,
                        "end": f.end})
    return out


def scope_text_records(corpus: TextCorpus, identifiers: Any, *,
                       index_dir: Path | str | None = None, use_presidio: bool = True,
                       key_dir: Path | str | None = None) -> Scope:
    """The records of ``corpus`` that mention any of ``identifiers``, with their spans.

    Args:
        corpus: any ``TextCorpus`` (``open_corpus`` of the user's files).
        identifiers: the request's ``forget.ledger.Identifiers`` (name, emails, phones,
            other ids).
        index_dir: a corpus index of this corpus (``forget corpus index``); ``None``: one
            scan of every record, in Arrow batches.
        use_presidio: also add Presidio's findings in the records found as spans.
        key_dir: where the index's key is (default: the key home's ``corpus-index``).

    Returns:
        A ``Scope``: record ids in corpus order, records per matched identifier kind, the
        majority group of the records found (``subject_id``), Presidio span count, and
        ``spans`` per record. ``details`` says how it was found (counts only).
    """
    if not isinstance(corpus, TextCorpus):
        raise UnsupportedCorpusError(
            "scope_text_records takes a corpus of files (open_corpus); for the generator's "
            "layout use forget.workflow.scope.scope_records")
    index, mapping, id_kinds = subject_index(identifiers)
    if index_dir is not None:
        from forget.corpus.index import CorpusIndex

        rows = CorpusIndex.open(index_dir, corpus, key_dir=key_dir).candidate_rows(mapping)
        batches: Iterable[list[TextRecord]] = [corpus.take(rows)]
        details: dict[str, Any] = {"mode": "index", "candidates": len(rows)}
    else:
        batches = corpus.batches()
        details = {"mode": "scan", "candidates": len(corpus)}
    guard = None
    if use_presidio:
        from guardrails import Guard

        guard = Guard(None, use_presidio=True)
    record_ids: list[str] = []
    spans: dict[str, list[dict]] = {}
    kinds: Counter[str] = Counter()
    owners: Counter[str] = Counter()
    pii = 0
    for batch in batches:
        for r in batch:
            matches = index.find(r.text)
            if not matches:
                continue
            record_ids.append(r.record_id)
            found = _identifier_spans(r.text, matches, id_kinds)
            kinds.update({m.kind for m in matches})
            if guard is not None:
                extra = _presidio_spans(r.text, guard, found)
                pii += len(extra)
                found = sorted(found + extra, key=lambda s: s["start"])
            spans[r.record_id] = found
            if r.group is not None:
                owners[r.group] += 1
    subject_id = owners.most_common(1)[0][0] if owners else None
    return Scope(record_ids, dict(sorted(kinds.items())), subject_id, pii, details=details,
                 spans=spans)


def audit_records(corpus: TextCorpus | Corpus, scope: Scope) -> list[dict]:
    """The audit's member records of ``scope``: ``{"record_id", "text", "spans"}`` rows
    (``audits.records.as_records`` reads them; ``audits.twins.make_twins`` replaces each
    span by a same-format fake). Spans come from ``scope.spans`` (see
    :func:`scope_text_records`); for the generator's corpus, from its ground truth when the
    scope carries none."""
    if isinstance(corpus, TextCorpus):
        texts = {r.record_id: r.text for r in corpus.select(scope.record_ids)}
        truth: dict[str, list[dict]] = {}
    else:
        by_id = {r["record_id"]: r for r in corpus.people + corpus.code}
        texts = {rid: by_id[rid]["text"] for rid in scope.record_ids}
        truth = {rid: list(by_id[rid].get("spans", ())) for rid in scope.record_ids}
    return [{"record_id": rid, "text": texts[rid],
             "spans": [dict(s) for s in scope.spans.get(rid, truth.get(rid, []))]}
            for rid in scope.record_ids]
