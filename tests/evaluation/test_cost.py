"""The cost arithmetic of ``forget.evaluation.cost`` (extrapolation to a 7B model)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forget.errors import InvalidInputError
from forget.evaluation.cost import (
    Scale,
    batched_share,
    extrapolate,
    gpu_hours,
    shards_touched,
    training_flops,
)


def test_retraining_a_7b_model_on_a_billion_tokens():
    s = Scale()
    out = extrapolate(1.0, s)
    assert out["flops"] == pytest.approx(4.2e19)  # 6 N D
    assert out["steps"] == pytest.approx(1e9 / 2 ** 20)  # about 954 steps of 1M tokens
    assert out["gpu_hours"] == pytest.approx(4.2e19 / (989e12 * 0.4) / 3600)  # ~29.5 h
    assert 29 < out["gpu_hours"] < 30
    # adapters skip the weights' gradients: two thirds of the FLOPs
    assert extrapolate(1.0, s, kind="adapter")["gpu_hours"] == pytest.approx(
        out["gpu_hours"] * 4 / 6)
    # an empirical method processes its own tokens, whatever the corpus
    small = extrapolate(0.5, s, kind="full+reference", tokens=4096)
    assert small["tokens"] == 4096 and small["flops"] == pytest.approx(8 * 7e9 * 4096)


@given(shards=st.integers(1, 64), k=st.integers(1, 500))
def test_shards_touched_is_between_one_and_min_of_shards_and_requests(shards, k):
    t = shards_touched(shards, k)
    assert 1 - 1e-9 <= t <= min(shards, k) + 1e-9
    assert shards_touched(shards, k + 1) >= t - 1e-12  # more requests never touch fewer
    assert shards_touched(shards, 1) == pytest.approx(1.0)


@given(share=st.floats(0, 1), whole=st.floats(0, 1), shards=st.integers(1, 64),
       k=st.integers(1, 500))
def test_a_batch_never_costs_more_than_its_requests_one_by_one(share, whole, shards, k):
    whole = max(whole, share)  # a whole shard costs at least one request's part of it
    b = batched_share(share, k, shards=shards, shard_share=whole)
    assert share - 1e-12 <= b <= share * k + 1e-12
    if shards == 1:
        assert b == share  # one retrain serves the whole batch
    else:  # never more than retraining every shard whole
        assert b <= whole * shards + 1e-12


@given(a=st.floats(0, 10), b=st.floats(0, 10))
def test_extrapolation_is_linear_in_the_share(a, b):
    s = Scale(params=1e8, tokens=1e7)
    ea, eb, eab = extrapolate(a, s), extrapolate(b, s), extrapolate(a + b, s)
    assert eab["gpu_hours"] == pytest.approx(ea["gpu_hours"] + eb["gpu_hours"])
    assert gpu_hours(training_flops(1e8, 1e7), s) == pytest.approx(extrapolate(1, s)["gpu_hours"])


@pytest.mark.parametrize("call,word", [
    (lambda: Scale(mfu=1.5), "mfu"), (lambda: Scale(params=0), "params"),
    (lambda: Scale(tokens=float("inf")), "tokens"), (lambda: training_flops(1, 1, "x"), "kind"),
    (lambda: shards_touched(0, 1), "shards"), (lambda: batched_share(-1, 1), "share"),
    (lambda: extrapolate(-0.1, Scale()), "share"),
])
def test_bad_input_is_a_typed_error(call, word):
    with pytest.raises(InvalidInputError, match=word):
        call()
