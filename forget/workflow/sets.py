"""Forget and retain sets for the records a request's scope found."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from forget.core.data import Example, ForgetSet, RetainSet, _example
from forget.corpus.load import Corpus, training_records

CODE_KINDS = ("api_key", "password", "secret_key", "token", "ip_address")


def _row_example(row: dict) -> Example:
    return _example(row, "code" if "path" in row else "people")


def sets_for_records(corpus: Corpus, record_ids: Sequence[str], subject_id: str | None, *,
                     already_erased: Iterable[str] = ()) -> tuple[ForgetSet, RetainSet]:
    """Forget = the scoped records; retain = every other training text (repeats kept) except
    the records erased earlier on the model line (``already_erased``): a retain term, or a
    retraining, on those would teach them back.

    The holdout (the "never seen" level of the stop criteria) is held-out people for people
    records and held-out code with secrets for code files.
    """
    wanted = set(record_ids)
    dropped = wanted | set(already_erased)
    rows = [r for r in corpus.people + corpus.code if r["record_id"] in wanted]
    examples = [_row_example(r) for r in rows]
    if all(e.source == "code" for e in examples):
        holdout = [_row_example(r) for r in corpus.code if r["split"] == "holdout" and r["spans"]]
    else:
        holdout = [_row_example(r) for r in corpus.people if r["split"] == "holdout"]
    retain = [Example(t.record_id, t.text, (), t.source)
              for t in training_records(corpus) if t.record_id not in dropped]
    return ForgetSet(examples, subject_id, holdout), RetainSet(retain)


def is_code_request(forget: ForgetSet) -> bool:
    return bool(forget.examples) and all(e.source == "code" for e in forget.examples)
