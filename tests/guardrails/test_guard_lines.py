"""The guard never drops or merges text that is not an identifier: each match is replaced on
its own, line breaks survive, and `forget guard` emits one output line per input line."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from forget.cli import app
from guardrails import ForgottenIndex, Guard, Identifiers, StreamFilter

KEY = b"guard-lines-test-key-0123456789abcdef"
NAME = "Quillon Averney"
PHONE = "(415) 555-0137"
EMAIL = "quillon.averney@example.org"
IDENTS = (NAME, PHONE, EMAIL)
# Filler words that no normalisation turns into an identifier or a part of one (none ends
# with a dot: "yes. a.b@c.org" reads as a spaced-out email "yes.a.b@c.org", by design).
FILLER = ("sure", "that", "is", "all", "I", "know", "--", "ok!", "well,", "the", "answer:",
          "maybe", "yes")


def _index() -> ForgottenIndex:
    idx = ForgottenIndex(KEY)
    idx.add(Identifiers([NAME], [EMAIL], [PHONE], []), ref="req-1")
    return idx


GUARD = Guard(_index(), use_presidio=False)

token = st.one_of(st.sampled_from(FILLER), st.sampled_from(IDENTS))
line = st.lists(token, min_size=0, max_size=6).map(" ".join)
texts = st.lists(line, min_size=1, max_size=8)


def _check(lines: list[str], out: str) -> None:
    got = out.split("\n")
    assert len(got) == len(lines), (lines, out)
    for src, dst in zip(lines, got, strict=True):
        for ident in IDENTS:
            assert ident not in dst
        kept = [w for w in src.split(" ") if w in FILLER]
        words = dst.split(" ")
        pos = 0
        for w in kept:  # every filler word survives, in order, on its own line
            assert w in words[pos:], (src, dst)
            pos = words.index(w, pos) + 1
        assert dst.count("<FORGOTTEN_SUBJECT>") <= sum(src.count(i) for i in IDENTS)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_each_line_keeps_its_text_and_its_break(lines):
    _check(lines, GUARD.redact("\n".join(lines)))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_the_streaming_filter_keeps_every_line(lines):
    f = StreamFilter(GUARD)
    out = "".join(f.push(ln + "\n") for ln in lines) + f.flush()
    assert out.endswith("\n")
    _check(lines, out[:-1])


def test_the_reported_case_on_the_command_line(tmp_path: Path):
    runner = CliRunner()
    key, index = tmp_path / "k", tmp_path / "index.json"
    assert runner.invoke(app, ["guard", "new-key", "--out", str(key)]).exit_code == 0
    added = runner.invoke(app, ["guard", "add-subject", "--index", str(index), "--key-file",
                                str(key), "--file", "-"], input=json.dumps({"name": NAME}))
    assert added.exit_code == 0, added.output
    text = f"Sure! {NAME}\n{NAME}\n{NAME} -- that is all I know.\n"
    out = runner.invoke(app, ["guard", "--index", str(index), "--key-file", str(key),
                              "--no-presidio"], input=text)
    assert out.exit_code == 0, out.output
    assert out.stdout == ("Sure! <FORGOTTEN_SUBJECT>\n<FORGOTTEN_SUBJECT>\n"
                          "<FORGOTTEN_SUBJECT> -- that is all I know.\n")
