"""Load and validate a generated data directory; assemble training sets.

Every problem is reported as a ``ForgetError`` that names the file and line, never the text of
a record (it may hold personal data).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from forget.errors import DataNotFoundError, MalformedDataError, UnknownSubjectError

REQUIRED = ("subjects.jsonl", "people.jsonl", "code.jsonl", "canaries.jsonl")
_KEYS = {
    "subjects.jsonl": ("subject_id", "split", "identifiers"),
    "people.jsonl": ("record_id", "subject_id", "split", "text", "spans"),
    "code.jsonl": ("record_id", "subject_id", "split", "path", "text", "spans", "repeats"),
    "canaries.jsonl": ("canary_id", "split", "repeats", "text", "spans", "secret"),
}


@dataclass(frozen=True)
class TrainingRecord:
    """One training text. ``source`` is people | code | canary."""

    record_id: str
    text: str
    source: str
    subject_id: str | None = None


@dataclass
class Corpus:
    """The four tables of a data directory, as lists of dicts (JSON rows)."""

    root: Path
    subjects: list[dict]
    people: list[dict]
    code: list[dict]
    canaries: list[dict]
    _by_subject: dict[str, dict] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_subject = {s["subject_id"]: s for s in self.subjects}

    def subject(self, subject_id: str) -> dict:
        """The subject's row; ``UnknownSubjectError`` if the id is not in this corpus."""
        try:
            return self._by_subject[subject_id]
        except KeyError:
            raise UnknownSubjectError(
                f"subject {subject_id!r} is not in {self.root / 'subjects.jsonl'}; "
                f"ids look like {self.subjects[0]['subject_id']!r}" if self.subjects
                else f"subject {subject_id!r}: {self.root / 'subjects.jsonl'} is empty"
            ) from None

    def subject_ids(self, split: str | None = None) -> list[str]:
        return [s["subject_id"] for s in self.subjects if split is None or s["split"] == split]

    def records_of(self, subject_id: str) -> list[dict]:
        """Ground truth: the subject's biography records and the code files that name them."""
        self.subject(subject_id)
        return [r for r in self.people + self.code if r.get("subject_id") == subject_id]


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise DataNotFoundError(
            f"missing data file {path}; create the data with `forget data generate --out "
            f"{path.parent}`"
        )
    keys = _KEYS[path.name]
    rows = []
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise MalformedDataError(f"{path} is not valid UTF-8 (byte {e.start})") from None
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise MalformedDataError(f"{path}:{no}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise MalformedDataError(f"{path}:{no}: expected a JSON object")
        missing = [k for k in keys if k not in row]
        if missing:
            raise MalformedDataError(f"{path}:{no}: missing field(s) {', '.join(missing)}")
        if "text" in row:
            _check_spans(row, path, no)
        rows.append(row)
    return rows


def _check_spans(row: dict, path: Path, no: int) -> None:
    text = row["text"]
    if not isinstance(text, str) or not isinstance(row["spans"], list):
        raise MalformedDataError(f"{path}:{no}: 'text' must be a string and 'spans' a list")
    for sp in row["spans"]:
        ok = (isinstance(sp, dict) and isinstance(sp.get("start"), int)
              and isinstance(sp.get("end"), int) and 0 <= sp["start"] < sp["end"] <= len(text))
        if not ok:
            raise MalformedDataError(f"{path}:{no}: a span lies outside its text")


def load_corpus(root: Path | str) -> Corpus:
    """Load ``root`` (made by ``forget data generate``), validating every file."""
    root = Path(root)
    if not root.is_dir():
        raise DataNotFoundError(
            f"data directory {root} does not exist; create it with `forget data generate --out {root}`"
        )
    tables = {name: _read_jsonl(root / name) for name in REQUIRED}
    return Corpus(root, tables["subjects.jsonl"], tables["people.jsonl"], tables["code.jsonl"],
                  tables["canaries.jsonl"])


def training_records(
    corpus: Corpus, *, exclude_subjects: Iterable[str] = (), include_code: bool = True,
    include_canaries: bool = True,
) -> list[TrainingRecord]:
    """The training texts: train-split people, code and canaries, repeats expanded.

    Excluding a subject drops their biography records and every code file linked to them (the
    "retrain without this person" gold standard). Held-out rows are never included.
    """
    excluded = set(exclude_subjects)
    for sid in excluded:
        corpus.subject(sid)
    out = [TrainingRecord(r["record_id"], r["text"], "people", r["subject_id"])
           for r in corpus.people if r["split"] == "train" and r["subject_id"] not in excluded]
    if include_code:
        for r in corpus.code:
            if r["split"] == "train" and r.get("subject_id") not in excluded:
                out += [TrainingRecord(r["record_id"], r["text"], "code", r.get("subject_id"))
                        ] * int(r["repeats"])
    if include_canaries:
        for c in corpus.canaries:
            if c["split"] == "train":
                out += [TrainingRecord(c["canary_id"], c["text"], "canary")] * int(c["repeats"])
    return out
