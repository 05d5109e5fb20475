"""The training data of a request, whatever its layout: what the workflow asks of it.

Two kinds of data reach :func:`forget.workflow.process_request`:

- the generator's corpus (``forget data generate``), with ground truth: every record's
  identifier spans and owner, a held-out split of people the model never saw;
- an organisation's own files (a :class:`forget.corpus.TextCorpus`: parquet, jsonl, csv, txt, a
  ``datasets`` directory), with no ground truth at all. Scoping finds the records that mention
  the request's identifiers; the spans it finds (and the other personal data Presidio detects
  in those records) become the spans the methods forget and the audit tests.

Both answer the same questions (:class:`WorkData`): the records a request reaches, the forget
and retain sets for them, the audit's inputs, and the records of earlier erasures the audit
re-checks. Only record ids, offsets and counts leave these objects for the work folder; the
ledger gets ids and counts only.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from forget.core.data import Example, ForgetSet, RetainSet
from forget.corpus import Corpus, TextCorpus

# Others' training texts the audit measures utility on (and relearns from): a fixed sample.
RETAIN_SAMPLE = 200


class WorkData:
    """The questions the workflow asks of its training data."""

    corpus: Any
    supports_lm_eval = False

    def data_id(self) -> str:
        """A short stable id of the data for the ledger's ``datasets`` (no content)."""
        raise NotImplementedError

    def scope(self, identifiers: Any, *, use_presidio: bool) -> dict:
        """The scope summary (record ids, counts; ``spans`` where there is no ground truth)."""
        raise NotImplementedError

    def sets(self, scope: dict, *, already_erased: Iterable[str]) -> tuple[ForgetSet, RetainSet]:
        raise NotImplementedError

    def audit_inputs(self, forget: ForgetSet, erased: set[str]) -> dict:
        raise NotImplementedError

    def relapse(self, erasures: list[dict]) -> dict[str, list[dict]]:
        raise NotImplementedError

    def relearn_texts(self, forget: ForgetSet, inputs: dict, erased: set[str]) -> list[str]:
        """Other training texts for the audit's "fine-tuning on other data" attack (never the
        request's records nor an earlier erasure's): the retain sample by default."""
        return list(inputs.get("retain", ()))

    def neighbours(self, forget: ForgetSet, erased: set[str], k: int = 5
                   ) -> tuple[dict[str, list[dict]], dict]:
        """The ``k`` people nearest to the request's subject, by pseudonymous label
        (:mod:`forget.workflow.neighbours`), and a summary of the choice for the work folder
        (labels, shared records, similarity; or why none were chosen)."""
        return {}, {"skipped": "this kind of data names no other people"}


class GeneratedData(WorkData):
    """The generator's corpus: ground-truth spans and owners, a held-out split."""

    supports_lm_eval = True

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus

    def data_id(self) -> str:
        manifest = self.corpus.root / "manifest.json"
        return (hashlib.sha256(manifest.read_bytes()).hexdigest()[:16] if manifest.is_file()
                else self.corpus.root.name)

    def scope(self, identifiers: Any, *, use_presidio: bool) -> dict:
        from forget.workflow.scope import scope_records, score_against_truth, secret_truth

        scope = scope_records(self.corpus, identifiers, use_presidio=use_presidio)
        if scope.subject_id:
            score_against_truth(scope, self.corpus, scope.subject_id)
        elif not identifiers.name and identifiers.other_ids:
            score_against_truth(scope, self.corpus, truth=secret_truth(self.corpus, identifiers))
        return scope.summary() | {"subject_id": scope.subject_id}

    def sets(self, scope: dict, *, already_erased: Iterable[str]) -> tuple[ForgetSet, RetainSet]:
        from forget.workflow.sets import sets_for_records

        return sets_for_records(self.corpus, scope["record_ids"], scope.get("subject_id"),
                                already_erased=already_erased)

    def audit_inputs(self, forget: ForgetSet, erased: set[str]) -> dict:
        from forget.workflow.steps import _audit_inputs

        return _audit_inputs(self.corpus, forget, erased)

    def relapse(self, erasures: list[dict]) -> dict[str, list[dict]]:
        from forget.workflow.lines import relapse_records

        return relapse_records(self.corpus, erasures)

    def neighbours(self, forget: ForgetSet, erased: set[str], k: int = 5
                   ) -> tuple[dict[str, list[dict]], dict]:
        from forget.workflow.neighbours import generated_neighbours, summary

        chosen, recs, reason = generated_neighbours(self.corpus, forget.subject_id, erased,
                                                   k=k)
        return recs, summary(chosen, reason)

    def relearn_texts(self, forget: ForgetSet, inputs: dict, erased: set[str]) -> list[str]:
        """For a code request, other training code files (the attack that recovered a
        certified key fine-tuned on code); for a person, the retain sample."""
        from forget.workflow.sets import is_code_request

        if not is_code_request(forget):
            return super().relearn_texts(forget, inputs, erased)
        dropped = {e.record_id for e in forget.examples} | set(erased)
        pool = sorted({r["text"] for r in self.corpus.code if r["split"] == "train"
                       and r["record_id"] not in dropped})
        return random.Random(0).sample(pool, min(RETAIN_SAMPLE, len(pool)))


class TextData(WorkData):
    """An organisation's own files: no ground truth; scoping finds the spans.

    Args:
        corpus: the opened :class:`TextCorpus`.
        index_dir: a keyed-hash index of the corpus (``forget corpus index``): scoping looks
            up candidates in it instead of scanning every record.
        trained_ids: the record ids the model was trained on (its card's), when known: the
            corpus records outside them are the never-seen reference (holdout).
    """

    def __init__(self, corpus: TextCorpus, *, index_dir: Path | str | None = None,
                 trained_ids: Iterable[str] = ()) -> None:
        self.corpus = corpus
        self.index_dir = Path(index_dir) if index_dir else None
        self.trained_ids = set(trained_ids)

    def data_id(self) -> str:
        return self.corpus.fingerprint[:16]

    def scope(self, identifiers: Any, *, use_presidio: bool) -> dict:
        from forget.workflow.scope_text import audit_records, scope_text_records

        scope = scope_text_records(self.corpus, identifiers, index_dir=self.index_dir,
                                   use_presidio=use_presidio)
        rows = audit_records(self.corpus, scope) if scope.record_ids else []
        # offsets and kinds only (never a value): what the methods forget and the audit tests
        spans = {r["record_id"]: [dict(s) for s in r["spans"]] for r in rows}
        return scope.summary() | {"subject_id": scope.subject_id, "spans": spans,
                                  "found_by": dict(scope.details)}  # index or scan, counts

    def sets(self, scope: dict, *, already_erased: Iterable[str]) -> tuple[ForgetSet, RetainSet]:
        wanted = list(scope["record_ids"])
        dropped = set(wanted) | set(already_erased)
        spans = scope.get("spans", {})
        examples = [Example(r.record_id, r.text, tuple(spans.get(r.record_id, ())), "text")
                    for r in self.corpus.select(wanted)]
        retain = [Example(r.record_id, r.text, (), "text") for r in self.corpus
                  if r.record_id not in dropped
                  and (not self.trained_ids or r.record_id in self.trained_ids)]
        holdout = [Example(r.record_id, r.text, (), "text") for r in self._holdout(dropped)]
        return ForgetSet(examples, scope.get("subject_id"), holdout), RetainSet(retain)

    def _holdout(self, dropped: set[str], limit: int = RETAIN_SAMPLE) -> list[Any]:
        """Records the model was never trained on (known only from its card), up to ``limit``."""
        if not self.trained_ids:
            return []
        out = []
        for batch in self.corpus.batches():
            out += [r for r in batch if r.record_id not in self.trained_ids
                    and r.record_id not in dropped]
            if len(out) >= limit:
                break
        return out[:limit]

    def audit_inputs(self, forget: ForgetSet, erased: set[str]) -> dict:
        members = [{"record_id": e.record_id, "text": e.text, "spans": list(e.spans)}
                   for e in forget.examples]
        forget_ids = {e.record_id for e in forget.examples}
        pool = sorted({r.text for r in self._retain_pool(forget_ids | set(erased))})
        retain = random.Random(0).sample(pool, min(RETAIN_SAMPLE, len(pool)))
        return {"members": members, "nonmembers": [], "retain": retain,
                "holdout": [e.text for e in forget.holdout]}

    def _retain_pool(self, dropped: set[str], limit: int = 20 * RETAIN_SAMPLE) -> list[Any]:
        out = []
        for batch in self.corpus.batches():
            out += [r for r in batch if r.record_id not in dropped
                    and (not self.trained_ids or r.record_id in self.trained_ids)]
            if len(out) >= limit:
                break
        return out

    def neighbours(self, forget: ForgetSet, erased: set[str], k: int = 5
                   ) -> tuple[dict[str, list[dict]], dict]:
        from forget.workflow.neighbours import summary, text_neighbours

        chosen, recs, reason = text_neighbours(self.corpus, forget, erased,
                                               trained_ids=self.trained_ids, k=k)
        return recs, summary(chosen, reason)

    def relapse(self, erasures: list[dict]) -> dict[str, list[dict]]:
        """Each earlier erasure's records with the personal data Presidio finds in them (the
        request's own identifiers are shredded by then; the records still say what was there).
        """
        from forget.workflow.scope_text import pii_spans

        ids = sorted({i for e in erasures for i in e.get("record_ids", ())})
        recs = self.corpus.select(_present(self.corpus, ids))
        spans = dict(zip([r.record_id for r in recs], pii_spans([r.text for r in recs]),
                         strict=True))
        texts = {r.record_id: r.text for r in recs}
        out: dict[str, list[dict]] = {}
        for e in erasures:
            found = [{"record_id": i, "text": texts[i], "spans": spans[i]}
                     for i in e.get("record_ids", ()) if spans.get(i)]
            if found:
                out[str(e["request_id"])] = found
        return out


def _present(corpus: TextCorpus, ids: Sequence[str]) -> list[str]:
    """The ids among ``ids`` still in the corpus (an erased record may since be deleted)."""
    wanted = set(ids)
    return [i for i in corpus.record_ids() if i in wanted] if wanted else []


def work_data(corpus: Corpus | TextCorpus, *, index_dir: Path | str | None = None,
              trained_ids: Iterable[str] = ()) -> WorkData:
    """The :class:`WorkData` for an opened corpus."""
    if isinstance(corpus, Corpus):
        return GeneratedData(corpus)
    return TextData(corpus, index_dir=index_dir, trained_ids=trained_ids)
