"""Kill the workflow with SIGKILL at every step, run it again: it resumes, and the end state
equals an uninterrupted run's."""

from __future__ import annotations

import json

from wf_helpers import LIGHT_AUDIT, identifiers_of, person_request, run_cli

from forget.ledger import Ledger

FAULTS = [f"{step}:{when}" for step in ("scope", "unlearn", "audit", "guard", "certify",
                                        "complete") for when in ("before", "after")]


def _setup(root, corpus, subject):
    led = Ledger(root / "ledger.db")
    led.submit(person_request("req-kill", identifiers_of(corpus, subject)))
    led.verify_identity("req-kill")
    led.close()
    # No robustness probes: an exact retrain's recovery is reported, never judged
    # (EXACT_AUDIT), and the kills before and after the audit step do not depend on them.
    (root / "audit.json").write_text(json.dumps(LIGHT_AUDIT))


def _args(root, model, data):
    return ["process", "req-kill", "--ledger", str(root / "ledger.db"), "--model", str(model),
            "--data", str(data), "--out", str(root / "out"), "--method", "retrain",
            "--registry", str(root / "registry"), "--audit-config", str(root / "audit.json")]


def _end_state(root) -> dict:
    led = Ledger(root / "ledger.db")
    rec = led.get("req-kill")
    cert = json.loads((root / "out" / "req-kill" / "certificate.json").read_text())
    state = {"state": rec.state.value, "shredded": rec.shredded, "chain_ok": led.verify().ok,
             "steps": sorted((k, v.status) for k, v in led.steps("req-kill").items()),
             "model_after": cert["model_after"]["sha256"], "verdict": cert["audit"]["verdict"],
             "serving": json.loads((root / "out" / "serving.json").read_text())}
    state["serving"] = [v["version"] for v in state["serving"].values()]
    led.close()
    return state


def test_kill_at_every_step_and_resume(tmp_path, corpus, corpus_dir, tiny_model_dir,
                                       trained_subject):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    for root in (killed, clean):
        root.mkdir()
        _setup(root, corpus, trained_subject)
    for fault in FAULTS:
        res = run_cli(*_args(killed, tiny_model_dir, corpus_dir),
                      env={"FORGET_FAULT_INJECT": fault})
        assert res.returncode == -9, f"{fault}: exit {res.returncode}\n{res.stderr[-1500:]}"
        led = Ledger(killed / "ledger.db")
        assert led.verify().ok, fault
        led.close()
    final = run_cli(*_args(killed, tiny_model_dir, corpus_dir))
    assert final.returncode == 0, final.stderr[-2000:]
    once = run_cli(*_args(clean, tiny_model_dir, corpus_dir))
    assert once.returncode == 0, once.stderr[-2000:]
    a, b = _end_state(killed), _end_state(clean)
    assert a["state"] == "completed" and a["shredded"] and a["chain_ok"]
    assert {k: v for k, v in a.items() if k != "serving"} == \
        {k: v for k, v in b.items() if k != "serving"}
    assert len(a["serving"]) == 1 and a["serving"] == b["serving"]
