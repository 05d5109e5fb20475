"""The batch policy (pure): deadlines come first, then the count, then the schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forget.errors import InvalidInputError
from forget.workflow.batch_policy import BatchPolicy, Pending, choose_batch, next_check_s

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def _p(rid: str, due_days: float, waited_s: float = 0.0) -> Pending:
    return Pending(rid, NOW + timedelta(days=due_days), NOW - timedelta(seconds=waited_s))


@pytest.mark.parametrize(("pending", "policy", "ids", "why"), [
    ([], BatchPolicy(), [], "empty"),
    ([_p("a", 30)], BatchPolicy(min_size=3, max_size=3), [], "waiting"),
    ([_p("a", 30), _p("b", 6)], BatchPolicy(min_size=3, max_size=3), ["b", "a"], "deadline"),
    ([_p("a", 30), _p("b", 20), _p("c", 25)], BatchPolicy(min_size=3, max_size=3),
     ["b", "c", "a"], "count"),
    ([_p("a", 30, waited_s=3600)], BatchPolicy(min_size=3, max_size=3, max_wait_s=600),
     ["a"], "schedule"),
    ([_p("a", 30, waited_s=60)], BatchPolicy(min_size=3, max_size=3, max_wait_s=600),
     [], "waiting"),
    ([_p(c, 10 + i) for i, c in enumerate("abcd")], BatchPolicy(min_size=2, max_size=2),
     ["a", "b"], "count"),
    ([_p("a", 30)], BatchPolicy(min_size=3, max_size=3, deadline_margin_days=31),
     ["a"], "deadline"),
    ([_p("a", 30), _p("b", 2)], BatchPolicy(), ["b", "a"], "deadline"),
])
def test_cases(pending, policy, ids, why):
    assert choose_batch(pending, policy, NOW) == (ids, why)


@pytest.mark.parametrize("kw", [{"max_size": 0}, {"min_size": 0}, {"min_size": 3, "max_size": 2},
                                {"max_wait_s": -1}, {"deadline_margin_days": 40}])
def test_bad_policies_are_refused(kw):
    with pytest.raises(InvalidInputError):
        BatchPolicy(**kw)


pendings = st.lists(st.tuples(st.floats(-5, 60), st.floats(0, 10 * 86400)), max_size=12).map(
    lambda xs: [_p(f"r{i:02d}", d, w) for i, (d, w) in enumerate(xs)])
policies = st.builds(
    lambda size, trig, wait, margin: BatchPolicy(max_size=size, min_size=min(trig, size or trig),
                                                 max_wait_s=wait, deadline_margin_days=margin),
    st.one_of(st.none(), st.integers(1, 6)), st.integers(1, 6),
    st.one_of(st.none(), st.floats(0, 86400)), st.floats(0, 31))


@settings(max_examples=200, deadline=None)
@given(pendings, policies)
def test_urgent_requests_are_never_held(pending, policy):
    ids, why = choose_batch(pending, policy, NOW)
    urgent = sorted((p.due_at, p.request_id) for p in pending
                    if p.due_at - NOW <= policy.margin)
    if urgent:  # a batch runs now and takes the most urgent first
        assert why == "deadline"
        cap = policy.max_size or len(pending)
        assert [r for _, r in urgent][:cap] == ids[:min(cap, len(urgent))]
    assert len(ids) == len(set(ids)) and set(ids) <= {p.request_id for p in pending}
    assert policy.max_size is None or len(ids) <= policy.max_size
    dues = [next(p.due_at for p in pending if p.request_id == r) for r in ids]
    assert dues == sorted(dues)  # most urgent first
    if not ids and pending:  # held: nothing urgent, too few, not waited long enough
        assert why == "waiting" and len(pending) < policy.min_size
        assert next_check_s(pending, policy, NOW, 60.0) <= 60.0
