"""Model lines in the ledger: a head that only moves forward, by compare-and-swap."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from ledger_helpers import make_request

from forget.ledger import (
    HeadMove,
    HeadMovedError,
    Ledger,
    LedgerIntegrityError,
    ModelLineError,
    State,
)


def _ready(led: Ledger, i: int) -> str:
    """A request with a passed audit, waiting to complete."""
    rid = led.submit(make_request(i)).request_id
    led.verify_identity(rid)
    led.scope(rid)
    led.start_unlearning(rid, method="noop")
    led.record_audit(rid, passed=True)
    return rid


def _move(expected: str, to: str) -> HeadMove:
    return HeadMove(line="m-0", expected=expected, version=to, sha256="ab" * 32,
                    path=f"/models/{to}")


def test_open_line_is_idempotent_and_never_moves_the_head_back(ledger: Ledger) -> None:
    head = ledger.open_line("m-0", version="m-0", sha256="00" * 32, path="/models/m-0")
    assert (head.version, head.generation, head.request_id) == ("m-0", 0, None)
    rid = _ready(ledger, 1)
    ledger.complete(rid, head=_move("m-0", "m-1"))
    again = ledger.open_line("m-0", version="m-0", sha256="00" * 32, path="/models/m-0")
    assert (again.version, again.generation, again.request_id) == ("m-1", 1, rid)
    assert ledger.line_erasures("m-0") == [rid]
    assert ledger.model_head("other") is None
    assert ledger.verify().ok


def test_a_stale_completion_is_refused_and_changes_nothing(ledger: Ledger) -> None:
    ledger.open_line("m-0", version="m-0", sha256="00" * 32, path="/models/m-0")
    first, second = _ready(ledger, 1), _ready(ledger, 2)
    ledger.complete(first, head=_move("m-0", "m-1"))
    size = len(ledger.events())
    with pytest.raises(HeadMovedError):  # started from m-0, but the head is m-1 now
        ledger.complete(second, head=_move("m-0", "m-2"))
    assert len(ledger.events()) == size
    assert ledger.get(second).state == State.AUDITING  # not completed, not shredded
    assert ledger.identifiers(second).name
    assert ledger.model_head("m-0").version == "m-1"
    ledger.complete(second, head=_move("m-1", "m-2"))  # redone on the new head
    head = ledger.model_head("m-0")
    assert (head.version, head.generation) == ("m-2", 2)
    moves = [e.data["head"] for e in ledger.events() if e.kind == "completed"]
    assert [(m["from"], m["to"]) for m in moves] == [("m-0", "m-1"), ("m-1", "m-2")]
    assert ledger.verify().ok


def test_completing_on_a_line_never_opened_is_refused(ledger: Ledger) -> None:
    rid = _ready(ledger, 1)
    with pytest.raises(ModelLineError):
        ledger.complete(rid, head=_move("m-0", "m-1"))
    assert ledger.get(rid).state == State.AUDITING


def test_an_edited_line_table_is_found_by_verify(ledger: Ledger) -> None:
    ledger.open_line("m-0", version="m-0", sha256="00" * 32, path="/models/m-0")
    ledger.complete(_ready(ledger, 1), head=_move("m-0", "m-1"))
    with ledger.engine.begin() as c:  # someone points the head back at the original
        c.exec_driver_sql("UPDATE ledger_model_lines SET version = 'm-0'")
    report = ledger.verify()
    assert not report.ok and "model line" in report.message


def test_a_deleted_line_row_is_found_and_never_reopened_at_the_original(ledger: Ledger) -> None:
    ledger.open_line("m-0", version="m-0", sha256="00" * 32, path="/models/m-0")
    ledger.complete(_ready(ledger, 1), head=_move("m-0", "m-1"))
    with ledger.engine.begin() as c:  # someone drops the line: a request would start from
        c.exec_driver_sql("DELETE FROM ledger_model_lines")  # the original again
    report = ledger.verify()
    assert not report.ok and "missing from the line table" in report.message
    with pytest.raises(LedgerIntegrityError):
        ledger.open_line("m-0", version="m-0", sha256="00" * 32, path="/models/m-0")


def _race(url: str, kd: Path, n: int = 4) -> None:
    """``n`` threads, each with its own connection, complete ``n`` requests all started from
    the same head: exactly one wins; the others are refused and win after redoing."""
    with Ledger(url, key_dir=kd) as led:
        led.open_line("m-0", version="m-0", sha256="00" * 32, path="/models/m-0")
        rids = [_ready(led, i) for i in range(n)]
    barrier = threading.Barrier(n)
    outcome: dict[str, str] = {}

    def worker(rid: str) -> None:
        with Ledger(url, key_dir=kd, create=False) as led:
            barrier.wait()
            try:
                led.complete(rid, head=_move("m-0", f"v-{rid}"))
                outcome[rid] = "won"
            except HeadMovedError:
                outcome[rid] = "moved"

    threads = [threading.Thread(target=worker, args=(r,)) for r in rids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcome.values()) == ["moved"] * (n - 1) + ["won"]
    with Ledger(url, key_dir=kd, create=False) as led:
        winner = next(r for r, o in outcome.items() if o == "won")
        assert led.model_head("m-0").version == f"v-{winner}"
        for rid in rids:  # the losers redo from the head they read now: each gets in, in turn
            if rid != winner:
                head = led.model_head("m-0").version
                led.complete(rid, head=_move(head, f"v-{rid}"))
        head = led.model_head("m-0")
        assert head.generation == n
        assert sorted(led.line_erasures("m-0")) == sorted(rids)
        assert led.verify().ok


def test_concurrent_completions_move_the_head_once_each_sqlite(tmp_path: Path) -> None:
    _race(str(tmp_path / "l.db"), tmp_path / "keys")


def test_concurrent_completions_move_the_head_once_each_postgres(pg_url: str,
                                                                 tmp_path: Path) -> None:
    _race(pg_url, tmp_path / "keys")
