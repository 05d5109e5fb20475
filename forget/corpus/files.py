"""``open_corpus``: one entry point for every ``--data PATH`` the suite accepts.

``PATH`` may be:

- a directory made by ``forget data generate`` (``subjects.jsonl`` + ``people.jsonl`` ...):
  the generated :class:`~forget.corpus.load.Corpus`, with its ground truth, exactly as
  :func:`~forget.corpus.load.load_corpus` returns it;
- a ``.jsonl`` / ``.json`` / ``.csv`` / ``.parquet`` / ``.txt`` file, or a directory of such
  files (searched recursively, hidden files and other suffixes skipped; one format family per
  directory, ``.json`` and ``.jsonl`` count as one);
- a ``datasets`` ``save_to_disk`` directory (a ``DatasetDict``: its ``train`` split, or its
  only split);

each of the last two as a :class:`~forget.corpus.text.TextCorpus`, loaded with ``datasets``
(Arrow, memory-mapped from the ``datasets`` cache; no parser of ours). Every bad input is a
one-line ``ForgetError`` naming the file and the fix, never the text of a record.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from forget.corpus.load import Corpus, load_corpus
from forget.corpus.text import Segment, TextCorpus
from forget.errors import (
    DataNotFoundError,
    EmptyDataError,
    EncodingError,
    InvalidInputError,
    MalformedDataError,
    MissingColumnError,
    UnsupportedFormatError,
)

if TYPE_CHECKING:
    import datasets

# file suffix -> the ``datasets`` packaged builder that reads it
FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet",
           ".txt": "text"}
TEXT_BUILDERS = {"json", "csv", "text"}  # read as UTF-8 text: checked before loading
ACCEPTED = ("a .jsonl, .json, .csv, .parquet or .txt file, a directory of them, a "
            "datasets save_to_disk directory, or a directory from `forget data generate`")
GENERATED_MARKERS = ("subjects.jsonl", "people.jsonl")


def is_generated(path: Path | str) -> bool:
    """Whether ``path`` is a directory in the generator's layout (it carries ground truth)."""
    path = Path(path)
    return path.is_dir() and all((path / m).is_file() for m in GENERATED_MARKERS)


def open_corpus(path: Path | str, *, text_field: str = "text", id_field: str | None = None,
                group_field: str | None = None,
                cache_dir: Path | str | None = None) -> Corpus | TextCorpus:
    """Open ``path`` as a corpus (see the module docstring for what it may be).

    Args:
        path: the ``--data`` path.
        text_field: the column holding each record's text (``.txt`` files: ``text``).
        id_field: the column of unique record ids; ``None`` derives ``<file>:<row>`` ids.
        group_field: an optional owner column (the person or account a record belongs to).
        cache_dir: where ``datasets`` keeps the Arrow copies of files (default: its cache,
            ``HF_DATASETS_CACHE``); a second open of unchanged files reuses them.

    Returns:
        The generated ``Corpus`` for the generator's layout, else a ``TextCorpus``.
    """
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"data path {path} does not exist; give {ACCEPTED}")
    if is_generated(path):
        if (text_field, id_field, group_field) != ("text", None, None):
            raise InvalidInputError(
                f"{path} is a generated corpus with fixed fields; drop --text-field, "
                "--id-field and --group-field for it")
        return load_corpus(path)
    with _quiet_datasets():
        if path.is_dir() and _is_saved_dataset(path):
            ds, segments, files, fmt = _load_saved(path)
        else:
            ds, segments, files, fmt = _load_files(path, text_field, id_field, group_field,
                                                   cache_dir)
    if len(files) != 1 or fmt == "arrow":  # one file was checked as it was loaded
        _check_fields(ds, path, text_field, id_field, group_field)
    return TextCorpus(path, ds, text_field=text_field, id_field=id_field,
                      group_field=group_field, segments=segments, files=files, format=fmt)


def _is_saved_dataset(path: Path) -> bool:
    return ((path / "state.json").is_file() and (path / "dataset_info.json").is_file()) or (
        path / "dataset_dict.json").is_file()


def _data_files(path: Path) -> list[Path]:
    """The data files under ``path`` (a file: itself), sorted, hidden ones skipped."""
    if path.is_file():
        if path.suffix.lower() not in FORMATS:
            raise UnsupportedFormatError(
                f"{path}: unsupported format {path.suffix or '(no suffix)'!r}; give {ACCEPTED} "
                "(convert other formats to parquet or jsonl)")
        return [path]
    saved = sorted(d for d in {p.parent for p in path.rglob("*.json")} if _is_saved_dataset(d))
    if saved:
        raise UnsupportedFormatError(
            f"{path} holds a datasets save_to_disk directory ({saved[0]}); give that directory "
            "itself as --data")
    files = sorted(p for p in path.rglob("*") if p.is_file()
                   and p.suffix.lower() in FORMATS
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not files:
        raise UnsupportedFormatError(f"{path} holds no data file; give {ACCEPTED}")
    builders = sorted({FORMATS[p.suffix.lower()] for p in files})
    if len(builders) > 1:
        raise UnsupportedFormatError(
            f"{path} mixes formats ({', '.join(builders)}); put one format per directory")
    return files


def _load_files(path: Path, text_field: str, id_field: str | None, group_field: str | None,
                cache_dir: Path | str | None,
                ) -> tuple[datasets.Dataset, tuple[Segment, ...], tuple[tuple[str, Path], ...],
                           str]:
    import datasets

    files = _data_files(path)
    builder = FORMATS[files[0].suffix.lower()]
    parts = _load_all(files, builder, cache_dir)
    segments, labelled = [], []
    start = 0
    for f, ds in zip(files, parts, strict=True):
        label = f.name if path.is_file() else f.relative_to(path).as_posix()
        _check_fields(ds, f, text_field, id_field, group_field)
        segments.append(Segment(label, start, ds.num_rows))
        labelled.append((label, f))
        start += ds.num_rows
    if len(parts) == 1:
        return parts[0], tuple(segments), tuple(labelled), builder
    try:
        ds = datasets.concatenate_datasets(parts)
    except ValueError:
        raise MalformedDataError(
            f"the files under {path} do not share one set of columns and types; make them "
            "agree, or give one file at a time") from None
    return ds, tuple(segments), tuple(labelled), builder


def _load_all(files: list[Path], builder: str,
              cache_dir: Path | str | None) -> list[datasets.Dataset]:
    """One dataset per file, in order. All files go through one ``load_dataset`` call, each
    as its own split (one call per file costs ~0.2 s of overhead each: 200 small files took
    32 s that way, 1 s this way); when that call fails, the files are loaded one by one so the
    error names the file at fault."""
    import datasets

    for f in files:
        if f.stat().st_size == 0:
            raise EmptyDataError(f"{f} is empty; remove it or give a file with records")
        if builder in TEXT_BUILDERS:
            _check_utf8(f)
    try:
        dd = datasets.load_dataset(builder, data_files={f"f{k}": str(f) for k, f in
                                                        enumerate(files)},
                                   cache_dir=str(cache_dir) if cache_dir else None)
        parts = [dd[f"f{k}"] for k in range(len(files))]
        if all(isinstance(p, datasets.Dataset) and p.num_rows for p in parts):
            return parts
    except Exception:  # noqa: BLE001  (re-done file by file below, for a precise error)
        pass
    return [_load_one(f, builder, cache_dir) for f in files]


def _load_one(f: Path, builder: str, cache_dir: Path | str | None) -> datasets.Dataset:
    import datasets

    if f.stat().st_size == 0:
        raise EmptyDataError(f"{f} is empty; remove it or give a file with records")
    if builder in TEXT_BUILDERS:
        _check_utf8(f)
    try:
        ds = datasets.load_dataset(builder, data_files=str(f), split="train",
                                  cache_dir=str(cache_dir) if cache_dir else None)
    except Exception as e:  # datasets wraps the reader's error; its text may quote a record
        raise _load_error(f, builder, e) from None
    if not isinstance(ds, datasets.Dataset) or ds.num_rows == 0:
        raise EmptyDataError(f"{f} holds no records; remove it or give a file with records")
    return ds


def _load_error(f: Path, builder: str, e: BaseException) -> Exception:
    """One line for a reader's failure: the file, the format, where, what to do; no quotes."""
    chain = list(_causes(e))
    if any(isinstance(c, UnicodeDecodeError) for c in chain):
        return EncodingError(f"{f} is not valid UTF-8; re-encode it as UTF-8")
    if any("corresponds to no data" in str(c) for c in chain):
        return EmptyDataError(f"{f} holds no records; remove it or give a file with records")
    row = next((m.group(1) for c in chain if (m := re.search(r"in row (\d+)", str(c)))), None)
    where = f" (row {row})" if row is not None else ""
    kind = {"json": "JSON Lines or a JSON array of objects", "csv": "CSV with a header row",
            "parquet": "Parquet", "text": "text"}[builder]
    return MalformedDataError(
        f"{f} cannot be read as {kind}{where}: {type(chain[-1]).__name__}; fix the file or "
        "convert it to parquet")


def _causes(e: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    c: BaseException | None = e
    while c is not None and id(c) not in seen:
        seen.add(id(c))
        yield c
        c = c.__cause__ or c.__context__


def _check_utf8(f: Path) -> None:
    """Refuse a text file that is not UTF-8 (the JSON reader would otherwise mangle it)."""
    dec = codecs.getincrementaldecoder("utf-8")()
    try:
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                dec.decode(chunk)
            dec.decode(b"", final=True)
    except UnicodeDecodeError:
        raise EncodingError(f"{f} is not valid UTF-8; re-encode it as UTF-8 "
                            "(e.g. `iconv -f latin1 -t utf-8`)") from None


def _load_saved(path: Path) -> tuple[datasets.Dataset, tuple[Segment, ...],
                                     tuple[tuple[str, Path], ...], str]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:
        raise MalformedDataError(
            f"{path} looks like a datasets save_to_disk directory but cannot be loaded "
            f"({type(e).__name__}); save it again with Dataset.save_to_disk") from None
    if isinstance(ds, datasets.DatasetDict):
        splits = sorted(ds)
        if "train" not in ds and len(splits) != 1:
            raise InvalidInputError(
                f"{path} is a DatasetDict with splits {', '.join(splits)} and no 'train'; give "
                f"one split's directory, e.g. {path / splits[0]}")
        split = "train" if "train" in ds else splits[0]
        ds, path = ds[split], path / split
    if ds.num_rows == 0:
        raise EmptyDataError(f"{path} holds no records; give a dataset with records")
    arrow = sorted(path.glob("*.arrow"))
    files = tuple((f"{path.name}/{a.name}", a) for a in arrow)
    return ds, (Segment(path.name, 0, ds.num_rows),), files, "arrow"


def _check_fields(ds: datasets.Dataset, where: Path, text_field: str, id_field: str | None,
                  group_field: str | None) -> None:
    """The named columns exist; text is text without gaps; ids are unique and present."""
    import pyarrow.compute as pc

    cols = ds.column_names
    for option, name in (("--text-field", text_field), ("--id-field", id_field),
                         ("--group-field", group_field)):
        if name is not None and name not in cols:
            raise MissingColumnError(
                f"{where} has no column {name!r} (columns: {', '.join(cols)}); pass "
                f"{option} with one of them")
    dtype = str(getattr(ds.features[text_field], "dtype", ds.features[text_field]))
    if dtype not in ("string", "large_string"):
        raise MalformedDataError(
            f"{where}: column {text_field!r} holds {dtype}, not text; pass --text-field with "
            "the column of texts")
    table = ds.data
    if (n := table.column(text_field).null_count):
        raise MalformedDataError(
            f"{where}: {n} row(s) have no {text_field!r}; fill or drop them")
    if id_field is not None:
        col = table.column(id_field)
        if (n := col.null_count):
            raise MalformedDataError(f"{where}: {n} row(s) have no {id_field!r}; fill or drop "
                                     "them, or omit --id-field to derive ids")
        dup = len(col) - pc.count_distinct(col).as_py()
        if dup:
            raise MalformedDataError(
                f"{where}: {dup} duplicate value(s) in id column {id_field!r}; ids must be "
                "unique (or omit --id-field to derive '<file>:<row>' ids)")


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """datasets logs a reader's error (which may quote a record) before raising; we raise our
    own one line instead, so its log is silenced while loading."""
    import datasets

    level = datasets.logging.get_verbosity()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL + 10)
    try:
        yield
    finally:
        datasets.logging.set_verbosity(level)
