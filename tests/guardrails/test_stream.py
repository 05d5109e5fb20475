"""Streaming: identifiers split at every chunk boundary are caught, nothing leaks early."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrails import Guard, Policy, StreamFilter, filter_stream
from guardrails.index import GAP
from guardrails.normalize import compact, fold
from guardrails.obfuscate import OBFUSCATIONS

PLACEHOLDER = "<FORGOTTEN_SUBJECT>"


def _cases(people, n_people: int = 1):
    for person in people[:n_people]:
        for kind, fns in OBFUSCATIONS.items():
            for fn in fns:
                yield kind, fn.__name__, fn(getattr(person, kind))


def _stream(guard: Guard, chunks: list[str], holdback: int) -> tuple[str, list[str]]:
    f = StreamFilter(guard, pii_holdback=holdback)
    outs = [f.push(c) for c in chunks] + [f.flush()]
    return "".join(outs), outs


def test_every_boundary_of_every_obfuscation_is_caught(index_guard, people) -> None:
    for kind, how, shown in _cases(people):
        text = f"Well, {shown} is the answer."
        expected = index_guard.redact(text)
        assert PLACEHOLDER in expected, (kind, how)
        for k in range(1, len(text)):
            out, pieces = _stream(index_guard, [text[:k], text[k:]], holdback=0)
            assert out == expected, (kind, how, k)
            assert expected.startswith(pieces[0]), (kind, how, k)


def test_every_boundary_with_presidio(guard, people) -> None:
    person = people[5]
    for kind in OBFUSCATIONS:
        text = f"Well, {getattr(person, kind)} is the answer. " + "Filler words. " * 4
        expected = guard.redact(text)
        assert PLACEHOLDER in expected and " is the answer. Filler" in expected
        for k in range(1, len(text)):
            out, pieces = _stream(guard, [text[:k], text[k:]], holdback=64)
            assert out == expected and expected.startswith(pieces[0]), (kind, k)


@pytest.mark.parametrize("how", [fn.__name__ for fn in OBFUSCATIONS["name"]])
def test_never_releases_an_undecided_prefix(index_guard, people, how) -> None:
    """A non-identifier ("...son") shares the identifier's prefix; neither leaks early."""
    fn = next(f for f in OBFUSCATIONS["name"] if f.__name__ == how)
    name = fn(people[7].name)
    text = f"Then {name}son met {name} again, twice."
    starts = [5, text.index(name, 6)]
    f = StreamFilter(index_guard, pii_holdback=0)
    out = ""
    for k in range(1, len(text) + 1):
        out += f.push(text[k - 1])
        for q in starts:
            if 0 < k - q <= len(name) and text[q:k] == name[:k - q]:
                assert f.released <= q, (how, k)
    out += f.flush()
    assert out == index_guard.redact(text)
    # one placeholder per line the name spans: a redaction never removes a line break
    assert out.count(PLACEHOLDER) == 1 + name.count("\n")
    assert out.endswith(f"{PLACEHOLDER} again, twice.")


def test_hold_back_is_bounded_by_the_longest_identifier(index_guard, others) -> None:
    longest = index_guard.index.max_len
    text = " ".join(f"{p.name} works on {p.id.lower()} for them." for p in others[:15])
    f = StreamFilter(index_guard, pii_holdback=0)
    worst = 0
    for ch in text:
        f.push(ch)
        assert len(compact(f.held)) <= longest  # letters and digits held (no at/dot words)
        assert len(fold(f.held)) <= longest * (5 + 2 * GAP) + GAP
        worst = max(worst, len(f.held))
    assert f.flush() and worst <= 2 * longest  # plain text: one identifier plus its spaces


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=40),
       st.sampled_from(["name", "email", "phone", "id"]), st.integers(0, 11))
def test_random_chunkings_match_batch(index_guard, people, sizes, kind, who) -> None:
    shown = getattr(people[who], kind)
    text = f"A: {shown}. B: no. C: {shown.upper()}!"
    chunks, i = [], 0
    for n in sizes * 20:
        if i >= len(text):
            break
        chunks.append(text[i:i + n])
        i += n
    chunks.append(text[i:])
    assert "".join(filter_stream(chunks, index_guard, pii_holdback=0)) == index_guard.redact(text)


def test_block_policy_stops_the_stream(index, people) -> None:
    g = Guard(index, policy=Policy.strict(), use_presidio=False)
    text = f"Intro text here. {people[0].name} did it. More text."
    pieces = list(filter_stream(list(text), g, pii_holdback=0))
    assert pieces[-1] == g.policy.block_message
    assert people[0].name.split()[0] not in "".join(pieces[:-1])


def test_findings_have_stream_offsets(index_guard, people) -> None:
    text = f"x {people[1].email} y"
    f = StreamFilter(index_guard, pii_holdback=0)
    for ch in text:
        f.push(ch)
    f.flush()
    [hit] = [h for h in f.findings if h.entity == "FORGOTTEN_SUBJECT"]
    assert text[hit.start:hit.end] == people[1].email
