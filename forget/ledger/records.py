"""What the ledger returns: request records, events, steps, verification reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from forget.ledger.deadlines import days_left as _days_left
from forget.ledger.states import TERMINAL, State


def to_dt(ts: float | None) -> datetime | None:
    """UNIX seconds -> aware UTC datetime."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def iso(ts: float) -> str:
    """UNIX seconds -> ``2025-01-31T10:00:00.000000Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class RequestRecord:
    """A request as the ledger holds it (no identifiers: see ``Ledger.identifiers``).

    ``due_at`` is the effective deadline as of ``as_of`` (while identity is unverified the
    clock is paused and the deadline moves with time; ``paused`` says so).
    """

    request_id: str
    state: State
    stage: State
    retryable: bool
    ground: str
    channel: str
    models: tuple[str, ...]
    datasets: tuple[str, ...]
    identifier_counts: dict[str, int]
    received_at: datetime
    verified_at: datetime | None
    due_at: datetime
    paused: bool
    extension_months: int
    audit_passed: bool | None
    updated_at: datetime
    completed_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    shredded: bool
    as_of: datetime = field(compare=False)

    @property
    def terminal(self) -> bool:
        """Completed or rejected."""
        return self.state in TERMINAL

    @property
    def extended(self) -> bool:
        """Whether the deadline was extended."""
        return self.extension_months > 0

    def days_left(self, now: datetime | None = None) -> int:
        """Whole days to the deadline (negative when overdue)."""
        return _days_left(self.due_at, now or self.as_of)

    @property
    def overdue(self) -> bool:
        """Not finished and past its deadline (never while the clock is paused)."""
        return not self.terminal and not self.paused and self.as_of > self.due_at

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (no personal data)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, datetime):
                d[k] = v.isoformat()
            elif isinstance(v, tuple):
                d[k] = list(v)
        d["state"], d["stage"] = str(self.state), str(self.stage)
        d["days_left"] = None if self.terminal else self.days_left()
        d["overdue"] = self.overdue
        return d


@dataclass(frozen=True)
class Event:
    """One event of the chain, decoded."""

    seq: int
    at: str
    kind: str
    request_id: str | None
    data: dict[str, Any]
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class StepRecord:
    """The latest recorded status of one workflow step of a request."""

    step: str
    status: str
    seq: int
    at: str
    worker_id: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of ``Ledger.verify``.

    Attributes:
        ok: chain, checkpoints and request table all agree.
        size: events in the database.
        head: hex hash of the last event that verified.
        first_bad: 1-based position of the first broken event (for a checkpoint problem: the
            checkpoint's size), or None.
        message: what was found, in words.
        checkpoints: how many signed checkpoints were checked.
    """

    ok: bool
    size: int
    head: str
    first_bad: int | None
    message: str
    checkpoints: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)
