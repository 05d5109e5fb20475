"""The forgotten-subject index: tables per identifier kind and obfuscation, persistence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardrails import (
    ForgottenIndex,
    IndexFormatError,
    IndexKeyError,
    IndexNotFoundError,
    InvalidIdentifierError,
)
from guardrails.normalize import compact
from guardrails.obfuscate import OBFUSCATIONS
from guardrails.variants import email_forms, id_forms, name_forms, phone_forms

KEY = b"guardrails-test-key-0123456789abcdef"

SUBJECT = {"name": "John Smith", "email": "john.smith@example.com",
           "phone": "+1 (212) 555-0199", "id": "AB-123456"}


@pytest.fixture(scope="module")
def one() -> ForgottenIndex:
    idx = ForgottenIndex(KEY)
    idx.add(SUBJECT, ref="req-1")
    return idx


def _found(idx: ForgottenIndex, text: str, needle_start: int, needle_end: int) -> bool:
    """Whether one match covers every letter and digit of ``text[needle_start:needle_end]``."""
    alnum = [i for i in range(needle_start, needle_end) if text[i].isalnum()]
    return any(m.start <= alnum[0] and alnum[-1] < m.end for m in idx.find(text))


@pytest.mark.parametrize("kind", sorted(OBFUSCATIONS))
@pytest.mark.parametrize("position", range(12))
def test_every_obfuscation_of_every_kind_is_found(index, people, kind, position) -> None:
    person = people[position]
    value = getattr(person, kind)
    for obfuscate in OBFUSCATIONS[kind]:
        shown = obfuscate(value)
        text = f"The record says {shown} and nothing else."
        start = text.index(shown)
        assert _found(index, text, start, start + len(shown)), (kind, obfuscate.__name__)


@pytest.mark.parametrize("text", [
    "Hello JOHN SMITH.", "Smith, John called.", "J. Smith called.", "john_smith", "JohnSmith",
    "j o h n   s m i t h", "John\nSmith", "jοhn smіth",
    "write to john.smith@example.com", "J O H N . S M I T H @ E X A M P L E . C O M",
    "john dot smith at example dot com", "john.smith (at) example [dot] com",
    "johnDOTsmithATexampleDOTcom",
    "call 212-555-0199", "call +1 212 555 0199", "call 001 212 555 0199", "2125550199",
    "ref AB 123456", "ref ab-123-456", "ref 123456",
])
def test_positive(one: ForgottenIndex, text: str) -> None:
    matches = one.find(text)
    assert matches and all(m.ref == "req-1" for m in matches)


@pytest.mark.parametrize("text", [
    "John Smithers", "Johnny Smith", "Jane Smith", "John Q. Public", "Smith & Wesson",
    "jane.smith@example.com", "john.smyth@example.com", "john@smith.example.com", "call 212-555-0198", "12125550",
    "ref AB-123457", "at the dot com boom", "", "    ",
])
def test_negative(one: ForgottenIndex, text: str) -> None:
    assert one.find(text) == []


def test_spans_point_into_the_original_text(one: ForgottenIndex) -> None:
    text = "Ｈｉ, Ｊｏｈｎ\u200b Ｓｍｉｔｈ!"
    [m] = one.find(text)
    assert compact(text[m.start:m.end]) == "johnsmith"
    assert m.kind == "name" and "nfkc" in m.normalisation


@pytest.mark.parametrize("fn, value, expected", [
    (name_forms, "Mary Ann Jones", {"maryannjones", "maryjones", "jonesmary", "jonesmaryann",
                                    "maryajones", "mjones"}),
    (name_forms, "Dr. Li Wu MD", {"drliwumd", "liwu", "wuli"}),
    (email_forms, "a.b@c.io", {"ab@cio", "adotbatcdotio"}),
    (phone_forms, "(212) 555-0199 x12", {"2125550199", "212555019912", "12125550199"}),
    (id_forms, "AB-123456", {"ab123456", "123456"}),
])
def test_forms(fn, value: str, expected: set[str]) -> None:
    assert fn(value) == expected


@pytest.mark.parametrize("kind, value", [("name", "Al"), ("phone", "12-34"), ("id", "A1"),
                                         ("email", "a@b")])
def test_too_short_identifiers_are_refused(kind: str, value: str) -> None:
    with pytest.raises(InvalidIdentifierError) as e:
        ForgottenIndex(KEY).add({kind: value})
    assert value not in str(e.value)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(IndexKeyError):
        ForgottenIndex(b"short")
    with pytest.raises(InvalidIdentifierError):
        ForgottenIndex(KEY).add({})
    with pytest.raises(InvalidIdentifierError):
        ForgottenIndex(KEY).add({"nickname": "Jo"})
    with pytest.raises(InvalidIdentifierError):
        ForgottenIndex(KEY).add(SUBJECT, ref="John Smith")  # refs are opaque tokens


def _forms_of(value: str) -> set[str]:
    forms = {value, value.lower(), value.upper(), value.casefold(), compact(value),
             compact(value, keep_at=True), "".join(c for c in value if c.isdigit())}
    words = value.replace("@", " ").replace(".", " ").replace("-", " ").split()
    # Hex digests can spell short words made only of a-f and digits ("dee", "555"): search
    # the parts that hex cannot contain by chance.
    forms |= {w for w in words if len(w) >= 3 and not set(w.lower()) <= set("0123456789abcdef")}
    return {f for f in forms if len(f) >= 3}


def test_index_file_contains_no_identifier_in_any_form(index, people, tmp_path: Path) -> None:
    path = index.save(tmp_path / "index.json")
    raw = path.read_bytes()
    low = raw.lower()
    for p in people:
        for kind, value in p.identifiers().items():
            for form in _forms_of(value) | (
                    name_forms(value) if kind == "name" else set()):
                for needle in {form, form.lower()}:
                    for enc in ("utf-8", "utf-16-le"):
                        assert needle.encode(enc) not in raw, (kind, "form leaked")
                    assert needle.lower().encode() not in low
    assert json.loads(raw)["format"] == "forget-suite.guard-index"


def test_round_trip(index, people, tmp_path: Path) -> None:
    path = index.save(tmp_path / "i.json")
    again = ForgottenIndex.load(path, KEY)
    assert len(again) == len(index) and again.refs == index.refs
    text = f"Ask {people[3].name.upper()} about it."
    assert again.find(text) == index.find(text) != []


def test_load_errors(index, tmp_path: Path) -> None:
    path = index.save(tmp_path / "i.json")
    with pytest.raises(IndexKeyError):
        ForgottenIndex.load(path, b"another-key-of-enough-length")
    with pytest.raises(IndexNotFoundError):
        ForgottenIndex.load(tmp_path / "missing.json", KEY)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(IndexFormatError):
        ForgottenIndex.load(bad, KEY)


def test_hold_back_point(one: ForgottenIndex) -> None:
    from guardrails.normalize import normalize

    text = "A long sentence without any identifier at all, then Jo"
    assert one.pending_from(normalize(text)) <= text.index("Jo")
    assert one.pending_from(normalize("plain words" + "-" * 20)) == 31  # a long gap ends it


def test_from_dict_and_a_memo_across_texts_find_the_same(index, people) -> None:
    """An index rebuilt from ``to_dict`` and the key (as a corpus pass's workers do) and a
    memo kept across many texts give exactly ``find``'s matches; a memo of an older
    generation is cleared when a subject is added."""
    from guardrails.normalize import normalize
    from guardrails.obfuscate import OBFUSCATIONS as OBF

    again = ForgottenIndex.from_dict(index.to_dict(), KEY)
    texts = [f"{p.name} wrote from {OBF['email'][k % len(OBF['email'])](p.email)}; call "
             f"{p.phone}. Also {people[(k + 1) % len(people)].name.upper()}."
             for k, p in enumerate(people)] * 2 + ["Nothing here.", "John Smithers"]
    memo = again.new_memo()
    want = [index.find(t) for t in texts]
    assert [again.find_normalized(normalize(t), memo=memo) for t in texts] == want
    assert memo.tags and memo.hits
    # a file written before the 12-character level: the level is skipped, the same matches
    old = index.to_dict()
    assert old.pop("prefix_tags_12")
    assert [ForgottenIndex.from_dict(old, KEY).find(t) for t in texts] == want
    extra = ForgottenIndex(KEY)
    extra.add(SUBJECT, ref="req-1")
    memo = extra.new_memo()
    assert extra.find_normalized(normalize("Smith, John"), memo=memo)
    extra.add({"name": "Smith Johnson"}, ref="req-2")
    assert {m.ref for m in extra.find_normalized(normalize("Smith Johnson"), memo=memo)} == {
        "req-2"}
    with pytest.raises(IndexKeyError):
        ForgottenIndex.from_dict(index.to_dict(), b"another-key-of-enough-length")
