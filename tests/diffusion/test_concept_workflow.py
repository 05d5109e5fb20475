"""A request of kind "concept" goes through the same ledger and workflow as a person's: it
waits for identity verification, is scoped, erased, audited with controls, certified and
completed, and the concept is crypto-shredded with the request's key."""

from __future__ import annotations

import json

import pytest

from audits.concept import ConceptAuditConfig
from forget.ledger import DeletionRequest, Ledger, ShreddedError
from forget.workflow import process_request


def concept_request(request_id: str, concept: str) -> DeletionRequest:
    return DeletionRequest(request_id=request_id, other_ids=(("concept", concept),), ground="c")


@pytest.fixture(scope="module")
def concept_run(tiny_world, tmp_path_factory):
    from forget.models import read_card, weights_sha256

    root = tmp_path_factory.mktemp("concept-run")
    led = Ledger(root / "ledger.db")
    led.submit(concept_request("req-concept", "Blue"))
    kw = {"model": tiny_world["pipeline"], "data": tiny_world["data"], "out": root / "out",
          "registry": root / "registry",
          # A short probe: this test asserts that it ran and is in the report; its strength
          # is red_erasure's (test_text_encoder.py, with the control attack on the original).
          "audit_config": ConceptAuditConfig(ti_steps=10, ti_control=False),
          # "blue" fails its first audit and passes the retry (2 x max_steps, spent whole):
          # 50 steps keep that path at half the default's 200 (100 whole pass for blue).
          "method_config": {"max_steps": 50}}
    waiting = process_request(led, "req-concept", **kw)
    led.verify_identity("req-concept")
    res = process_request(led, "req-concept", **kw)
    again = process_request(led, "req-concept", **kw)
    return {"led": led, "res": res, "waiting": waiting, "again": again, "root": root,
            "original_ok": weights_sha256(tiny_world["pipeline"])
            == read_card(tiny_world["pipeline"])["sha256"]}


def test_concept_request_completes_with_certificate(concept_run):
    from forget import certificate

    res = concept_run["res"]
    assert concept_run["waiting"].status == "waiting_identity"
    assert res.status == "completed", res.reason
    assert res.method == "text_encoder" and res.scope["kind"] == "concept"
    assert res.scope["records"] == 3  # "a blue circle/square/triangle"
    cert = certificate.Certificate.read(res.certificate)
    assert certificate.verify(cert, ledger=concept_run["led"]).ok
    assert cert.model_after["sha256"] != cert.model_before["sha256"]
    report = json.loads((res.report and __import__("pathlib").Path(res.report)
                         .with_suffix(".json")).read_text())
    assert report["verdict"] == "pass" and report["circumvention"]["ran"]
    # issue 20: after crypto-shredding, no report names the concept in clear
    for path in concept_run["root"].joinpath("out").rglob("report.json"):
        assert "blue" not in path.read_text().lower(), path
    assert concept_run["original_ok"]
    assert concept_run["again"].status == "completed"  # a finished request is not redone


def test_ledger_holds_the_steps_but_not_the_concept(concept_run):
    led = concept_run["led"]
    assert led.verify().ok
    steps = led.steps("req-concept")
    for step in ("verify", "scope", "unlearn-1", "audit-1", "guard", "certify"):
        assert steps[step].status == "done", step
    assert steps["guard"].details["applies"] is False
    blob = json.dumps([e.data for e in led.events("req-concept")]).lower()
    assert "blue" not in blob
    with pytest.raises(ShreddedError):
        led.identifiers("req-concept")


def test_unknown_concept_fails_the_request(tiny_world, tmp_path):
    led = Ledger(tmp_path / "ledger.db")
    led.submit(concept_request("req-purple", "purple"))
    led.verify_identity("req-purple")
    res = process_request(led, "req-purple", model=tiny_world["pipeline"],
                          data=tiny_world["data"], out=tmp_path / "out")
    assert res.status == "failed" and "names the concept" in res.reason
