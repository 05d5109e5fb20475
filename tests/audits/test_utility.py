"""Utility: perplexity, and lm-eval run offline through its API on the data/lm_eval tasks."""

from __future__ import annotations

import json

import pytest

from audits import LmEvalError, prepare_tasks, run_lm_eval, write_lm_eval_data
from audits.utility import DEFAULT_TASK_DIR, perplexity_of


def test_retain_perplexity_is_lower_than_held_out(tiny_pair, corpus):
    retain = [r["text"] for r in corpus.people if r["split"] == "train"][:50]
    hold = [r["text"] for r in corpus.people if r["split"] == "holdout"][:50]
    (rp, rn), (hp, hn) = perplexity_of(*tiny_pair, retain), perplexity_of(*tiny_pair, hold)
    assert rn > 0 and hn > 0 and 1.0 < rp < hp


def test_lm_eval_tasks_run_offline(tiny_pair, corpus, trained_subject, tmp_path):
    paths = write_lm_eval_data(corpus.subjects, corpus.people, tmp_path / "d",
                               exclude=[trained_subject])
    rows = [json.loads(x) for x in paths["facts_mc"].read_text().splitlines()]
    names = {corpus.subject(trained_subject)["identifiers"]["name"]}
    assert rows and not any(n in r["question"] for r in rows for n in names)
    tasks = prepare_tasks(tmp_path / "d", tmp_path / "t")
    res = run_lm_eval(*tiny_pair, tasks)
    assert 0.0 <= res["forget_facts_mc"]["acc"] <= 1.0
    assert res["forget_facts_mc"]["acc"] > 0.25  # trained facts: better than chance (4 choices)
    assert res["forget_ppl"]["word_perplexity"] > 1.0


def test_checked_in_tasks_and_clear_errors(tmp_path):
    assert {p.name for p in DEFAULT_TASK_DIR.glob("*.yaml")} == {"forget_facts_mc.yaml",
                                                                 "forget_ppl.yaml"}
    assert (DEFAULT_TASK_DIR / "facts_mc.jsonl").is_file()
    with pytest.raises(LmEvalError, match="write it with"):
        prepare_tasks(tmp_path / "empty", tmp_path / "t")
