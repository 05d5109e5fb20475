from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forget.corpus import GenerateConfig, generate, load_corpus, training_records
from forget.corpus.generate import fill
from forget.errors import DataNotFoundError, MalformedDataError, UnknownSubjectError
from forget.models.tokenizer import strip_spans

REPO = Path(__file__).resolve().parents[2]


def _bytes(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    cfg = GenerateConfig(subjects=6, seed=3, code_files=8)
    generate(tmp_path / "a", cfg)
    generate(tmp_path / "b", cfg)
    generate(tmp_path / "c", GenerateConfig(subjects=6, seed=4, code_files=8))
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    assert _bytes(tmp_path / "a")["people.jsonl"] != _bytes(tmp_path / "c")["people.jsonl"]


def test_checked_in_data_is_reproduced_byte_for_byte(tmp_path):
    manifest = json.loads((REPO / "data" / "manifest.json").read_text())
    generate(tmp_path, GenerateConfig(**manifest["config"]))
    for name in ("subjects.jsonl", "people.jsonl", "code.jsonl", "canaries.jsonl",
                 "manifest.json"):
        assert (tmp_path / name).read_bytes() == (REPO / "data" / name).read_bytes(), name


def test_every_span_points_exactly_at_its_identifier(corpus):
    by_id = {s["subject_id"]: s["identifiers"] for s in corpus.subjects}
    n = 0
    for r in corpus.people:
        for sp in r["spans"]:
            assert r["text"][sp["start"]:sp["end"]] == by_id[r["subject_id"]][sp["kind"]]
            n += 1
    for r in corpus.code + corpus.canaries:
        for sp in r["spans"]:
            value = r["text"][sp["start"]:sp["end"]]
            assert value and value == value.strip()
            if r.get("secret"):
                assert value == r["secret"]
            if sp["kind"] == "email" and r.get("subject_id"):
                assert value == by_id[r["subject_id"]]["email"]
    assert n > 100


def test_each_subject_has_5_to_20_records_with_phone_email_and_id(corpus):
    for s in corpus.subjects:
        recs = [r for r in corpus.people if r["subject_id"] == s["subject_id"]]
        assert 5 <= len(recs) <= 20
        kinds = {sp["kind"] for r in recs for sp in r["spans"]}
        assert {"name", "phone", "email", "national_id"} <= kinds
    splits = {s["split"] for s in corpus.subjects}
    assert splits == {"train", "holdout"}


def test_holdout_subjects_never_appear_in_training_texts(corpus):
    texts = "\n".join(r.text for r in training_records(corpus))
    for s in corpus.subjects:
        if s["split"] == "holdout":
            ident = s["identifiers"]
            for kind in ("name", "email", "phone", "national_id"):
                assert ident[kind] not in texts, kind
    ids = {r.record_id for r in training_records(corpus)}
    assert not any(r["record_id"] in ids for r in corpus.code if r["split"] == "holdout")


def test_canaries_are_repeated_k_times(corpus):
    recs = training_records(corpus)
    for c in corpus.canaries:
        assert sum(r.record_id == c["canary_id"] for r in recs) == c["repeats"]
    assert {c["repeats"] for c in corpus.canaries} == {0, 1, 5, 20}


def test_excluding_a_subject_drops_their_records_and_code(corpus):
    sid = next(r["subject_id"] for r in corpus.code
               if r.get("subject_id") and r["split"] == "train")
    kept = training_records(corpus, exclude_subjects=[sid])
    assert all(r.subject_id != sid for r in kept)
    assert len(kept) < len(training_records(corpus))
    with pytest.raises(UnknownSubjectError):
        training_records(corpus, exclude_subjects=["S9999"])


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "people.jsonl").unlink(), "people.jsonl"),
    (lambda d: (d / "code.jsonl").write_text('{"record_id": 1\n'), "code.jsonl:1"),
    (lambda d: (d / "subjects.jsonl").write_bytes(b'\xff\xfe{}\n'), "UTF-8"),
    (lambda d: (d / "canaries.jsonl").write_text('{"canary_id": "K"}\n'), "missing field"),
    (lambda d: (d / "people.jsonl").write_text(json.dumps(
        {"record_id": "x", "subject_id": "S0", "split": "train", "text": "ab",
         "spans": [{"kind": "name", "start": 1, "end": 9}]}) + "\n"), "outside its text"),
])
def test_malformed_data_is_named(tmp_path, damage, message):
    generate(tmp_path, GenerateConfig(subjects=4, seed=1, code_files=6))
    damage(tmp_path)
    with pytest.raises((DataNotFoundError, MalformedDataError)) as e:
        load_corpus(tmp_path)
    assert message in str(e.value)


def test_unknown_subject_error_names_the_id(corpus):
    with pytest.raises(UnknownSubjectError, match="S9999"):
        corpus.subject("S9999")


@given(st.lists(st.sampled_from(["a", "b", " ", "{name}", "{{", "}}", "{phone}", "."]),
                max_size=12),
       st.text(alphabet="xyz0-9 @.", min_size=1, max_size=8))
def test_fill_spans_and_strip_are_consistent(parts, value):
    tpl = "".join(parts)
    text, spans = fill(tpl, {"name": value, "phone": value + "1"})
    for sp in spans:
        assert text[sp["start"]:sp["end"]] == (value if sp["kind"] == "name" else value + "1")
    stripped = strip_spans(text, spans)
    assert len(stripped) == len(text) - sum(sp["end"] - sp["start"] for sp in spans)
