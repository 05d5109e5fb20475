"""Write transactions that append to the chain, the claim statement, and row decoding."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Connection, Engine, and_, or_, select, update

from forget.ledger import models as m
from forget.ledger.chain import GENESIS, canonical_event, chain_hash
from forget.ledger.deadlines import due_date
from forget.ledger.errors import LedgerIntegrityError
from forget.ledger.records import RequestRecord, iso, to_dt
from forget.ledger.states import CLAIMABLE_STAGES, State


class Tx:
    """A write transaction (``BEGIN IMMEDIATE`` on SQLite) that can append chain events.

    On PostgreSQL the first append locks the chain's lock row (``FOR UPDATE``), so appends
    are serialised across workers and positions never collide. Lock order is always: the
    request row, then the chain.
    """

    def __init__(self, engine: Engine, *, postgres: bool) -> None:
        self._engine = engine
        self._postgres = postgres
        self._ctx: Any = None
        self.conn: Connection
        self.now = 0.0
        self._head: tuple[int, bytes] | None = None

    def __enter__(self) -> Tx:
        self._ctx = self._engine.begin()
        self.conn = self._ctx.__enter__()
        self.now = time.time()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        return self._ctx.__exit__(*exc_info)

    def head(self) -> tuple[int, bytes]:
        """``(size, head hash)`` of the chain, read once per transaction under the lock."""
        if self._head is None:
            if self._postgres:
                self.conn.execute(select(m.meta.c.value).where(m.meta.c.key == "chain")
                                  .with_for_update())
            # raw SQL: no type processing, so a hash tampered into text cannot crash us
            row = self.conn.exec_driver_sql(
                f"SELECT seq, hash FROM {m.events.name} ORDER BY seq DESC LIMIT 1").first()
            self._head = (row[0], _as_bytes(row[1])) if row else (0, GENESIS)
        return self._head

    def append(self, kind: str, request_id: str | None, data: dict[str, Any]) -> tuple[int, str]:
        """Append one event; returns ``(position, hex hash)``."""
        return self.append_many([(kind, request_id, data)])

    def append_many(self, items: list[tuple[str, str | None, dict[str, Any]]]) -> tuple[int, str]:
        """Append events in order with one INSERT; returns the new ``(size, hex head)``."""
        seq, prev = self.head()
        at = iso(self.now)
        rows = []
        for kind, rid, data in items:
            seq += 1
            body = canonical_event(seq, at, kind, rid, data)
            prev = chain_hash(prev, body)
            rows.append((seq, rid, kind, body.decode("utf-8"), prev))
        # the driver's executemany directly: plain values, no per-row type processing
        self.conn.exec_driver_sql(insert_sql(self.conn.dialect.paramstyle, m.events.name,
                                             ("seq", "request_id", "kind", "body", "hash")), rows)
        self._head = (seq, prev)
        return seq, prev.hex()


def insert_sql(paramstyle: str, table: str, columns: tuple[str, ...]) -> str:
    """A positional INSERT for the driver (``?`` for sqlite3, ``%s`` for psycopg)."""
    ph = "?" if paramstyle == "qmark" else "%s"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([ph] * len(columns))})"


def _as_bytes(v: Any) -> bytes:
    try:
        return bytes.fromhex(v) if isinstance(v, str) else bytes(v)
    except (TypeError, ValueError):
        return b""


def claimable(now: float) -> Any:
    """SQL condition: verified, unfinished, not failed for good, and no live lease."""
    r = m.requests.c
    return and_(r.stage.in_([s.value for s in CLAIMABLE_STAGES]),
                r.state.notin_([State.COMPLETED.value, State.REJECTED.value]),
                or_(r.state != State.FAILED.value, r.retryable.is_(True)),
                or_(r.lease_owner.is_(None), r.lease_expires_at < now))


def claim_one(tx: Tx, worker_id: str, lease_seconds: float) -> str | None:
    """Lease the most urgent claimable request to ``worker_id``; its id, or None.

    PostgreSQL: one ``UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1)
    RETURNING id``, so concurrent workers skip each other's rows instead of waiting. SQLite:
    the transaction already holds the write lock (``BEGIN IMMEDIATE``), so select-then-update
    cannot race.
    """
    r = m.requests.c
    pick = (select(r.id).where(claimable(tx.now)).order_by(r.due_at, r.id).limit(1))
    values = {"lease_owner": worker_id, "lease_expires_at": tx.now + lease_seconds,
              "updated_at": tx.now}
    if tx._postgres:
        sub = pick.with_for_update(skip_locked=True).scalar_subquery()
        return tx.conn.execute(update(m.requests).where(r.id == sub).values(**values)
                               .returning(r.id)).scalar()
    rid = tx.conn.execute(pick).scalar()
    if rid is not None:
        tx.conn.execute(update(m.requests).where(r.id == rid).values(**values))
    return rid


def row_to_record(row: Any, now: float) -> RequestRecord:
    """Decode a ``ledger_requests`` row; the deadline is computed as of ``now``."""
    received = to_dt(row.received_at)
    if received is None:
        raise LedgerIntegrityError("a request row has no receipt time; run `forget ledger verify`")
    paused = row.due_at is None
    due = (due_date(received, now=to_dt(now), extension_months=row.extension_months)
           if paused else to_dt(row.due_at))
    scope = json.loads(row.scope)
    return RequestRecord(
        request_id=row.id, state=State(row.state), stage=State(row.stage),
        retryable=bool(row.retryable), ground=row.ground, channel=row.channel,
        models=tuple(scope["models"]), datasets=tuple(scope["datasets"]),
        identifier_counts=json.loads(row.identifier_counts), received_at=received,
        verified_at=to_dt(row.verified_at), due_at=due, paused=paused,  # type: ignore[arg-type]
        extension_months=row.extension_months, audit_passed=row.audit_passed,
        updated_at=to_dt(row.updated_at), completed_at=to_dt(row.completed_at),  # type: ignore[arg-type]
        lease_owner=row.lease_owner, lease_expires_at=to_dt(row.lease_expires_at),
        shredded=row.shredded_at is not None, as_of=to_dt(now))  # type: ignore[arg-type]
