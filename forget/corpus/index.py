"""A reusable keyed-hash index of a text corpus, for scoping requests without rescanning it.

``forget corpus index --data PATH --out DIR`` (:func:`build_index`) reads every record once
(``datasets.map``, batched, ``num_proc`` workers), enumerates the terms under which the guard
could see an identifier in it (:mod:`forget.corpus.terms`: the guard's own normalisation and
atoms, so name variants, "[at]"/"dot" emails and re-spaced phone numbers are covered) and
keeps, per term, the rows that hold it. A request is then scoped by looking up the terms of
its identifiers' compact forms (:meth:`CorpusIndex.candidate_rows`: a few binary searches)
and confirming each candidate with ``ForgottenIndex.find`` on its text alone, which gives
the exact spans. The look-up returns a superset of what a full ``find`` scan returns (see
:mod:`forget.corpus.terms`), so the confirmed records are exactly the full scan's.

Layout of ``DIR``::

    manifest.json   format, version, index id, key check, the corpus's fingerprint, row count
                    and fields, the term parameters, counts; no record text, id or identifier
    terms.npy       int64[T]    sorted distinct keyed term hashes
    offsets.npy     int64[T+1]  rows of term k are rows[offsets[k]:offsets[k+1]]
    rows.npy        uint32[P]   row numbers (corpus order), ascending within a term

The key (32 random bytes, hex, mode 0600) lives in the key home, never in ``DIR``:
``$FORGET_KEY_HOME/corpus-index/<index id>.key`` (see :mod:`forget.keys`); ``key_dir``
overrides the folder. Without the key the index reveals the number of distinct terms and how
many rows share each (a frequency profile of 12-character windows of the text), nothing
else; with the key an attacker can test guesses of short strings against it, as with the
guard's index. Rebuilding makes a new key and deletes the old one.

The index records the corpus fingerprint (:attr:`TextCorpus.fingerprint`: the files' bytes
and the field names); opening it with a corpus that changed raises :class:`StaleIndexError`,
whose message gives the command that rebuilds it. Row numbers, not record ids, are stored,
so an id column that holds personal data never reaches the index.

Index or one scan per batch of requests? Chosen: the index. A scan costs one pass over the whole
corpus (normalise + ``find`` every record) each time it runs, however few requests it serves:
6-9 s per request for 100,000 short generated documents on one busy core (``bench/scope.py``),
minutes for a corpus of long documents. Batching pending requests into one scan amortises the
pass (20 requests: 8-11 s) but makes every request wait for its batch and for a full pass, and
repeats the pass for every new batch. The index costs about three scans once (building
enumerates more windows than ``find`` checks: 17-20 s for those 100,000 documents, 5,600-6,600
documents/s per core) and ~20 MB per 100,000 such documents; then each request costs a look-up
and ``find`` on its candidates only (13-16 ms median there, 400-700 times less than its scan;
40-55 ms with Presidio's spans), so requests are scoped one by one as they arrive, with no
batching policy, and exactly the scan's records are found. It must be rebuilt when the corpus
changes (refused, never silently stale), and its key kept like the guard's key. Without an
index, scoping falls back to one scan in Arrow batches
(:func:`forget.workflow.scope_text.scope_text_records`), which
:func:`forget.workflow.scope_text.scope_text_many` shares between several requests, and which
:func:`forget.workflow.scope_engine.scope_pending` runs as one datatrove pass for a batch of
pending requests (many processes here, or a cluster's executor).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from forget.corpus.load import Corpus
from forget.corpus.terms import WINDOW, TermHasher, identifier_terms, text_terms
from forget.corpus.text import TextCorpus
from forget.errors import (
    CorpusIndexError,
    DataNotFoundError,
    InvalidInputError,
    StaleIndexError,
    UnsupportedCorpusError,
)
from forget.keys import key_home, write_new_key

if TYPE_CHECKING:
    import datasets

FORMAT = "forget-suite.corpus-index"
VERSION = 1
FILES = ("terms.npy", "offsets.npy", "rows.npy")
MANIFEST = "manifest.json"
MAP_BATCH = 256  # records per datasets.map call of the term function
_KEY_CHECK = b"forget-suite/corpus-index/key-check"


def default_key_dir() -> Path:
    """Where corpus index keys live by default: ``<key home>/corpus-index``."""
    return key_home() / "corpus-index"


def _key_check(key: bytes) -> str:
    return hmac.new(key, _KEY_CHECK, hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class _HashTerms:
    """``Dataset.map`` function: a batch of texts -> each text's keyed term hashes.
    A plain picklable object so ``num_proc`` workers can run it; hashes are memoised per
    batch (common words recur)."""

    key: bytes
    text_field: str

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[list[int]]]:
        hasher = TermHasher(self.key)
        memo: dict[str, int] = {}
        out = []
        for text in batch[self.text_field]:
            hashes = []
            for t in text_terms(text):
                h = memo.get(t)
                if h is None:
                    h = memo[t] = hasher(t)
                hashes.append(h)
            out.append(hashes)
        return {"terms": out}


def _check_out(out: Path) -> dict | None:
    """Refuse an ``out`` that is a file or a non-empty folder other than an index; returns
    the manifest of an index being rebuilt."""
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {out} is a file; give a new or empty directory")
    if out.is_dir() and any(out.iterdir()):
        try:
            manifest = json.loads((out / MANIFEST).read_text())
            if manifest.get("format") == FORMAT:
                return manifest
        except (OSError, ValueError, AttributeError):
            pass
        raise InvalidInputError(f"--out {out} is not empty and holds no corpus index; give a "
                                "new or empty directory")
    return None


def build_index(corpus: TextCorpus | Corpus, out: Path | str, *, num_proc: int | None = None,
                key_dir: Path | str | None = None, progress: bool = False,
                chunk_rows: int | None = None) -> dict[str, Any]:
    """Index every record of ``corpus`` into ``out`` (see the module docstring).

    Args:
        corpus: a ``TextCorpus`` (the generator's layout: index its ``people.jsonl``).
        out: the index directory (new, empty, or an older index of any corpus: replaced).
        num_proc: ``datasets.map`` worker processes (``None``: this process).
        key_dir: where the key is written (default :func:`default_key_dir`).
        progress: show the suite's progress bar (records indexed) on stderr.
        chunk_rows: records per ``map`` call (the bar moves once per chunk; default: a
            tenth of the corpus, at least 2,000).

    Returns:
        The manifest (also written to ``out/manifest.json``).
    """
    if not isinstance(corpus, TextCorpus):
        raise UnsupportedCorpusError(
            "a corpus index is built from a corpus of files; for a directory from `forget "
            "data generate`, give its people.jsonl with --id-field record_id")
    if num_proc is not None and num_proc < 1:
        raise InvalidInputError(f"--num-proc must be at least 1, got {num_proc}")
    out = Path(out)
    old = _check_out(out)
    key_dir = Path(key_dir) if key_dir is not None else default_key_dir()
    index_id = secrets.token_hex(8)
    key = secrets.token_bytes(32)
    t0 = time.perf_counter()
    n = len(corpus)
    chunk = chunk_rows or max(2_000, -(-n // 10))
    term_parts: list[np.ndarray] = []
    row_parts: list[np.ndarray] = []
    ds = corpus.dataset.select_columns([corpus.text_field])
    with tempfile.TemporaryDirectory(prefix="forget-index-") as tmp, _bar(progress, n) as bar:
        for k, start in enumerate(range(0, n, chunk)):
            stop = min(n, start + chunk)
            part = _map_terms(ds.select(range(start, stop)), key, corpus.text_field,
                              num_proc, Path(tmp) / f"terms-{k}.arrow")
            terms, rows = _flatten(part, start)
            term_parts.append(terms)
            row_parts.append(rows)
            del part
            bar(stop - start)
    terms = np.concatenate(term_parts) if term_parts else np.zeros(0, np.int64)
    rows = np.concatenate(row_parts) if row_parts else np.zeros(0, np.uint32)
    order = np.argsort(terms, kind="stable")  # rows stay ascending within a term
    terms, rows = terms[order], rows[order]
    uniq, first = np.unique(terms, return_index=True)
    offsets = np.append(first, len(terms)).astype(np.int64)
    build_s = time.perf_counter() - t0
    manifest = {
        "format": FORMAT, "version": VERSION, "index_id": index_id,
        "key_check": _key_check(key), "key_file": f"{index_id}.key",
        "hash": "HMAC-SHA256 of each term, first 64 bits",
        "terms": {"window": WINDOW, "normalisation": "guardrails.normalize (atoms, at/dot)"},
        "corpus": {"fingerprint": corpus.fingerprint, "rows": n, "path": str(corpus.root),
                   "format": corpus.format, "text_field": corpus.text_field,
                   "id_field": corpus.id_field, "group_field": corpus.group_field},
        "counts": {"records": n, "terms": int(len(uniq)), "postings": int(len(rows))},
        "build": {"seconds": round(build_s, 3), "num_proc": num_proc or 1,
                  "records_per_s": round(n / build_s, 1) if build_s else None},
    }
    # the key first (a failure leaves no index without its key), then the arrays, manifest last
    write_new_key(key_dir / f"{index_id}.key", key.hex().encode() + b"\n")
    out.mkdir(parents=True, exist_ok=True)
    for name, arr in zip(FILES, (uniq, offsets, rows), strict=True):
        tmp_path = out / f".{name}.tmp.npy"
        np.save(tmp_path, arr)
        os.replace(tmp_path, out / name)
    tmp_path = out / f".{MANIFEST}.tmp"
    tmp_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp_path, out / MANIFEST)
    if old and old.get("key_file"):
        (key_dir / str(old["key_file"])).unlink(missing_ok=True)
    return manifest


def _map_terms(ds: datasets.Dataset, key: bytes, text_field: str, num_proc: int | None,
               cache: Path) -> datasets.Dataset:
    import datasets

    features = datasets.Features({"terms": datasets.Sequence(datasets.Value("int64"))})
    return ds.map(_HashTerms(key, text_field), batched=True, batch_size=MAP_BATCH,
                  num_proc=num_proc if num_proc and num_proc > 1 else None,
                  remove_columns=[text_field], features=features,
                  cache_file_name=str(cache), load_from_cache_file=False,
                  new_fingerprint=secrets.token_hex(16), desc="corpus index")


def _flatten(part: datasets.Dataset, start: int) -> tuple[np.ndarray, np.ndarray]:
    """(term hashes, their row numbers) of one mapped chunk."""
    import pyarrow.compute as pc

    col = part.data.column("terms")
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    terms = pc.list_flatten(col).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    rows = np.repeat(np.arange(start, start + len(lengths), dtype=np.uint32), lengths)
    return terms, rows


class _bar:
    """The suite's progress bar over records (rich, on stderr); a no-op when not shown."""

    def __init__(self, show: bool, total: int) -> None:
        self.show, self.total = show, total

    def __enter__(self) -> Callable[[int], None]:
        if not self.show:
            return lambda k: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self._p = Progress("[progress.description]{task.description}", BarColumn(),
                           MofNCompleteColumn(), TimeElapsedColumn(),
                           console=Console(stderr=True), transient=False)
        self._p.start()
        task = self._p.add_task("indexing records", total=self.total)
        return lambda k: self._p.advance(task, k)

    def __exit__(self, *exc: object) -> None:
        if self.show:
            self._p.stop()


@dataclass(frozen=True)
class CorpusIndex:
    """An opened corpus index (arrays memory-mapped) and its key's term hasher."""

    path: Path
    manifest: dict[str, Any]
    terms: np.ndarray
    offsets: np.ndarray
    rows: np.ndarray
    hasher: TermHasher

    @classmethod
    def open(cls, path: Path | str, corpus: TextCorpus | None = None, *,
             key_dir: Path | str | None = None) -> CorpusIndex:
        """Open the index at ``path``; with ``corpus``, refuse it unless it was built from
        exactly that corpus (:class:`StaleIndexError`)."""
        path = Path(path)
        if not (path / MANIFEST).is_file():
            raise DataNotFoundError(f"no corpus index at {path}; build one with `forget corpus "
                                    f"index --data PATH --out {path}`")
        try:
            manifest = json.loads((path / MANIFEST).read_text())
            ok = manifest.get("format") == FORMAT
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            raise CorpusIndexError(f"{path} is not a corpus index; build one with `forget "
                                   f"corpus index --data PATH --out {path}`")
        if manifest.get("version") != VERSION:
            raise CorpusIndexError(f"{path} has corpus index version {manifest.get('version')};"
                                   f" this version reads {VERSION}: rebuild it")
        if corpus is not None:
            check_corpus(manifest, corpus, path)
        key_file = (Path(key_dir) if key_dir is not None else default_key_dir()) / str(
            manifest["key_file"])
        try:
            key = bytes.fromhex(key_file.read_text().strip())
        except (OSError, ValueError):
            raise CorpusIndexError(
                f"the key of the corpus index {path} is missing or unreadable at {key_file}; "
                "set FORGET_KEY_HOME to the key home it was built with, or rebuild the "
                "index") from None
        if _key_check(key) != manifest["key_check"]:
            raise CorpusIndexError(f"the key at {key_file} is not the key of {path}; rebuild "
                                   "the index")
        terms, offsets, rows = (np.load(path / f, mmap_mode="r") for f in FILES)
        return cls(path, manifest, terms, offsets, rows, TermHasher(key))

    def candidate_rows(self, mapping: dict[str, list[str]]) -> list[int]:
        """Row numbers of the records holding a term of one of the identifiers' forms
        (``{kind: [values]}`` as for ``ForgottenIndex.add``): a superset of the records in
        which ``find`` sees one of them."""
        q = np.array(sorted(self.hasher.many(identifier_terms(mapping))), dtype=np.int64)
        if not len(q) or not len(self.terms):
            return []
        pos = np.searchsorted(self.terms, q)
        inside = pos < len(self.terms)
        pos, q = pos[inside], q[inside]
        pos = pos[np.asarray(self.terms[pos]) == q]
        parts = [np.asarray(self.rows[self.offsets[p]:self.offsets[p + 1]]) for p in pos]
        return np.unique(np.concatenate(parts)).tolist() if parts else []

    def describe(self) -> dict[str, Any]:
        """The manifest's counts and corpus (JSON-able; no identifier, no text)."""
        return {k: self.manifest[k] for k in ("index_id", "corpus", "counts", "build")}


def check_corpus(manifest: dict[str, Any], corpus: TextCorpus, path: Path) -> None:
    """Refuse a corpus other than the one the index at ``path`` was built from."""
    built = manifest.get("corpus", {})
    if not isinstance(corpus, TextCorpus) or built.get("fingerprint") != corpus.fingerprint:
        fields = f" --text-field {corpus.text_field}" if isinstance(corpus, TextCorpus) else ""
        raise StaleIndexError(
            f"the corpus index {path} was built from other data (fingerprint "
            f"{str(built.get('fingerprint'))[:12]}) than {getattr(corpus, 'root', corpus)}; "
            f"rebuild it: `forget corpus index --data {getattr(corpus, 'root', 'PATH')}"
            f"{fields} --out {path}`")


def remove_index(path: Path | str, *, key_dir: Path | str | None = None) -> None:
    """Delete the index at ``path`` and its key."""
    path = Path(path)
    manifest = json.loads((path / MANIFEST).read_text())
    key_dir = Path(key_dir) if key_dir is not None else default_key_dir()
    (key_dir / str(manifest["key_file"])).unlink(missing_ok=True)
    shutil.rmtree(path)
