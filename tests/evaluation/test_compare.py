"""The method comparison (bench/compare.py's engine) on the tiny model."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def result(comparison_json):
    return json.loads(comparison_json.read_text())


def test_every_method_is_audited_for_the_subject(result, trained_subject):
    rows = {r["method"]: r for r in result["rows"]}
    assert set(rows) == {"retrain", "npo"}
    assert all(r["subject"] == trained_subject and r["group"] == "random" for r in rows.values())
    for r in rows.values():
        assert r["probes"] > 0 and r["mia_auc"] is not None and r["retain_ppl"] is not None
        assert set(r["robustness_recovered"]) == {"relearn", "int8", "paraphrase"}
        assert r["lm_eval"] == {}  # not asked for (the fixture's CompareConfig)


def test_retraining_is_the_privleak_reference_and_passes(result):
    retrain = next(r for r in result["rows"] if r["method"] == "retrain")
    assert retrain["privleak"] == pytest.approx(0.0)
    assert retrain["greedy_hits"] == 0 and retrain["verdict"] == "pass"
    assert retrain["shared"] is True


def test_unlearning_methods_stop_greedy_extraction(result):
    for r in result["rows"]:
        if r["method"] != "retrain":
            assert r["greedy_hits"] == 0, r["method"]
            assert r["share_of_retrain_time"] is not None and r["share_of_retrain_time"] > 0


def test_code_and_sequential_parts(result):
    assert result["batch"] == [] and result["config"]["batch"] is False
    code = result["code"]
    assert [r["method"] for r in code] == ["code_eraser"] and code[0]["greedy_hits"] == 0
    seq = result["sequential"]["npo"]
    assert len(seq) == 3 and seq[0]["retain_ppl_before"] > 0
    assert [s["request"] for s in seq[1:]] == [1, 2]
    assert set(seq[2]["extraction_after"]) == {seq[1]["subject"], seq[2]["subject"]}


def test_summary_has_a_line_per_method(result):
    summary = {s["method"]: s for s in result["summary"]}
    assert set(summary) == {"retrain", "npo"}
    assert summary["retrain"]["pass_rate"] == 1.0


def test_no_identifier_in_the_results(comparison_json, corpus):
    text = comparison_json.read_text()
    leaked = [k for s in corpus.subjects for k, v in s["identifiers"].items()
              if len(v) > 4 and v in text]
    assert not leaked, f"{len(leaked)} identifier(s) in the comparison results"


def test_worst_case_selection(corpus, tiny_model_dir):
    from forget.evaluation import most_duplicated, most_memorized
    from forget.models import load_model

    dup = most_duplicated(corpus)
    counts = {s: len(corpus.records_of(s)) for s in corpus.subject_ids("train")}
    assert counts[dup] == max(counts.values())
    model, tok = load_model(tiny_model_dir)
    assert most_memorized(corpus, model, tok) in corpus.subject_ids("train")


def test_scaled_sizes():
    from forget.errors import InvalidInputError
    from forget.evaluation import scaled

    full = scaled(1.0)
    assert (full.subjects, full.sequential, full.code_files) == (20, 10, 5)
    small = scaled(0.1)
    assert (small.subjects, small.sequential, small.code_files) == (2, 2, 1)
    with pytest.raises(InvalidInputError):
        scaled(0)


def test_shard_retrain_is_compared_only_on_a_sharded_model():
    from forget.evaluation.compare import DEFAULT_METHODS, _available

    said: list[str] = []
    assert "shard_retrain" in DEFAULT_METHODS
    assert _available(["shard_retrain", "npo"], said.append, sharded=False) == ["npo"]
    assert len(said) == 1 and "trained in one piece" in said[0]
    assert _available(["shard_retrain", "npo"], said.append, sharded=True) == [
        "shard_retrain", "npo"]
