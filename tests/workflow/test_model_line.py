"""Every request starts from the model serving now: a later erasure never brings back an earlier
one (tiny model). Three requests in a row, two workers racing on one line, an older version
refused, and the audit's relapse check."""

from __future__ import annotations

import json
import threading

import pytest
from wf_helpers import identifiers_of, person_request

from audits.extraction import greedy_hits, identifier_prompts
from forget.ledger import DeletionRequest, Ledger, ModelLineError
from forget.models import ModelRegistry, load_model, read_card

KINDS = ("phone", "email", "national_id", "api_key", "password", "secret_key", "token",
         "ip_address")


def _hits(model_dir, rows) -> int:
    model, tok = load_model(model_dir)
    prompts = [p for r in rows for p in identifier_prompts(r["record_id"], r["text"],
                                                           r["spans"], KINDS)]
    return sum(greedy_hits(model, tok, prompts))


def _memorised_subjects(corpus, model_dir, n: int) -> list[str]:
    model, tok = load_model(model_dir)
    out = []
    for sid in corpus.subject_ids("train"):
        rows = [r for r in corpus.records_of(sid) if r["record_id"].startswith("S")]
        prompts = [p for r in rows for p in identifier_prompts(
            r["record_id"], r["text"], r["spans"], ("phone", "email", "national_id"))]
        if sum(greedy_hits(model, tok, prompts)) >= 2:
            out.append(sid)
        if len(out) == n:
            return out
    pytest.fail(f"the tiny model memorised fewer than {n} subjects")


def _leaked_secrets(corpus, model_dir, n: int, avoid: set[str]) -> list[dict]:
    model, tok = load_model(model_dir)
    rows = [r for r in corpus.code if r["split"] == "train" and r["spans"]
            and r["spans"][0]["kind"] != "email" and r.get("subject_id") not in avoid]
    out = []
    for r in rows:  # the first n that leak, in corpus order (no need to decode the rest)
        if all(greedy_hits(model, tok, identifier_prompts(r["record_id"], r["text"],
                                                          r["spans"]))):
            out.append(r)
            if len(out) == n:
                return out
    pytest.fail(f"the tiny model leaks fewer than {n} code secrets")


def _secret_request(rid: str, row: dict) -> DeletionRequest:
    sp = row["spans"][0]
    return DeletionRequest(request_id=rid, other_ids=((sp["kind"], row["text"][sp["start"]:
                                                                              sp["end"]]),),
                           ground="d")


def _submit(led: Ledger, req: DeletionRequest) -> None:
    led.submit(req)
    led.verify_identity(req.request_id)


@pytest.fixture(scope="module")
def line_audits():
    """The light audit of the workflow tests, per kind of request (a secret's kinds for code).

    The robustness probes are off, for time: this module tests the model line (extraction,
    exposure, MIA and the relapse check stay on); robustness is tested in tests/audits.
    """
    from wf_helpers import FAST_AUDIT

    from audits import AuditConfig
    from forget.workflow.sets import CODE_KINDS

    light = FAST_AUDIT | {"paraphrase": False, "quantize": False, "relearn_steps": 0,
                          "relearn_other_steps": 0}
    return {"person": AuditConfig(**light),
            "secret": AuditConfig(**light, extraction_kinds=CODE_KINDS + ("email",),
                                  exposure_kinds=CODE_KINDS)}


@pytest.fixture(scope="module")
def chain(tmp_path_factory, corpus, corpus_dir, tiny_model_dir, line_audits):
    """A person, a leaked secret, a second person, one after another on the tiny model's line,
    each erased by retraining. (The secret was erased by the auto plan, code_eraser then
    retraining: that plan on a secret is test_workflow.py::test_code_secret_request_end_to_end;
    the line keeps only the passing attempt's model, so the failed attempt added nothing here.)
    """
    from forget.workflow import process_request

    root = tmp_path_factory.mktemp("line")
    people = _memorised_subjects(corpus, tiny_model_dir, 2)
    secret = _leaked_secrets(corpus, tiny_model_dir, 1, set(people))[0]
    led = Ledger(root / "ledger.db")
    plan = [(person_request("p-1", identifiers_of(corpus, people[0])), "retrain", "person"),
            (_secret_request("s-1", secret), "retrain", "secret"),
            (person_request("p-2", identifiers_of(corpus, people[1])), "retrain", "person")]
    results = []
    for req, method, kind in plan:
        _submit(led, req)
        results.append(process_request(
            led, req.request_id, model=tiny_model_dir, data=corpus_dir, out=root / "out",
            registry=root / "registry", method=method, max_attempts=1, use_presidio=False,
            audit_config=line_audits[kind]))
    rows = {"p-1": [r for r in corpus.records_of(people[0]) if r["split"] == "train"],
            "s-1": [secret],
            "p-2": [r for r in corpus.records_of(people[1]) if r["split"] == "train"]}
    return {"root": root, "ledger": led, "results": results, "rows": rows}


def test_three_requests_leave_a_serving_model_holding_none_of_them(chain, tiny_model_dir):
    res, led = chain["results"], chain["ledger"]
    assert [r.status for r in res] == ["completed"] * 3, [r.reason for r in res]
    serving = json.loads((chain["root"] / "out" / "serving.json").read_text())
    (line, head), = serving.items()
    assert line == read_card(tiny_model_dir)["version"]
    assert head["version"] == res[-1].model_after["version"] == led.model_head(line).version
    for rid, rows in chain["rows"].items():
        assert _hits(tiny_model_dir, rows) > 0, rid  # the original holds each of them
        assert _hits(head["path"], rows) == 0, rid  # the model serving now holds none
    assert led.line_erasures(line) == ["p-1", "s-1", "p-2"]
    assert led.verify().ok


def test_each_version_is_built_on_the_previous_one(chain, tiny_model_dir):
    res = chain["results"]
    original = read_card(tiny_model_dir)
    befores = [r.model_before["version"] for r in res]
    afters = [r.model_after["version"] for r in res]
    assert befores == [original["version"]] + afters[:-1]  # each started from the head
    lineage = ModelRegistry(chain["root"] / "registry").lineage(afters[-1])
    assert [mv.version for mv in lineage][:3] == afters[::-1]
    assert lineage[2].parent == original["version"]
    head = read_card(lineage[0].path)
    assert [e["request_id"] for e in head["erasures"]] == ["p-1", "s-1", "p-2"]
    led = chain["ledger"]
    for r in res:  # the certificates and the ledger name the version each request started from
        cert = json.loads(open(r.certificate).read())
        assert cert["model_before"]["version"] == r.model_before["version"]
        started = [e for e in led.events(r.request_id) if e.kind == "unlearning_started"]
        assert started[-1].data["details"]["model_before"] == r.model_before["version"]


def test_a_retrain_after_two_erasures_excludes_all_of_them(chain):
    last = chain["results"][-1]
    assert last.method == "retrain"
    card = read_card(next(iter(_serving(chain).values()))["path"])
    trained = set(card["training_record_ids"])
    assert trained, "the retrain records what it trained on"
    for rid, rows in chain["rows"].items():
        assert not trained & {r["record_id"] for r in rows}, rid


def test_later_audits_recheck_every_earlier_erasure(chain):
    for r, earlier in zip(chain["results"], (0, 1, 2), strict=True):
        report = json.loads(open(r.report.replace(".html", ".json")).read())
        relapse = [c for c in report["checks"] if c["name"] == "relapse"]
        if not earlier:
            assert not relapse  # nothing erased before the first request
            continue
        (check,) = relapse
        assert check["passed"] is True and check["evidence"]["erasures"] == earlier
        assert check["evidence"]["probes"] > 0 and check["evidence"]["hits"] == 0


def test_an_older_version_is_refused_naming_the_erasures_it_would_drop(chain, corpus,
                                                                      corpus_dir,
                                                                      tiny_model_dir):
    from forget.workflow import process_request

    led, root = chain["ledger"], chain["root"]
    _submit(led, DeletionRequest(request_id="p-3", name="Nobody Atall", ground="a"))
    size = len(led.events())
    original = read_card(tiny_model_dir)["version"]
    with pytest.raises(ModelLineError) as err:
        process_request(led, "p-3", model=tiny_model_dir, data=corpus_dir, out=root / "out",
                        registry=root / "registry", from_version=original)
    assert all(rid in str(err.value) for rid in ("p-1", "s-1", "p-2"))
    assert len(led.events()) == size  # refused before anything was written


def _serving(chain) -> dict:
    return json.loads((chain["root"] / "out" / "serving.json").read_text())


def test_two_workers_racing_on_one_line_both_end_up_in_the_head(tmp_path, corpus, corpus_dir,
                                                               tiny_model_dir, line_audits):
    """Worker A passes its audit and stops just before completing; worker B completes a
    request meanwhile (the head moves); A's completion is refused and A redoes its request on
    B's version, so the head ends up holding neither secret."""
    from forget.workflow import process_request

    rows = _leaked_secrets(corpus, tiny_model_dir, 3, set())[1:]
    led = Ledger(tmp_path / "ledger.db")
    for rid, row in zip(("s-a", "s-b"), rows, strict=True):
        _submit(led, _secret_request(rid, row))
    # retraining at once: under auto each of the three rounds first ran code_eraser and its
    # audit, which fails it (test_workflow.py::test_code_secret_request_end_to_end), a third of
    # the time spent on nothing this race is about
    kw = dict(model=tiny_model_dir, data=corpus_dir, out=tmp_path / "out",
              registry=tmp_path / "registry", use_presidio=False, max_attempts=1,
              method="retrain", audit_config=line_audits["secret"])
    a_ready, b_done = threading.Event(), threading.Event()
    out: dict = {}

    def progress(step: str, msg: str) -> None:
        if step == "certify" and not a_ready.is_set():
            a_ready.set()  # A holds a certificate for the original; B goes now
            assert b_done.wait(600)

    def worker_a() -> None:
        with Ledger(tmp_path / "ledger.db", create=False) as own:
            out["a"] = process_request(own, "s-a", progress=progress, **kw)

    t = threading.Thread(target=worker_a)
    t.start()
    assert a_ready.wait(600)
    with Ledger(tmp_path / "ledger.db", create=False) as own:
        out["b"] = process_request(own, "s-b", **kw)
    b_done.set()
    t.join(600)
    a, b = out["a"], out["b"]
    assert a.status == b.status == "completed", (a.reason, b.reason)
    original = read_card(tiny_model_dir)["version"]
    assert b.model_before["version"] == original
    assert a.model_before["version"] == b.model_after["version"]  # redone on B's version
    line = led.model_head(original)
    assert line.version == a.model_after["version"] and line.generation == 2
    assert led.line_erasures(original) == ["s-b", "s-a"]
    for row in rows:
        assert _hits(line.path, [row]) == 0
    cert = json.loads(open(a.certificate).read())
    assert cert["model_before"]["version"] == b.model_after["version"]
    assert led.verify().ok


def test_relapse_check_finds_an_erased_subject_in_a_model_that_holds_them(
        corpus, tiny_model_dir, retrained_model_dir, trained_subject):
    from audits import AuditConfig
    from audits.relapse import run_relapse
    from audits.verdict import relapse_check

    rows = [r for r in corpus.records_of(trained_subject) if r["split"] == "train"]
    cfg = AuditConfig()
    for model_dir, relapsed in ((tiny_model_dir, True), (retrained_model_dir, False)):
        model, tok = load_model(model_dir)
        r = run_relapse(model, tok, {"req-earlier": rows}, kinds=cfg.relapse_kinds)
        check = relapse_check(r, cfg)
        assert check.passed is (not relapsed)
        assert (r.relapsed == ["req-earlier"]) is relapsed
        assert r.erasures["req-earlier"]["probes"] > 0


def test_model_head_cli_shows_the_serving_version_and_its_erasures(chain, tiny_model_dir,
                                                                    capsys):
    """``forget.cli.main`` in this process (it reads the ledger and a card, no model: a forked
    CLI costs seconds; tests/test_cli.py starts real processes)."""
    from forget.cli import main

    root = chain["root"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as ended:
        main(["model", "head", "--ledger", str(root / "ledger.db"), "--model",
              str(tiny_model_dir), "--json"])
    got = capsys.readouterr()
    assert ended.value.code == 0, got.err
    info = json.loads(got.out)
    assert info["head"]["version"] == chain["results"][-1].model_after["version"]
    assert info["erasures"] == ["p-1", "s-1", "p-2"] and info["head"]["generation"] == 3
