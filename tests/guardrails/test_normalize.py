"""Normalisation: pure functions, property-tested, plus tables of folds."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrails.normalize import atoms, compact, fold, fold_char, normalize, steps_used
from guardrails.obfuscate import diacritics, fullwidth, homoglyph, spaced, upper, zero_width

texts = st.text(max_size=80)
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)


@pytest.mark.parametrize("raw, folded", [
    ("JOHN", "john"),
    ("Ｊｏｈｎ", "john"),  # fullwidth
    ("Jоhn", "john"),  # Cyrillic о
    ("Jοhn", "john"),  # Greek ο
    ("ДЖОН", "джoh"),  # Cyrillic outside the look-alike table stays Cyrillic
    ("а е о р с х", "a e o p c x"),
    ("jo\u200bhn", "john"),  # zero-width space
    ("jo\u00adhn", "john"),  # soft hyphen
    ("j\u0301o\u0308hn", "john"),  # combining marks
    ("José", "jose"),
    ("Straße", "strasse"),
    ("𝐣𝐨𝐡𝐧", "john"),  # mathematical bold
    ("٢١٢", "212"),  # Arabic-Indic digits
    ("a \t\n  b", "a b"),  # whitespace runs collapse
    ("  lead", "lead"),
])
def test_fold_table(raw: str, folded: str) -> None:
    assert fold(raw) == folded


@given(texts)
def test_fold_is_idempotent(s: str) -> None:
    assert fold(fold(s)) == fold(s)


@given(texts)
def test_fold_ignores_nfkc_and_case(s: str) -> None:
    assert fold(unicodedata.normalize("NFKC", s)) == fold(s)
    assert fold(s.upper()) == fold(s.upper().lower())


@given(texts)
def test_offsets_map_back_to_the_original(s: str) -> None:
    n = normalize(s)
    assert len(n.starts) == len(n.ends) == len(n.text)
    for i, c in enumerate(n.text):
        assert 0 <= n.starts[i] < n.ends[i] <= len(s)
        if c != " ":
            assert c in fold(s[n.starts[i]:n.ends[i]])
    assert list(n.starts) == sorted(n.starts)


@given(words)
@settings(max_examples=60)
def test_obfuscations_fold_to_the_same_compact_form(w: str) -> None:
    for f in (upper, spaced, zero_width, homoglyph, fullwidth, diacritics):
        assert compact(f(w)) == compact(w), f.__name__


@given(st.lists(words, min_size=1, max_size=6), st.sampled_from([" ", "-", ".", " . ", "_", "/"]))
def test_separators_collapse(parts: list[str], sep: str) -> None:
    assert compact(sep.join(parts)) == compact("".join(parts))


@pytest.mark.parametrize("text, readings", [
    ("john at example", [("john",), ("@", "at"), ("example",)]),
    ("a [dot] b", [("a",), ("", "dot"), ("b",)]),
    ("x@y", [("x",), ("@",), ("y",)]),
    ("ab12cd", [("ab",), ("12",), ("cd",)]),
    ("what that", [("what",), ("that",)]),
])
def test_atoms(text: str, readings: list[tuple[str, ...]]) -> None:
    assert [a.readings for a in atoms(fold(text))] == readings


@given(st.text(max_size=1))
def test_fold_char_never_returns_invisibles(c: str) -> None:
    for ch in c:
        assert all(unicodedata.category(x) not in ("Cf", "Mn") for x in fold_char(ch))


@pytest.mark.parametrize("span, steps", [
    ("John Smith", ("casefold", "spacing")),
    ("jоhn", ("homoglyph",)),
    ("ｊｏｈｎ", ("nfkc",)),
    ("jo\u200bhn", ("invisible",)),
    ("john at example dot com", ("spacing", "at_dot")),
    ("٢١٢٥", ("digits",)),
])
def test_steps_used(span: str, steps: tuple[str, ...]) -> None:
    assert steps_used(span) == steps


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=60))
def test_ascii_fast_path_matches_the_general_path(s: str) -> None:
    from guardrails.normalize import _normalize_any

    assert normalize(s) == _normalize_any(s)
