"""The pure mathematics: AUC, ROC, bootstrap CI, TPR@FPR, zlib, Min-K%, Min-K%++, exposure,
EL_n, MA. Hand-computed tables and hypothesis properties."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audits import metrics as M

FAST = settings(deadline=None, max_examples=40)  # 2 shared cores: timings vary
scores = st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=30)


def brute_auc(m, n):
    return sum((a > b) + 0.5 * (a == b) for a in m for b in n) / (len(m) * len(n))


@FAST
@given(scores, scores)
def test_auc_equals_pairwise_probability(m, n):
    assert M.auc(m, n) == pytest.approx(brute_auc(m, n))


@FAST
@given(scores, scores)
def test_auc_is_antisymmetric_and_bounded(m, n):
    a = M.auc(m, n)
    assert 0.0 <= a <= 1.0
    assert M.auc(n, m) == pytest.approx(1.0 - a)


@FAST
@given(scores, scores, st.integers(0, 10_000))
def test_bootstrap_ci_contains_point_estimate(m, n, seed):
    lo, hi = M.bootstrap_auc_ci(m, n, n_boot=100, seed=seed)
    assert 0.0 <= lo <= M.auc(m, n) <= hi <= 1.0


@FAST
@given(scores, scores, st.integers(1, 8), st.integers(0, 10_000))
def test_aucs_of_draws_is_auc_of_each_draw(m, n, draws, seed):
    """The bootstrap's AUCs from counts equal the rank formula on each resampled draw (ties
    included: scores are rounded so that some are equal)."""
    m, n = np.round(m, 0), np.round(n, 0)
    rng = np.random.default_rng(seed)
    mi = rng.integers(0, len(m), size=(draws, len(m)))
    ni = rng.integers(0, len(n), size=(draws, len(n)))
    want = [M.auc(m[a], n[b]) for a, b in zip(mi, ni, strict=True)]
    assert M.aucs_of_draws(m, n, mi, ni) == pytest.approx(want, abs=1e-12)


@FAST
@given(scores, scores)
def test_roc_starts_at_origin_ends_at_one_and_is_monotone(m, n):
    f, t = M.roc_curve(m, n)
    assert (f[0], t[0]) == (0.0, 0.0) and (f[-1], t[-1]) == (1.0, 1.0)
    assert np.all(np.diff(f) >= 0) and np.all(np.diff(t) >= 0)
    # The trapezoid area under the ROC points is the AUC.
    assert np.trapezoid(t, f) == pytest.approx(M.auc(m, n))


@FAST
@given(scores, scores)
def test_tpr_at_fpr_is_monotone_in_fpr(m, n):
    vals = [M.tpr_at_fpr(m, n, f) for f in (0.0, 0.001, 0.01, 0.1, 1.0)]
    assert vals == sorted(vals) and vals[-1] == 1.0


@pytest.mark.parametrize("m, n, fpr, tpr", [
    ([3, 2, 1], [0, -1], 0.0, 1.0),      # perfectly separated
    ([0, 1], [2, 3], 0.01, 0.0),         # inverted: nothing before the first non-member
    ([5, 1], [3, 0], 0.0, 0.5),          # one member above every non-member
])
def test_tpr_at_fpr_table(m, n, fpr, tpr):
    assert M.tpr_at_fpr(m, n, fpr) == tpr


def test_zlib_score_hand_computed():
    text = "aaaa aaaa aaaa"
    lp = np.array([-1.0, -2.0, -0.5])
    assert M.zlib_score(lp, text) == pytest.approx(-3.5 / len(zlib.compress(text.encode(), 9)))


@pytest.mark.parametrize("lp, k, expected", [
    ([-1, -2, -3, -4, -5], 0.2, -5.0),         # int(5 * .2) = 1 lowest token
    ([-1, -2, -3, -4, -5], 0.4, -4.5),
    ([-1, -2], 0.2, -2.0),                     # at least one token
    ([-3.0], 1.0, -3.0),
])
def test_min_k_table(lp, k, expected):
    assert M.min_k_score(np.array(lp, float), k) == pytest.approx(expected)


@FAST
@given(st.lists(st.lists(st.floats(-50, 50, allow_nan=False), max_size=40), max_size=12),
       st.sampled_from([0.05, 0.2, 0.5, 1.0]))
def test_lowest_k_means_equals_the_per_row_min_k(rows, k):
    """The batched Min-K% (all texts at once) gives each row's own min_k_score; NaN if empty."""
    got = M.lowest_k_means([np.array(r, float) for r in rows], k)
    assert got.shape == (len(rows),)
    for g, r in zip(got, rows, strict=True):
        if r:
            assert g == pytest.approx(M.min_k_score(np.array(r, float), k), rel=1e-9, abs=1e-9)
        else:
            assert math.isnan(g)


def test_min_k_pp_hand_computed():
    # Two positions over a vocabulary of 2; logits (0, 0) -> p = (.5, .5); (ln 3, 0) -> (.75, .25).
    logits = np.array([[0.0, 0.0], [math.log(3), 0.0]])
    mu, sigma = M.vocab_moments(logits)
    lp1 = math.log(0.5)
    assert mu[0] == pytest.approx(lp1) and sigma[0] == pytest.approx(0.0, abs=1e-9)
    mu2 = 0.75 * math.log(0.75) + 0.25 * math.log(0.25)
    sd2 = math.sqrt(0.75 * (math.log(0.75) - mu2) ** 2 + 0.25 * (math.log(0.25) - mu2) ** 2)
    assert (mu[1], sigma[1]) == (pytest.approx(mu2), pytest.approx(sd2))
    # Tokens: id 0 at position 0, id 1 at position 1; k = 1 averages both standardised scores.
    tok = np.array([lp1, math.log(0.25)])
    s = M.min_k_pp_token_scores(tok, mu, sigma)
    assert s[0] == pytest.approx(0.0)  # sigma floored: (lp - mu) = 0
    assert s[1] == pytest.approx((math.log(0.25) - mu2) / sd2)
    assert M.min_k_pp_score(tok, mu, sigma, k=1.0) == pytest.approx(s.mean())
    assert M.min_k_pp_score(tok, mu, sigma, k=0.5) == pytest.approx(s.min())


@FAST
@given(st.lists(st.floats(-10, 10), min_size=2, max_size=12))
def test_vocab_moments_match_definition(logits):
    lg = np.array(logits)
    p = np.exp(lg - lg.max()) / np.exp(lg - lg.max()).sum()
    logp = np.log(np.maximum(p, 1e-300))
    mu, sd = M.vocab_moments(lg)
    assert mu == pytest.approx(np.sum(p * logp), abs=1e-6)
    assert sd == pytest.approx(np.sqrt(np.sum(p * (logp - np.sum(p * logp)) ** 2)), abs=1e-6)


@pytest.mark.parametrize("rank, n, bits, p", [
    (1, 200, math.log2(200), 0.005),
    (200, 200, 0.0, 1.0),
    (100, 200, 1.0, 0.5),
])
def test_exposure_table(rank, n, bits, p):
    assert M.exposure_bits(rank, n) == pytest.approx(bits)
    assert M.exposure_p_value(rank, n) == pytest.approx(p)


@pytest.mark.parametrize("true, alts, rank", [
    (0.0, [-1.0, -2.0], 1), (-3.0, [-1.0, -2.0], 3), (-1.0, [-1.0, -2.0], 2),  # ties count against
])
def test_rank_of_true_table(true, alts, rank):
    assert M.rank_of_true(true, alts) == rank


@FAST
@given(st.integers(1, 1000), st.integers(0, 999))
def test_exposure_p_value_is_valid_under_the_null(n, r):
    rank = r % n + 1  # a uniform rank: P(p <= a) = floor(a n) / n <= a
    assert 0 < M.exposure_p_value(rank, n) <= 1
    assert M.exposure_bits(rank, n) >= 0


@pytest.mark.parametrize("gen, tgt, n, expected", [
    ([1, 2, 3, 4], [1, 2, 3, 4], 3, 1.0),
    ([1, 2, 9, 4], [1, 2, 3, 4], 2, 1 / 3),
    ([], [1, 2, 3], 3, 0.0),
    ([1, 1, 1], [1, 1, 1, 1], 2, 2 / 3),  # multiset: two (1, 1) in gen, three in target
])
def test_ngram_overlap_table(gen, tgt, n, expected):
    assert M.ngram_overlap(gen, tgt, n) == pytest.approx(expected)


def test_extraction_likelihood_hand_computed():
    target = [1, 2, 3, 4]
    perfect = [target[t:] for t in range(4)]
    assert M.extraction_likelihood(perfect, target, 3) == 1.0
    # cut 0 continues wrong ([9, 9, 9, 9]); cut 1 right ([2, 3, 4]): mean(0, 1) over n=3 cuts.
    assert M.extraction_likelihood([[9, 9, 9, 9], [2, 3, 4], [], []], target, 3) == 0.5
    assert M.extraction_likelihood(perfect, target, 5) is None


@FAST
@given(st.lists(st.integers(0, 5), min_size=1, max_size=20), st.data())
def test_memorization_accuracy_bounds(target, data):
    pred = data.draw(st.lists(st.integers(0, 5), min_size=len(target), max_size=len(target)))
    ma = M.memorization_accuracy(pred, target)
    assert 0.0 <= ma <= 1.0
    assert M.memorization_accuracy(target, target) == 1.0
