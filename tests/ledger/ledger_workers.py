"""Worker process bodies for the concurrency and crash tests (importable by spawned children)."""

from __future__ import annotations

import time
from typing import Any


def drain(url: str, key_dir: str, worker_id: str, lease: float, out: Any,
          start: Any = None, work_s: float = 0.01) -> None:
    """Claim until nothing is left, recording a step on each; report what was claimed.

    ``work_s`` stands for the work a real worker does between claims (minutes of unlearning).
    Without it, one SQLite writer can take every claim in a row: SQLite's busy handler lets
    waiting writers sleep while the writer that just committed starts its next transaction,
    which is fair to no one but correct, and the test could not tell exactly-once from
    one-worker-did-everything.

    Leases are long and never released, so a request claimed twice can only come from a
    race in ``claim`` itself. (Finishing requests is covered by the crash test; doing it
    here too would spend the test's time on fsyncs rather than on contention.)
    """
    from forget.ledger import Ledger

    claimed: list[str] = []
    with Ledger(url, key_dir=key_dir, create=False) as led:
        if start is not None:  # every worker has imported and connected: start together
            start.wait(timeout=120)
        while True:
            rec = led.claim(worker_id, lease)
            if rec is None:
                break
            rid = rec.request_id
            claimed.append(rid)
            led.record_step(rid, "noop", "done", worker_id=worker_id)
            time.sleep(work_s)
    out.put((worker_id, claimed))


def doomed(url: str, key_dir: str, lease: float, ready: Any) -> None:
    """Claim one request, record that unlearning started, then hang until killed."""
    from forget.ledger import Ledger

    led = Ledger(url, key_dir=key_dir, create=False)
    rec = led.claim("doomed-worker", lease)
    led.scope(rec.request_id, worker_id="doomed-worker")
    led.record_step(rec.request_id, "unlearn", "started", {"method": "npo"},
                    worker_id="doomed-worker")
    led.start_unlearning(rec.request_id, method="npo", worker_id="doomed-worker")
    ready.set()
    time.sleep(600)
