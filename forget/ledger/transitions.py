"""The state-changing verbs of :class:`~forget.ledger.Ledger` (a mixin, kept apart for size).

Each verb validates its arguments (reasons and details must carry no personal data), then in
one transaction locks the request row, checks the transition, updates the row and appends
one event. Verbs a worker calls take ``worker_id``: then the worker must hold the lease.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update

from forget.ledger import models as m
from forget.ledger.deadlines import check_extension, due_date
from forget.ledger.errors import DeadlineError, IllegalTransitionError, InvalidRequestError
from forget.ledger.lines import HeadMove
from forget.ledger.privacy import check_details, check_text, name_ok
from forget.ledger.records import RequestRecord, iso, to_dt
from forget.ledger.states import State, check_transition
from forget.ledger.store import wal_truncate
from forget.ledger.txn import Tx, row_to_record

log = logging.getLogger("forget.ledger")
# The lease holder of a request waiting out a retry backoff (not a valid worker id).
BACKOFF_OWNER = "(backoff)"


class TransitionsMixin:
    """Verbs that move a request through its states."""

    def _move(self, request_id: str, target: State, kind: str, data: dict[str, Any], *,
              worker_id: str | None = None, values: dict[str, Any] | None = None,
              guard: Callable[[Any, float], tuple[dict[str, Any], dict[str, Any]]] | None = None,
              after: Callable[[Tx], None] | None = None,
              precheck: Callable[[Any], None] | None = None,
              within: Callable[[Tx], dict[str, Any]] | None = None) -> RequestRecord:
        """One transition: lock the row, check it, update it, append the event (one transaction).

        ``precheck(row)`` runs before the state check; ``guard(row, now)`` after it, and may
        refuse, or return extra column values and event data. ``within(tx)`` runs after the
        row update and before the append (other rows to change in the same transaction, such
        as a model line's head); it may refuse, and returns more event data.
        """
        with self._tx() as tx:
            row = self._row(tx.conn, request_id, lock=True)
            self._worker_ok(row, worker_id)
            if precheck is not None:
                precheck(row)
            stage = check_transition(State(row.state), target, stage=State(row.stage),
                                     retryable=row.retryable)
            extra_values, extra_data = guard(row, tx.now) if guard else ({}, {})
            upd = {"state": target.value, "stage": stage.value, "updated_at": tx.now,
                   "retryable": False, **(values or {}), **extra_values}
            tx.conn.execute(update(m.requests).where(m.requests.c.id == request_id).values(**upd))
            if within is not None:
                extra_data = {**extra_data, **within(tx)}
            if worker_id is not None:
                data = {**data, "worker": worker_id}
            tx.append(kind, request_id, {"from": row.state, "to": target.value, **data,
                                         **extra_data})
            if after is not None:
                after(tx)
            rec = row_to_record(self._row(tx.conn, request_id), tx.now)
        log.debug("request %s: %s -> %s", request_id, row.state, target.value)
        return rec

    def verify_identity(self, request_id: str, *, method: str = "manual",
                        at: datetime | None = None, worker_id: str | None = None) -> RequestRecord:
        """Record that the subject's identity was verified; the paused deadline clock resumes.

        Args:
            method: how it was verified (a short name, e.g. ``email_link``, ``id_document``).
            at: when (default now); not before receipt, not in the future.
        """
        name_ok(method, "method")
        if at is not None and (not isinstance(at, datetime) or at.tzinfo is None):
            raise InvalidRequestError("the verification time must be a timezone-aware datetime")
        when = at.timestamp() if at is not None else None

        def guard(row: Any, now: float) -> tuple[dict[str, Any], dict[str, Any]]:
            t = now if when is None else when
            if t < row.received_at or t > now + 1:
                raise InvalidRequestError("the verification time must lie between receipt and now")
            due = due_date(to_dt(row.received_at), verified_at=to_dt(t),
                           extension_months=row.extension_months).timestamp()
            return {"verified_at": t, "due_at": due}, {"verified_at": iso(t), "due_at": iso(due)}

        return self._move(request_id, State.IDENTITY_VERIFIED, "identity_verified",
                          {"method": method}, worker_id=worker_id, guard=guard)

    def reject(self, request_id: str, *, reason: str, worker_id: str | None = None) -> RequestRecord:
        """Refuse the request (Art. 17(3) exemption, identity not proven, ...), with a reason."""
        reason = check_text(reason, "the reason")
        self._guard(request_id, reason, "the reason")
        return self._move(request_id, State.REJECTED, "rejected", {"reason": reason},
                          worker_id=worker_id, values={"lease_owner": None, "lease_expires_at": None})

    def extend(self, request_id: str, *, months: int, reason: str,
               worker_id: str | None = None) -> RequestRecord:
        """Extend the deadline once by 1 or 2 months, with a reason, before the first deadline.

        Raises:
            DeadlineError: already extended, wrong months, no reason, or too late.
        """
        if isinstance(reason, str) and reason.strip():  # a missing reason is a DeadlineError
            reason = check_text(reason, "the reason")
        self._guard(request_id, reason, "the reason")

        def guard(row: Any, now: float) -> tuple[dict[str, Any], dict[str, Any]]:
            rec = row_to_record(row, now)
            check_extension(months=months, reason=reason, already_extended=rec.extended,
                            due=rec.due_at, now=to_dt(now))
            if row.verified_at is None:  # clock paused: the due date is computed when read
                return {"extension_months": months}, {}
            due = due_date(rec.received_at, verified_at=rec.verified_at,
                           extension_months=months).timestamp()
            return {"extension_months": months, "due_at": due}, {"due_at": iso(due)}

        def once(row: Any) -> None:  # a deadline rule, reported as such (not as a transition)
            if row.extension_months:
                raise DeadlineError(
                    "the deadline was already extended once; it cannot be extended again")

        return self._move(request_id, State.EXTENDED, "extended",
                          {"months": months, "reason": (reason or "").strip()},
                          worker_id=worker_id, guard=guard, precheck=once)

    def scope(self, request_id: str, *, models: Iterable[str] | None = None,
              datasets: Iterable[str] | None = None, details: Mapping[str, Any] | None = None,
              worker_id: str | None = None) -> RequestRecord:
        """Fix what the request covers (default: the scope it was submitted with)."""
        details = check_details(details)
        self._guard(request_id, details, "the details")
        rec = self.get(request_id)
        ms = list(rec.models if models is None else models)
        ds = list(rec.datasets if datasets is None else datasets)
        for n in ms + ds:
            if not isinstance(n, str) or not n.strip() or len(n) > 128:
                raise InvalidRequestError("model and dataset names must be text of 1-128 characters")
        return self._move(request_id, State.SCOPED, "scoped",
                          {"models": ms, "datasets": ds, "details": details}, worker_id=worker_id,
                          values={"scope": json.dumps({"models": ms, "datasets": ds})})

    def start_unlearning(self, request_id: str, *, method: str,
                         details: Mapping[str, Any] | None = None,
                         worker_id: str | None = None) -> RequestRecord:
        """Record that unlearning with ``method`` starts (recorded before it runs)."""
        name_ok(method, "method")
        details = check_details(details)
        self._guard(request_id, details, "the details")
        return self._move(request_id, State.UNLEARNING, "unlearning_started",
                          {"method": method, "details": details}, worker_id=worker_id,
                          values={"audit_passed": None})

    def record_audit(self, request_id: str, *, passed: bool,
                     details: Mapping[str, Any] | None = None,
                     worker_id: str | None = None) -> RequestRecord:
        """Record an audit verdict (``details``: scores, thresholds, report hash)."""
        details = check_details(details)
        self._guard(request_id, details, "the details")
        return self._move(request_id, State.AUDITING, "audit_recorded",
                          {"passed": bool(passed), "details": details}, worker_id=worker_id,
                          values={"audit_passed": bool(passed)})

    def complete(self, request_id: str, *, details: Mapping[str, Any] | None = None,
                 worker_id: str | None = None, head: HeadMove | None = None) -> RequestRecord:
        """Complete the request and crypto-shred its identifiers (the data key is destroyed).

        ``head``: move the model line's head from ``head.expected`` to the request's new
        version, in the same transaction (compare-and-swap). Raises :class:`HeadMovedError`,
        and completes nothing, when the head is no longer ``head.expected``.
        """
        details = check_details(details)
        self._guard(request_id, details, "the details")

        def guard(row: Any, now: float) -> tuple[dict[str, Any], dict[str, Any]]:
            if row.state == State.AUDITING.value and row.audit_passed is not True:
                raise IllegalTransitionError(
                    "cannot move a request from 'auditing' to 'completed': the last recorded "
                    "audit did not pass; unlearn again (start_unlearning) or fail the request",
                    current="auditing", target="completed")
            return {"completed_at": now, "shredded_at": now}, {}

        def shred(tx: Tx) -> None:  # in the same transaction as the state change
            tx.conn.execute(delete(m.keys).where(m.keys.c.request_id == request_id))

        def swap(tx: Tx) -> dict[str, Any]:
            return {"head": self._swap_head(tx, head, request_id)} if head is not None else {}

        rec = self._move(request_id, State.COMPLETED, "completed",
                         {"details": details, "shredded": True}, worker_id=worker_id, guard=guard,
                         after=shred, within=swap,
                         values={"lease_owner": None, "lease_expires_at": None})
        if not self.is_postgres and self.path is not None:
            wal_truncate(self.engine)  # drop old copies of the data key from the -wal file
        return rec

    def fail(self, request_id: str, *, reason: str, retryable: bool,
             worker_id: str | None = None, retry_after: float | None = None,
             details: Mapping[str, Any] | None = None) -> RequestRecord:
        """Record a failure; a retryable one may be claimed again and resumed.

        Args:
            retry_after: for a retryable failure, seconds before any worker may claim the
                request again (a backoff; recorded in the event as ``retry_after``). The
                request then holds a lease of the pseudo-worker ``(backoff)``, which no real
                worker id can equal, so ``claim`` skips it until the time has passed.
            details: ids, counts and error types only (checked like step details).
        """
        reason = check_text(reason, "the reason")
        self._guard(request_id, reason, "the reason")
        details = check_details(details)
        self._guard(request_id, details, "the details")
        wait = None
        if retryable and retry_after is not None:
            if (isinstance(retry_after, bool) or not isinstance(retry_after, int | float)
                    or not 0 <= retry_after <= 7 * 24 * 3600):
                raise InvalidRequestError("retry_after must be a number of seconds in [0, 7 days]")
            wait = float(retry_after)

        def guard(row: Any, now: float) -> tuple[dict[str, Any], dict[str, Any]]:
            if wait is None:
                return {}, {}
            return ({"lease_owner": BACKOFF_OWNER, "lease_expires_at": now + wait},
                    {"backoff_s": wait, "retry_after": iso(now + wait)})

        data: dict[str, Any] = {"reason": reason, "retryable": bool(retryable)}
        if details:
            data["details"] = details
        return self._move(request_id, State.FAILED, "failed", data, worker_id=worker_id,
                          guard=guard, values={"lease_owner": None, "lease_expires_at": None,
                                               "retryable": bool(retryable)})
