"""Twins and fakes: same format, fresh values, consistent per twin, spans moved, seeded."""

from __future__ import annotations

import re

import pytest

from audits import FakeMaker, Record, Span, make_twins, mask
from audits.records import as_record, scrub

FORMATS = [
    ("phone", "(242) 465-8376", r"\([2-9]\d\d\) [2-9]\d\d-\d{4}"),
    ("national_id", "514-48-8808", r"[1-8]\d\d-\d\d-\d{4}"),
    ("email", "gwilliams59@mail.test", r"[a-z0-9._]+\d\d@mail\.test"),
    ("dob", "August 5, 1993", r"[A-Z][a-z]+ \d{1,2}, (19[5-9]\d|2000)"),
    ("name", "Megan Chang", r"\S+ \S+"),
    # written the way a corpus without ground truth may have it (found by scoping, issue 19)
    ("name", "CHANG, MEGAN", r"[A-Z][A-Z'-]*, [A-Z][A-Z'-]*"),
    ("name", "M. Chang", r"[A-Z]\. [A-Z][A-Za-z'-]+"),
    ("name", "M e g a n  C h a n g", r"(\S ){2,}( \S)+( \S)*"),
    ("email", "desk dot jr77 at example dot org", r"[a-z]{4} dot [a-z]{2}\d\d at example dot org"),
    ("email", "desk.jr77(at)example[dot]org", r"[a-z]{4}\.[a-z]{2}\d\d\(at\)example\[dot\]org"),
    ("phone", "212.555.0199", r"\d{3}\.\d{3}\.\d{4}"),
    ("canary", "106102398", r"\d{9}"),
    # Keys keep their vendor prefix and their alphabet (issue 18: a random prefix, or a-z in a
    # hexadecimal key, made the true key the likeliest for any model trained on code).
    ("api_key", "sk_live_TbAP7V2hAbqxvxXl", r"sk_live_[A-Za-z0-9]{16}"),
    ("token", "ghp_aB3dE5fG7hJ9kL1mN2pQ", r"ghp_[A-Za-z0-9]{20}"),
    ("secret_key", "3f9a0c1be27d4a5f8e6b7c0d", r"[0-9a-f]{24}"),
    ("ip_address", "10.1.22.3", r"10\.\d{1,3}\.\d{1,3}\.\d{1,3}"),
]


@pytest.mark.parametrize("kind, value, pattern", FORMATS)
def test_fakes_keep_the_format_and_are_fresh(kind, value, pattern):
    maker = FakeMaker(0)
    fakes = [maker(kind, value) for _ in range(50)]
    assert all(re.fullmatch(pattern, f) for f in fakes), fakes[:3]
    assert value not in fakes and len(set(fakes)) > 40


def test_fakes_are_seeded():
    assert [FakeMaker(3)("phone", "(242) 465-8376") for _ in range(2)] == \
        [FakeMaker(3)("phone", "(242) 465-8376")] * 2


RECS = [
    {"record_id": "R1", "text": "Call Ann Lee on (242) 465-8376.",
     "spans": [{"kind": "name", "start": 5, "end": 12}, {"kind": "phone", "start": 16,
                                                            "end": 30}]},
    {"record_id": "R2", "text": "Ann Lee wrote.", "spans": [{"kind": "name", "start": 0,
                                                              "end": 7}]},
]


def test_twins_replace_every_identifier_and_move_spans():
    twins = make_twins(RECS, copies=3, seed=1)
    assert [t.record_id for t in twins] == ["R1~twin0", "R2~twin0", "R1~twin1", "R2~twin1",
                                            "R1~twin2", "R2~twin2"]
    for t in twins:
        assert "Ann Lee" not in t.text and "465-8376" not in t.text
        assert t.text.endswith(".")
        for s in t.spans:
            assert t.value(s) != ""
    # One twin identity per copy: the same fake name in both records of a copy.
    for c in range(3):
        a, b = twins[2 * c], twins[2 * c + 1]
        assert a.value(a.spans[0]) == b.value(b.spans[0])
    assert twins[0].value(twins[0].spans[0]) != twins[2].value(twins[2].spans[0])


@pytest.mark.parametrize("value, kind, expected", [
    ("(242) 465-8376", "phone", "(•••) •••-••76"),
    ("514-48-8808", "national_id", "•••-••-••08"),
    ("gwilliams59@mail.test", "email", "•••@•••.test"),
    ("Megan Chang", "name", "[name, 11 chars]"),
    ("4759 William Haven Apt. 194", "address", "[address, 27 chars]"),
])
def test_mask_table(value, kind, expected):
    assert mask(value, kind) == expected


@pytest.mark.parametrize("row", [
    {"record_id": "x", "text": "abc", "spans": [{"kind": "k", "start": 2, "end": 9}]},
    {"record_id": "x", "spans": []},
    {"text": "abc"},
])
def test_bad_records_are_rejected_without_echoing_text(row):
    from audits import AuditInputError

    with pytest.raises(AuditInputError) as e:
        as_record(row)
    assert "abc" not in str(e.value)


def test_scrub_and_record_roundtrip():
    r = Record("R", "Ann at 555", (Span("name", 0, 3),))
    assert as_record(r) is r
    assert scrub("Ann at 555", [("name", "Ann"), ("phone", "555")]) == "[name] at [phone]"
