"""Scoping: find a subject's records in the training data from the identifiers in a request.

Each training record (biography text or code file) is searched with a forgotten-subject index
built, for this request only, from the subject's identifiers: keyed hashes of normalised forms,
name variants included ("Last, First", "F. Last", all caps), so obfuscated or re-formatted
mentions match too and no plaintext identifier is held in the index. Presidio's offline
recognizers then list the other personal data in the matched records (phones, emails, ...),
which tells span-aware methods what to forget. Only record ids and counts leave this module.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from forget.corpus.load import Corpus
from forget.errors import InvalidInputError


@dataclass
class Scope:
    """The records a request reaches, and (when ground truth is known) how well it was found."""

    record_ids: list[str]
    matched_kinds: dict[str, int]
    subject_id: str | None
    pii_findings: int = 0
    recall: float | None = None
    precision: float | None = None
    details: dict = field(default_factory=dict)
    # record id -> [{"kind", "start", "end"}]: the identifiers' matches and the other personal
    # data found in that record (offsets only; see forget.workflow.scope_text). Never ledgered.
    spans: dict[str, list[dict]] = field(default_factory=dict)

    def summary(self) -> dict:
        """A ledger-safe summary (record ids, counts; no identifier, no span)."""
        out = {"records": len(self.record_ids), "record_ids": self.record_ids,
               "matched_kinds": self.matched_kinds, "pii_findings": self.pii_findings}
        if self.spans:
            kinds = Counter(s["kind"] for spans in self.spans.values() for s in spans)
            out["span_kinds"] = dict(sorted(kinds.items()))
        if self.recall is not None:
            out |= {"recall": round(self.recall, 4), "precision": round(self.precision or 0, 4)}
        return out


def index_mapping(identifiers) -> dict[str, list[str]]:
    """The guardrails index's view of a request's identifiers (an id that is an email address,
    e.g. a secret of kind email, is indexed as an email so its obfuscated forms match too)."""
    others = [v for _, v in identifiers.other_ids]
    m: dict[str, list[str]] = {"name": [identifiers.name] if identifiers.name else [],
                               "email": list(identifiers.emails) + [v for v in others if "@" in v],
                               "phone": list(identifiers.phones),
                               "id": [v for v in others if "@" not in v]}
    return {k: v for k, v in m.items() if v}


def scope_records(corpus: Corpus, identifiers, *, use_presidio: bool = True) -> Scope:
    """The train-split records (people and code) that mention any of ``identifiers``."""
    from guardrails import ForgottenIndex, Guard

    mapping = index_mapping(identifiers)
    if not mapping:
        raise InvalidInputError("the request has no identifier to search the data for")
    index = ForgottenIndex(ForgottenIndex.generate_key())  # a throwaway key: this search only
    index.add(mapping, ref="subject")
    guard = Guard(index, use_presidio=use_presidio)
    record_ids: list[str] = []
    kinds: Counter[str] = Counter()
    owners: Counter[str] = Counter()
    pii = 0
    for r in corpus.people + corpus.code:
        if r["split"] != "train":
            continue
        matches = index.find(r["text"])
        if not matches:
            continue
        record_ids.append(r["record_id"])
        kinds.update({m.kind for m in matches})
        if r.get("subject_id"):
            owners[r["subject_id"]] += 1
        if use_presidio:
            pii += sum(1 for f in guard.analyze(r["text"]) if f.explanation.recognizer
                       != "ForgottenIndex")
    subject_id = owners.most_common(1)[0][0] if owners else None
    return Scope(sorted(record_ids), dict(sorted(kinds.items())), subject_id, pii)


def secret_truth(corpus: Corpus, identifiers) -> set[str]:
    """The generator's ground truth for a request naming no person: the train records with a
    labelled span whose exact text is one of the request's other identifiers."""
    values = {v for _, v in identifiers.other_ids}
    return {r["record_id"] for r in corpus.people + corpus.code if r["split"] == "train"
            and any(r["text"][sp["start"]:sp["end"]] in values for sp in r["spans"])}


def score_against_truth(scope: Scope, corpus: Corpus, subject_id: str | None = None, *,
                        truth: set[str] | None = None) -> Scope:
    """Fill recall and precision against the generator's ground truth: ``subject_id``'s train
    records, or the record ids in ``truth`` (see :func:`secret_truth`)."""
    if truth is None:
        truth = {r["record_id"] for r in corpus.records_of(subject_id) if r["split"] == "train"}
    found = set(scope.record_ids)
    scope.recall = len(found & truth) / len(truth) if truth else 1.0
    scope.precision = len(found & truth) / len(found) if found else 1.0
    return scope
