"""Losses against hand-computed values on tiny tensors, and their properties."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from forget.core import losses as L
from forget.errors import InvalidInputError

# Two sequences, vocabulary of 2. Position t predicts label t+1. Row 0: uniform logits, so every
# token costs log 2. Row 1: logits favour token 0 by log 3 (p = 3/4, 1/4); its last label is
# padding (-100).
LOGITS = torch.tensor([
    [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]],
    [[math.log(3), 0.0], [math.log(3), 0.0], [5.0, -5.0]],
])
LABELS = torch.tensor([[1, 0, 1], [1, 0, -100]])
LOG2, P3, P1 = math.log(2), math.log(0.75), math.log(0.25)


def test_sequence_logprob_hand_computed():
    logp, n = L.sequence_logprob(LOGITS, LABELS)
    # row 0: two predicted tokens at log 1/2; row 1: label 0 (p 3/4), the padded one skipped
    assert n.tolist() == [2, 1]
    assert logp.tolist() == pytest.approx([-2 * LOG2, P3])


def test_masked_ce_never_averages_padding():
    # (2 log 2 - log 3/4) / 3 tokens: the padded position is in neither sum nor count
    assert float(L.masked_ce(LOGITS, LABELS)) == pytest.approx((2 * LOG2 - P3) / 3)
    assert float(L.gradient_ascent_loss(LOGITS, LABELS)) == pytest.approx(-(2 * LOG2 - P3) / 3)


def test_masked_ce_with_token_mask_and_empty_mask():
    mask = torch.tensor([[0, 0, 1], [0, 0, 0]])  # only row 0's last token (label 1)
    assert float(L.masked_ce(LOGITS, LABELS, mask)) == pytest.approx(LOG2)
    assert float(L.masked_ce(LOGITS, LABELS, torch.zeros_like(mask))) == 0.0


def test_npo_hand_computed():
    logp, ref = torch.tensor([-2.0, -1.0]), torch.tensor([-1.0, -1.0])
    beta = 0.5
    expect = [-(2 / beta) * math.log(1 / (1 + math.exp(beta * d))) for d in (-1.0, 0.0)]
    assert float(L.npo_loss(logp, ref, beta)) == pytest.approx(sum(expect) / 2)
    # equal likelihoods: (2/β) log 2
    assert float(L.npo_loss(ref, ref, beta)) == pytest.approx(2 / beta * LOG2)


def test_simnpo_hand_computed():
    logp, n = torch.tensor([-4.0]), torch.tensor([2])
    beta, gamma = 2.0, 0.5
    z = -beta * (-4.0 / 2) - gamma  # 3.5
    assert float(L.simnpo_loss(logp, n, beta, gamma)) == pytest.approx(
        -(2 / beta) * math.log(1 / (1 + math.exp(-z))))


def test_kl_hand_computed():
    ref = torch.zeros(1, 2, 2)  # uniform reference
    cur = torch.tensor([[[math.log(3), 0.0], [0.0, 0.0]]])
    labels = torch.tensor([[0, 1]])
    # KL(u ‖ (3/4, 1/4)) = 1/2 log(1/2 / 3/4) + 1/2 log(1/2 / 1/4)
    expect = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert float(L.kl_to_reference(cur, ref, labels)) == pytest.approx(expect)


def test_group_lasso_and_memorization_accuracy():
    assert float(L.group_lasso([torch.tensor([3.0, 4.0]), torch.tensor([1.0])])) == pytest.approx(6)
    # argmax: row 0 ties -> token 0; row 1 -> 0. Labels next: [0,1] and [0]: hits 1 + 1 of 3
    assert float(L.memorization_accuracy(LOGITS, LABELS)) == pytest.approx(2 / 3)


def test_beta_must_be_positive():
    with pytest.raises(InvalidInputError):
        L.npo_loss(torch.zeros(1), torch.zeros(1), 0.0)


finite = st.floats(-8, 8, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(st.lists(finite, min_size=12, max_size=12), st.integers(1, 3), finite)
def test_padding_never_changes_ce(values, pad, junk):
    logits = torch.tensor(values).reshape(1, 4, 3)
    labels = torch.tensor([[0, 2, 1, 0]])
    padded_logits = torch.cat([logits, torch.full((1, pad, 3), junk)], dim=1)
    padded_labels = torch.cat([labels, torch.full((1, pad), -100)], dim=1)
    assert float(L.masked_ce(padded_logits, padded_labels)) == pytest.approx(
        float(L.masked_ce(logits, labels)), abs=1e-5)


@settings(max_examples=40, deadline=None)
@given(finite, finite, st.floats(0.01, 5))
def test_npo_positive_and_increasing_in_likelihood(a, b, beta):
    lo, hi = sorted((a, b))
    ref = torch.tensor([0.0])
    l_lo = float(L.npo_loss(torch.tensor([lo]), ref, beta))
    l_hi = float(L.npo_loss(torch.tensor([hi]), ref, beta))
    assert 0 <= l_lo <= l_hi + 1e-6


@settings(max_examples=40, deadline=None)
@given(st.floats(-50, 0), st.integers(1, 40), st.floats(0.1, 5), st.floats(0, 2))
def test_simnpo_is_length_normalised(logp, n, beta, gamma):
    one = float(L.simnpo_loss(torch.tensor([logp]), torch.tensor([n]), beta, gamma))
    two = float(L.simnpo_loss(torch.tensor([2 * logp]), torch.tensor([2 * n]), beta, gamma))
    assert one >= 0 and one == pytest.approx(two, rel=1e-5, abs=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.lists(finite, min_size=12, max_size=12), st.lists(finite, min_size=12, max_size=12))
def test_kl_nonnegative_and_zero_on_itself(a, b):
    x, y = torch.tensor(a).reshape(1, 4, 3), torch.tensor(b).reshape(1, 4, 3)
    labels = torch.tensor([[0, 1, 2, 0]])
    assert float(L.kl_to_reference(x, y, labels)) >= -1e-6
    assert float(L.kl_to_reference(x, x, labels)) == pytest.approx(0, abs=1e-6)
