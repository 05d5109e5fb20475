"""Bad ``--data`` inputs: each one ``ForgetError`` line naming the file and the fix, no record text."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import datasets
import pandas as pd
import pytest

from forget.corpus import open_corpus
from forget.errors import (
    DataNotFoundError,
    EmptyDataError,
    EncodingError,
    ForgetError,
    InvalidInputError,
    MalformedDataError,
    MissingColumnError,
    UnsupportedFormatError,
)

SECRET = "Jane Roe jane.roe@example.org +44 20 7946 0000"  # must never appear in a message


def _rows(n: int = 3) -> list[dict]:
    return [{"id": f"r{i}", "body": f"{SECRET} #{i}", "n": i} for i in range(n)]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _latin1(suffix: str) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        body = {".jsonl": '{"body": "%s caf\xe9"}\n', ".json": '[{"body": "%s caf\xe9"}]',
                ".csv": 'body\n%s caf\xe9\n', ".txt": '%s caf\xe9\n'}[suffix] % SECRET
        f = d / f"latin1{suffix}"
        f.write_bytes(body.encode("latin-1"))
        return f
    return make


def _mixed(d: Path) -> Path:
    _jsonl(d / "a.jsonl", _rows())
    pd.DataFrame(_rows()).to_csv(d / "b.csv", index=False)
    return d


def _dict_no_train(d: Path) -> Path:
    ds = datasets.Dataset.from_list(_rows())
    datasets.DatasetDict({"a": ds, "b": ds}).save_to_disk(str(d / "dd"))
    return d / "dd"


def _nested_saved(d: Path) -> Path:
    _jsonl(d / "a.jsonl", _rows())
    datasets.Dataset.from_list(_rows()).save_to_disk(str(d / "inner"))
    return d


def _disagreeing(d: Path) -> Path:
    _jsonl(d / "a.jsonl", _rows())
    _jsonl(d / "b.jsonl", [{"id": "x", "body": ["a", "list"]}])
    return d


# (name, make(dir) -> path, open_corpus kwargs, error class, builtin, words in the message)
CASES = [
    ("missing path", lambda d: d / "absent.parquet", {}, DataNotFoundError, FileNotFoundError,
     ["absent.parquet", "does not exist"]),
    ("missing text column", lambda d: _jsonl(d / "t.jsonl", _rows()), {}, MissingColumnError,
     ValueError, ["t.jsonl", "no column 'text'", "columns: id, body, n", "--text-field"]),
    ("missing id column", lambda d: _jsonl(d / "t.jsonl", _rows()),
     {"text_field": "body", "id_field": "doc_id"}, MissingColumnError, ValueError,
     ["t.jsonl", "'doc_id'", "--id-field"]),
    ("missing group column", lambda d: _jsonl(d / "t.jsonl", _rows()),
     {"text_field": "body", "group_field": "owner"}, MissingColumnError, ValueError,
     ["'owner'", "--group-field"]),
    ("text column not text", lambda d: _jsonl(d / "t.jsonl", _rows()), {"text_field": "n"},
     MalformedDataError, ValueError, ["t.jsonl", "'n' holds int64", "--text-field"]),
    ("empty file", lambda d: (d / "e.jsonl").touch() or d / "e.jsonl", {}, EmptyDataError,
     ValueError, ["e.jsonl", "is empty"]),
    ("header-only csv", lambda d: (d / "h.csv").write_text("body,id\n") and d / "h.csv", {},
     EmptyDataError, ValueError, ["h.csv", "no records"]),
    ("empty json array", lambda d: (d / "a.json").write_text("[]") and d / "a.json", {},
     EmptyDataError, ValueError, ["a.json", "no records"]),
    ("unsupported suffix", lambda d: (d / "t.xlsx").write_text("x") and d / "t.xlsx", {},
     UnsupportedFormatError, ValueError, ["t.xlsx", "'.xlsx'", "parquet"]),
    ("directory without data", lambda d: (d / "notes.md").write_text("x") and d, {},
     UnsupportedFormatError, ValueError, ["holds no data file"]),
    ("mixed formats", _mixed, {"text_field": "body"}, UnsupportedFormatError, ValueError,
     ["csv, json", "one format per directory"]),
    ("save_to_disk inside a directory", _nested_saved, {"text_field": "body"},
     UnsupportedFormatError, ValueError, ["inner", "give that directory itself"]),
    ("duplicate ids across files", lambda d: _jsonl(d / "b.jsonl", _rows(2)) and _jsonl(
        d / "a.jsonl", _rows(1)) and d, {"text_field": "body", "id_field": "id"},
     MalformedDataError, ValueError, ["1 duplicate value(s)"]),
    ("columns disagree", _disagreeing, {"text_field": "body"}, MalformedDataError, ValueError,
     ["b.jsonl", "'body' holds List"]),
    ("non-UTF-8 jsonl", _latin1(".jsonl"), {"text_field": "body"}, EncodingError, ValueError,
     ["latin1.jsonl", "not valid UTF-8", "re-encode"]),
    ("non-UTF-8 json", _latin1(".json"), {"text_field": "body"}, EncodingError, ValueError,
     ["latin1.json", "not valid UTF-8"]),
    ("non-UTF-8 csv", _latin1(".csv"), {"text_field": "body"}, EncodingError, ValueError,
     ["latin1.csv", "not valid UTF-8"]),
    ("non-UTF-8 txt", _latin1(".txt"), {}, EncodingError, ValueError,
     ["latin1.txt", "not valid UTF-8"]),
    ("broken JSON line", lambda d: (d / "b.jsonl").write_text(
        json.dumps({"body": SECRET}) + '\n{"body": "' + SECRET + '\n') and d / "b.jsonl",
     {"text_field": "body"}, MalformedDataError, ValueError, ["b.jsonl", "cannot be read as JSON"]),
    ("null text", lambda d: _jsonl(d / "t.jsonl", [*_rows(), {"id": "z", "body": None, "n": 9}]),
     {"text_field": "body"}, MalformedDataError, ValueError, ["t.jsonl", "1 row(s) have no 'body'"]),
    ("duplicate ids", lambda d: _jsonl(d / "t.jsonl", _rows() + _rows(1)),
     {"text_field": "body", "id_field": "id"}, MalformedDataError, ValueError,
     ["1 duplicate value(s)", "'id'", "unique"]),
    ("DatasetDict without train", _dict_no_train, {"text_field": "body"}, InvalidInputError,
     ValueError, ["splits a, b", "one split's directory"]),
]


@pytest.mark.parametrize(("make", "kwargs", "cls", "builtin", "words"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line(make, kwargs, cls, builtin, words, tmp_path):
    path = make(tmp_path)
    with pytest.raises(cls) as info:
        open_corpus(path, **kwargs)
    err = info.value
    msg = str(err)
    assert isinstance(err, ForgetError) and isinstance(err, builtin)
    assert "\n" not in msg and msg.strip() == msg
    for w in words:
        assert w in msg, (w, msg)
    assert "Jane" not in msg and "example.org" not in msg and "7946" not in msg
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__), (
        "no chained reader error text")


def test_fields_given_for_a_generated_corpus_are_refused(corpus_dir):
    with pytest.raises(InvalidInputError, match="drop --text-field"):
        open_corpus(corpus_dir, text_field="body")
