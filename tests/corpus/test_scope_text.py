"""Scoping a corpus without ground truth: the spans found are the identifiers' exact offsets,
Presidio's findings are added under the audit's kinds, and they become the audit's records
and twins."""

from __future__ import annotations

import pandas as pd
import pytest

from audits.records import as_records
from audits.twins import make_twins
from forget.corpus import open_corpus
from forget.ledger.request import Identifiers
from forget.workflow.scope_text import audit_records, scope_text_records

JANE = Identifiers(name="Jane Roe", emails=("desk.jr77@example.org",), phones=("(212) 555-0199",),
                   other_ids=(("national_id", "123-45-6789"),))
PLAIN = ("Ticket from Jane Roe: call (212) 555-0199 or mail desk.jr77@example.org; "
         "ID 123-45-6789.")
OTHER_PII = ("Jane Roe asked us to copy billing@corp-mail.net and the office line "
             "(415) 555-0123; her server is 10.20.30.40. Born 03/03/1980; card "
             "4111 1111 1111 1111.")
DOCS = [PLAIN, OTHER_PII, "ROE, JANE (at) the desk: desk dot jr77 at example dot org",
        "Nothing about anyone here."]


@pytest.fixture(scope="module")
def scoped(tmp_path_factory):
    path = tmp_path_factory.mktemp("scope") / "notes.jsonl"
    pd.DataFrame({"body": DOCS}).to_json(path, orient="records", lines=True)
    corpus = open_corpus(path, text_field="body")
    return corpus, scope_text_records(corpus, JANE)


def _values(text: str, spans: list[dict]) -> list[tuple[str, str]]:
    return [(s["kind"], text[s["start"]:s["end"]]) for s in spans]


def test_spans_are_the_identifiers_exact_offsets(scoped):
    corpus, scope = scoped
    assert scope.record_ids == ["notes.jsonl:0", "notes.jsonl:1", "notes.jsonl:2"]
    assert _values(PLAIN, scope.spans["notes.jsonl:0"]) == [
        ("name", "Jane Roe"), ("phone", "(212) 555-0199"), ("email", "desk.jr77@example.org"),
        ("national_id", "123-45-6789")]
    third = _values(DOCS[2], scope.spans["notes.jsonl:2"])
    assert ("name", "ROE, JANE") in third
    assert ("email", "desk dot jr77 at example dot org") in third


def test_presidio_findings_are_added_with_the_audits_kinds(scoped):
    _, scope = scoped
    got = _values(OTHER_PII, scope.spans["notes.jsonl:1"])
    assert got[0] == ("name", "Jane Roe")
    assert ("email", "billing@corp-mail.net") in got
    assert ("phone", "(415) 555-0123") in got or ("phone", "415) 555-0123") in got
    assert ("ip_address", "10.20.30.40") in got
    assert ("dob", "03/03/1980") in got and ("credit_card", "4111 1111 1111 1111") in got
    assert scope.pii_findings >= 5
    starts = [s["start"] for s in scope.spans["notes.jsonl:1"]]
    ends = [s["end"] for s in scope.spans["notes.jsonl:1"]]
    assert all(e <= s for e, s in zip(ends, starts[1:], strict=False))  # no overlaps


def test_summary_holds_ids_and_counts_only(scoped):
    _, scope = scoped
    text = repr(scope.summary())
    assert "Jane" not in text and "555" not in text and "example" not in text
    assert scope.summary()["span_kinds"]["name"] == 3


def test_audit_records_make_twins_that_differ_exactly_at_the_spans(scoped):
    corpus, scope = scoped
    rows = audit_records(corpus, scope)
    records = as_records(rows)
    assert [r.record_id for r in records] == scope.record_ids
    assert records[0].text == PLAIN
    twins = make_twins(records, copies=2, seed=3)
    for twin in twins:
        member = next(r for r in records if twin.record_id.startswith(r.record_id + "~"))
        assert len(twin.spans) == len(member.spans)
        pos_m = pos_t = 0
        for sm, st in zip(member.spans, twin.spans, strict=True):
            assert member.text[pos_m:sm.start] == twin.text[pos_t:st.start]  # same outside
            assert member.value(sm) != twin.value(st) and sm.kind == st.kind  # changed inside
            pos_m, pos_t = sm.end, st.end
        assert member.text[pos_m:] == twin.text[pos_t:]


def test_audit_records_of_the_generated_corpus_keep_its_ground_truth(corpus):
    from forget.workflow.scope import scope_records

    s = next(x for x in corpus.subjects if x["split"] == "train")
    ident = s["identifiers"]
    scope = scope_records(corpus, Identifiers(name=ident["name"], emails=(ident["email"],)),
                          use_presidio=False)
    rows = audit_records(corpus, scope)
    by_id = {r["record_id"]: r for r in corpus.people + corpus.code}
    assert [r["record_id"] for r in rows] == scope.record_ids
    assert all(r["spans"] == by_id[r["record_id"]]["spans"] for r in rows)
    assert as_records(rows)
