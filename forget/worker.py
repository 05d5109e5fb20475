"""Workers: claim requests from the ledger and run the workflow on them.

Many workers may run at once, on one machine or many (PostgreSQL ledger): a claim is a lease
taken atomically, so each request is processed by one worker at a time; a worker that dies
leaves its lease to expire and another worker resumes the request where it stopped (every step
is recorded and idempotent). The lease is renewed whenever the workflow reports progress.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("forget.worker")


@dataclass
class WorkerStats:
    worker_id: str
    processed: list[dict] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for p in self.processed if p["status"] == status)


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def run_worker(ledger, *, model: Path | str, data: Path | str, out: Path | str,
               worker_id: str | None = None, lease_seconds: float = 900.0, once: bool = False,
               poll_seconds: float = 5.0, max_requests: int | None = None,
               say: Callable[[str, str], None] | None = None, **workflow) -> WorkerStats:
    """Claim and process requests until the queue is empty (``once``) or forever.

    ``workflow`` keyword arguments go to :func:`forget.workflow.process_request`. An unexpected
    error fails the request as retryable (its reason names the error type, never data) and the
    worker goes on with the next one.
    """
    from forget.workflow import process_request

    wid = worker_id or default_worker_id()
    stats = WorkerStats(wid)
    tell = say or (lambda step, msg: None)
    while max_requests is None or len(stats.processed) < max_requests:
        rec = ledger.claim(wid, lease_seconds)
        if rec is None:
            if once:
                break
            time.sleep(poll_seconds)
            continue
        rid = rec.request_id

        def progress(step: str, msg: str, rid: str = rid) -> None:
            ledger.renew(rid, wid, lease_seconds)  # long steps keep the lease alive
            tell(step, msg)

        tell("claim", f"claimed {rid}")
        try:
            res = process_request(ledger, rid, model=model, data=data, out=out, worker_id=wid,
                                  progress=progress, **workflow)
            stats.processed.append({"request_id": rid, "status": res.status})
        except Exception as e:  # noqa: BLE001 - a worker must survive one bad request
            log.warning("request processing failed with %s; marked retryable", type(e).__name__)
            try:
                ledger.fail(rid, reason=f"worker error: {type(e).__name__}", retryable=True,
                            worker_id=wid)
            except Exception:  # noqa: BLE001 - e.g. the lease was lost meanwhile
                log.warning("could not record the failure (lease lost?)")
            stats.processed.append({"request_id": rid, "status": "error",
                                    "error": type(e).__name__})
    return stats
