"""The people nearest to a request's subject, for the audit's neighbour checks (issue 18.5).

Unlearning one person can expose the people whose data sits next to theirs. The audit
(:mod:`audits.neighbours`) measures the nearest ones against the original model; this module
chooses them:

1. *shared records* first: how many records mention both people (a record mentions a person
   when it is theirs or contains one of their person-unique identifiers: name, email, phone,
   national id, street address; a shared city or employer is not a mention);
2. then *similarity* of what their records say: the cosine of TF-IDF vectors of each person's
   record texts (lower-cased word tokens, smoothed idf, identifiers left in, so a shared
   employer or city counts as similarity). Chosen because it is cheap, deterministic and
   needs no model pass; the model's own hidden states would be nearer to what unlearning
   disturbs but cost a forward pass over the whole corpus for every request.

Only subjects the model was trained on and not erased earlier are candidates. Neighbours are
labelled ``neighbour-1`` .. ``neighbour-k`` by closeness; subject ids, names and identifiers
stay in this module.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

NEIGHBOURS = 5  # how many of the nearest people the audit checks (issue 18: "the 5 nearest")
MENTION_KINDS = ("name", "email", "phone", "national_id", "address")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Neighbour:
    """A chosen neighbour: its subject id (kept out of reports), label and why it was chosen."""

    subject_id: str
    label: str
    shared_records: int
    similarity: float  # TF-IDF cosine in [0, 1]


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def tfidf_cosines(target: str, others: Mapping[str, str]) -> dict[str, float]:
    """Cosine similarity of ``target``'s TF-IDF vector with each of ``others``'.

    Documents are the target and the others; ``idf = ln((1 + n) / (1 + df)) + 1`` (smoothed),
    term frequency raw counts; 0 for an empty document.
    """
    docs = {"\x00target": Counter(_tokens(target))} | {k: Counter(_tokens(v))
                                                        for k, v in others.items()}
    n = len(docs)
    df = Counter(w for c in docs.values() for w in c)
    idf = {w: math.log((1 + n) / (1 + d)) + 1 for w, d in df.items()}

    def vec(c: Counter) -> dict[str, float]:
        return {w: f * idf[w] for w, f in c.items()}

    t = vec(docs["\x00target"])
    tn = math.sqrt(sum(x * x for x in t.values()))
    out = {}
    for k in others:
        v = vec(docs[k])
        vn = math.sqrt(sum(x * x for x in v.values()))
        dot = sum(x * v.get(w, 0.0) for w, x in t.items())
        out[k] = dot / (tn * vn) if tn and vn else 0.0
    return out


def mentioned(text: str, owner: str | None, values: Mapping[str, Sequence[str]]) -> set[str]:
    """The subjects a record mentions: its owner and every subject one of whose values (from
    ``values``: subject id -> person-unique identifier values) occurs in its text."""
    out = {owner} if owner else set()
    out |= {sid for sid, vs in values.items() if any(v and v in text for v in vs)}
    return out


def nearest_subjects(subject_id: str, records: Iterable[Mapping], values: Mapping[str,
                     Sequence[str]], candidates: Iterable[str], *,
                     k: int = NEIGHBOURS) -> list[Neighbour]:
    """The ``k`` candidates nearest to ``subject_id``: most shared records, then most similar
    record texts, then subject id (a stable order).

    Args:
        records: rows with ``text`` and ``subject_id`` (the owner).
        values: subject id -> its person-unique identifier values (``MENTION_KINDS``).
        candidates: the subject ids that may be chosen (trained on, not erased).
    """
    cand = [c for c in dict.fromkeys(candidates) if c != subject_id]
    shared: Counter[str] = Counter()
    texts: dict[str, list[str]] = {}
    for r in records:
        who = mentioned(r["text"], r.get("subject_id"), values)
        if r.get("subject_id"):
            texts.setdefault(r["subject_id"], []).append(r["text"])
        if subject_id in who:
            shared.update(who - {subject_id})
    return rank(subject_id, shared, texts, cand, k=k)


def rank(subject_id: str, shared: Mapping[str, int], texts: Mapping[str, Sequence[str]],
         candidates: Sequence[str], *, k: int = NEIGHBOURS) -> list[Neighbour]:
    """Order ``candidates`` by shared records, then TF-IDF cosine of their texts with the
    subject's, then id; the first ``k``, labelled ``neighbour-1`` .. by closeness."""
    sims = tfidf_cosines(" ".join(texts.get(subject_id, [])),
                         {c: " ".join(texts.get(c, [])) for c in candidates})
    order = sorted(candidates, key=lambda c: (-shared.get(c, 0), -sims[c], c))[:k]
    return [Neighbour(c, f"neighbour-{i}", int(shared.get(c, 0)), round(sims[c], 4))
            for i, c in enumerate(order, 1)]


def generated_neighbours(corpus, subject_id: str | None, erased: set[str], *,
                         k: int = NEIGHBOURS) -> tuple[list[Neighbour], dict[str, list[dict]],
                                                       str]:
    """For the generator's corpus: ``(chosen, records by label, reason)``; ``reason`` says why
    none were chosen ('' when some were)."""
    if not subject_id:
        return [], {}, "the request is not about a person of the corpus (a secret or code)"
    erased_subjects = {r["subject_id"] for r in corpus.people if r["record_id"] in erased}
    cands = [s for s in corpus.subject_ids("train")
             if s != subject_id and s not in erased_subjects]
    values = {s["subject_id"]: [str(s["identifiers"][kd]) for kd in MENTION_KINDS
                                if s["identifiers"].get(kd)] for s in corpus.subjects}
    chosen = nearest_subjects(subject_id, corpus.people, values, cands, k=k)
    recs = {}
    for n in chosen:
        rows = [{"record_id": r["record_id"], "text": r["text"], "spans": list(r["spans"])}
                for r in corpus.records_of(n.subject_id) if r["record_id"] not in erased]
        if rows:
            recs[n.label] = rows
    return chosen, recs, "" if recs else "no other trained subject has records left"


# An organisation's own files: how much of the corpus is read to find other owners' texts, and
# how many of a neighbour's records are tested (Presidio finds their spans: it costs).
TEXT_SCAN_RECORDS = 4000
TEXT_RECORDS_PER_NEIGHBOUR = 20


def text_neighbours(corpus, forget, erased: set[str], *, trained_ids: set[str] = frozenset(),
                    k: int = NEIGHBOURS, find_spans=None,
                    ) -> tuple[list[Neighbour], dict[str, list[dict]], str]:
    """For an organisation's own files (:class:`forget.corpus.TextCorpus`): other people are
    the owners of the corpus's group field. Shared records: records the request's scoping
    found (they mention the subject) that belong to another owner. Similarity over the first
    ``TEXT_SCAN_RECORDS`` records. The neighbours' identifier spans are what Presidio's
    offline recognizers find in their records (no ground truth). Without a group field no
    one else can be told apart: none are chosen, and ``reason`` says so. ``find_spans``:
    texts -> spans per text (default :func:`forget.workflow.scope_text.pii_spans`)."""
    if not getattr(corpus, "group_field", None):
        return [], {}, ("the data has no owner (group) field, so the records of other people "
                        "cannot be told apart")
    subject = forget.subject_id
    if not subject:
        return [], {}, "the records found belong to no single owner"
    scoped = {e.record_id for e in forget.examples}
    shared: Counter[str] = Counter()
    texts: dict[str, list[str]] = {}
    rows: dict[str, list] = {}
    seen = 0
    for batch in corpus.batches():
        for r in batch:
            if r.group is None or r.record_id in erased or (
                    trained_ids and r.record_id not in trained_ids):
                continue
            if r.record_id in scoped and r.group != subject:
                shared[r.group] += 1
            texts.setdefault(r.group, []).append(r.text)
            if r.group != subject and r.record_id not in scoped:
                rows.setdefault(r.group, []).append(r)
        seen += len(batch)
        if seen >= TEXT_SCAN_RECORDS:
            break
    cands = sorted(g for g in texts if g != subject)
    chosen = rank(subject, shared, texts, cands, k=k)
    if not chosen:
        return [], {}, "no other owner has records in the part of the data read"
    if find_spans is None:
        from forget.workflow.scope_text import pii_spans as find_spans

    # A neighbour whose only records are the request's own (they name the subject) has
    # nothing left to test: chosen (the summary counts it), not measured.
    picked = {n.label: rows[n.subject_id][:TEXT_RECORDS_PER_NEIGHBOUR] for n in chosen
              if rows.get(n.subject_id)}
    flat = [r for rs in picked.values() for r in rs]
    spans = dict(zip([r.record_id for r in flat], find_spans([r.text for r in flat]),
                     strict=True))
    recs = {label: [{"record_id": r.record_id, "text": r.text, "spans": spans[r.record_id]}
                    for r in rs] for label, rs in picked.items()}
    return chosen, recs, ""


def summary(chosen: Sequence[Neighbour], reason: str = "") -> dict:
    """What the work folder keeps of the choice: labels and why, never a subject id."""
    return {"method": "shared records, then TF-IDF cosine of record texts",
            "neighbours": [{"label": n.label, "shared_records": n.shared_records,
                            "similarity": n.similarity} for n in chosen],
            **({"skipped": reason} if reason else {})}
