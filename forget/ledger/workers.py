"""What workers do with the ledger: claim with a lease, renew, release, record steps (a mixin).

A lease is a promise that one worker is processing a request until ``lease_expires_at``.
When a worker dies, its lease runs out and another worker's ``claim`` takes the request over;
the new worker reads :meth:`steps` to resume: a step recorded ``done`` is not run again, a
step recorded ``started`` but not ``done`` was interrupted and runs again. Claims, renewals,
releases and steps are chain events like any other change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy import update

from forget.ledger import models as m
from forget.ledger.errors import InvalidRequestError, LeaseError
from forget.ledger.privacy import check_details, name_ok
from forget.ledger.records import Event, RequestRecord, iso
from forget.ledger.txn import claim_one, row_to_record

STEP_STATUSES = ("started", "done", "failed", "skipped")
MAX_LEASE_SECONDS = 7 * 24 * 3600


def _lease(seconds: Any) -> float:
    if (isinstance(seconds, bool) or not isinstance(seconds, int | float)
            or not math.isfinite(seconds) or not 0 < seconds <= MAX_LEASE_SECONDS):
        raise InvalidRequestError(
            f"lease_seconds must be a number of seconds in (0, {MAX_LEASE_SECONDS}]")
    return float(seconds)


class WorkersMixin:
    """Leases and step records."""

    def claim(self, worker_id: str, lease_seconds: float = 300.0) -> RequestRecord | None:
        """Lease the most urgent request ready for processing to ``worker_id``.

        Ready: identity verified, not finished, not failed for good, and no live lease (an
        expired lease is taken over). Returns None when there is nothing to do.
        """
        name_ok(worker_id, "worker id")
        lease = _lease(lease_seconds)
        with self._tx() as tx:  # type: ignore[attr-defined]
            rid = claim_one(tx, worker_id, lease)
            if rid is None:
                return None
            tx.append("claimed", rid, {"worker": worker_id, "lease_seconds": lease,
                                       "expires_at": iso(tx.now + lease)})
            return row_to_record(self._row(tx.conn, rid), tx.now)  # type: ignore[attr-defined]

    def _lease_op(self, request_id: str, worker_id: str, kind: str,
                  values: dict[str, Any], data: dict[str, Any]) -> None:
        name_ok(worker_id, "worker id")
        with self._tx() as tx:  # type: ignore[attr-defined]
            row = self._row(tx.conn, request_id, lock=True)  # type: ignore[attr-defined]
            if row.lease_owner != worker_id:
                raise LeaseError(
                    "this worker does not hold the lease on the request (it expired and another "
                    "worker claimed it, or it was released): stop working on it")
            vals = {k: (v(tx.now) if callable(v) else v) for k, v in values.items()}
            tx.conn.execute(update(m.requests).where(m.requests.c.id == request_id)
                            .values(updated_at=tx.now, **vals))
            tx.append(kind, request_id, {"worker": worker_id,
                                         **{k: (v(tx.now) if callable(v) else v)
                                            for k, v in data.items()}})

    def renew(self, request_id: str, worker_id: str, lease_seconds: float = 300.0) -> None:
        """Extend the caller's lease (a heartbeat for long steps). Raises :class:`LeaseError`."""
        lease = _lease(lease_seconds)
        self._lease_op(request_id, worker_id, "renewed",
                       {"lease_expires_at": lambda now: now + lease},
                       {"lease_seconds": lease, "expires_at": lambda now: iso(now + lease)})

    def release(self, request_id: str, worker_id: str) -> None:
        """Give the lease back so another worker may claim the request now."""
        self._lease_op(request_id, worker_id, "released",
                       {"lease_owner": None, "lease_expires_at": None}, {})

    def record_step(self, request_id: str, step: str, status: str,
                    details: Mapping[str, Any] | None = None, *,
                    worker_id: str | None = None) -> Event:
        """Record a workflow step's status: ``started`` before it runs, then ``done``/``failed``.

        Args:
            step: short name (``scope``, ``unlearn``, ``audit``, ``guard``, ``certify``...).
            status: one of ``started``, ``done``, ``failed``, ``skipped``.
            details: record ids, hashes and metrics only: never personal data (checked).
            worker_id: when given, the worker must hold the request's lease.
        """
        name_ok(step, "step")
        if status not in STEP_STATUSES:
            raise InvalidRequestError(f"step status must be one of {', '.join(STEP_STATUSES)}")
        details = check_details(details)
        self._guard(request_id, details, "the details")  # type: ignore[attr-defined]
        data: dict[str, Any] = {"step": step, "status": status, "details": details}
        if worker_id is not None:
            data["worker"] = worker_id
        with self._tx() as tx:  # type: ignore[attr-defined]
            row = self._row(tx.conn, request_id, lock=True)  # type: ignore[attr-defined]
            self._worker_ok(row, worker_id)  # type: ignore[attr-defined]
            seq, h = tx.append("step", request_id, data)
            at = iso(tx.now)
        return Event(seq, at, "step", request_id, data, h)
