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
