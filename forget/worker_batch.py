"""A worker that batches: pending requests against its model line, unlearned in one run.

The worker looks at the pending requests (a read, no chain event), asks the batch policy
(:mod:`forget.workflow.batch_policy`) whether a batch runs now (a count, a schedule, or a
request near its deadline), claims that many requests (the ledger hands out the most urgent
first, the policy's order), and processes them with :func:`forget.workflow.process_batch`.
While it runs, every member's lease is renewed on progress. An unexpected error fails every
unfinished member as :func:`forget.worker.record_failure` does for one request (retryable,
with a backoff, until the retry budget is spent).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def run_batch_worker(ledger: Any, *, policy: Any, model: Path | str, data: Path | str,
                     out: Path | str, wid: str, lease_seconds: float, once: bool,
                     poll_seconds: float, max_requests: int | None, retry: Any,
                     tell: Callable[[str, str], None], stats: Any, **workflow) -> Any:
    """Run batches until the queue holds nothing due (``once``) or forever; ``stats`` filled.

    ``once``: run the batches the policy starts now, then exit (requests it holds for a
    fuller batch stay pending).
    """
    from forget.ledger.errors import LeaseError
    from forget.worker import record_failure
    from forget.workflow.batch import pending_requests, process_batch
    from forget.workflow.batch_policy import Pending, choose_batch, next_check_s

    seen: set[str] = set()
    while max_requests is None or len(stats.processed) < max_requests:
        now = datetime.now(UTC)
        recs = [r for r in pending_requests(ledger) if not (once and r.request_id in seen)]
        pend = [Pending(r.request_id, r.due_at, r.verified_at or r.received_at) for r in recs]
        ids, why = choose_batch(pend, policy, now)
        if not ids:
            if once:
                break
            time.sleep(next_check_s(pend, policy, now, poll_seconds))
            continue
        claimed = []
        for _ in ids:  # the ledger hands out the most urgent first: the policy's order
            rec = ledger.claim(wid, lease_seconds)
            if rec is None:
                break
            claimed.append(rec.request_id)
        if not claimed:
            continue
        seen.update(claimed)
        tell("batch", f"claimed {len(claimed)} request(s) ({why})")

        def progress(step: str, msg: str, claimed: list[str] = claimed) -> None:
            for rid in claimed:  # long steps keep every member's lease alive
                try:
                    ledger.renew(rid, wid, lease_seconds)
                except LeaseError:  # completed or failed already: its lease is gone
                    pass
            tell(step, msg)

        try:
            res = process_batch(ledger, claimed, model=model, data=data, out=out,
                                worker_id=wid, progress=progress, **workflow)
        except Exception as e:  # noqa: BLE001 - a worker must survive one bad batch
            for rid in claimed:
                if ledger.get(rid).terminal:
                    continue
                entry = {"request_id": rid, "batch_reason": why} | record_failure(
                    ledger, rid, wid, e, retry)
                stats.processed.append(entry)
                tell("error", f"{rid}: {entry['status']} ({entry.get('error')})")
            continue
        batch_of = {rid: r.batch_id for r in res.runs for rid in r.requests}
        for o in res.outcomes:
            if o.status in ("waiting_identity", "audit_failed"):
                ledger.release(o.request_id, wid)  # claimable again (another batch, alone)
            stats.processed.append({"request_id": o.request_id, "status": o.status,
                                    "batch": batch_of.get(o.request_id),
                                    "batch_reason": why})
    return stats
