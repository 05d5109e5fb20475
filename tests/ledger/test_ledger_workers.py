"""Workers: leases, exactly-once claiming by 4 processes (SQLite, PostgreSQL), crash recovery."""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
from pathlib import Path

import ledger_workers
import pytest
from ledger_helpers import finish, make_request

from forget.ledger import DeletionRequest, LeaseError, Ledger, State

N_REQUESTS = 200
N_WORKERS = 4


def _seed(led: Ledger, n: int) -> list[str]:
    ids = []
    for i in range(n):
        rid = f"conc-{i:04d}"
        led.submit(DeletionRequest(request_id=rid, emails=(f"p{i}@example.org",), ground="a"))
        led.verify_identity(rid)
        ids.append(rid)
    return ids


def _run_workers(url: str, key_dir: Path) -> dict[str, list[str]]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = ctx.Barrier(N_WORKERS)  # so no worker drains the queue before the others start
    procs = [ctx.Process(target=ledger_workers.drain,
                         args=(url, str(key_dir), f"w{i}", 300.0, out, start))
             for i in range(N_WORKERS)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=240) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return results


def _check_exactly_once(led: Ledger, ids: list[str], results: dict[str, list[str]]) -> None:
    claimed = [rid for lst in results.values() for rid in lst]
    assert len(claimed) == len(ids) and set(claimed) == set(ids), "lost or duplicated claims"
    assert sum(1 for lst in results.values() if lst) >= 2, "only one worker got work"
    claim_events = [e for e in led.events() if e.kind == "claimed"]
    assert len(claim_events) == len(ids)
    recs = led.list()
    assert len(recs) == len(ids) and {r.lease_owner for r in recs} <= set(results)
    assert all(led.steps(rid)["noop"].worker_id == r.lease_owner for r in recs
               for rid in [r.request_id])
    report = led.verify()
    assert report.ok, report.message


def test_four_processes_claim_each_request_exactly_once_sqlite(tmp_path: Path) -> None:
    db, kd = tmp_path / "l.db", tmp_path / "keys"
    with Ledger(db, key_dir=kd) as led:
        ids = _seed(led, N_REQUESTS)
    results = _run_workers(str(db), kd)
    with Ledger(db, key_dir=kd, create=False) as led:
        _check_exactly_once(led, ids, results)


def test_four_processes_claim_each_request_exactly_once_postgres(pg_url: str,
                                                                 tmp_path: Path) -> None:
    kd = tmp_path / "keys"
    with Ledger(pg_url, key_dir=kd) as led:
        ids = _seed(led, N_REQUESTS)
    results = _run_workers(pg_url, kd)
    with Ledger(pg_url, key_dir=kd, create=False) as led:
        _check_exactly_once(led, ids, results)


def _crash_and_recover(url: str, kd: Path) -> None:
    lease = 1.5
    with Ledger(url, key_dir=kd) as led:
        led.submit(make_request(1))
        led.verify_identity("req-0001")
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    p = ctx.Process(target=ledger_workers.doomed, args=(url, str(kd), lease, ready))
    p.start()
    assert ready.wait(60), "the doomed worker never claimed"
    p.kill()  # SIGKILL between claim and completion
    p.join(10)
    assert p.exitcode == -signal.SIGKILL
    with Ledger(url, key_dir=kd, create=False) as led:
        assert led.claim("rescuer", 30) is None  # the lease is still live
        deadline = time.monotonic() + 10 * lease
        rec = None
        while rec is None and time.monotonic() < deadline:
            time.sleep(0.2)
            rec = led.claim("rescuer", 30)
        assert rec is not None and rec.request_id == "req-0001", "the lease never expired"
        steps = led.steps("req-0001")
        assert steps["unlearn"].status == "started"  # interrupted: must run again
        with pytest.raises(LeaseError):  # a zombie of the dead worker cannot interfere
            led.record_audit("req-0001", passed=True, worker_id="doomed-worker")
        led.record_step("req-0001", "unlearn", "started", worker_id="rescuer")
        led.start_unlearning("req-0001", method="npo", worker_id="rescuer")
        led.record_step("req-0001", "unlearn", "done", {"steps": 10}, worker_id="rescuer")
        led.record_audit("req-0001", passed=True, worker_id="rescuer")
        assert led.complete("req-0001", worker_id="rescuer").state == State.COMPLETED
        claims = [e.data["worker"] for e in led.events("req-0001") if e.kind == "claimed"]
        assert claims == ["doomed-worker", "rescuer"]
        report = led.verify()
        assert report.ok, report.message


def test_killed_worker_lease_expires_and_another_finishes_sqlite(tmp_path: Path) -> None:
    _crash_and_recover(str(tmp_path / "l.db"), tmp_path / "keys")


def test_killed_worker_lease_expires_and_another_finishes_postgres(pg_url: str,
                                                                   tmp_path: Path) -> None:
    _crash_and_recover(pg_url, tmp_path / "keys")


def test_lease_renew_release_and_ownership(ledger: Ledger) -> None:
    for i in (1, 2):
        ledger.submit(make_request(i))
    assert ledger.claim("w1") is None  # identity not verified yet: nothing to do
    ledger.verify_identity("req-0001")
    rec = ledger.claim("w1", 60)
    assert rec.request_id == "req-0001" and rec.lease_owner == "w1"
    assert ledger.claim("w2", 60) is None
    with pytest.raises(LeaseError):
        ledger.scope("req-0001", worker_id="w2")
    with pytest.raises(LeaseError):
        ledger.renew("req-0001", "w2", 60)
    ledger.renew("req-0001", "w1", 120)
    ledger.release("req-0001", "w1")
    with pytest.raises(LeaseError):
        ledger.release("req-0001", "w1")
    assert ledger.claim("w2", 60).request_id == "req-0001"
    ledger.record_step("req-0001", "scope", "started", worker_id="w2")
    ledger.record_step("req-0001", "scope", "done", {"records": 3}, worker_id="w2")
    assert ledger.steps("req-0001")["scope"].status == "done"
    finish(ledger, "req-0001", worker_id="w2")
    assert ledger.get("req-0001").lease_owner is None
    assert ledger.claim("w3") is None  # completed requests are never handed out again


def test_retryable_failure_is_claimable_again_non_retryable_is_not(ledger: Ledger) -> None:
    for i in (1, 2):
        ledger.submit(make_request(i))
        ledger.verify_identity(f"req-000{i}")
    a = ledger.claim("w1", 60).request_id
    b = ledger.claim("w1", 60).request_id
    ledger.fail(a, reason="transient", retryable=True, worker_id="w1")
    ledger.fail(b, reason="permanent", retryable=False, worker_id="w1")
    assert ledger.claim("w2", 60).request_id == a
    assert ledger.claim("w2", 60) is None
