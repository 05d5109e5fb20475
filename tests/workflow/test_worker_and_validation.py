"""Validation first (nothing written on bad input) and a worker that cannot spin (retry budget,
backoff in the ledger, configuration errors fail once, --once terminates, a safe traceback).

No model is trained here: validation stops before a model would be loaded, and the worker's
workflow is replaced by a stand-in that fails the way a test needs."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

import forget.workflow
from forget.errors import (
    DataNotFoundError,
    InvalidInputError,
    ModelNotFoundError,
    UnknownMethodError,
)
from forget.ledger import DeletionRequest, Ledger
from forget.worker import RetryPolicy, run_worker
from forget.workflow import process_request

PERSON = dict(name="Ada Example", emails=("ada.example@example.org",),
              phones=("+44 20 7946 0001",), ground="a")


@pytest.fixture
def setup(tmp_path):
    """A ledger with one verified request, a model folder with a card, a data folder."""
    model, data = tmp_path / "model", tmp_path / "data"
    model.mkdir()
    (model / "forget_model.json").write_text(json.dumps({"version": "mv-test", "sha256": "0"}))
    data.mkdir()
    led = Ledger(tmp_path / "ledger.db")
    led.submit(DeletionRequest(request_id="r-1", **PERSON))
    led.verify_identity("r-1")
    yield led, model, data, tmp_path / "out"
    led.close()


def _nothing_written(led, out: Path, events: int) -> None:
    assert len(led.events()) == events  # no ledger event
    assert not out.exists()  # no file
    assert led.get("r-1").state.value == "identity_verified"


@pytest.mark.parametrize("kw, error, says", [
    ({"method": "npoo"}, UnknownMethodError, "npo"),
    ({"method": "npo", "method_config": {"max_stepz": 3}}, InvalidInputError, "max_stepz"),
    ({"method": "auto", "method_config": {"no_such_field": 1}}, InvalidInputError,
     "no_such_field"),
    ({"model": "missing"}, ModelNotFoundError, "does not exist"),
    ({"data": "missing"}, DataNotFoundError, "does not exist"),
    ({"audit_config": {"bootstrap": 3}}, InvalidInputError, "AuditConfig"),
    ({"retrained": "missing"}, ModelNotFoundError, "does not exist"),
])
def test_bad_input_is_refused_before_the_first_ledger_transition(setup, kw, error, says):
    led, model, data, out = setup
    base = {"model": model, "data": data}
    kw = {k: (model.parent / "nowhere" if v == "missing" else v) for k, v in kw.items()}
    events = len(led.events())
    with pytest.raises(error, match=says):
        process_request(led, "r-1", out=out, **(base | kw))
    _nothing_written(led, out, events)


def test_a_misconfigured_worker_stops_before_claiming(setup):
    led, model, data, out = setup
    events = len(led.events())
    with pytest.raises(UnknownMethodError):
        run_worker(led, model=model, data=data, out=out, method="typo", once=True)
    _nothing_written(led, out, events)
    with pytest.raises(ModelNotFoundError):
        run_worker(led, model=model.parent / "nowhere", data=data, out=out, once=True)
    _nothing_written(led, out, events)


def test_a_configuration_error_of_one_request_fails_it_once(setup):
    from audits import AuditConfig

    led, model, data, out = setup
    led.submit(DeletionRequest(request_id="r-2", other_ids=(("concept", "red"),), ground="a"))
    led.verify_identity("r-2")
    led.reject("r-1", reason="not needed here")
    stats = run_worker(led, model=model, data=data, out=out, once=True,
                       audit_config=AuditConfig())  # a concept needs a ConceptAuditConfig
    assert [p["status"] for p in stats.processed] == ["failed"]
    rec = led.get("r-2")
    assert rec.state.value == "failed" and not rec.retryable
    fails = [e for e in led.events("r-2") if e.kind == "failed"]
    assert len(fails) == 1 and "ConceptAuditConfig" in fails[0].data["reason"]
    assert not [e for e in led.events("r-2") if e.kind in ("unlearning_started", "step")]
    assert run_worker(led, model=model, data=data, out=out, once=True).processed == []


class Boom(RuntimeError):
    pass


def _boom(*args, **kw):
    raise Boom(f"failed on {PERSON['emails'][0]}")  # a message holding personal data


def test_unexpected_errors_back_off_then_spend_the_retry_budget(setup, monkeypatch, caplog):
    led, model, data, out = setup
    monkeypatch.setattr(forget.workflow, "process_request", _boom)
    caplog.set_level(logging.INFO, logger="forget.worker")
    policy = RetryPolicy(max_attempts=3, base_s=0.0)
    t0 = time.monotonic()
    for attempt in (1, 2):  # --once always returns, however the request fails
        stats = run_worker(led, model=model, data=data, out=out, once=True, retry=policy)
        assert [p["status"] for p in stats.processed] == ["error"]
        rec = led.get("r-1")
        assert rec.state.value == "failed" and rec.retryable
        last = [e for e in led.events("r-1") if e.kind == "failed"][-1]
        assert last.data["details"]["attempt"] == attempt and "retry_after" in last.data
    stats = run_worker(led, model=model, data=data, out=out, once=True, retry=policy)
    assert [p["status"] for p in stats.processed] == ["failed"]
    rec = led.get("r-1")
    assert rec.state.value == "failed" and not rec.retryable
    assert "retry budget spent" in [e for e in led.events("r-1") if e.kind == "failed"][-1] \
        .data["reason"]
    assert run_worker(led, model=model, data=data, out=out, once=True).processed == []
    assert time.monotonic() - t0 < 60 and led.verify().ok
    log = "\n".join(r.getMessage() for r in caplog.records)
    assert "Traceback" in log and "_boom" in log and "Boom" in log
    assert "ada" not in log.lower() and "example.org" not in log  # no message, no data


def test_a_backoff_keeps_every_worker_off_the_request_until_it_passes(setup, monkeypatch):
    led, model, data, out = setup
    monkeypatch.setattr(forget.workflow, "process_request", _boom)
    policy = RetryPolicy(max_attempts=5, base_s=1.5)
    run_worker(led, model=model, data=data, out=out, once=True, retry=policy)
    ev = [e for e in led.events("r-1") if e.kind == "failed"][-1]
    assert ev.data["backoff_s"] == 1.5
    assert led.claim("another-worker", 60) is None  # waiting out the backoff
    time.sleep(1.7)
    assert led.claim("another-worker", 60).request_id == "r-1"
    assert led.verify().ok


def test_once_never_spins_on_a_request_that_is_claimable_again_at_once(setup, monkeypatch):
    led, model, data, out = setup
    monkeypatch.setattr(forget.workflow, "process_request", _boom)
    stats = run_worker(led, model=model, data=data, out=out, once=True,
                       retry=RetryPolicy(max_attempts=100, base_s=0.0))
    assert len(stats.processed) == 1
    assert sum(e.kind == "claimed" for e in led.events("r-1")) <= 2
