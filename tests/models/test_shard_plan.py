"""Shard and slice assignment (SISA): a person's records stay together, every record is placed
once, the plan is a deterministic function of its inputs and roughly balanced."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forget.errors import InvalidInputError
from forget.models.shard_plan import group_keys, link_records, shard_plan, slices_touched

owners = st.lists(st.one_of(st.none(), st.sampled_from("abcdefgh")), min_size=1, max_size=60)


@given(owners, st.integers(1, 4), st.integers(1, 4), st.integers(0, 5))
@settings(max_examples=80, deadline=None)
def test_every_record_once_and_each_group_in_one_slice(own, shards, slices, seed):
    ids = [f"r{i % 7}" if o is None else f"r{i}" for i, o in enumerate(own)]  # repeats too
    groups = group_keys(ids, own)
    if len(set(groups)) < shards:
        with pytest.raises(InvalidInputError, match="fewer --shards"):
            shard_plan(groups, shards=shards, slices=slices, seed=seed)
        return
    plan = shard_plan(groups, shards=shards, slices=slices, seed=seed)
    assert len(plan) == shards and all(len(s) == slices for s in plan)
    placed = [i for shard in plan for cut in shard for i in cut]
    assert sorted(placed) == list(range(len(ids)))
    where = {}
    for s, shard in enumerate(plan):
        for r, cut in enumerate(shard):
            assert cut == sorted(cut)  # corpus order inside a slice
            for i in cut:
                assert where.setdefault(groups[i], (s, r)) == (s, r)
    for i, o in enumerate(own):  # one owner, one group; one record id, one group
        if o is not None:
            assert groups[i] == f"owner:{o}"
    assert plan == shard_plan(groups, shards=shards, slices=slices, seed=seed)
    sizes = [sum(len(c) for c in shard) for shard in plan]
    biggest = max(groups.count(g) for g in set(groups))
    assert max(sizes) - min(sizes) <= biggest  # greedy balance: within one group's size


@given(st.lists(st.sets(st.sampled_from("pqrstuvw"), max_size=3), min_size=1, max_size=30))
@settings(max_examples=80, deadline=None)
def test_linked_records_share_a_component_exactly_when_connected(keys):
    roots = link_records([sorted(k) for k in keys])
    for i, ki in enumerate(keys):  # sharing a key means the same component
        for j, kj in enumerate(keys):
            if ki & kj:
                assert roots[i] == roots[j]
    for i, root in enumerate(roots):  # the root is the component's smallest member
        assert root <= i and roots[root] == root
    # a component is connected: from its root, the shared keys reach every member
    for root in set(roots):
        members = {i for i, r in enumerate(roots) if r == root}
        reached, frontier = {root}, [root]
        while frontier:
            i = frontier.pop()
            for j in members - reached:
                if keys[i] & keys[j]:
                    reached.add(j)
                    frontier.append(j)
        assert reached == members


def test_records_linked_by_an_identifier_join_the_owner_and_touch_one_shard():
    ids = ["a", "b", "c", "d", "e", "f"]
    links = [{"h1"}, {"h1", "h2"}, {"h2"}, set(), {"h3"}, set()]
    own = [None, None, "alice", None, None, None]
    groups = group_keys(ids, own, links)
    assert groups[:3] == ["owner:alice"] * 3 and groups[3] == "linked:d"
    plan = shard_plan(groups, shards=2, slices=2, seed=1)
    as_ids = [[[ids[i] for i in cut] for cut in shard] for shard in plan]
    touched = slices_touched(as_ids, ["a", "c"])
    assert len(touched) == 1
    (s, r), = touched.items()
    assert {"a", "b", "c"} <= set(as_ids[s][r])
