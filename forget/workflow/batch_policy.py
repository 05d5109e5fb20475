"""When a batch of pending requests runs, and which requests it takes: pure functions.

A worker that batches waits for a fuller batch (a count, or a schedule) only while no pending
request is close to its deadline: a request whose deadline is within ``deadline_margin`` of
now is processed now, with whatever else is pending, even if the batch is not full. The most
urgent requests (earliest deadline) are taken first, so when more requests are pending than a
batch takes, the urgent ones are never the ones left for later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from forget.errors import InvalidInputError

DEFAULT_MARGIN_DAYS = 7.0  # a week before the deadline: time for a retry and a human look


@dataclass(frozen=True)
class BatchPolicy:
    """How requests are grouped into one unlearning run.

    Attributes:
        max_size: at most this many requests in one run (``None``: every pending request).
        min_size: the count trigger: run once at least this many requests are pending.
        max_wait_s: the schedule trigger: run when the longest-waiting pending request has
            waited this long (seconds since its identity was verified); ``None``: no schedule.
        deadline_margin_days: a request due within this many days runs now, batch full or not.
    """

    max_size: int | None = None
    min_size: int = 1
    max_wait_s: float | None = None
    deadline_margin_days: float = DEFAULT_MARGIN_DAYS

    def __post_init__(self) -> None:
        if self.max_size is not None and self.max_size < 1:
            raise InvalidInputError("the batch size must be at least 1: pass --batch-size N")
        if self.min_size < 1 or (self.max_size is not None and self.min_size > self.max_size):
            raise InvalidInputError(
                "the batch count trigger must be between 1 and the batch size")
        if self.max_wait_s is not None and self.max_wait_s < 0:
            raise InvalidInputError("the batch wait must be >= 0 seconds: fix --batch-wait")
        if not 0 <= self.deadline_margin_days <= 31:
            raise InvalidInputError(
                "the deadline margin must be 0-31 days (a request has one month): fix "
                "--deadline-margin")

    @property
    def margin(self) -> timedelta:
        return timedelta(days=self.deadline_margin_days)


@dataclass(frozen=True)
class Pending:
    """A request waiting to be processed, as the policy sees it (no personal data)."""

    request_id: str
    due_at: datetime
    ready_at: datetime  # when it became processable (identity verified)


def urgency_order(pending: Iterable[Pending]) -> list[Pending]:
    """Earliest deadline first (ties: by request id, so the order is deterministic)."""
    return sorted(pending, key=lambda p: (p.due_at, p.request_id))


def choose_batch(pending: Iterable[Pending], policy: BatchPolicy,
                 now: datetime) -> tuple[list[str], str]:
    """The request ids to run now as one batch (most urgent first), and why.

    The reason is ``deadline`` (a request is due within the margin), ``count`` (at least
    ``min_size`` pending), ``schedule`` (the oldest has waited ``max_wait_s``), or, with no
    ids, ``empty`` / ``waiting`` (hold for a fuller batch: nothing is near its deadline).
    """
    order = urgency_order(pending)
    if not order:
        return [], "empty"
    if order[0].due_at - now <= policy.margin:  # the most urgent one decides
        reason = "deadline"
    elif len(order) >= policy.min_size:
        reason = "count"
    elif (policy.max_wait_s is not None and (now - min(p.ready_at for p in order))
          >= timedelta(seconds=policy.max_wait_s)):
        reason = "schedule"
    else:
        return [], "waiting"
    take = order if policy.max_size is None else order[:policy.max_size]
    return [p.request_id for p in take], reason


def next_check_s(pending: Iterable[Pending], policy: BatchPolicy, now: datetime,
                 poll_s: float) -> float:
    """Seconds a waiting worker may sleep: the poll interval, cut short so that it wakes when
    the first pending request enters the deadline margin or the schedule fires."""
    order = urgency_order(pending)
    waits = [poll_s]
    if order:
        waits.append((order[0].due_at - policy.margin - now).total_seconds())
        if policy.max_wait_s is not None:
            oldest = min(p.ready_at for p in order)
            waits.append(policy.max_wait_s - (now - oldest).total_seconds())
    return max(0.0, min(waits))
