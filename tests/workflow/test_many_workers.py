"""Many workers, one ledger, the whole workflow: 4 worker processes on 24 requests (tiny model,
gradient ascent, a light audit), one killed with SIGKILL in the middle of a request. Every
request ends exactly once, the killed worker's request is reclaimed after its lease and
finished by another worker, and the ledger verifies. On PostgreSQL and on SQLite."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import wf_workers
from forked_cli import _context
from wf_helpers import identifiers_of, person_request

from forget import certificate as C
from forget.ledger import Ledger

N_REQUESTS = 24
LEASE = 15.0  # renewed on every progress message; a dead worker's request waits this long
# (long enough that no step of a live worker outlasts it on a loaded 2-core machine)


def _seed(led: Ledger, corpus) -> list[str]:
    subjects = corpus.subject_ids("train") + corpus.subject_ids("holdout")
    ids = []
    for i in range(N_REQUESTS):  # each subject twice; held-out subjects have no records
        rid = f"many-{i:02d}"
        led.submit(person_request(rid, identifiers_of(corpus, subjects[i % len(subjects)])))
        led.verify_identity(rid)
        ids.append(rid)
    return ids


def _run(url: str, kd: Path, root: Path, model: Path, data: Path) -> int:
    """Start the doomed worker and three others; SIGKILL the doomed one mid-request."""
    ctx = _context()
    started = ctx.Queue()
    args = (url, str(kd), str(model), str(data), str(root), LEASE)
    doomed = ctx.Process(target=wf_workers.doomed, args=(*args, started))
    doomed.start()
    others = [ctx.Process(target=wf_workers.work,
                          args=(url, str(kd), f"w{i}", str(model), str(data), str(root), LEASE,
                                240.0)) for i in range(3)]
    for p in others:
        p.start()
    assert started.get(timeout=180) == doomed.pid, "the doomed worker never started unlearning"
    doomed.kill()  # SIGKILL, in the middle of a request: unlearning started, nothing saved
    doomed.join(10)
    assert doomed.exitcode == -signal.SIGKILL
    for p in others:
        p.join(300)
        assert p.exitcode == 0, f"worker exit {p.exitcode}"
    return doomed.pid


def _check(led: Ledger, ids: list[str], root: Path) -> None:
    report = led.verify()
    assert report.ok, report.message
    recs = {r.request_id: r for r in led.list()}
    assert set(recs) == set(ids)
    ends = {}
    for rid in ids:
        events = led.events(rid)
        final = [e for e in events if e.kind == "completed"
                 or (e.kind == "failed" and not e.data.get("retryable"))]
        assert len(final) == 1, f"{rid} ended {len(final)} times"  # exactly once
        assert recs[rid].state.value == final[0].kind
        if final[0].kind == "failed":
            assert final[0].data["reason"]
        ends[rid] = (final[0], [e.data["worker"] for e in events if e.kind == "claimed"])
    killed = [rid for rid, (_, claims) in ends.items() if "w-doomed" in claims]
    assert len(killed) >= 1
    rid = next(r for r in killed if ends[r][1][-1] != "w-doomed")  # the one it was killed on
    final, claims = ends[rid]
    assert claims[-1] != "w-doomed" and final.data["worker"] == claims[-1]  # finished by another
    steps = [(e.data["step"], e.data["status"], e.data.get("worker")) for e in led.events(rid)
             if e.kind == "step" and e.data["step"] == "unlearn-1"]
    assert steps[0] == ("unlearn-1", "started", "w-doomed")  # interrupted there ...
    assert ("unlearn-1", "done", claims[-1]) in steps  # ... and run again by the rescuer
    expiry = [e for e in led.events(rid) if e.kind == "claimed"]
    assert len({e.data["worker"] for e in expiry}) >= 2
    done = [r for r in ids if recs[r].state.value == "completed"]
    assert len(done) >= N_REQUESTS // 2, f"only {len(done)} completed"
    assert {recs[r].state.value for r in ids} <= {"completed", "failed"}
    for r in done[:3]:  # each completed request's certificate verifies against the ledger
        cert = C.Certificate.read(root / "out" / r / "certificate.json")
        assert C.verify(cert, ledger=led).ok


def _whole(url: str, kd: Path, root: Path, corpus, corpus_dir, tiny_model_dir) -> float:
    t0 = time.monotonic()
    with Ledger(url, key_dir=kd) as led:
        ids = _seed(led, corpus)
    _run(url, kd, root, tiny_model_dir, corpus_dir)
    with Ledger(url, key_dir=kd, create=False) as led:
        _check(led, ids, root)
    return time.monotonic() - t0


def test_four_workers_24_requests_one_killed_postgres(pg_url, tmp_path, corpus, corpus_dir,
                                                      tiny_model_dir):
    _whole(pg_url, tmp_path / "keys", tmp_path, corpus, corpus_dir, tiny_model_dir)


def test_four_workers_24_requests_one_killed_sqlite(tmp_path, corpus, corpus_dir,
                                                    tiny_model_dir):
    _whole(str(tmp_path / "ledger.db"), tmp_path / "keys", tmp_path, corpus, corpus_dir,
           tiny_model_dir)
