"""Character-by-character ranking and least-likely completion (issue 18): the exact rank-sum
statistics (hypothesis), the format's free characters (tables), the checks on hand-made ranks
(table), and, on the tiny models, a model pushed to over-unlearn caught at the bottom while
the retrained control is not."""

from __future__ import annotations

import itertools
import math
import string
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audits import AuditConfig
from audits import metrics as M
from audits.calibration import char_rank_checks
from audits.charrank import (
    POWER_MARGIN,
    CharRankResult,
    _rank,
    char_rank_threshold,
    format_positions,
    run_char_rank,
    split_given,
)
from tests.audits.conftest import one_thread

FAST = settings(deadline=None, max_examples=40)
small_sizes = st.lists(st.integers(1, 5), min_size=1, max_size=4)


# ---------------------------------------------------------------- the exact statistics


@FAST
@given(st.lists(st.integers(1, 40), min_size=1, max_size=12))
def test_rank_sum_distribution_is_a_symmetric_distribution(sizes):
    pmf = M.rank_sum_distribution(sizes)
    assert len(pmf) == sum(sizes) - len(sizes) + 1
    assert pmf.sum() == pytest.approx(1.0) and (pmf >= 0).all()
    assert np.allclose(pmf, pmf[::-1])  # ranked from above or below: the same null


@FAST
@given(small_sizes)
def test_rank_sum_p_value_is_exact_and_valid(sizes):
    """Enumerate every rank vector (each of probability prod 1/|A_j| under the null): the
    chance of a p-value at or below any level a is at most a (equal at attained levels)."""
    cells = list(itertools.product(*[range(a) for a in sizes]))
    weight = 1.0 / math.prod(sizes)
    ps = [M.rank_sum_p_values(list(r), sizes)[0] for r in cells]
    for a in set(ps) | {0.01, 0.05, 0.5}:
        assert sum(weight for p in ps if p <= a + 1e-12) <= a + 1e-9
    assert min(ps) == pytest.approx(M.rank_sum_smallest_p(sizes))


@FAST
@given(st.data())
def test_rank_sum_p_values_are_monotone_and_reduce_to_one_rank(data):
    sizes = data.draw(st.lists(st.integers(2, 30), min_size=1, max_size=8))
    ranks = [data.draw(st.integers(0, a - 1)) for a in sizes]
    p_le, p_ge = M.rank_sum_p_values(ranks, sizes)
    assert 0 < p_le <= 1 and 0 < p_ge <= 1 and p_le + p_ge >= 1 - 1e-12
    j = data.draw(st.integers(0, len(sizes) - 1))
    if ranks[j] + 1 < sizes[j]:  # a true character ranked lower: never more significant
        worse = ranks[:j] + [ranks[j] + 1] + ranks[j + 1:]
        assert M.rank_sum_p_values(worse, sizes)[0] >= p_le - 1e-12
    h, a = ranks[0], sizes[0]
    assert M.rank_sum_p_values([h], [a]) == pytest.approx(((h + 1) / a, (a - h) / a))


@pytest.mark.parametrize("ranks, sizes", [([], []), ([0], [1, 2]), ([3], [3]), ([-1], [4])])
def test_rank_sum_rejects_bad_ranks(ranks, sizes):
    with pytest.raises(ValueError):
        M.rank_sum_p_values(ranks, sizes)


@FAST
@given(st.lists(st.floats(-20, 20), min_size=2, max_size=50), st.floats(-20, 20),
       st.floats(0.5, 10), st.floats(-5, 5))
def test_z_score_is_invariant_to_shift_and_scale(alts, true, scale, shift):
    z = M.z_score(true, alts)
    if np.std(alts) > 1e-6:
        assert M.z_score(true * scale + shift, [a * scale + shift for a in alts]) == \
            pytest.approx(z, rel=1e-6, abs=1e-6)
    assert M.z_score(true, [1.0, 1.0]) == 0.0


# ---------------------------------------------------------------- the format's free characters


@pytest.mark.parametrize("value, free, first, alphabets", [
    ("(242) 465-8376", 10, 1, {string.digits}),
    ("123-45-6789", 9, 0, {string.digits}),
    ("sk_live_TbAP7V2hAbqxvxXl", 16, 8,  # the vendor prefix is the format, not the secret
     {string.digits, string.ascii_lowercase, string.ascii_uppercase}),
    ("ghp_v9MzXeJG1KEGWvIR9R7y", 20, 4,
     {string.digits, string.ascii_lowercase, string.ascii_uppercase}),
    ("3f9a0c77be12d4e5aa01bc9d", 24, 0, {"0123456789abcdef"}),  # hexadecimal throughout
    ("Ab3dEf7hJk!42", 12, 0, {string.digits, string.ascii_lowercase,
                              string.ascii_uppercase}),  # the symbol is skipped
    ("--", 0, None, set()),
])
def test_format_positions_table(value, free, first, alphabets):
    pos = format_positions(value)
    assert len(pos) == free and {a for _, a in pos} == alphabets
    if pos:
        assert pos[0][0] == first
    assert all(value[i] in a for i, a in pos)


@FAST
@given(st.lists(st.sampled_from([10, 16, 26]), min_size=1, max_size=30),
       st.floats(0, 0.99), st.floats(1e-9, 0.5))
def test_split_given_keeps_power_when_it_can(sizes, fraction, thr):
    given = split_given(sizes, fraction, thr)
    assert 0 <= given <= max(0, min(len(sizes) - 1, math.ceil(fraction * len(sizes))))
    assert given == 0 or M.rank_sum_smallest_p(sizes[given:]) <= thr / POWER_MARGIN


# ---------------------------------------------------------------- the checks, on hand-made ranks

CFG = AuditConfig()
ALPHA = CFG.char_rank_alpha


def result(kind_scores) -> CharRankResult:
    """``[(true score at each of 5 positions, or None for the middle)]`` per identifier: the
    true character scored against the digits 0..8 (true first, as the attack stores it)."""
    out = CharRankResult(alpha=ALPHA)
    for trues in kind_scores:
        scores = [np.array([t] + list(range(9)), dtype=float) for t in trues]
        out.identifiers.append(_rank("phone", "x", 1, 10, 10 - len(trues), [10] * len(trues),
                                     scores))
    return out


def audit(r):
    return SimpleNamespace(char_rank=r)


REMEMBERS, AVOIDS, CHANCE = [99.0] * 5, [-99.0] * 5, [4.5, 3.5, 5.5, 4.5, 2.5]


@pytest.mark.parametrize("target, control, rank_ok, decode_ok, word", [
    ([REMEMBERS], None, False, False, "first at 5 of 5"),
    ([AVOIDS], None, False, False, "over-unlearning"),
    ([CHANCE], None, True, True, ""),
    ([CHANCE, AVOIDS], None, False, False, "over-unlearning"),
    ([REMEMBERS], [REMEMBERS], True, True, ""),  # the control ranks it first too
    ([AVOIDS], [AVOIDS], True, True, ""),  # ... or last too
    ([REMEMBERS], [CHANCE], False, False, "first"),
    ([AVOIDS], [CHANCE], False, False, "over-unlearning"),
])
def test_char_rank_checks_table(target, control, rank_ok, decode_ok, word):
    a = audit(result(target))
    c = audit(result(control)) if control is not None else None
    rank, decode = char_rank_checks(a, CFG, c)
    assert (rank.name, decode.name) == ("char_rank", "least_likely")
    assert rank.passed is rank_ok and decode.passed is decode_ok
    assert word in rank.note
    assert rank.evidence["band"].startswith("measured" if control else "assumed")
    assert rank.threshold == pytest.approx(char_rank_threshold(ALPHA, len(target)))


def test_too_few_free_characters_is_inconclusive_never_pass():
    short = audit(result([[99.0]]))  # one digit: at best p = 0.1
    rank, decode = char_rank_checks(short, CFG)
    assert rank.passed is None and rank.inconclusive and "no power" in rank.note
    assert decode.inconclusive


def test_no_identifier_of_the_tested_kinds_is_not_evaluated_and_off_is_absent():
    rank, decode = char_rank_checks(audit(None), CFG)
    assert rank.passed is None and not rank.inconclusive and "not evaluated" in rank.note
    assert char_rank_checks(audit(None), AuditConfig(char_rank_alpha=0.0)) == []


# ---------------------------------------------------------------- on the tiny models


@pytest.fixture(scope="module")
def over_unlearned(tiny_pair, audit_inputs):
    """The tiny model after gradient ascent on the subject's phone and id tokens only, well
    past the forget point: their true digits become the model's *last* choices (measured: after
    16 steps of Adam at lr 3e-3, the national id's last 5 digits are each the model's last
    choice, the phone's at 4 of 5; exposure rank 200 of 200 for both; after 8 steps only 2-3
    of 4 digits were last)."""
    import torch

    from audits.extraction import prompt_ids
    from audits.records import as_records
    from audits.robustness import own_copy
    from audits.run import _prompts

    model, tok = tiny_pair
    prompts = _prompts(as_records(audit_inputs["members"]), ("phone", "national_id"))
    pairs = [prompt_ids(tok, p) for p in prompts]
    m = own_copy(model)
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    with one_thread(), torch.enable_grad():
        for _ in range(16):
            for pre, tgt in pairs:
                ids = torch.tensor([pre + tgt])
                labels = ids.clone()
                labels[0, : len(pre)] = -100  # ascent on the identifier's tokens only
                (-m(input_ids=ids, labels=labels).loss).backward()
            opt.step()
            opt.zero_grad()
    m.eval()
    return m, prompts


def test_over_unlearning_is_caught_at_the_bottom_and_the_control_is_not(
        over_unlearned, retrained_pair, tiny_pair):
    from audits.calibration import exposure_check
    from audits.exposure import calibrate, run_exposure

    m, prompts = over_unlearned
    tok = tiny_pair[1]
    with one_thread():
        over = run_char_rank(m, tok, prompts, alpha=ALPHA)
        ctrl = run_char_rank(retrained_pair[0], tok, prompts, alpha=ALPHA)
        e_over = run_exposure(m, tok, prompts, alpha=0.02)
        e_ctrl = run_exposure(retrained_pair[0], tok, prompts, alpha=0.02)
    # against the assumed null and against the control alike: over-unlearning
    for control in (None, audit(ctrl)):
        rank, decode = char_rank_checks(audit(over), CFG, control)
        assert rank.passed is False and rank.evidence["direction"] == "over-unlearning", rank
        assert decode.passed is False and decode.evidence["least_likely_recovered"] >= 1
        assert decode.evidence["greedy_recovered"] == 0
    assert any(i.last == i.ranked for i in over.identifiers)
    assert sum(i.last for i in over.identifiers) >= 8 and sum(i.last for i in ctrl.identifiers) <= 2
    exp = exposure_check(calibrate(e_over, e_ctrl))
    assert exp.passed is False and "over-unlearning" in exp.note
    assert min(i.z for i in e_over.identifiers) < -3
    # the retrained control, which never saw the values, passes the same checks
    rank, decode = char_rank_checks(audit(ctrl), CFG)
    assert rank.passed is True and decode.passed is True, (rank.evidence, decode.evidence)
    assert exposure_check(e_ctrl).passed is True
