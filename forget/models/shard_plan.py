"""Which shard and slice each training record goes to (SISA): pure functions.

Exact deletion by retraining one shard from one slice on works only when every record of a
person lies in that one shard (and, for the cost, in one slice of it). Records are therefore
grouped first, then whole groups are placed:

- a group is what :func:`group_keys` says: the owner (a group field, the generated corpus's
  subject id) when the record has one, else the component of the records it shares an
  identifier with (:func:`link_records`, union-find over keyed hashes of detected identifiers),
  else the record itself (repeats of a record share its id, so they stay together);
- groups go to shards in a seeded pseudo-random order, largest first, each to the shard with
  the fewest records so far (ties: the lower shard); within a shard, the same rule spreads its
  groups over the slices;
- inside a slice, records keep their corpus order (repeats included).

The plan is recorded (record ids only) in the sharded model's manifest: a deletion retrains
against the recorded plan, so removing a person never moves anybody else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from forget.errors import InvalidInputError

Plan = list[list[list[int]]]  # plan[shard][slice] = record positions, in corpus order


def link_records(keys: Sequence[Iterable[str]]) -> list[int]:
    """Union-find: for each record, the smallest position of the records it is linked to
    (directly or through others) by sharing at least one key."""
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, ks in enumerate(keys):
        for k in ks:
            j = first.setdefault(k, i)
            a, b = find(i), find(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return [find(i) for i in range(len(keys))]


def group_keys(record_ids: Sequence[str], owners: Sequence[str | None],
               links: Sequence[Iterable[str]] | None = None) -> list[str]:
    """One group key per record: ``owner:<owner>`` when it has one; else, with ``links`` (the
    record's identifier digests), ``linked:<first record id of its component>``; else
    ``record:<record id>``. Records linked to an owned record join that owner's group."""
    if not (len(record_ids) == len(owners) and (links is None or len(links) == len(owners))):
        raise InvalidInputError("group_keys: record_ids, owners and links differ in length")
    keys: list[set[str]] = [set() for _ in record_ids]
    for i, (rid, owner) in enumerate(zip(record_ids, owners, strict=True)):
        keys[i].add(f"record:{rid}")  # repeats of one record always stay together
        if owner is not None:
            keys[i].add(f"owner:{owner}")
        if links is not None:
            keys[i].update(f"link:{k}" for k in links[i])
    roots = link_records([sorted(k) for k in keys])
    label: dict[int, str] = {}
    for i, root in enumerate(roots):  # an owner names the group when one is in it
        if owners[i] is not None:
            label.setdefault(root, f"owner:{owners[i]}")
    return [label.get(root, f"linked:{record_ids[root]}" if links is not None
                      else f"record:{record_ids[root]}") for root in roots]


def _order(groups: Iterable[str], seed: int) -> list[str]:
    return sorted(groups, key=lambda g: hashlib.sha256(f"{seed}\0{g}".encode()).hexdigest())


def _spread(sizes: dict[str, int], bins: int, seed: int) -> list[list[str]]:
    """Groups into ``bins``: seeded order, largest first, each to the lightest bin."""
    load = [0] * bins
    out: list[list[str]] = [[] for _ in range(bins)]
    ordered = _order(sizes, seed)
    rank = {g: k for k, g in enumerate(ordered)}
    for g in sorted(ordered, key=lambda g: (-sizes[g], rank[g])):
        b = min(range(bins), key=lambda k: (load[k], k))
        out[b].append(g)
        load[b] += sizes[g]
    return out


def shard_plan(groups: Sequence[str], *, shards: int, slices: int, seed: int) -> Plan:
    """``plan[s][r]``: the positions of the records (corpus order) trained in slice ``r`` of
    shard ``s``. Every position appears exactly once; a group never spans two slices."""
    if shards < 1 or slices < 1:
        raise InvalidInputError("shards and slices must each be >= 1")
    sizes: dict[str, int] = {}
    for g in groups:
        sizes[g] = sizes.get(g, 0) + 1
    if len(sizes) < shards:
        raise InvalidInputError(
            f"{len(sizes)} group(s) of records cannot fill {shards} shards (a person's records "
            "stay in one shard); choose fewer --shards")
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    plan: Plan = []
    for s, shard_groups in enumerate(_spread(sizes, shards, seed)):
        part = {g: sizes[g] for g in shard_groups}
        cuts = _spread(part, min(slices, len(part)), seed * 1009 + s + 1)
        cuts += [[] for _ in range(slices - len(cuts))]
        plan.append([sorted(i for g in cut for i in members[g]) for cut in cuts])
    return plan


def slices_touched(plan_ids: list[list[list[str]]], record_ids: Iterable[str]
                   ) -> dict[int, int]:
    """Shard -> the earliest slice holding any of ``record_ids`` (shards without any: absent).
    ``plan_ids`` is the plan as record ids."""
    wanted = set(record_ids)
    out: dict[int, int] = {}
    for s, shard in enumerate(plan_ids):
        for r, ids in enumerate(shard):
            if wanted.intersection(ids):
                out[s] = r
                break
    return out
