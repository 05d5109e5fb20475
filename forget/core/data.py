"""Forget and retain sets: which texts a method forgets and which it must keep.

For a subject: the forget set is the subject's records (biography records and the code files
that name them); the retain set is every other training text (other train subjects' records,
unlinked code, canaries), with the repeats the model was trained with, which is exactly the
training set of the retrain-from-scratch gold standard. The forget set also carries a
reference population the model never saw (held-out records) for criteria that compare
against the unseen level.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from audits.extraction import Prompt, identifier_prompts
from forget.corpus.load import Corpus, training_records
from forget.errors import InvalidInputError

# Identifier kinds whose verbatim extraction is the forget criterion: the ones a model can only
# produce by memorising them (a name or a city can be guessed; a phone number cannot).
PEOPLE_KINDS = ("phone", "email", "national_id")
SECRET_KINDS = ("api_key", "password", "secret_key", "token", "ip_address")


@dataclass(frozen=True)
class Example:
    """One text with its sensitive spans (``[{kind, start, end}]``, character offsets)."""

    record_id: str
    text: str
    spans: tuple[dict, ...] = ()
    source: str = "people"  # people | code | canary
    path: str | None = None  # code files: the file name (detectors use its extension)


@dataclass
class ForgetSet:
    """What to forget. ``holdout``: comparable texts never trained on (the unseen level)."""

    examples: list[Example]
    subject_id: str | None = None
    holdout: list[Example] = field(default_factory=list)
    kinds: tuple[str, ...] = PEOPLE_KINDS + SECRET_KINDS  # email covers code e-mails too

    def texts(self) -> list[str]:
        return [e.text for e in self.examples]

    def prompts(self, kinds: Iterable[str] | None = None) -> list[Prompt]:
        """Extraction probes: text before each identifier of the wanted kinds -> identifier."""
        wanted = tuple(kinds) if kinds is not None else self.kinds
        return [p for e in self.examples
                for p in identifier_prompts(e.record_id, e.text, e.spans, wanted)]


@dataclass
class RetainSet:
    """What to keep: the texts the model should still model well."""

    examples: list[Example]

    def texts(self) -> list[str]:
        return [e.text for e in self.examples]


def _example(row: dict, source: str) -> Example:
    return Example(row["record_id"], row["text"], tuple(row.get("spans", ())), source,
                   row.get("path"))


def subject_sets(corpus: Corpus, subject_id: str, *, already_forgotten: Iterable[str] = ()
                 ) -> tuple[ForgetSet, RetainSet]:
    """Forget = the subject's records; retain = the training set without them.

    ``already_forgotten``: subjects erased by earlier requests from this model's lineage.
    Their records leave the retain set too; otherwise the retain term would teach them back.

    Raises:
        UnknownSubjectError: the subject is not in the corpus.
        InvalidInputError: the subject is a held-out one (never trained on: nothing to forget).
    """
    row = corpus.subject(subject_id)
    if row["split"] != "train":
        raise InvalidInputError(
            f"subject {subject_id!r} is in the {row['split']!r} split: the model never trained "
            "on their records, so there is nothing to unlearn"
        )
    forget = [_example(r, "code" if "path" in r else "people")
              for r in corpus.records_of(subject_id) if r["split"] == "train"]
    holdout = [_example(r, "people") for r in corpus.people if r["split"] == "holdout"]
    excluded = {subject_id, *already_forgotten}
    retain = [Example(t.record_id, t.text, (), t.source)
              for t in training_records(corpus, exclude_subjects=sorted(excluded))]
    return ForgetSet(forget, subject_id, holdout), RetainSet(retain)


def code_sets(corpus: Corpus, record_ids: Sequence[str] | None = None
              ) -> tuple[ForgetSet, RetainSet]:
    """Forget = train code files holding a secret (or those named); retain = other train code.

    The holdout is the held-out code files with secrets: the unseen level of memorisation.
    """
    train = [r for r in corpus.code if r["split"] == "train"]
    if record_ids is None:
        chosen = [r for r in train if r["spans"]]
    else:
        by_id = {r["record_id"]: r for r in train}
        missing = [i for i in record_ids if i not in by_id]
        if missing:
            raise InvalidInputError(f"no train code file(s) {', '.join(missing)} in the corpus")
        chosen = [by_id[i] for i in record_ids]
    ids = {r["record_id"] for r in chosen}
    retain = [_example(r, "code") for r in train if r["record_id"] not in ids for _ in
              range(int(r.get("repeats", 1)))]
    holdout = [_example(r, "code") for r in corpus.code if r["split"] == "holdout" and r["spans"]]
    return ForgetSet([_example(r, "code") for r in chosen], None, holdout), RetainSet(retain)
