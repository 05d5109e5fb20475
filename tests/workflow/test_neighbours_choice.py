"""Choosing the people nearest to a request's subject (issue 18.5): shared records first, then
TF-IDF similarity of their record texts; labels are pseudonymous; own files without an owner
field are skipped with a reason. No model: cheap."""

from __future__ import annotations

import pytest

from forget.workflow.neighbours import (
    generated_neighbours,
    nearest_subjects,
    summary,
    text_neighbours,
    tfidf_cosines,
)

ROWS = [
    {"subject_id": "A", "text": "Ada Reyes plays chess and writes about railway timetables."},
    {"subject_id": "A", "text": "Ada Reyes works at Harbor Mills in Eastport."},
    # B's record mentions A by name: a shared record
    {"subject_id": "B", "text": "Bo Lind met Ada Reyes at the marathon."},
    # C's records read almost like A's, but never mention A
    {"subject_id": "C", "text": "Cy Moss plays chess and writes about railway timetables."},
    {"subject_id": "C", "text": "Cy Moss works at Harbor Mills in Eastport."},
    {"subject_id": "D", "text": "Di Park grows tomatoes."},
    # E's own record names A's email and name: another shared record
    {"subject_id": "E", "text": "Ed Fox wrote to ada.reyes@mail.test twice; Ada Reyes replied."},
]
VALUES = {"A": ["Ada Reyes", "ada.reyes@mail.test"], "B": ["Bo Lind"], "C": ["Cy Moss"],
          "D": ["Di Park"], "E": ["Ed Fox"]}


def test_shared_records_come_before_similarity():
    got = nearest_subjects("A", ROWS, VALUES, ["B", "C", "D", "E", "A"], k=3)
    assert {n.subject_id for n in got[:2]} == {"B", "E"}  # one shared record each
    assert got[2].subject_id == "C"  # no shared record, but the most alike texts
    assert [n.label for n in got] == ["neighbour-1", "neighbour-2", "neighbour-3"]
    assert got[0].shared_records == 1 and got[2].shared_records == 0
    assert got[2].similarity > 0.5


def test_a_record_mentioning_both_counts_for_both_owners():
    rows = ROWS + [{"subject_id": "D", "text": "Di Park and Ada Reyes share a garden."}] * 3
    got = nearest_subjects("A", rows, VALUES, ["B", "C", "D", "E"], k=1)
    assert got[0].subject_id == "D" and got[0].shared_records == 3


@pytest.mark.parametrize("a, b, expected", [
    ("chess and railway timetables", "chess and railway timetables", 1.0),
    ("chess", "tomatoes", 0.0),
    ("", "anything", 0.0),
])
def test_tfidf_cosine_table(a, b, expected):
    assert tfidf_cosines(a, {"x": b})["x"] == pytest.approx(expected, abs=1e-9)


def test_generated_corpus_neighbours(corpus):
    trained_subject = corpus.subject_ids("train")[0]
    chosen, recs, reason = generated_neighbours(corpus, trained_subject, set())
    train = set(corpus.subject_ids("train")) - {trained_subject}
    assert reason == "" and len(chosen) == min(5, len(train))
    assert {n.subject_id for n in chosen} <= train
    assert list(recs) == [n.label for n in chosen]
    shared = [n.shared_records for n in chosen]
    assert shared == sorted(shared, reverse=True)
    # the work folder's summary names no subject and no identifier
    text = repr(summary(chosen))
    assert all(n.subject_id not in text for n in chosen)
    # a subject erased earlier is never a candidate
    gone = chosen[0].subject_id
    erased = {r["record_id"] for r in corpus.records_of(gone)}
    again, _, _ = generated_neighbours(corpus, trained_subject, erased)
    assert gone not in {n.subject_id for n in again}


def test_without_a_person_or_an_owner_field_none_are_chosen(corpus):
    assert generated_neighbours(corpus, None, set())[2].startswith("the request is not")

    class NoGroups:
        group_field = None

    chosen, recs, reason = text_neighbours(NoGroups(), None, set())
    assert not chosen and not recs and "no owner (group) field" in reason


def test_own_files_with_an_owner_field():
    """Owners are the people: a record the scoping found (it names the subject) that belongs to
    another owner is a shared record; the spans are Presidio's (stood in for here by a phone
    pattern: Presidio's start-up costs more than this test may)."""
    import re
    from types import SimpleNamespace

    phone = re.compile(r"\(\d{3}\) \d{3}-\d{4}")

    def spans(texts):
        return [[{"kind": "phone", "start": m.start(), "end": m.end()}
                 for m in phone.finditer(t)] for t in texts]

    def rec(rid, text, group):
        return SimpleNamespace(record_id=rid, text=text, group=group)

    rows = [rec("r1", "Ada Reyes asked about billing, call (415) 555-0134.", "ada"),
            rec("r2", "Bo Lind wrote that Ada Reyes owes him a ticket; bo@mail.test", "bo"),
            rec("r3", "Cy Moss asked about billing, call (212) 555-0199.", "cy"),
            rec("r4", "Di Park: printer jam, di@mail.test", "di")]

    class Grouped:
        group_field = "owner"

        def batches(self):
            yield rows

    forget = SimpleNamespace(subject_id="ada", examples=[SimpleNamespace(record_id="r1"),
                                                         SimpleNamespace(record_id="r2")])
    chosen, recs, reason = text_neighbours(Grouped(), forget, set(), k=2, find_spans=spans)
    assert reason == "" and [n.subject_id for n in chosen] == ["bo", "cy"]
    assert chosen[0].shared_records == 1 and chosen[1].shared_records == 0
    # bo's only record is the request's own (it names the subject): nothing of bo's is left
    # to test; cy's record is tested with the phone found in it
    assert list(recs) == ["neighbour-2"]
    (r,) = recs["neighbour-2"]
    assert r["record_id"] == "r3" and {s["kind"] for s in r["spans"]} == {"phone"}
