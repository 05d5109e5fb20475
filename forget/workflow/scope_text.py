"""Scoping any text corpus, without ground truth; the spans found become the audit's.

:func:`scope_text_records` finds the records of a :class:`~forget.corpus.TextCorpus` that
mention a request's identifiers, as :func:`forget.workflow.scope.scope_records` does for the
generator's corpus: a throwaway ``guardrails.ForgottenIndex`` (keyed hashes of the
identifiers' normalised forms and name variants) runs ``find`` on each record. With
``index_dir`` (a :mod:`forget.corpus.index` built by ``forget corpus index``) only the
records the index names as candidates are read and checked, which finds exactly the same
records; without it, every record is checked in Arrow batches. :func:`scope_text_many` scopes
several requests together: one look-up each, or one scan for all of them.

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
from collections.abc import Iterable, Mapping
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


def _add_subject(index: ForgottenIndex, identifiers: Any,
                 ref: str) -> tuple[dict[str, list[str]], dict[str, str | None]]:
    """Add one request's identifiers to ``index`` under ``ref`` (name, emails, phones) and
    ``<ref>.id<k>`` (each other id); returns its ``{kind: [values]}`` mapping and the span
    kind of each ref (``None``: the match's own kind)."""
    mapping = index_mapping(identifiers)
    if not mapping:
        raise InvalidInputError("the request has no identifier to search the data for")
    main = {k: list(v) for k, v in (("name", [identifiers.name] if identifiers.name else []),
                                    ("email", identifiers.emails),
                                    ("phone", identifiers.phones)) if v}
    kinds: dict[str, str | None] = {}
    if main:
        index.add(main, ref=ref)
        kinds[ref] = None
    for k, (kind, value) in enumerate(identifiers.other_ids):
        index.add({"email" if "@" in value else "id": [value]}, ref=f"{ref}.id{k}")
        kinds[f"{ref}.id{k}"] = kind if _KIND.match(str(kind)) else "id"
    return mapping, kinds


def subject_index(identifiers: Any) -> tuple[ForgottenIndex, dict[str, list[str]],
                                             dict[str, str | None]]:
    """A throwaway ``ForgottenIndex`` of one request's identifiers (a fresh random key, this
    search only), the ``{kind: [values]}`` mapping it holds, and each ref's span kind."""
    from guardrails import ForgottenIndex

    index = ForgottenIndex(ForgottenIndex.generate_key())
    mapping, kinds = _add_subject(index, identifiers, "s")
    return index, mapping, kinds


def batch_index(requests: list[Any], key: bytes | None = None
                ) -> tuple[ForgottenIndex, list[dict[str, list[str]]], dict[str, str | None]]:
    """One throwaway ``ForgottenIndex`` (under ``key``, by default a fresh random one: this
    search only) of several requests' identifiers, request ``k`` under the refs ``r<k>`` and
    ``r<k>.id<j>``; with each request's ``{kind: [values]}`` mapping and each ref's span
    kind."""
    from guardrails import ForgottenIndex

    index = ForgottenIndex(key or ForgottenIndex.generate_key())
    kinds: dict[str, str | None] = {}
    mappings = []
    for k, identifiers in enumerate(requests):
        mapping, ref_kinds = _add_subject(index, identifiers, f"r{k}")
        mappings.append(mapping)
        kinds |= ref_kinds
    return index, mappings, kinds


def _identifier_spans(text: str, matches: list[IndexMatch],
                      kinds: dict[str, str | None]) -> list[dict]:
    """One span per matched region (longest first, no overlaps), kind from the request."""
    out: list[dict] = []
    for m in sorted(matches, key=lambda m: (-(m.end - m.start), m.start, "." in m.ref)):
        kind = kinds.get(m.ref) or m.kind
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


def _pii(text: str, guard: Guard) -> list[tuple[str, int, int, float]]:
    """Presidio's (and the obfuscated-email recognizer's) findings: (kind, start, end, score)
    under the audit's kinds, skipped types left out."""
    out = []
    for f in guard.analyze(text):
        if f.entity in PRESIDIO_SKIPPED:
            continue
        kind = PRESIDIO_KINDS.get(f.entity, f.entity.lower())
        out.append((kind if _KIND.match(kind) else "pii", f.start, f.end, f.score))
    return out


def _pii_spans(found: list[tuple[str, int, int, float]], taken: list[dict]) -> list[dict]:
    """The findings outside the identifiers' spans, longest (then likeliest) first, none
    overlapping another."""
    out: list[dict] = []
    for kind, start, end, _ in sorted(found, key=lambda f: (-(f[2] - f[1]), -f[3], f[1])):
        if all(end <= s["start"] or start >= s["end"] for s in taken + out):
            out.append({"kind": kind, "start": start, "end": end})
    return out


def request_hits(text: str, matches: list[IndexMatch], kinds: dict[str, str | None],
                 guard: Guard | None) -> dict[int, tuple[set[str], list[dict], int]]:
    """One record's matches split by request (``k`` of the refs ``r<k>`` and ``r<k>.id<j>``
    made by :func:`_add_subject`): per request, the identifier kinds matched, the spans
    (identifier spans, then the Presidio findings outside them when ``guard`` is given, by
    start) and how many spans came from Presidio."""
    by_request: dict[int, list[IndexMatch]] = {}
    for m in matches:
        by_request.setdefault(int(m.ref.split(".")[0][1:]), []).append(m)
    findings = _pii(text, guard) if guard is not None else []
    out = {}
    for k, ms in by_request.items():
        spans = _identifier_spans(text, ms, kinds)
        extra = _pii_spans(findings, spans)
        out[k] = ({m.kind for m in ms}, sorted(spans + extra, key=lambda s: s["start"]),
                  len(extra))
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
    return scope_text_many(corpus, {"request": identifiers}, index_dir=index_dir,
                           use_presidio=use_presidio, key_dir=key_dir)["request"]


def scope_text_many(corpus: TextCorpus, requests: Mapping[str, Any], *,
                    index_dir: Path | str | None = None, use_presidio: bool = True,
                    key_dir: Path | str | None = None) -> dict[str, Scope]:
    """:func:`scope_text_records` for several requests at once (keyed by any label, e.g. the
    request ids): one look-up each in the index, or, without one, ONE scan of the corpus for
    all of them (one ``ForgottenIndex`` holding every request's identifiers)."""

    if not isinstance(corpus, TextCorpus):
        raise UnsupportedCorpusError(
            "scope_text_records takes a corpus of files (open_corpus); for the generator's "
            "layout use forget.workflow.scope.scope_records")
    labels = list(requests)
    index, mappings, kinds = batch_index([requests[label] for label in labels])
    details: list[dict[str, Any]]
    if index_dir is not None:
        from forget.corpus.index import CorpusIndex

        ci = CorpusIndex.open(index_dir, corpus, key_dir=key_dir)
        rows = [ci.candidate_rows(m) for m in mappings]
        batches: Iterable[list[TextRecord]] = [corpus.take(r for rs in rows for r in rs)]
        details = [{"mode": "index", "candidates": len(rs)} for rs in rows]
    else:
        batches = corpus.batches()
        details = [{"mode": "scan", "candidates": len(corpus), "requests_in_scan":
                    len(labels)} for _ in labels]
    guard = None
    if use_presidio:
        from guardrails import Guard

        guard = Guard(None, use_presidio=True)
    found: list[dict[str, list[dict]]] = [{} for _ in labels]  # per request: id -> spans
    kinds_seen: list[Counter[str]] = [Counter() for _ in labels]
    owners: list[Counter[str]] = [Counter() for _ in labels]
    pii = [0] * len(labels)
    for batch in batches:
        for r in batch:
            matches = index.find(r.text)
            if not matches:
                continue
            for k, (matched, spans, extra) in request_hits(r.text, matches, kinds,
                                                           guard).items():
                kinds_seen[k].update(matched)
                pii[k] += extra
                found[k][r.record_id] = spans
                if r.group is not None:
                    owners[k][r.group] += 1
    return {label: Scope(list(found[k]), dict(sorted(kinds_seen[k].items())),
                         owners[k].most_common(1)[0][0] if owners[k] else None, pii[k],
                         details=details[k], spans=found[k])
            for k, label in enumerate(labels)}


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


def pii_spans(texts: Iterable[str]) -> list[list[dict]]:
    """For each text, the personal data Presidio's offline recognizers find in it, as spans
    of the audit's kinds (no identifier index: what a record says about anyone). Used to
    re-check records erased earlier, whose request identifiers are shredded by then."""
    from guardrails import Guard

    guard = Guard(None, use_presidio=True)
    return [_pii_spans(_pii(t, guard), []) for t in texts]
