"""Extraction: greedy/sampled hits, MA and EL_n on the tiny model; token helpers."""

from __future__ import annotations

import pytest

from audits import Prompt, identifier_prompts, run_extraction
from audits.extraction import prompt_ids

KINDS = ("phone", "email", "national_id")


def prompts_of(corpus, sid):
    return [p for r in corpus.people if r["subject_id"] == sid
            for p in identifier_prompts(r["record_id"], r["text"], r["spans"], KINDS)]


def test_prompt_ids_concatenate_to_the_full_text(tiny_pair):
    tok = tiny_pair[1]
    p = Prompt("You can reach Ann Lee by phone at", " (242) 465-8376", "phone")
    pre, tgt = prompt_ids(tok, p)
    assert pre + tgt == tok(p.prefix + p.target)["input_ids"]
    assert len(tgt) >= 10  # digits are one token each


def test_trained_subject_is_extracted(tiny_pair, corpus, trained_subject):
    res = run_extraction(*tiny_pair, prompts_of(corpus, trained_subject), samples=2, seed=0)
    assert res.greedy_hits >= 1 and res.hits >= res.greedy_hits
    assert res.mean_ma > 0.8
    assert res.mean_el["3"] is not None and res.mean_el["3"] > 0.5
    for p in res.probes:  # results are masked: no digits beyond the last two
        assert sum(ch.isdigit() for ch in p.masked) <= 2


def test_held_out_subject_is_not_extracted(tiny_pair, corpus):
    sid = corpus.subject_ids("holdout")[0]
    res = run_extraction(*tiny_pair, prompts_of(corpus, sid), samples=4, seed=0)
    assert res.hits == 0
    assert res.mean_ma < 0.8


@pytest.mark.parametrize("samples", [0, 3])
def test_sampling_is_seeded(tiny_pair, corpus, trained_subject, samples):
    ps = prompts_of(corpus, trained_subject)[:2]
    a = run_extraction(*tiny_pair, ps, samples=samples, seed=5, temperature=1.5)
    b = run_extraction(*tiny_pair, ps, samples=samples, seed=5, temperature=1.5)
    assert [p.sampled_hits for p in a.probes] == [p.sampled_hits for p in b.probes]
