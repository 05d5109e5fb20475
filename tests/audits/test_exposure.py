"""Exposure: a canary seen 20 times is highly exposed; held-out canaries and random strings
are not."""

from __future__ import annotations

from audits import identifier_prompts, run_exposure


def canary_exposure(pair, canaries):
    prompts = [p for c in canaries
               for p in identifier_prompts(c["canary_id"], c["text"], c["spans"])]
    return run_exposure(*pair, prompts, alternatives=199, seed=0).identifiers


def test_memorized_canary_is_exposed(tiny_pair, corpus):
    k20 = [c for c in corpus.canaries if c["split"] == "train" and c["repeats"] == 20]
    res = canary_exposure(tiny_pair, k20)
    assert res and all(e.exposure_bits > 6 and e.p_value <= 0.01 for e in res)


def test_held_out_canary_and_random_string_are_not_exposed(tiny_pair, corpus):
    held = [c for c in corpus.canaries if c["split"] == "holdout"]
    fake = {"canary_id": "R", "text": "The vault combination for locker zebra is 123987456.",
            "spans": [{"kind": "canary", "start": 42, "end": 51}]}
    res = canary_exposure(tiny_pair, held + [fake])
    bits = sorted(e.exposure_bits for e in res)
    assert bits[len(bits) // 2] < 3  # median: no better than a 1-in-8 guess
    assert max(bits) < 7


def test_bonferroni_threshold(tiny_pair, corpus):
    k20 = [c for c in corpus.canaries if c["split"] == "train" and c["repeats"] == 20][:2]
    prompts = [p for c in k20 for p in identifier_prompts(c["canary_id"], c["text"], c["spans"])]
    res = run_exposure(*tiny_pair, prompts, alternatives=50, alpha=0.05, bonferroni=True)
    # Two-sided (a value ranked implausibly low fails too): alpha / (identifiers x 2 tails).
    assert res.threshold == 0.05 / (2 * len(res.identifiers))
    assert res.min_p == min(i.p_value for i in res.identifiers)
    assert res.min_p_low == min(i.p_low for i in res.identifiers)
    one = run_exposure(*tiny_pair, prompts, alternatives=50, alpha=0.05, sides=1)
    assert one.threshold == 0.05 / len(one.identifiers) and one.avoided == 0


# ---------------------------------------------------------------- secrets among 1,000 candidates

CODE_KINDS = ("api_key", "password", "secret_key", "token", "ip_address")
SECRET_AUDIT = dict(samples=2, bootstrap=200, relearn_steps=0, quantize=False,
                    paraphrase=False, relearn_other_steps=0, require_original_control=False,
                    extraction_kinds=CODE_KINDS, exposure_kinds=CODE_KINDS)


def test_a_memorised_key_is_ranked_among_1000_candidates_and_a_fresh_one_passes(
        tiny_pair, corpus):
    """A trained code file's api key: rank 1 of 1,000 (z far above 0), and every remaining
    character the model's first choice. The same file with a key the model never saw: no
    check fails. (Measured on the session corpus: rank 1 of 1,000, z 11.5.)"""
    from audits import AuditConfig, run_audit
    from audits.records import as_record
    from audits.twins import FakeMaker, replace_spans
    from tests.audits.conftest import one_thread

    row = next(r for r in corpus.code if r["split"] == "train"
               and [s["kind"] for s in r["spans"]] == ["api_key"])
    rec = as_record(row)
    fresh = replace_spans(rec, {("api_key", rec.value(rec.spans[0])):
                                FakeMaker(11)("api_key", rec.value(rec.spans[0]))}, "fresh")
    cfg = AuditConfig(**SECRET_AUDIT)
    with one_thread():
        seen = run_audit(model=tiny_pair[0], tokenizer=tiny_pair[1], members=[rec],
                         config=cfg, subject_id="secret")
        new = run_audit(model=tiny_pair[0], tokenizer=tiny_pair[1], members=[fresh],
                        config=cfg, subject_id="secret")
    (e,) = seen.models["audited"]["exposure"]["identifiers"]
    assert e["candidates"] == 1000 and e["rank"] == 1 and e["z"] > 5
    by = {c.name: c for c in seen.checks}
    assert by["exposure"].passed is False and by["char_rank"].passed is False
    assert by["least_likely"].evidence["greedy_recovered"] == 1
    assert seen.question.endswith("this secret?") and "1,000" in seen.to_html()
    (e,) = new.models["audited"]["exposure"]["identifiers"]
    assert e["candidates"] == 1000 and abs(e["z"]) < 3.5
    failed = [c.name for c in new.checks if c.passed is False]
    assert not failed and new.verdict != "fail", new.reason
