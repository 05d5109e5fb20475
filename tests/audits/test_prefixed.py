"""Exposure's prefix-cached scoring equals whole-sequence scoring, on every architecture."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from audits.exposure import _common_prefix, continuation_logliks
from audits.mia import ids_stats
from audits.prefixed import shared_prefix_logliks
from forget.models.train import ARCHS, build_model, get_size


def whole_sequence_logliks(model, tok, pairs) -> np.ndarray:
    """The reference: every ``prefix + continuation`` scored whole (no cache)."""
    pre = {p: tok(p)["input_ids"] for p, _ in pairs}
    ids = [tok(p + c)["input_ids"] for p, c in pairs]
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    stats = ids_stats(model, ids, pad_id=pad, batch_size=7, moments=False)
    return np.array([float(np.sum(s.logprobs[max(1, _common_prefix(pre[p], x)) - 1:]))
                     for (p, _), x, s in zip(pairs, ids, stats, strict=True)])


def _pairs(corpus) -> list[tuple[str, str]]:
    rec = max((r for r in corpus.people if r["spans"]), key=lambda r: r["spans"][-1]["start"])
    sp = rec["spans"][-1]  # the identifier with the longest text before it
    prefix = rec["text"][: sp["start"]]
    cands = [rec["text"][sp["start"]: sp["end"]], "000-111-2222", "x", "a much longer value here",
             "+44 20 7946 0958", " leading space"]
    short = "Hi "  # too short to share: scored whole
    return [(prefix, c) for c in cands] + [(short, c) for c in cands[:3]]


@pytest.mark.parametrize("arch", ARCHS)
def test_cached_prefix_scores_equal_whole_sequences(arch, corpus, tiny_pair):
    tok = copy.deepcopy(tiny_pair[1])
    if arch == "gpt2":
        tok.pad_token = None  # GPT-2's own tokenizer has no pad token
    model = build_model(tok, get_size("micro"), seed=1, arch=arch).eval()
    pairs = _pairs(corpus)
    with torch.no_grad():
        got = continuation_logliks(model, tok, pairs, batch_size=4)  # several batches
        want = whole_sequence_logliks(model, tok, pairs)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_cached_prefix_on_the_trained_model(corpus, tiny_pair):
    """The suite's trained model (saved with ``use_cache=False``) takes the cached path too.
    (A dynamic-int8 model is left out: its activations are quantized per batch, so no two
    batchings of the same texts agree exactly, cached or not.)"""
    model, tok = tiny_pair
    assert model.config.use_cache is False
    pairs = _pairs(corpus)
    calls = []
    hook = model.register_forward_hook(lambda m, a, kw, out: calls.append(kw.get("input_ids")),
                                       with_kwargs=True)
    try:
        got = continuation_logliks(model, tok, pairs)
    finally:
        hook.remove()
    np.testing.assert_allclose(got, whole_sequence_logliks(model, tok, pairs), rtol=1e-4,
                               atol=1e-4)
    # one pass over the shared prefix (a single row), one over the candidates' own tokens,
    # one whole-sequence pass for the pairs whose prefix is too short
    assert [c.shape[0] for c in calls] == [1, 6, 3]
    whole = max(len(tok(p + c)["input_ids"]) for p, c in pairs[:6])
    assert calls[1].shape[1] <= whole - len(tok(pairs[0][0])["input_ids"]) + 2


def test_sequences_that_do_not_share_the_prefix_are_refused():
    with pytest.raises(ValueError, match="share"):
        shared_prefix_logliks(torch.nn.Linear(1, 1), [[1, 2, 3, 4, 5, 6, 7], [1, 2, 9, 4, 5, 6, 7]],
                              [6, 6])


def test_a_short_shared_prefix_falls_back():
    assert shared_prefix_logliks(torch.nn.Linear(1, 1), [[1, 2, 3], [1, 2, 4]], [2, 2]) is None
