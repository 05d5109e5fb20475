"""A certificate issued on a small ledger, shared by the certificate tests (no model needed)."""

from __future__ import annotations

from pathlib import Path

from forget import certificate as C
from forget.ledger import DeletionRequest, Ledger


def issue_test_certificate(db: Path):
    """``(ledger, certificate)``: request r-1 taken to a passed audit and certified."""
    led = Ledger(db)
    led.submit(DeletionRequest(request_id="r-1", name="Ada Example",
                               emails=("ada@example.org",), ground="b"))
    led.verify_identity("r-1")
    led.scope("r-1", details={"records": 3})
    led.start_unlearning("r-1", method="npo")
    led.record_audit("r-1", passed=True, details={"verdict": "pass"})
    seq = max(e.seq for e in led.events("r-1"))
    cert = C.issue(led, "r-1", event_seq=seq,
                   model_before={"version": "mv-a", "sha256": "a" * 64},
                   model_after={"version": "mv-b", "sha256": "b" * 64},
                   method="npo", method_config_hash="c" * 16, guarantee="empirical",
                   audit={"verdict": "pass", "report_sha256": "d" * 64},
                   issued_at="2026-11-23T00:00:00+00:00")
    return led, cert
