"""Batched requests (issue 22): three requests against the tiny model's line, ONE retrain for
all of them, then each request its own audit, certificate and ledger trail.

The third request names its person by e-mail only, so scoping finds only the records holding
that e-mail; the person's other records (the name with the phone or the national id) stay in
the training data, and the audit on the batch's model still finds the person (exposure and
membership fail). That request is neither certified nor completed, and does not hold the
other two back; redone on its own from the new head it fails again, for good. A request near
its deadline is not held for a fuller batch.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from wf_helpers import LIGHT_AUDIT, identifiers_of, person_request

from forget.ledger import DeletionRequest, Ledger
from forget.ledger.errors import IllegalTransitionError
from forget.models import ModelRegistry, read_card

LIGHT = LIGHT_AUDIT  # no robustness probes: this module is about batching


def _kinds(row: dict) -> set[str]:
    return {s["kind"] for s in row["spans"]}


def _partly_named(corpus) -> str:
    """A trained subject with records holding the e-mail and the phone, and records holding the
    phone without the e-mail: a request naming only the e-mail misses the latter."""
    for sid in corpus.subject_ids("train"):
        rows = [r for r in corpus.records_of(sid) if r["split"] == "train"]
        if (any({"email", "phone"} <= _kinds(r) for r in rows)
                and any("phone" in _kinds(r) and "email" not in _kinds(r) for r in rows)):
            return sid
    pytest.fail("no subject of the test corpus has records only a full request finds")


def _submit(led: Ledger, req: DeletionRequest) -> None:
    led.submit(req)
    led.verify_identity(req.request_id)


@pytest.fixture(scope="module")
def batched(tmp_path_factory, corpus, corpus_dir, tiny_model_dir):
    from audits import AuditConfig
    from forget.workflow import process_batch

    root = tmp_path_factory.mktemp("batch")
    partial = _partly_named(corpus)
    full = [s for s in corpus.subject_ids("train") if s != partial][:2]
    led = Ledger(root / "ledger.db")
    for rid, sid in zip(("b-1", "b-2"), full, strict=True):
        _submit(led, person_request(rid, identifiers_of(corpus, sid)))
    email = identifiers_of(corpus, partial)["email"]
    _submit(led, DeletionRequest(request_id="b-3", emails=(email,), ground="a"))
    said: list[str] = []
    res = process_batch(led, model=tiny_model_dir, data=corpus_dir, out=root / "out",
                        registry=root / "registry", method="retrain", use_presidio=False,
                        audit_config=AuditConfig(**LIGHT), retry_alone=False,
                        progress=lambda step, msg: said.append(msg))
    return {"root": root, "ledger": led, "result": res, "said": said}


def test_three_requests_one_unlearning_run(batched, tiny_model_dir):
    res, led, root = batched["result"], batched["ledger"], batched["root"]
    (run,) = res.runs  # one run of the method for the three requests
    assert run.method == "retrain" and run.requests == ["b-1", "b-2", "b-3"]
    assert [p.name for p in (root / "out" / "batches").iterdir()] == [run.batch_id]
    original = read_card(tiny_model_dir)["version"]
    made = [mv for mv in ModelRegistry(root / "registry").list() if mv.parent == original]
    assert [mv.version for mv in made] == [run.model["version"]]  # one new model
    assert sum("one retrain run for 3 requests" in m for m in batched["said"]) == 1
    for rid in run.requests:  # each its own trail, naming the batch and its own audit
        started = [e for e in led.events(rid) if e.kind == "unlearning_started"]
        assert len(started) == 1 and started[0].data["details"]["batch"] == run.batch_id
        assert started[0].data["details"]["model_before"] == original
        audits = [e for e in led.events(rid) if e.kind == "audit_recorded"]
        assert len(audits) == 1
        report = root / "out" / rid / "attempt-1" / "audit" / "report.json"
        assert audits[0].data["details"]["report_sha256"] == _sha(report)
    reports = {json.loads((root / "out" / r / "attempt-1" / "audit" / "report.json")
                          .read_text())["subject_id"] for r in run.requests}
    assert len(reports) == 3  # three reports, one per request


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_failing_audit_does_not_hold_back_the_others(batched):
    from forget import certificate as C

    res, led, root = batched["result"], batched["ledger"], batched["root"]
    run = res.runs[0]
    status = {o.request_id: o.status for o in res.outcomes}
    assert status == {"b-1": "completed", "b-2": "completed", "b-3": "audit_failed"}
    assert run.passed == ["b-1", "b-2"] and run.failed_audit == ["b-3"]
    for rid in ("b-1", "b-2"):  # its own certificate, on the batch's model, verified
        cert = C.Certificate.read(root / "out" / rid / "certificate.json")
        assert cert.request_id == rid and cert.model_after["version"] == run.model["version"]
        assert C.verify(cert, ledger=led).ok
    assert not (root / "out" / "b-3" / "certificate.json").exists()
    rec = led.get("b-3")
    assert rec.state.value == "auditing" and rec.audit_passed is False
    with pytest.raises(IllegalTransitionError):
        led.complete("b-3")  # the ledger refuses it too
    line = run.model and read_card(root / "out" / "batches" / run.batch_id / "model")["line"]
    assert led.model_head(line).version == run.model["version"]  # the batch's model serves
    assert led.line_erasures(line) == ["b-1", "b-2"]
    head = read_card(root / "out" / "batches" / run.batch_id / "model")
    assert [e["request_id"] for e in head["erasures"]] == ["b-1", "b-2", "b-3"]
    assert led.verify().ok


def test_the_failing_request_redone_alone_from_the_new_head_is_never_completed(
        batched, corpus_dir, tiny_model_dir):
    """Redone on its own (here one cheap gradient step, no fallback): it starts from the batch's
    model, continues its attempt numbering, and fails for good; nothing is certified."""
    from audits import AuditConfig
    from forget.workflow import process_request

    led, root, run = batched["ledger"], batched["root"], batched["result"].runs[0]
    res = process_request(led, "b-3", model=tiny_model_dir, data=corpus_dir, out=root / "out",
                          registry=root / "registry", method="gradient_ascent",
                          method_config={"max_steps": 1}, max_attempts=1, allow_retrain=False,
                          use_presidio=False, audit_config=AuditConfig(**LIGHT))
    assert res.status == "failed" and [a["attempt"] for a in res.attempts] == [2]
    started = [e for e in led.events("b-3") if e.kind == "unlearning_started"]
    assert started[-1].data["details"]["model_before"] == run.model["version"]
    assert led.get("b-3").state.value == "failed" and not led.get("b-3").retryable
    assert not (root / "out" / "b-3" / "certificate.json").exists()
    assert "b-3" not in led.line_erasures(res.model_before["line"])
    assert led.verify().ok


def test_a_request_near_its_deadline_is_not_held_for_a_fuller_batch(
        tmp_path, corpus, corpus_dir, tiny_model_dir):
    """A worker batching 5 at a time holds a lone request a month from its deadline, and
    processes it at once when its deadline is within the margin (here a margin of 31 days:
    a request just received is due in at most a month)."""
    from forget.worker import run_worker
    from forget.workflow import BatchPolicy

    sid = corpus.subject_ids("holdout")[0]  # never trained on: quick to process (no records)
    led = Ledger(tmp_path / "ledger.db")
    _submit(led, person_request("d-1", identifiers_of(corpus, sid)))
    kw = {"model": tiny_model_dir, "data": corpus_dir, "out": tmp_path / "out",
          "registry": tmp_path / "registry", "once": True, "use_presidio": False,
          "method": "retrain"}
    held = run_worker(led, batch=BatchPolicy(max_size=5, min_size=5), **kw)
    assert held.processed == [] and led.get("d-1").state.value == "identity_verified"
    assert (led.get("d-1").due_at - datetime.now(UTC)).days >= 27
    now = run_worker(led, batch=BatchPolicy(max_size=5, min_size=5, deadline_margin_days=31),
                     **kw)
    assert [(p["request_id"], p["batch_reason"]) for p in now.processed] == [("d-1", "deadline")]
    assert led.get("d-1").state.value == "failed"  # processed: nothing of it was trained on
    assert led.verify().ok


def test_forget_process_batch_on_the_command_line(tmp_path, corpus, corpus_dir, tiny_model_dir,
                                                  capsys):
    """`forget process --batch` takes every pending request (here two people the model never
    saw: each fails at scoping, no unlearning run), writes outcome-batch.json, exits 1; a
    request id with --batch is refused before anything is written (exit 2). ``forget.cli.main``
    runs in this process (no model is trained or audited: a forked CLI costs seconds;
    tests/test_cli.py and test_resume.py start CLI processes)."""
    from forget.cli import main

    def run_cli(*args: str):
        with pytest.raises(SystemExit) as ended:
            main(list(args))
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=ended.value.code, stdout=out, stderr=err)

    db, out = tmp_path / "ledger.db", tmp_path / "out"
    led = Ledger(db)
    for i, sid in enumerate(corpus.subject_ids("holdout")[:2]):
        _submit(led, person_request(f"c-{i}", identifiers_of(corpus, sid)))
    args = ["--ledger", str(db), "--model", str(tiny_model_dir), "--data", str(corpus_dir),
            "--out", str(out), "--registry", str(tmp_path / "registry"), "--method", "retrain"]
    bad = run_cli("process", "c-0", "--batch", *args)
    assert bad.returncode == 2 and not out.exists(), bad.stdout + bad.stderr
    done = run_cli("process", "--batch", "--batch-size", "1", *args)
    assert done.returncode == 1, done.stdout + done.stderr
    summary = json.loads((out / "outcome-batch.json").read_text())
    assert [(o["request_id"], o["status"]) for o in summary["outcomes"]] == [
        ("c-0", "failed"), ("c-1", "failed")] and summary["runs"] == []
    assert all(led.get(f"c-{i}").state.value == "failed" for i in range(2))
