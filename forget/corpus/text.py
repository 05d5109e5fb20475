"""``TextCorpus``: any text dataset (the user's own files), memory-mapped Arrow via ``datasets``.

A ``TextCorpus`` wraps one ``datasets.Dataset`` and the names of its text, id and (optional)
group fields. Records are read in batches straight from the memory-mapped Arrow table, so a
corpus larger than memory is never materialised as Python lists; only what a caller asks for
(one batch, the selected records, a training list) is.

Record ids: the ``--id-field`` column as strings when one is given, else ``<source>:<row>``,
where ``<source>`` is the file's path relative to the ``--data`` path (a single file: its
name; a ``save_to_disk`` directory: the directory's name) and ``<row>`` the 0-based row
within that file (a CSV header is not a row; a ``.txt`` file has one record per line). Such
ids are stable as long as the files keep their names and their rows their order.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from forget.corpus.load import TrainingRecord
from forget.errors import UnknownRecordError

if TYPE_CHECKING:
    import datasets

BATCH_SIZE = 1024  # rows per Arrow read: large enough to amortise the read, small in memory
SOURCE = "text"  # ``TrainingRecord.source`` of a generic corpus's records


class TextRecord(NamedTuple):
    """One record: its id, its text and its group (owner), ``None`` without a group field."""

    record_id: str
    text: str
    group: str | None = None


@dataclass(frozen=True)
class Segment:
    """Rows ``start .. start + length`` of the dataset came from ``label`` (a file)."""

    label: str
    start: int
    length: int


class TextCorpus:
    """A text corpus read through ``datasets``; built by :func:`forget.corpus.open_corpus`.

    Attributes:
        root: the ``--data`` path it was opened from.
        dataset: the underlying ``datasets.Dataset`` (every column of the files).
        text_field, id_field, group_field: the field names (``id_field`` ``None``: derived ids).
        segments: which rows came from which file (for derived ids and provenance).
        files: the files whose bytes the fingerprint covers, with their labels.
        format: ``json``, ``csv``, ``parquet``, ``text`` or ``arrow`` (``save_to_disk``).
    """

    def __init__(self, root: Path, dataset: datasets.Dataset, *, text_field: str,
                 id_field: str | None, group_field: str | None, segments: tuple[Segment, ...],
                 files: tuple[tuple[str, Path], ...], format: str) -> None:
        self.root = root
        self.dataset = dataset
        self.text_field = text_field
        self.id_field = id_field
        self.group_field = group_field
        self.segments = segments
        self.files = files
        self.format = format
        self._starts = [s.start for s in segments]
        self._by_label = {s.label: s for s in segments}

    def __len__(self) -> int:
        return self.dataset.num_rows

    def __repr__(self) -> str:
        return (f"TextCorpus({str(self.root)!r}, rows={len(self)}, text_field="
                f"{self.text_field!r}, id_field={self.id_field!r}, group_field="
                f"{self.group_field!r})")

    # -- reading ---------------------------------------------------------------------------
    def batches(self, batch_size: int = BATCH_SIZE, *, start: int = 0,
                stop: int | None = None) -> Iterator[list[TextRecord]]:
        """The records in corpus order, ``batch_size`` at a time (one Arrow read each);
        with ``start`` / ``stop``, only rows ``start .. stop - 1`` (a shard of the corpus)."""
        stop = len(self) if stop is None else min(stop, len(self))
        if (start, stop) == (0, len(self)):
            return self._read(self.dataset, self._derived_ids, batch_size)
        return self._read(self.dataset.select(range(start, max(start, stop))),
                          lambda s, n: self._derived_ids(start + s, n), batch_size)

    def _read(self, dataset: datasets.Dataset, derive: Callable[[int, int], list[str]],
              batch_size: int) -> Iterator[list[TextRecord]]:
        cols = [c for c in (self.text_field, self.id_field, self.group_field) if c]
        view = dataset.select_columns(list(dict.fromkeys(cols)))
        start = 0
        for batch in view.iter(batch_size=batch_size):
            texts = batch[self.text_field]
            n = len(texts)
            ids = ([str(v) for v in batch[self.id_field]] if self.id_field
                   else derive(start, n))
            groups = ([None if v is None else str(v) for v in batch[self.group_field]]
                      if self.group_field else [None] * n)
            yield [TextRecord(i, t, g) for i, t, g in zip(ids, texts, groups, strict=True)]
            start += n

    def __iter__(self) -> Iterator[TextRecord]:
        for batch in self.batches():
            yield from batch

    def record_ids(self) -> Iterator[str]:
        """Every record id, in corpus order."""
        for batch in self.batches():
            yield from (r.record_id for r in batch)

    def _derived_ids(self, start: int, n: int) -> list[str]:
        out: list[str] = []
        k = bisect.bisect_right(self._starts, start) - 1
        row = start
        while len(out) < n:
            seg = self.segments[k]
            take = min(seg.start + seg.length - row, n - len(out))
            out += [f"{seg.label}:{row - seg.start + j}" for j in range(take)]
            row += take
            k += 1
        return out

    def as_dataset(self, *, num_proc: int | None = None) -> datasets.Dataset:
        """The corpus as a ``datasets.Dataset`` of exactly ``record_id``, ``text`` and
        ``group`` (strings; ``group`` ``None`` without a group field), for ``Dataset.map``
        pipelines (``num_proc`` workers) such as building an index over every record. Written
        once by ``datasets.map`` into its cache (memory-mapped), reused while the files stay."""
        cols = list(dict.fromkeys(c for c in (self.text_field, self.id_field, self.group_field)
                                  if c))
        view = self.dataset.select_columns(cols)
        fn = _Normalise(self.text_field, self.id_field, self.group_field, self.segments)
        return view.map(fn, batched=True, with_indices=True, remove_columns=cols,
                        num_proc=num_proc, desc="record ids")

    # -- selection -------------------------------------------------------------------------
    def indices(self, record_ids: Iterable[str]) -> list[int]:
        """Row numbers of ``record_ids`` in corpus order; ``UnknownRecordError`` for any absent."""
        wanted = list(dict.fromkeys(str(r) for r in record_ids))
        if not wanted:
            return []
        found: dict[str, int] = {}
        if self.id_field:
            import numpy as np
            import pyarrow as pa
            import pyarrow.compute as pc

            col = pc.cast(self.dataset.data.column(self.id_field), pa.string())
            mask = pc.is_in(col, value_set=pa.array(wanted, pa.string()))
            rows = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
            found = {str(col[int(i)].as_py()): int(i) for i in rows}
        else:
            for rid in wanted:
                label, _, row = rid.rpartition(":")
                seg = self._by_label.get(label)
                if seg is not None and row.isdigit() and int(row) < seg.length:
                    found[rid] = seg.start + int(row)
        missing = [r for r in wanted if r not in found]
        if missing:
            raise UnknownRecordError(
                f"{len(missing)} record id(s) not in {self.root} (e.g. {missing[0]!r}); ids are "
                + (f"the {self.id_field!r} column" if self.id_field else "'<file>:<row>'"))
        return sorted(found.values())

    def select(self, record_ids: Iterable[str]) -> list[TextRecord]:
        """The records with these ids, in corpus order."""
        return self.take(self.indices(record_ids))

    def take(self, rows: Iterable[int]) -> list[TextRecord]:
        """The records at these row numbers (0-based, corpus order), sorted by row."""
        rows = sorted(set(int(r) for r in rows))
        if not rows:
            return []
        if rows[0] < 0 or rows[-1] >= len(self):
            bad = rows[0] if rows[0] < 0 else rows[-1]
            raise UnknownRecordError(f"row {bad} is not in {self.root} ({len(self)} rows)")
        ids = self._ids_of_rows(rows)  # derived ids of the selected rows, in order
        out: list[TextRecord] = []
        for batch in self._read(self.dataset.select(rows),
                                lambda start, n: ids[start:start + n], BATCH_SIZE):
            out += batch
        return out

    def _ids_of_rows(self, rows: list[int]) -> list[str]:
        if self.id_field:
            return []
        out = []
        for row in rows:
            seg = self.segments[bisect.bisect_right(self._starts, row) - 1]
            out.append(f"{seg.label}:{row - seg.start}")
        return out

    def training_records(self, *, exclude_ids: Iterable[str] = ()) -> list[TrainingRecord]:
        """Every record as a ``TrainingRecord`` (source ``text``, ``subject_id`` = the group),
        without ``exclude_ids`` (each of which must be in the corpus)."""
        excluded = set(str(r) for r in exclude_ids)
        self.indices(excluded)  # unknown ids are refused, as for subjects
        return [TrainingRecord(r.record_id, r.text, SOURCE, r.group)
                for r in self if r.record_id not in excluded]

    # -- identity --------------------------------------------------------------------------
    @cached_property
    def data_sha256(self) -> dict[str, str]:
        """sha256 of each source file's bytes, by label (one read of every file, then cached)."""
        out = {}
        for label, path in self.files:
            h = hashlib.sha256()
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out[label] = h.hexdigest()
        return out

    @cached_property
    def fingerprint(self) -> str:
        """sha256 over the files' hashes and the field names: same files + fields, same value."""
        body = {"files": self.data_sha256, "text_field": self.text_field,
                "id_field": self.id_field, "group_field": self.group_field}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        """What was opened, as JSON-able data (no record text)."""
        return {"path": str(self.root), "format": self.format, "rows": len(self),
                "text_field": self.text_field, "id_field": self.id_field,
                "group_field": self.group_field, "files": [label for label, _ in self.files]}


@dataclass(frozen=True)
class _Normalise:
    """``Dataset.map`` function: one batch of the source columns -> record_id, text, group.
    A plain picklable object (not a closure) so ``num_proc`` workers can run it."""

    text_field: str
    id_field: str | None
    group_field: str | None
    segments: tuple[Segment, ...]

    def __call__(self, batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        if self.id_field:
            ids = [str(v) for v in batch[self.id_field]]
        else:
            starts = [s.start for s in self.segments]
            ids = []
            for i in indices:
                seg = self.segments[bisect.bisect_right(starts, i) - 1]
                ids.append(f"{seg.label}:{i - seg.start}")
        groups = ([None if v is None else str(v) for v in batch[self.group_field]]
                  if self.group_field else [None] * len(ids))
        return {"record_id": ids, "text": batch[self.text_field], "group": groups}
