"""Deadline arithmetic for erasure requests (Art. 12(3) GDPR), as pure functions.

- Due = receipt + one calendar month, clamped to the month's end (Jan 31 -> Feb 28/29,
  Mar 31 -> Apr 30), at the same time of day.
- The clock is paused while the subject's identity is unverified: the paused time is added
  to the due date. While the pause is still running the due date moves with ``now``.
- One extension, by one or two further months, with a recorded reason, and only before the
  first deadline has passed.
"""

from __future__ import annotations

import calendar
import math
from datetime import datetime, timedelta

from forget.ledger.errors import DeadlineError

BASE_MONTHS = 1
MAX_EXTENSION_MONTHS = 2


def add_months(t: datetime, months: int) -> datetime:
    """``t`` plus ``months`` calendar months, clamping the day to the target month's end."""
    idx = t.month - 1 + months
    year, month = t.year + idx // 12, idx % 12 + 1
    day = min(t.day, calendar.monthrange(year, month)[1])
    return t.replace(year=year, month=month, day=day)


def due_date(received_at: datetime, *, verified_at: datetime | None = None,
             now: datetime | None = None, extension_months: int = 0) -> datetime:
    """When a request must be answered.

    Args:
        received_at: receipt time.
        verified_at: when identity was verified; ``None`` while still unverified.
        now: the current time; needed while unverified (the pause is still running).
        extension_months: 0, 1 or 2.
    """
    if verified_at is None:
        if now is None:
            raise ValueError("now is required while identity is unverified (the clock is paused)")
        paused = max(now - received_at, timedelta(0))
    else:
        paused = max(verified_at - received_at, timedelta(0))
    return add_months(received_at, BASE_MONTHS + extension_months) + paused


def days_left(due: datetime, now: datetime) -> int:
    """Whole days until ``due`` (negative once overdue; -1 as soon as it has passed)."""
    return math.floor((due - now) / timedelta(days=1))


def is_overdue(due: datetime | None, now: datetime) -> bool:
    """Whether ``due`` has passed (``None``: clock paused, never overdue)."""
    return due is not None and now > due


def check_extension(*, months: int, reason: str | None, already_extended: bool,
                    due: datetime, now: datetime) -> None:
    """Raise :class:`DeadlineError` unless an extension by ``months`` is allowed now."""
    if already_extended:
        raise DeadlineError("the deadline was already extended once; it cannot be extended again")
    if not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= MAX_EXTENSION_MONTHS:
        raise DeadlineError(f"an extension is 1 or {MAX_EXTENSION_MONTHS} months; pass --months 1 or 2")
    if not reason or not reason.strip():
        raise DeadlineError("an extension needs a reason (Art. 12(3)): pass --reason")
    if now > due:
        raise DeadlineError(
            "the first deadline has already passed: an extension must be made before it")
