"""Neighbours (issue 18.5): a person the audited model learned since the original is flagged
(newly extracted, much likelier); an unchanged model passes; labels must be pseudonymous.

The "audited" model here is the tiny model and the "original" the retrain without
``trained_subject`` (both session fixtures): for ``trained_subject`` as a neighbour, that is
exactly a neighbour made newly extractable and far likelier by the step under audit.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audits import AuditConfig
from audits.errors import AuditInputError
from audits.neighbours import excess_gains, run_neighbours
from audits.verdict import FAIL, PASS, decide, neighbours_checks
from tests.audits.conftest import one_thread


@pytest.fixture(scope="module")
def neighbour_inputs(corpus, trained_subject):
    others = [s for s in corpus.subject_ids("train") if s != trained_subject]
    return dict(
        groups={"neighbour-1": corpus.records_of(trained_subject),
                "neighbour-2": corpus.records_of(others[0])},
        population=[r["text"] for r in corpus.people
                    if r["split"] == "train" and r["subject_id"] != trained_subject][:60])


def test_a_neighbour_learned_since_the_original_fails(tiny_pair, retrained_pair,
                                                      neighbour_inputs):
    cfg = AuditConfig()
    with one_thread():
        r = run_neighbours(*tiny_pair, retrained_pair, neighbour_inputs["groups"],
                           kinds=cfg.neighbour_kinds, population=neighbour_inputs["population"])
    learned = r.neighbours["neighbour-1"]
    assert learned.newly_extracted >= 1 and learned.hits_original == 0
    assert learned.excess_gain > cfg.neighbour_max_gain
    assert r.extracted_labels()[0] == "neighbour-1"
    checks = neighbours_checks(r, cfg)
    assert [c.passed for c in checks] == [False, False]
    assert "neighbour-1" in checks[0].note and "neighbour-1" in checks[1].evidence["raised"]
    v = decide(checks, None, None, AuditConfig(require_original_control=False))
    assert v.verdict == FAIL and set(v.failed) == {"neighbours:extraction",
                                                   "neighbours:likelihood"}


def test_an_unchanged_model_passes(tiny_pair, neighbour_inputs):
    cfg = AuditConfig()
    cache: dict = {}
    with one_thread():
        r = run_neighbours(*tiny_pair, tiny_pair, neighbour_inputs["groups"],
                           kinds=cfg.neighbour_kinds, population=neighbour_inputs["population"],
                           original_cache=cache)
    assert r.probes > 0 and r.newly_extracted == 0
    assert all(n.gain == 0 and n.excess_gain == 0 for n in r.neighbours.values())
    assert r.neighbours["neighbour-1"].hits_audited >= 1  # extracted before and after: no change
    checks = neighbours_checks(r, cfg)
    assert [c.passed for c in checks] == [True, True]
    assert decide(checks, None, None, AuditConfig(require_original_control=False,
                                                  required_checks=())).verdict == PASS
    assert "measures" in cache  # the original's measures, for the next audit of this request


def test_what_the_retrained_control_does_too_is_not_counted(tiny_pair, retrained_pair,
                                                           neighbour_inputs):
    """A control that learned the neighbour as well (here: the audited model itself) explains
    the rise and the new extraction: nothing is flagged, and the report says why."""
    cfg = AuditConfig()
    with one_thread():
        r = run_neighbours(*tiny_pair, retrained_pair, neighbour_inputs["groups"],
                           kinds=cfg.neighbour_kinds, population=neighbour_inputs["population"],
                           control=tiny_pair)
    n = r.neighbours["neighbour-1"]
    assert n.hits_control == n.hits_audited >= 1 and n.newly_extracted == 0
    assert n.control_excess_gain == pytest.approx(n.excess_gain) and n.excess_gain > 1
    assert [c.passed for c in neighbours_checks(r, cfg)] == [True, True]


def test_a_label_holding_an_identifier_is_refused(tiny_pair, corpus, trained_subject):
    recs = [r for r in corpus.records_of(trained_subject) if r["spans"]][:1]
    value = recs[0]["text"][recs[0]["spans"][0]["start"]: recs[0]["spans"][0]["end"]]
    with pytest.raises(AuditInputError, match="pseudonymous") as e:
        run_neighbours(*tiny_pair, tiny_pair, {f"near {value}": recs}, kinds=("phone",))
    assert value not in str(e.value)


@settings(deadline=None, max_examples=40)
@given(st.lists(st.floats(-5, 5), min_size=1, max_size=6),
       st.lists(st.floats(-5, 5), min_size=1, max_size=30), st.floats(-3, 3))
def test_excess_gain_ignores_a_shift_every_text_shares(gains, population, shift):
    """A retain term that raises every text by the same amount raises no neighbour's excess."""
    a, _ = excess_gains(gains, population)
    b, med = excess_gains([g + shift for g in gains], [p + shift for p in population])
    assert np.allclose(a, b, atol=1e-9)
    assert med == pytest.approx(float(np.median(population)) + shift, abs=1e-9)


def test_run_audit_reports_neighbours_without_their_identifiers(tiny_pair, retrained_pair,
                                                                corpus, trained_subject,
                                                                neighbour_inputs, tmp_path):
    """run_audit(neighbours=...) adds both checks and a report section, labels only."""
    from audits import run_audit

    others = [s for s in corpus.subject_ids("train") if s != trained_subject]
    members = [r for r in corpus.records_of(others[1]) if r["spans"]][:2]
    light = AuditConfig(samples=0, bootstrap=50, relearn_steps=0, quantize=False,
                        paraphrase=False, char_rank_alpha=0.0, mia_verdict_attacks=("loss",))
    with one_thread():
        rep = run_audit(model=tiny_pair[0], tokenizer=tiny_pair[1], members=members,
                        original=retrained_pair, config=light, subject_id=others[1],
                        retain=neighbour_inputs["population"][:30],
                        neighbours=neighbour_inputs["groups"])
    by = {c.name: c for c in rep.checks}
    assert by["neighbours:extraction"].passed is False
    assert by["neighbours:likelihood"].passed is False
    assert rep.verdict == "fail" and "neighbours:extraction" in rep.reason
    js, html = rep.save(tmp_path)
    page = html.read_text()
    assert "The people closest to this one" in page and "neighbour-1" in page
    values = {r["text"][s["start"]: s["end"]] for recs in neighbour_inputs["groups"].values()
              for r in recs for s in r["spans"]}
    dumped = js.read_text()
    assert not [v for v in values if v in page or v in dumped]


@pytest.mark.parametrize("n, words", [(5, "the 5 people closest to them were no more exposed"),
                                      (1, "the 1 person closest to them was no more"),
                                      (0, None)])
def test_a_passing_answer_says_how_many_neighbours_were_checked(n, words):
    from audits.report import plain_answer
    from audits.verdict import Verdict

    text = plain_answer(Verdict(PASS, "pass"), [], {"neighbours": n})
    assert (words in text) if words else "closest" not in text
