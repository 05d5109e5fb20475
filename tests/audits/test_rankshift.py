"""Rank shifts (audits.rankshift): pure functions, property tests."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from audits.metrics import rank_p_values
from audits.rankshift import rank_shift, ranks

scores = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60)


@given(scores)
def test_ranks_are_a_permutation_with_ties_averaged(xs):
    r = ranks(xs)
    assert np.isclose(r.sum(), len(xs) * (len(xs) + 1) / 2)
    for i, x in enumerate(xs):
        below = sum(v < x for v in xs)
        equal = sum(v == x for v in xs)
        assert np.isclose(r[i], below + (equal + 1) / 2)


@given(scores)
def test_a_model_equal_to_its_control_shifts_nothing(xs):
    assert np.all(rank_shift(xs, xs) == 0)


@settings(max_examples=50)
@given(st.lists(st.integers(-10_000, 10_000), min_size=20, max_size=60, unique=True),
       st.floats(1e-2, 1e2), st.floats(-1e3, 1e3))
def test_shifts_ignore_any_increasing_rescaling_of_either_model(xs, scale, offset):
    """What subtracting log-likelihoods gets wrong: a rescaled model is the same ranking."""
    ys = [x * scale + offset for x in xs]
    assert np.all(rank_shift(ys, xs) == 0)


def test_a_rare_value_at_the_bottom_of_both_models_is_not_singled_out():
    rng = np.random.default_rng(0)
    fails = 0
    for _ in range(200):
        fakes_a, fakes_c = rng.normal(-20, 1, 199), rng.normal(-20, 1, 199)
        # the real value is rare: far below every fake in both models, with a seed-dependent
        # spread ten times the fakes' (what differences of log-likelihoods trip over)
        true_a, true_c = rng.normal(-60, 10), rng.normal(-60, 10)
        a, c = np.r_[true_a, fakes_a], np.r_[true_c, fakes_c]
        shift = rank_shift(a, c)
        p_hi, p_lo = rank_p_values(shift[0], shift[1:])
        fails += min(p_hi, p_lo) <= 0.0125
        diff = a - c
        assert diff.size == shift.size
    assert fails == 0


def test_a_remembered_value_moves_to_the_top_and_is_found():
    rng = np.random.default_rng(1)
    fakes_c = rng.normal(-20, 1, 199)
    control = np.r_[-20.0, fakes_c]                    # the control: an ordinary value
    audited = np.r_[-5.0, fakes_c + rng.normal(0, 0.3, 199)]  # remembered: far likelier
    shift = rank_shift(audited, control)
    p_hi, _ = rank_p_values(shift[0], shift[1:])
    assert p_hi <= 0.01
    avoided = np.r_[-40.0, fakes_c + rng.normal(0, 0.3, 199)]  # pushed below every fake
    _, p_lo = rank_p_values(rank_shift(avoided, control)[0], rank_shift(avoided, control)[1:])
    assert p_lo <= 0.01
