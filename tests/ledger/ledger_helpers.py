"""Plain helpers of the ledger tests (importable by name; fixtures live in conftest.py)."""

from __future__ import annotations

from forget.ledger import DeletionRequest, Ledger


def make_request(i: int = 0, **kw) -> DeletionRequest:
    """A valid request for fictitious person ``i``."""
    base = {"request_id": f"req-{i:04d}", "name": f"Testperson Number{i}",
            "emails": (f"person{i}@example.org",), "phones": (f"+44 20 7946 {i:04d}",),
            "other_ids": (("national_id", f"QQ{i:06d}C"),), "ground": "b"}
    base.update(kw)
    return DeletionRequest(**base)


def finish(led: Ledger, rid: str, worker_id: str | None = None) -> None:
    """Take a verified request through scope, unlearning, a passed audit, completion."""
    led.scope(rid, worker_id=worker_id)
    led.start_unlearning(rid, method="noop", worker_id=worker_id)
    led.record_audit(rid, passed=True, details={"auc": 0.5}, worker_id=worker_id)
    led.complete(rid, worker_id=worker_id)
