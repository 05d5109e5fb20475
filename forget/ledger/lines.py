"""Model lines: which version of a model serves now, moved only forward (a mixin).

A *model line* is a model and every version unlearned from it, one after another. Its *head*
is the version serving now. Every request on a line must start from the head, so a later
erasure never brings back an earlier one; completing a request moves the head from the
version the request started from to the request's new version, with a compare-and-swap in
the same transaction as the completion: if another request moved the head meanwhile, the
completion is refused (:class:`HeadMovedError`) and the request is redone on the new head.

The head row is locked by the swap itself (an ``UPDATE ... WHERE version = expected``, under
``BEGIN IMMEDIATE`` on SQLite, a row lock on PostgreSQL), so per line at most one head update
happens at a time. Lock order: the request row, then the line, then the chain.

Every head move is in the chain (``data.head`` of the ``completed`` event, and of the
``model_line_opened`` event for the first version), so ``verify`` checks the line table
against the chain like the request table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc, insert, select, update

from forget.ledger import models as m
from forget.ledger.errors import HeadMovedError, LedgerIntegrityError, ModelLineError
from forget.ledger.privacy import name_ok
from forget.ledger.records import iso


@dataclass(frozen=True)
class ModelHead:
    """The head of a model line: the version serving now and where it lies."""

    line: str
    version: str
    sha256: str
    path: str
    first_version: str
    generation: int  # head moves since the line was opened
    request_id: str | None  # the request whose completion moved it last (None: never moved)
    updated_at: str


@dataclass(frozen=True)
class HeadMove:
    """A head move asked for by a completion: ``expected`` -> ``version``."""

    line: str
    expected: str
    version: str
    sha256: str
    path: str

    def event(self, generation: int) -> dict[str, Any]:
        return {"line": self.line, "from": self.expected, "to": self.version,
                "sha256": self.sha256, "generation": generation}


def _check_version(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > 128:
        raise ModelLineError(f"the model {name} must be text of 1-128 characters")


def _head(row: Any) -> ModelHead:
    return ModelHead(row.line, row.version, row.sha256, row.path, row.first_version,
                     int(row.generation), row.request_id, iso(row.updated_at))


class LinesMixin:
    """Open a model line, read its head, and move it (inside ``complete``)."""

    def model_head(self, line: str) -> ModelHead | None:
        """The line's head, or None when this ledger has never served the line."""
        with self._read() as conn:  # type: ignore[attr-defined]
            row = conn.execute(select(m.model_lines).where(m.model_lines.c.line == line)).first()
        return None if row is None else _head(row)

    def open_line(self, line: str, *, version: str, sha256: str, path: str) -> ModelHead:
        """The line's head; on first use, open the line with ``version`` as its head.

        Idempotent and safe under concurrency: when two workers open a line at once, one
        insert wins and both get the same head. An open line keeps its head (this never moves
        it back).
        """
        for name, value in (("line", line), ("version", version)):
            _check_version(name, value)
        name_ok(line.replace("/", "_"), "model line")
        head = self.model_head(line)
        if head is not None:
            return head
        if self.line_erasures(line):  # the chain moved this line: its row was deleted
            raise LedgerIntegrityError(
                "the ledger's chain records erasures on this model line but its line table "
                "does not: the table was edited; run `forget ledger verify`")
        try:
            with self._tx() as tx:  # type: ignore[attr-defined]
                tx.conn.execute(insert(m.model_lines).values(
                    line=line, version=version, sha256=sha256, path=str(path),
                    first_version=version, generation=0, request_id=None, updated_at=tx.now))
                tx.append("model_line_opened", None, {"head": {
                    "line": line, "from": None, "to": version, "sha256": sha256,
                    "generation": 0}})
        except exc.IntegrityError:  # opened concurrently by another worker
            pass
        head = self.model_head(line)
        if head is None:  # pragma: no cover - the insert either succeeded or collided
            raise ModelLineError("the model line could not be opened; retry")
        return head

    def line_erasures(self, line: str) -> list[str]:
        """Ids of the requests whose completion moved this line's head, oldest first."""
        stmt = (select(m.events.c.request_id, m.events.c.body)
                .where(m.events.c.kind == "completed").order_by(m.events.c.seq))
        out = []
        with self._read() as conn:  # type: ignore[attr-defined]
            for rid, body in conn.execute(stmt):
                try:
                    head = json.loads(body)["data"].get("head")
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue  # an unreadable event: `verify` reports it
                if isinstance(head, dict) and head.get("line") == line:
                    out.append(rid)
        return out

    @staticmethod
    def _swap_head(tx: Any, move: HeadMove, request_id: str) -> dict[str, Any]:
        """Compare-and-swap the head inside the completion's transaction; the event data."""
        c = m.model_lines.c
        row = tx.conn.execute(select(m.model_lines).where(c.line == move.line)
                              .with_for_update()).first()
        if row is None:
            raise ModelLineError("the model line was never opened in this ledger; process the "
                                 "request again (it opens the line)")
        if row.version != move.expected:
            raise HeadMovedError(
                "the model line's head moved since this request started from it (another "
                "request completed meanwhile): redo the request on the new head")
        gen = int(row.generation) + 1
        done = tx.conn.execute(
            update(m.model_lines).where(c.line == move.line, c.version == move.expected)
            .values(version=move.version, sha256=move.sha256, path=move.path, generation=gen,
                    request_id=request_id, updated_at=tx.now))
        if done.rowcount != 1:  # pragma: no cover - the row lock above makes this unreachable
            raise HeadMovedError("the model line's head moved during the swap: redo the request")
        return move.event(gen)
