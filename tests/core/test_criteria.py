"""The unseen memorization level and its standard error (pure function)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from forget.core.criteria import unseen_level


@given(total=st.integers(1, 10_000), share=st.floats(0, 1))
def test_unseen_level_is_a_share_with_its_binomial_standard_error(total, share):
    hits = round(share * total)
    level, se = unseen_level(hits, total)
    assert 0 <= level <= 1 and level == hits / total
    assert se == math.sqrt(level * (1 - level) / total)
    assert se <= 0.5 / math.sqrt(total) + 1e-12  # largest at level 1/2


def test_unseen_level_by_hand_and_without_unseen_tokens():
    level, se = unseen_level(1, 13)  # one unseen secret of 13 span tokens, one reproduced
    assert level == 1 / 13 and abs(se - 0.0739) < 1e-4
    assert unseen_level(0, 0) == (0.0, 0.0)
    assert unseen_level(0, 40) == (0.0, 0.0)  # nothing reproduced: no slack either
