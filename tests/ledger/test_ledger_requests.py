"""Requests: validation table (typed error, nothing written), idempotency, transitions, deadlines."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ledger_helpers import finish, make_request

from forget.errors import ForgetError
from forget.ledger import (
    DeadlineError,
    DeletionRequest,
    IdempotencyConflictError,
    IllegalTransitionError,
    InvalidRequestError,
    Ledger,
    RequestNotFoundError,
    State,
)
from forget.ledger.request import MAX_PAYLOAD_BYTES


def counts(led: Ledger) -> tuple[int, int, int]:
    return len(led.events()), len(led.list()), len(led.find_by_index("x"))


GOOD = {"request_id": "bad-1", "subject": {"name": "Ada Example", "emails": ["ada@example.org"]},
        "ground": "b"}


def _with(**changes) -> bytes:
    d = json.loads(json.dumps(GOOD))
    for k, v in changes.items():
        if k.startswith("subject."):
            d["subject"][k.split(".", 1)[1]] = v
        elif v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return json.dumps(d).encode()


BAD_INPUT = {
    "missing subject": json.dumps({"request_id": "bad-1", "ground": "b"}).encode(),
    "empty subject": _with(subject={}),
    "blank name only": _with(subject={"name": "   "}),
    "malformed email": _with(**{"subject.emails": ["not-an-email"]}),
    "email without domain dot": _with(**{"subject.emails": ["ada@example"]}),
    "email with space": _with(**{"subject.emails": ["ada lovelace@example.org"]}),
    "two at signs": _with(**{"subject.emails": ["a@@example.org"]}),
    "malformed phone": _with(**{"subject.phones": ["call me"]}),
    "unknown legal ground": _with(ground="g"),
    "ground from another article": _with(ground="6(1)(a)"),
    "no legal ground": _with(ground=None),
    "oversized payload": _with(**{"subject.name": "x" * (MAX_PAYLOAD_BYTES + 10)}),
    "oversized name": _with(**{"subject.name": "x" * 500}),
    "invalid UTF-8": b'{"request_id": "bad-1", "subject": {"name": "Ad\xff\xfe"}, "ground": "b"}',
    "lone surrogate": _with(**{"subject.name": "Ad\ud800a"}).replace(b"\\ud800", b"\\ud800"),
    "not JSON": b"{request",
    "not an object": b"[1, 2]",
    "unknown field": _with(extra=1),
    "bad request id": _with(request_id="has space"),
    "request id with @": _with(request_id="ada@example.org"),
    "control character": _with(**{"subject.name": "Ada\x00Example"}),
    "naive receipt time": _with(received_at="2025-01-01T10:00:00"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_refused_with_a_typed_error_and_nothing_written(ledger: Ledger,
                                                                      case: str) -> None:
    before = counts(ledger)
    with pytest.raises(InvalidRequestError) as e:
        ledger.submit(DeletionRequest.from_json(BAD_INPUT[case]))
    assert isinstance(e.value, ForgetError) and isinstance(e.value, ValueError)
    for secret in (b"Ada", b"ada@", b"not-an-email", b"call me"):
        assert secret.decode() not in str(e.value)  # no identifier echoed
    assert counts(ledger) == before


def test_lone_surrogate_in_python_text_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="UTF-8"):
        DeletionRequest(name="Ad\udcffa", ground="b")


def test_illegal_transition_names_both_states_and_writes_nothing(ledger: Ledger) -> None:
    ledger.submit(make_request(1))
    before = counts(ledger)
    with pytest.raises(IllegalTransitionError) as e:
        ledger.complete("req-0001")
    assert "'received'" in str(e.value) and "'completed'" in str(e.value)
    with pytest.raises(IllegalTransitionError):
        ledger.start_unlearning("req-0001", method="npo")
    assert counts(ledger) == before
    assert ledger.get("req-0001").state == State.RECEIVED


def test_bad_verb_arguments_write_nothing(ledger: Ledger) -> None:
    ledger.submit(make_request(1))
    ledger.verify_identity("req-0001")
    before = counts(ledger)
    for call in (lambda: ledger.reject("req-0001", reason=""),
                 lambda: ledger.start_unlearning("req-0001", method="has space"),
                 lambda: ledger.scope("req-0001", details={"x": float("nan")}),
                 lambda: ledger.scope("req-0001", details={"big": 2**60}),
                 lambda: ledger.scope("req-0001", details={"blob": "x" * 20000}),
                 lambda: ledger.record_step("req-0001", "unlearn", "halfway"),
                 lambda: ledger.claim("worker 1")):
        with pytest.raises(InvalidRequestError):
            call()
    with pytest.raises(RequestNotFoundError):
        ledger.get("req-9999")
    assert counts(ledger) == before


def test_idempotent_resubmission_returns_the_same_request(ledger: Ledger) -> None:
    first = ledger.submit(make_request(7))
    n = len(ledger.events())
    # the same content, written differently and received later: the same request
    again = make_request(7, name="  testperson   NUMBER7 ", emails=("PERSON7@example.org",),
                         phones=("+44 (20) 7946-0007",), ground="Art. 17(1)(b)",
                         received_at=datetime.now(UTC) + timedelta(hours=1))
    second = ledger.submit(again)
    assert second.request_id == first.request_id and second.received_at == first.received_at
    assert len(ledger.events()) == n and len(ledger.list()) == 1


@pytest.mark.parametrize("change", [{"name": "Someone Else"}, {"ground": "a"},
                                    {"emails": ("other@example.org",)}, {"models": ("m1",)},
                                    {"phones": ()}])
def test_same_id_different_content_is_refused(ledger: Ledger, change: dict) -> None:
    ledger.submit(make_request(7))
    n = len(ledger.events())
    with pytest.raises(IdempotencyConflictError, match="different content"):
        ledger.submit(make_request(7, **change))
    assert len(ledger.events()) == n


def test_full_lifecycle_and_event_trail(ledger: Ledger) -> None:
    ledger.submit(make_request(1, models=("tiny",)))
    ledger.verify_identity("req-0001", method="email_link")
    ledger.extend("req-0001", months=2, reason="fourteen models in scope")
    ledger.scope("req-0001", datasets=["people"], details={"records": ["r-1", "r-2"]})
    ledger.start_unlearning("req-0001", method="npo")
    ledger.record_audit("req-0001", passed=False, details={"auc": 0.71})
    with pytest.raises(IllegalTransitionError, match="did not pass"):
        ledger.complete("req-0001")
    ledger.start_unlearning("req-0001", method="retrain")
    ledger.record_audit("req-0001", passed=True, details={"auc": 0.50})
    rec = ledger.complete("req-0001", details={"certificate_sha256": "ab" * 32})
    assert rec.state == State.COMPLETED and rec.shredded and rec.extension_months == 2
    kinds = [e.kind for e in ledger.events("req-0001")]
    assert kinds == ["submitted", "identity_verified", "extended", "scoped",
                     "unlearning_started", "audit_recorded", "unlearning_started",
                     "audit_recorded", "completed"]
    assert ledger.verify().ok


def test_failure_retry_and_reject(ledger: Ledger) -> None:
    for i in (1, 2):
        ledger.submit(make_request(i))
        ledger.verify_identity(f"req-{i:04d}")
        ledger.scope(f"req-{i:04d}")
        ledger.start_unlearning(f"req-{i:04d}", method="npo")
    ledger.fail("req-0001", reason="out of memory", retryable=True)
    ledger.start_unlearning("req-0001", method="npo")  # retry re-enters unlearning
    ledger.fail("req-0002", reason="model missing", retryable=False)
    with pytest.raises(IllegalTransitionError, match="not retryable"):
        ledger.start_unlearning("req-0002", method="npo")
    ledger.submit(make_request(3))
    assert ledger.reject("req-0003", reason="Art. 17(3)(b) legal obligation").state == State.REJECTED


def test_deadlines_pause_extend_and_overdue(ledger: Ledger) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=75)
    ledger.submit(make_request(1, received_at=old))                   # never verified: paused
    ledger.submit(make_request(2, received_at=old))
    ledger.verify_identity("req-0002", at=old + timedelta(days=1))    # due 74 days - 1 month ago
    ledger.submit(make_request(3))
    ledger.verify_identity("req-0003")
    r1, r2, r3 = (ledger.get(f"req-000{i}") for i in (1, 2, 3))
    assert r1.paused and not r1.overdue and r1.days_left() >= 27
    assert r2.overdue and r2.days_left() < 0
    assert not r3.overdue and 27 <= r3.days_left() <= 31
    assert [r.request_id for r in ledger.list(overdue=True)] == ["req-0002"]
    with pytest.raises(DeadlineError, match="already passed"):
        ledger.extend("req-0002", months=2, reason="too late")
    ledger.extend("req-0003", months=2, reason="complex")
    assert ledger.get("req-0003").days_left() >= 88
    with pytest.raises(DeadlineError, match="once"):
        ledger.extend("req-0003", months=1, reason="again")
    ledger.extend("req-0001", months=1, reason="identity documents pending")
    finish(ledger, "req-0003")
    assert ledger.list(overdue=True)[0].request_id == "req-0002"


def test_verification_time_is_checked(ledger: Ledger) -> None:
    ledger.submit(make_request(1))
    with pytest.raises(InvalidRequestError):
        ledger.verify_identity("req-0001", at=datetime.now(UTC) + timedelta(days=2))
    with pytest.raises(InvalidRequestError):
        ledger.verify_identity("req-0001", at=datetime.now(UTC) - timedelta(days=2))


def test_request_from_json_file_round_trip(tmp_path: Path) -> None:
    req = make_request(3, models=("tiny",))
    again = DeletionRequest.from_json(json.dumps(req.to_dict()))
    assert again == req
    assert "Testperson" not in repr(req) and "example.org" not in repr(req)
