"""Deadline arithmetic: one calendar month clamped to month end, pause, one extension."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from forget.ledger.deadlines import (
    add_months,
    check_extension,
    days_left,
    due_date,
    is_overdue,
)
from forget.ledger.errors import DeadlineError


def t(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


@pytest.mark.parametrize("start, months, expected", [
    ("2025-01-15T09:00", 1, "2025-02-15T09:00"),
    ("2025-01-31T09:00", 1, "2025-02-28T09:00"),   # clamp to month end
    ("2024-01-31T09:00", 1, "2024-02-29T09:00"),   # leap year
    ("2000-01-31T00:00", 1, "2000-02-29T00:00"),   # divisible by 400: leap
    ("2100-01-31T00:00", 1, "2100-02-28T00:00"),   # divisible by 100: not leap
    ("2025-03-31T23:59", 1, "2025-04-30T23:59"),
    ("2025-05-31T12:00", 1, "2025-06-30T12:00"),
    ("2025-08-31T12:00", 1, "2025-09-30T12:00"),
    ("2025-12-31T12:00", 1, "2026-01-31T12:00"),   # year boundary
    ("2025-12-15T12:00", 3, "2026-03-15T12:00"),
    ("2024-02-29T08:00", 1, "2024-03-29T08:00"),   # from a leap day
    ("2024-02-29T08:00", 12, "2025-02-28T08:00"),
    ("2023-11-30T08:00", 3, "2024-02-29T08:00"),   # extension across a leap February
    ("2025-11-30T08:00", 3, "2026-02-28T08:00"),
    ("2025-02-28T08:00", 1, "2025-03-28T08:00"),   # no "end of month" stickiness
])
def test_add_months_table(start: str, months: int, expected: str) -> None:
    assert add_months(t(start), months) == t(expected)


@pytest.mark.parametrize("received, verified, ext, expected", [
    ("2025-01-31T10:00", "2025-01-31T10:00", 0, "2025-02-28T10:00"),  # verified at receipt
    ("2024-01-31T10:00", "2024-01-31T10:00", 0, "2024-02-29T10:00"),
    ("2025-03-31T10:00", "2025-03-31T10:00", 0, "2025-04-30T10:00"),
    ("2025-01-10T10:00", "2025-01-13T10:00", 0, "2025-02-13T10:00"),  # 3 days paused
    ("2025-01-31T10:00", "2025-02-03T10:00", 0, "2025-03-03T10:00"),  # clamp, then pause
    ("2025-01-10T10:00", "2025-01-10T10:00", 2, "2025-04-10T10:00"),  # extended by two
    ("2025-01-10T10:00", "2025-01-10T10:00", 1, "2025-03-10T10:00"),
    ("2023-12-31T10:00", "2023-12-31T10:00", 2, "2024-03-31T10:00"),
    ("2023-11-30T10:00", "2023-12-05T10:00", 2, "2024-03-05T10:00"),  # 3 months, leap Feb, pause
])
def test_due_date_table(received: str, verified: str, ext: int, expected: str) -> None:
    assert due_date(t(received), verified_at=t(verified), extension_months=ext) == t(expected)


def test_clock_paused_while_unverified_moves_with_now() -> None:
    r = t("2025-01-10T10:00")
    d1 = due_date(r, now=t("2025-01-10T10:00"))
    d2 = due_date(r, now=t("2025-03-01T10:00"))
    assert d1 == t("2025-02-10T10:00")
    assert d2 - d1 == t("2025-03-01T10:00") - t("2025-01-10T10:00")
    assert days_left(d2, t("2025-03-01T10:00")) == days_left(d1, t("2025-01-10T10:00")) == 31
    with pytest.raises(ValueError):
        due_date(r)


@pytest.mark.parametrize("due, now, left, overdue", [
    ("2025-02-10T10:00", "2025-01-10T10:00", 31, False),
    ("2025-02-10T10:00", "2025-02-10T09:00", 0, False),
    ("2025-02-10T10:00", "2025-02-10T10:00", 0, False),
    ("2025-02-10T10:00", "2025-02-10T10:01", -1, True),
    ("2025-02-10T10:00", "2025-02-20T10:00", -10, True),
])
def test_days_left_and_overdue(due: str, now: str, left: int, overdue: bool) -> None:
    assert days_left(t(due), t(now)) == left
    assert is_overdue(t(due), t(now)) is overdue


def test_never_overdue_while_paused() -> None:
    assert is_overdue(None, t("2099-01-01T00:00")) is False


@pytest.mark.parametrize("months, reason, already, now, ok", [
    (2, "complex: 14 models in scope", False, "2025-02-01T00:00", True),
    (1, "many requests", False, "2025-02-10T09:59", True),
    (0, "r", False, "2025-02-01T00:00", False),        # zero months
    (3, "r", False, "2025-02-01T00:00", False),        # over two months
    (2, "", False, "2025-02-01T00:00", False),         # no reason
    (2, "   ", False, "2025-02-01T00:00", False),
    (2, None, False, "2025-02-01T00:00", False),
    (2, "r", True, "2025-02-01T00:00", False),         # only once
    (2, "r", False, "2025-02-10T10:01", False),        # after the first deadline
])
def test_extension_rules(months, reason, already, now, ok) -> None:  # noqa: ANN001
    call = lambda: check_extension(months=months, reason=reason, already_extended=already,  # noqa: E731
                                   due=t("2025-02-10T10:00"), now=t(now))
    if ok:
        call()
    else:
        with pytest.raises(DeadlineError):
            call()


def test_pause_then_extension_compose() -> None:
    r = t("2025-01-31T10:00")
    v = r + timedelta(days=2)
    # Jan 31 + 3 months = Apr 30 (clamped), + 2 paused days
    assert due_date(r, verified_at=v, extension_months=2) == t("2025-05-02T10:00")
