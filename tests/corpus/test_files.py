"""`open_corpus` on real files in every format, written with pandas, pyarrow and datasets."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forget.corpus import (
    Corpus,
    TextCorpus,
    TextRecord,
    TrainingRecord,
    is_generated,
    load_corpus,
    open_corpus,
)
from forget.corpus.text import Segment
from forget.errors import ForgetError, UnknownRecordError

ROWS = [{"doc_id": f"T{i:03d}", "body": f"ticket {i}: printer on floor {i % 4} is down",
         "owner": f"acct-{i % 3}", "n": i} for i in range(7)]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS)


def write(fmt: str, path: Path) -> Path:
    """``ROWS`` as one file of format ``fmt`` (a ``.txt`` holds the bodies only)."""
    df = _frame()
    if fmt == "jsonl":
        df.to_json(path, orient="records", lines=True)
    elif fmt == "json":
        path.write_text(json.dumps(ROWS))
    elif fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    elif fmt == "txt":
        path.write_text("".join(r["body"] + "\n" for r in ROWS))
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet"])
def test_each_table_format_with_fields(fmt, tmp_path):
    f = write(fmt, tmp_path / f"tickets.{fmt}")
    c = open_corpus(f, text_field="body", id_field="doc_id", group_field="owner")
    assert isinstance(c, TextCorpus) and len(c) == len(ROWS)
    assert list(c) == [TextRecord(r["doc_id"], r["body"], r["owner"]) for r in ROWS]
    assert c.select(["T005", "T001"]) == [TextRecord("T001", ROWS[1]["body"], "acct-1"),
                                           TextRecord("T005", ROWS[5]["body"], "acct-2")]
    assert c.describe()["rows"] == 7 and c.describe()["files"] == [f"tickets.{fmt}"]
    assert c.dataset.cache_files, "the records live in a memory-mapped Arrow file"


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "txt"])
def test_derived_ids_are_file_and_row(fmt, tmp_path):
    f = write(fmt, tmp_path / f"t.{fmt}")
    c = open_corpus(f, text_field="text" if fmt == "txt" else "body")
    ids = list(c.record_ids())
    assert ids == [f"t.{fmt}:{i}" for i in range(7)]
    assert [r.text for r in c.select([f"t.{fmt}:6"])] == [ROWS[6]["body"]]
    assert all(r.group is None for r in c)


def test_txt_is_one_record_per_line(tmp_path):
    c = open_corpus(write("txt", tmp_path / "notes.txt"))
    assert [r.text for r in c] == [r["body"] for r in ROWS]


def test_integer_id_column_gives_string_ids(tmp_path):
    c = open_corpus(write("parquet", tmp_path / "t.parquet"), text_field="body", id_field="n")
    assert [r.record_id for r in c] == [str(i) for i in range(7)]
    assert [r.text for r in c.select(["3"])] == [ROWS[3]["body"]]


def test_directory_of_files_recursive_in_order_hidden_skipped(tmp_path):
    d = tmp_path / "corpus"
    (d / "b").mkdir(parents=True)
    df = _frame()
    df.iloc[:3].to_json(d / "a.jsonl", orient="records", lines=True)
    df.iloc[3:].to_json(d / "b" / "c.jsonl", orient="records", lines=True)
    (d / ".hidden.jsonl").write_text('{"body": "not me"}\n')
    (d / "README.md").write_text("about this data\n")
    c = open_corpus(d, text_field="body")
    assert [r.text for r in c] == [r["body"] for r in ROWS]
    assert list(c.record_ids()) == [f"a.jsonl:{i}" for i in range(3)] + [
        f"b/c.jsonl:{i}" for i in range(4)]
    assert c.select(["b/c.jsonl:0"])[0].text == ROWS[3]["body"]
    assert sorted(c.data_sha256) == ["a.jsonl", "b/c.jsonl"]


def test_save_to_disk_dataset_and_dataset_dict(tmp_path):
    ds = datasets.Dataset.from_pandas(_frame(), preserve_index=False)
    ds.save_to_disk(str(tmp_path / "saved"))
    c = open_corpus(tmp_path / "saved", text_field="body", id_field="doc_id")
    assert c.format == "arrow" and [r.record_id for r in c] == [r["doc_id"] for r in ROWS]
    assert c.data_sha256 and c.fingerprint
    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(
        str(tmp_path / "dd"))
    c2 = open_corpus(tmp_path / "dd", text_field="body")
    assert len(c2) == 7 and next(iter(c2)).record_id == "train:0"


def test_generated_layout_is_detected_and_unchanged(corpus_dir):
    assert is_generated(corpus_dir)
    c = open_corpus(corpus_dir)
    assert isinstance(c, Corpus)
    assert c.people == load_corpus(corpus_dir).people


def test_batches_cover_every_record_once(tmp_path):
    c = open_corpus(write("csv", tmp_path / "t.csv"), text_field="body")
    batches = list(c.batches(batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert [r for b in batches for r in b] == list(c)


def test_training_records_exclude_and_refuse_unknown(tmp_path):
    c = open_corpus(write("parquet", tmp_path / "t.parquet"), text_field="body",
                    id_field="doc_id", group_field="owner")
    recs = c.training_records(exclude_ids=["T002"])
    assert len(recs) == 6 and "T002" not in {r.record_id for r in recs}
    assert recs[0] == TrainingRecord("T000", ROWS[0]["body"], "text", "acct-0")
    with pytest.raises(UnknownRecordError, match="1 record id"):
        c.training_records(exclude_ids=["T999"])
    with pytest.raises(KeyError):
        c.select(["nope"])


def test_fingerprint_follows_content_and_fields(tmp_path):
    a = write("parquet", tmp_path / "a.parquet")
    fp = open_corpus(a, text_field="body").fingerprint
    assert open_corpus(a, text_field="body").fingerprint == fp
    assert open_corpus(a, text_field="body", id_field="doc_id").fingerprint != fp
    df = _frame()
    df.loc[0, "body"] = "changed"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), a)
    assert open_corpus(a, text_field="body").fingerprint != fp


def test_an_unchanged_file_is_reused_from_the_cache(tmp_path):
    f = write("jsonl", tmp_path / "t.jsonl")
    first = open_corpus(f, text_field="body", cache_dir=tmp_path / "cache")
    again = open_corpus(f, text_field="body", cache_dir=tmp_path / "cache")
    assert first.dataset.cache_files == again.dataset.cache_files


def test_errors_are_forget_errors(tmp_path):
    with pytest.raises(ForgetError):
        open_corpus(tmp_path / "missing.parquet")


def _corpus_of(lengths: list[int]) -> TextCorpus:
    n = sum(lengths)
    ds = datasets.Dataset.from_dict({"text": [f"r{i}" for i in range(n)]})
    segs, start = [], 0
    for k, length in enumerate(lengths):
        segs.append(Segment(f"f{k}.jsonl", start, length))
        start += length
    return TextCorpus(Path("x"), ds, text_field="text", id_field=None, group_field=None,
                      segments=tuple(segs), files=(), format="json")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=5), st.integers(1, 12),
       st.data())
def test_derived_ids_any_batching_and_round_trip(lengths, batch_size, data):
    c = _corpus_of(lengths)
    expected = [f"f{k}.jsonl:{j}" for k, length in enumerate(lengths) for j in range(length)]
    got = [r.record_id for b in c.batches(batch_size) for r in b]
    assert got == expected
    picked = data.draw(st.lists(st.sampled_from(expected), unique=True, max_size=6))
    rows = c.indices(picked)
    assert [expected[i] for i in rows] == sorted(picked, key=expected.index)
    assert [r.record_id for r in c.select(picked)] == [expected[i] for i in rows]
    assert [r.text for r in c.select(picked)] == [f"r{i}" for i in rows]


@pytest.mark.parametrize("fields", [{"text_field": "body"},
                                    {"text_field": "body", "id_field": "n",
                                     "group_field": "owner"}])
def test_as_dataset_has_the_normalised_columns(fields, tmp_path):
    c = open_corpus(write("parquet", tmp_path / "t.parquet"), **fields)
    ds = c.as_dataset()
    assert ds.column_names == ["record_id", "text", "group"] and ds.cache_files
    assert [TextRecord(r["record_id"], r["text"], r["group"]) for r in ds] == list(c)


def test_as_dataset_map_with_workers_keeps_derived_ids(tmp_path):
    d = tmp_path / "two"
    d.mkdir()
    _frame().to_json(d / "a.jsonl", orient="records", lines=True)
    _frame().to_json(d / "b.jsonl", orient="records", lines=True)
    c = open_corpus(d, text_field="body")
    ds = c.as_dataset(num_proc=2)
    assert ds["record_id"][:] == list(c.record_ids())


def test_a_directory_of_many_files_is_one_load_call(tmp_path, monkeypatch):
    d = tmp_path / "many"
    d.mkdir()
    for k in range(12):
        (d / f"f{k:02d}.jsonl").write_text(json.dumps({"body": f"ticket {k}"}) + "\n")
    calls = []
    real = datasets.load_dataset
    monkeypatch.setattr(datasets, "load_dataset",
                        lambda *a, **kw: calls.append(1) or real(*a, **kw))
    c = open_corpus(d, text_field="body")
    assert len(calls) == 1
    assert list(c.record_ids()) == [f"f{k:02d}.jsonl:0" for k in range(12)]
    assert [r.text for r in c] == [f"ticket {k}" for k in range(12)]
