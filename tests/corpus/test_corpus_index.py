"""The keyed-hash corpus index: a look-up finds exactly the records a full ``find`` scan finds
(obfuscated mentions included), holds no plaintext, refuses a changed corpus; the CLI."""

from __future__ import annotations

import json
import stat

import pandas as pd
import pytest
from forked_cli import run_forget
from hypothesis import given, settings
from hypothesis import strategies as st

from forget.corpus import open_corpus
from forget.corpus.index import CorpusIndex, build_index, default_key_dir
from forget.corpus.terms import identifier_terms, text_terms
from forget.errors import StaleIndexError
from forget.ledger.request import Identifiers
from forget.workflow.scope_text import scope_text_many, scope_text_records, subject_index
from guardrails import ForgottenIndex
from guardrails import obfuscate as O

JANE = Identifiers(name="Jane Roe", emails=("desk.jr77@example.org",), phones=("(212) 555-0199",),
                   other_ids=(("national_id", "123-45-6789"),))
# (text, mentions Jane) -- obfuscated and re-formatted mentions, and near misses
DOCS = [
    ("Jane Roe called about her invoice.", True),
    ("Escalated: ROE, JANE asked for a refund.", True),
    ("J. Roe left a voicemail yesterday.", True),
    ("Write to desk dot jr77 at example dot org for the receipt.", True),
    ("Forwarded from desk.jr77(at)example[dot]org by the desk.", True),
    ("Callback number 212.555.0199, evenings only.", True),
    ("Her SSN on file: 123 45 6789.", True),
    ("J a n e  R o e wrote the review.", True),
    ("Jаnе Rое (look-alike letters) asked again.", True),
    ("Janet Roebuck paid the invoice on time.", False),
    ("A roe deer was seen at example dot com's office park.", False),
    ("John Smith (212) 555-0100 renewed his plan.", False),
    ("Order 2125550 shipped; account 12345 closed.", False),
]


@pytest.fixture(scope="module")
def tickets(tmp_path_factory):
    d = tmp_path_factory.mktemp("tickets")
    path = d / "tickets.parquet"
    pd.DataFrame({"ticket": [f"t-{k:03d}" for k in range(len(DOCS))],
                  "body": [t for t, _ in DOCS],
                  "queue": ["jane" if m else "other" for _, m in DOCS]}).to_parquet(path)
    return path


@pytest.fixture(scope="module")
def index_dir(tickets, tmp_path_factory):
    out = tmp_path_factory.mktemp("idx") / "index"
    corpus = open_corpus(tickets, text_field="body", id_field="ticket", group_field="queue")
    build_index(corpus, out)
    return out


def _scan(corpus, identifiers) -> set[str]:
    index, _, _ = subject_index(identifiers)
    return {r.record_id for r in corpus if index.find(r.text)}


def test_lookup_finds_exactly_the_full_scans_records(tickets, index_dir):
    corpus = open_corpus(tickets, text_field="body", id_field="ticket", group_field="queue")
    expected = {f"t-{k:03d}" for k, (_, m) in enumerate(DOCS) if m}
    assert _scan(corpus, JANE) == expected  # the guard itself sees every mention
    scope = scope_text_records(corpus, JANE, index_dir=index_dir, use_presidio=False)
    assert set(scope.record_ids) == expected
    assert scope.details["mode"] == "index" and scope.details["candidates"] < len(DOCS)
    assert scope.subject_id == "jane"
    scan = scope_text_records(corpus, JANE, use_presidio=False)
    assert scan.record_ids == scope.record_ids and scan.spans == scope.spans


def test_lookup_equals_scan_on_the_generated_corpus(corpus_dir, corpus, tmp_path):
    people = open_corpus(corpus_dir / "people.jsonl", id_field="record_id",
                         group_field="subject_id")
    build_index(people, tmp_path / "index")
    idx = CorpusIndex.open(tmp_path / "index", people)
    for s in corpus.subjects:
        ident = s["identifiers"]
        req = Identifiers(name=ident["name"], emails=(ident["email"],), phones=(ident["phone"],))
        _, mapping, _ = subject_index(req)
        rows = set(idx.candidate_rows(mapping))
        found = scope_text_records(people, req, index_dir=tmp_path / "index",
                                   use_presidio=False)
        scan = _scan(people, req)
        assert set(found.record_ids) == scan  # recall and precision 1 against the scan
        truth = {r["record_id"] for r in corpus.people if r["subject_id"] == s["subject_id"]}
        assert truth <= scan and len(rows) >= len(scan)
        assert found.subject_id == s["subject_id"]


def test_index_files_hold_no_identifier_or_text(tickets, index_dir):
    blob = b"".join(p.read_bytes() for p in index_dir.iterdir()).lower()
    needles = ["jane", "jr77", "janeroe", "roejane", "example", "2125550199", "123456789", "invoice",
               "refund", "voicemail", "t-001", "t-012"]
    for n in needles:
        assert n.encode() not in blob, n
    key_file = default_key_dir() / json.loads((index_dir / "manifest.json").read_text())[
        "key_file"]
    assert not any(p.name.endswith(".key") for p in index_dir.iterdir())
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_changed_corpus_is_refused(tickets, index_dir, tmp_path):
    changed = tmp_path / "tickets.parquet"
    df = pd.read_parquet(tickets)
    df.loc[0, "body"] = "Jane Roe called twice about her invoice."
    df.to_parquet(changed)
    corpus = open_corpus(changed, text_field="body", id_field="ticket")
    with pytest.raises(StaleIndexError) as e:
        scope_text_records(corpus, JANE, index_dir=index_dir)
    msg = str(e.value)
    assert "rebuild" in msg and "forget corpus index" in msg and "Jane" not in msg


NOISE = st.text(alphabet=" .,-()@\n\u200babcxyz0123", max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(NOISE, st.sampled_from([
    ("name", "Jane Roe"), ("email", "desk.jr77@example.org"), ("phone", "(212) 555-0199"),
    ("id", "AC-0047-1193")]),
    st.sampled_from(sorted({f for fs in O.OBFUSCATIONS.values() for f in fs},
                           key=lambda f: f.__name__))), min_size=1, max_size=3), NOISE)
def test_every_text_the_guard_matches_holds_a_term_of_a_form(parts, tail):
    """The superset property on random texts: ``find`` sees a form => the text has its term."""
    text = "".join(noise + fn(value) for noise, (_, value), fn in parts) + tail
    index = ForgottenIndex(ForgottenIndex.generate_key())
    mapping = {"name": ["Jane Roe"], "email": ["desk.jr77@example.org"],
               "phone": ["(212) 555-0199"], "id": ["AC-0047-1193"]}
    index.add(mapping)
    if index.find(text):
        assert identifier_terms(mapping) & text_terms(text)


def test_cli_builds_an_index_and_a_bad_data_path_is_one_line(tickets, tmp_path):
    out = tmp_path / "cli-index"
    res = run_forget("corpus", "index", "--data", str(tickets), "--text-field", "body",
                     "--id-field", "ticket", "--out", str(out), "--num-proc", "2", timeout=300)
    assert res.returncode == 0, res.stderr
    assert "Jane" not in res.stdout + res.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["records"] == len(DOCS) and manifest["build"]["num_proc"] == 2
    corpus = open_corpus(tickets, text_field="body", id_field="ticket")
    scope = scope_text_records(corpus, JANE, index_dir=out, use_presidio=False)
    assert len(scope.record_ids) == sum(m for _, m in DOCS)

    bad = run_forget("corpus", "index", "--data", str(tmp_path / "nope.parquet"), "--out",
                     str(tmp_path / "x"), timeout=300)
    lines = [ln for ln in bad.stderr.splitlines() if ln.strip()]
    assert bad.returncode == 2 and len(lines) == 1 and "Traceback" not in bad.stderr
    assert "nope.parquet" in lines[0] and not (tmp_path / "x").exists()


def test_a_rebuild_replaces_the_index_and_its_key(tickets, tmp_path):
    corpus = open_corpus(tickets, text_field="body", id_field="ticket")
    first = build_index(corpus, tmp_path / "index")
    second = build_index(corpus, tmp_path / "index")
    assert not (default_key_dir() / first["key_file"]).exists()
    assert (default_key_dir() / second["key_file"]).exists()
    assert CorpusIndex.open(tmp_path / "index", corpus).candidate_rows(
        {"name": ["Jane Roe"]}) == [0, 1, 2, 7, 8]


def test_many_requests_in_one_scan_or_one_lookup_each(tickets, index_dir):
    corpus = open_corpus(tickets, text_field="body", id_field="ticket", group_field="queue")
    john = Identifiers(name="John Smith", phones=("(212) 555-0100",))
    alone = {k: scope_text_records(corpus, v, use_presidio=False)
             for k, v in (("jane", JANE), ("john", john))}
    assert alone["john"].record_ids == ["t-011"]
    for index in (None, index_dir):
        many = scope_text_many(corpus, {"jane": JANE, "john": john}, index_dir=index,
                               use_presidio=False)
        for k in alone:
            assert many[k].record_ids == alone[k].record_ids
            assert many[k].spans == alone[k].spans
