"""One datatrove pass scopes a batch of requests with exactly the single-process scope's
results, on the generator's corpus and on an organisation's own files, and writes no
identifier into its logs, stats or results."""

from __future__ import annotations

import re
import warnings
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st
from own_data import SUBJECT, tickets, write_jsonl, write_parquet

from forget.corpus import open_corpus
from forget.errors import InvalidInputError, UnsupportedCorpusError
from forget.ledger.request import Identifiers
from forget.workflow.scope import scope_records
from forget.workflow.scope_engine import scope_pending, shard_bounds
from forget.workflow.scope_text import scope_text_many

TICKET = re.compile(r"Ticket from (?P<name>[^.]+)\. .* reply to (?P<email>\S+) or call "
                    r"(?P<phone>\(\d{3}\) \d{3}-\d{4})\.")


@contextmanager
def _quiet_suite():
    """The suite quiet, as the command line makes it; then verbose again (pytest's default),
    the variables it set removed."""
    from forget import _quiet

    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        for key in _quiet.QUIET_ENV:
            mp.delenv(key, raising=False)
        _quiet.configure_output(False)
        try:
            yield
        finally:
            _quiet.configure_output(True)


def _generated_requests(corpus) -> dict[str, Identifiers]:
    """Three trained people, one held-out person (no train record) and one request naming
    only a national id."""
    train = [s for s in corpus.subjects if s["split"] == "train"][:3]
    held = [s for s in corpus.subjects if s["split"] != "train"][:1]
    out = {}
    for s in train + held:
        i = s["identifiers"]
        out[f"req-{s['subject_id']}"] = Identifiers(
            name=i["name"], emails=(i["email"],), phones=(i["phone"],),
            other_ids=(("national_id", i["national_id"]),))
    ident = train[1]["identifiers"]
    out["req-id-only"] = Identifiers(other_ids=(("national_id", ident["national_id"]),))
    return out


def test_demo_corpus_same_records_as_scope_records(corpus, tmp_path):
    requests = _generated_requests(corpus)
    got = scope_pending(corpus, requests, workers=2, tasks=2, use_presidio=True)
    assert list(got) == list(requests)
    for rid, ident in requests.items():
        want = scope_records(corpus, ident, use_presidio=True)
        assert got[rid].record_ids == want.record_ids, rid
        assert got[rid].matched_kinds == want.matched_kinds
        assert got[rid].subject_id == want.subject_id
        assert got[rid].pii_findings == want.pii_findings
    assert sum(got[r].pii_findings for r in requests) > 0
    assert sum(bool(got[r].record_ids) for r in requests) >= 4  # the held-out one finds none
    assert got["req-id-only"].record_ids
    assert got["req-id-only"].details["requests_in_pass"] == 5


def _own_requests(rows: list[dict]) -> dict[str, Identifiers]:
    """The subject, two other customers (found in their tickets) and one absent person."""
    seen = {}
    for r in rows:
        m = TICKET.match(r["body"])
        if m and m["name"] != SUBJECT.name:
            seen.setdefault(m["name"], m)
    others = list(seen.values())[:2]
    out = {"r-subject": Identifiers(name=SUBJECT.name, emails=(SUBJECT.email,),
                                    phones=(SUBJECT.phone,))}
    for k, m in enumerate(others):
        out[f"r-other{k}"] = Identifiers(name=m["name"], emails=(m["email"],),
                                         phones=(m["phone"],))
    out["r-absent"] = Identifiers(name="Wenceslas Oyelaran-Pike",
                                  other_ids=(("national_id", "987-65-4320"),))
    return out


@pytest.fixture(scope="module")
def own_pass(tmp_path_factory):
    """Tickets as Parquet (own ids, a group column), 3 shards on 2 workers, Presidio on,
    datatrove's folder kept; the library quiet, as the command line makes it."""

    tmp = tmp_path_factory.mktemp("own")
    rows = tickets(n_others=40, subject_tickets=4, seed=3)
    corpus = open_corpus(write_parquet(rows, tmp / "tickets.parquet"), text_field="body",
                         id_field="doc_id", group_field="product")
    requests = _own_requests(rows)
    with _quiet_suite():
        got = scope_pending(corpus, requests, workers=2, tasks=3, use_presidio=True,
                            work_dir=tmp / "pass")
    return corpus, rows, requests, got, tmp / "pass"


def test_own_corpus_same_records_spans_and_counts_as_scope_text_many(own_pass):
    corpus, _, requests, got, _ = own_pass
    want = scope_text_many(corpus, requests, use_presidio=True)
    for rid in requests:
        assert got[rid].record_ids == want[rid].record_ids, rid
        assert got[rid].spans == want[rid].spans
        assert got[rid].matched_kinds == want[rid].matched_kinds
        assert got[rid].subject_id == want[rid].subject_id
        assert got[rid].pii_findings == want[rid].pii_findings
    assert len(got["r-subject"].record_ids) == 4 and got["r-absent"].record_ids == []
    assert got["r-other0"].record_ids and got["r-other1"].record_ids
    assert got["r-subject"].details | {"wall_s": 0, "cpu_s": 0} == {
        "mode": "engine", "engine": "datatrove", "executor": "local", "tasks": 3,
        "workers": 2, "requests_in_pass": 4, "candidates": len(corpus), "wall_s": 0,
        "cpu_s": 0}


def test_no_identifier_in_anything_the_pass_wrote(own_pass):
    _, _, requests, got, folder = own_pass
    files = [f for f in folder.rglob("*") if f.is_file()]
    names = {f.relative_to(folder).parts[0] for f in files}
    assert names == {"logs", "matches"} and len(list((folder / "matches").iterdir())) == 3
    text = "\n".join(f.read_text(errors="replace") for f in files).lower()
    values = [v for i in requests.values() for v in
              (i.name, *i.emails, *i.phones, *(x for _, x in i.other_ids)) if v]
    for v in values:
        forms = {v.lower()}
        if "@" not in v and sum(c.isdigit() for c in v) >= 7:  # a phone or id: its digits
            forms.add(re.sub(r"\D", "", v))
        if " " in v and "(" not in v:  # a name: each of its longer words too
            forms |= {w for w in v.lower().split() if len(w) >= 5}
        for form in forms:
            assert form not in text, "an identifier form was written by the pass"
    executor = (folder / "logs" / "executor.json").read_text()
    assert "<sealed digests of 4 request(s)>" in executor and "entries" not in executor
    # every matched record id is there, never its text
    assert all(rid in text for rid in (x.lower() for x in got["r-subject"].record_ids))


def test_jsonl_with_derived_ids_and_quiet_workers(tmp_path, capfd):
    """Ids ``<file>:<row>`` computed per shard equal the one-process ones; with the suite
    quiet, datatrove's loguru lines stay off stderr (the workers' too)."""

    rows = tickets(n_others=20, subject_tickets=3, seed=5)
    corpus = open_corpus(write_jsonl(rows, tmp_path / "t.jsonl"), text_field="content")
    requests = _own_requests(rows)
    with _quiet_suite():
        got = scope_pending(corpus, requests, workers=2, tasks=4, use_presidio=False)
    err = capfd.readouterr().err
    assert "PIPELINE" not in err and "Stats" not in err and "datatrove" not in err
    want = scope_text_many(corpus, requests, use_presidio=False)
    for rid in requests:
        assert got[rid].record_ids == want[rid].record_ids
        assert got[rid].spans == want[rid].spans
    assert got["r-subject"].record_ids[0].startswith("t.jsonl:")


def test_bad_input_is_refused_before_anything_runs(corpus, tmp_path):
    one = {"r": Identifiers(name="Ada Example")}
    with pytest.raises(InvalidInputError, match="no request to scope"):
        scope_pending(corpus, {})
    with pytest.raises(InvalidInputError, match="at least 1"):
        scope_pending(corpus, one, workers=0)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(InvalidInputError, match="not an empty directory"):
        scope_pending(corpus, one, work_dir=tmp_path / "busy")
    with pytest.raises(UnsupportedCorpusError, match="Corpus, a TextCorpus or a data path"):
        scope_pending([{"text": "x"}], one)
    with pytest.raises(InvalidInputError, match="no identifier"):
        scope_pending(corpus, {"r": Identifiers(emails=())}, workers=1)


@given(n=st.integers(0, 10_000), world=st.integers(1, 64))
def test_shards_are_contiguous_disjoint_and_cover_every_row(n, world):
    bounds = [shard_bounds(n, r, world) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    sizes = [b - a for a, b in bounds]
    assert max(sizes) - min(sizes) <= 1


def test_cli_scopes_every_verified_request_in_one_pass(corpus_dir, corpus, tmp_path, capsys):
    """In this process (the command line's main, its exit code and output): a forked CLI
    would import the suite again."""
    import json

    from forget.cli import main
    from forget.ledger import DeletionRequest, Ledger

    requests = _generated_requests(corpus)
    led = Ledger(tmp_path / "ledger.db")
    for rid, i in list(requests.items())[:3]:
        led.submit(DeletionRequest(request_id=rid, name=i.name, emails=i.emails,
                                   phones=i.phones, other_ids=i.other_ids, ground="b"))
        led.verify_identity(rid)
    led.submit(DeletionRequest(request_id="r-unverified", name="Ada Example", ground="b"))
    led.close()
    with _quiet_suite(), pytest.raises(SystemExit) as done:  # main makes the suite quiet
        main(["corpus", "scope", "--ledger", str(tmp_path / "ledger.db"), "--data",
              str(corpus_dir), "--workers", "2", "--out", str(tmp_path / "s.json")])
    res = capsys.readouterr()
    assert done.value.code == 0, res.err
    out = json.loads((tmp_path / "s.json").read_text())
    assert list(out["requests"]) == list(requests)[:3]
    for rid in out["requests"]:
        want = scope_records(corpus, requests[rid], use_presidio=False)
        assert out["requests"][rid]["record_ids"] == want.record_ids
        assert out["requests"][rid]["found_by"]["engine"] == "datatrove"
    shown = res.out + res.err + (tmp_path / "s.json").read_text()
    for i in list(requests.values())[:3]:
        assert i.name not in shown and i.emails[0] not in shown
