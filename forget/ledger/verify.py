"""Verification of a ledger: the chain, its signed checkpoints, and the request table.

Reported in this order, so the first problem named is the earliest one found:

1. the chain itself (missing, edited, moved or inserted events): the position of the break;
2. checkpoints (stored in the database and/or given as an exported file): a signature that
   does not verify under the ledger's public key, a chain shorter than a checkpoint
   (truncation: the first missing position), or a chain whose hash at a checkpoint's size
   differs from the signed head (a consistent rewrite: the checkpoint's size, with the range
   that must hold the rewritten event);
3. the request table against the chain (a state edited in place): the position of that
   request's last state event.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, select

from forget.ledger import models as m
from forget.ledger.chain import Checkpoint, walk
from forget.ledger.errors import LedgerIntegrityError
from forget.ledger.records import VerifyReport


def stored_checkpoints(conn: Connection) -> list[Checkpoint]:
    """Checkpoints recorded in the database, by size."""
    rows = conn.execute(select(m.checkpoints.c.body).order_by(m.checkpoints.c.size,
                                                              m.checkpoints.c.id))
    out = []
    for (body,) in rows:
        try:
            out.append(Checkpoint.from_dict(json.loads(body)))
        except (ValueError, LedgerIntegrityError):
            out.append(Checkpoint("?", 0, "", "", "", ""))  # reported as a bad signature
    return out


def _rows(conn: Connection) -> Any:
    # raw SQL: values exactly as stored (a tampered type must be reported, not crash us)
    return conn.execution_options(stream_results=True, yield_per=5000).exec_driver_sql(
        f"SELECT seq, body, hash FROM {m.events.name} ORDER BY seq")


def verify_ledger(conn: Connection, *, ledger_id: str, public_key: bytes,
                  extra: Checkpoint | None = None) -> VerifyReport:
    """Verify everything; ``public_key`` is the trusted Ed25519 key of checkpoints."""
    cps = stored_checkpoints(conn)
    if extra is not None:
        cps.append(extra)
    cps.sort(key=lambda c: c.size)
    res = walk(((r[0], r[1], r[2]) for r in _rows(conn)), want={c.size for c in cps})
    n_cp = len(cps)
    if not res.ok:
        return VerifyReport(False, res.size, res.head, res.first_bad, res.message, n_cp)
    for cp in cps:
        if cp.ledger_id != ledger_id or not cp.signature_ok(public_key):
            why = ("belongs to another ledger" if cp.ledger_id not in (ledger_id, "?")
                   else "has a signature that does not verify under this ledger's key")
            return VerifyReport(False, res.size, res.head, cp.size,
                                f"the checkpoint at size {cp.size} {why}", n_cp)
    good = 0
    for cp in cps:
        if cp.size > res.size:
            return VerifyReport(
                False, res.size, res.head, res.size + 1,
                f"the ledger holds {res.size} events but a signed checkpoint covers {cp.size}: "
                f"events {res.size + 1}..{cp.size} were removed (truncated)", n_cp)
        if res.hashes.get(cp.size) != cp.head:
            return VerifyReport(
                False, res.size, res.head, cp.size,
                f"the chain up to event {cp.size} disagrees with a signed checkpoint: it was "
                f"rewritten (an event in {good + 1}..{cp.size} was changed and the hashes after "
                "it recomputed)", n_cp)
        good = cp.size
    views = (("request", "request table", "state", res.last_state,
              conn.execute(select(m.requests.c.id, m.requests.c.state)).all()),
             ("model line", "line table", "head", res.last_head,
              conn.execute(select(m.model_lines.c.line, m.model_lines.c.version)).all()))
    for what, table, kind, last, rows in views:
        bad = _view_disagrees(what, table, kind, last, rows)
        if bad is not None:
            return VerifyReport(False, res.size, res.head, bad[0], bad[1], n_cp)
    return VerifyReport(True, res.size, res.head, None,
                        f"{res.size} events, chain intact; {n_cp} checkpoint(s) verified", n_cp)


def _view_disagrees(what: str, table: str, kind: str, last: dict[str, tuple[int, str]],
                    rows: Any) -> tuple[int | None, str] | None:
    """A table kept as a view of the chain (request states, model-line heads) against the
    chain's last ``kind`` event per key: ``(position, message)`` of the first disagreement."""
    missing = set(last) - {key for key, _ in rows}
    if missing:
        pos = min(last[key][0] for key in missing)
        return pos, (f"{len(missing)} {what}(s) in the chain are missing from the {table} (the "
                     f"last {kind} event of the first is {pos}): rows were deleted outside the "
                     "ledger")
    for key, value in rows:
        seen = last.get(key)
        if seen is None or seen[1] != value:
            pos = seen[0] if seen else None
            return pos, (f"a {what}'s {kind} in the {table} disagrees with the chain"
                         + (f" (its last {kind} event is {pos})" if pos else " (it has no events)")
                         + ": the table was edited outside the ledger")
    return None
