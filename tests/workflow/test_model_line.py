"""Every request starts from the model serving now: a later erasure never brings back an earlier
one (tiny model). Three requests on one line (the last two by workers racing), an older version
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
    from wf_helpers import LIGHT_AUDIT as light

    from audits import AuditConfig
    from forget.workflow.sets import CODE_KINDS

    return {"person": AuditConfig(**light),
            "secret": AuditConfig(**light, extraction_kinds=CODE_KINDS + ("email",),
                                  exposure_kinds=CODE_KINDS)}


@pytest.fixture(scope="module")
def chain(tmp_path_factory, corpus, corpus_dir, tiny_model_dir, line_audits):
    """Three erasures on the tiny model's line, each by retraining: a person (p-1), then two
    leaked secrets by two workers racing on the line. Worker A passes its audit of s-a and
    stops just before completing; worker B completes s-b meanwhile (the head moves); A's
    completion is refused and A redoes s-a on B's version. The requests complete in the order
    p-1, s-b, s-a, each on the previous one's version.

    (Once a line of three requests in a row and, on a line of its own, the race: six
    retrainings where this makes four, for the same claims. The secrets were erased by the auto
    plan, code_eraser then retraining: that plan on a secret is
    test_workflow.py::test_code_secret_request_end_to_end; a failed attempt's model never
    joins the line.)
    """
    from forget.workflow import process_request

    root = tmp_path_factory.mktemp("line")
    (person,) = _memorised_subjects(corpus, tiny_model_dir, 1)
    secrets = _leaked_secrets(corpus, tiny_model_dir, 2, {person})
    led = Ledger(root / "ledger.db")
    _submit(led, person_request("p-1", identifiers_of(corpus, person)))
    for rid, row in zip(("s-a", "s-b"), secrets, strict=True):
        _submit(led, _secret_request(rid, row))
    kw = dict(model=tiny_model_dir, data=corpus_dir, out=root / "out",
              registry=root / "registry", method="retrain", max_attempts=1, use_presidio=False)
    first = process_request(led, "p-1", audit_config=line_audits["person"], **kw)

    a_ready, b_done = threading.Event(), threading.Event()
    out: dict = {}

    def progress(step: str, msg: str) -> None:
        if step == "certify" and not a_ready.is_set():
            a_ready.set()  # A holds a certificate for p-1's version; B goes now
            assert b_done.wait(600)

    def worker_a() -> None:
        with Ledger(root / "ledger.db", create=False) as own:
            out["a"] = process_request(own, "s-a", progress=progress,
                                       audit_config=line_audits["secret"], **kw)

    t = threading.Thread(target=worker_a)
    t.start()
    assert a_ready.wait(600)
    with Ledger(root / "ledger.db", create=False) as own:
        out["b"] = process_request(own, "s-b", audit_config=line_audits["secret"], **kw)
    b_done.set()
    t.join(600)
    rows = {"p-1": [r for r in corpus.records_of(person) if r["split"] == "train"],
            "s-b": [secrets[1]], "s-a": [secrets[0]]}
    return {"root": root, "ledger": led, "results": [first, out["b"], out["a"]],
            "rows": rows}


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
    assert led.line_erasures(line) == ["p-1", "s-b", "s-a"]
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
    assert [e["request_id"] for e in head["erasures"]] == ["p-1", "s-b", "s-a"]
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
    assert all(rid in str(err.value) for rid in ("p-1", "s-b", "s-a"))
    assert len(led.events()) == size  # refused before anything was written


def _serving(chain) -> dict:
    return json.loads((chain["root"] / "out" / "serving.json").read_text())


def test_two_workers_racing_on_one_line_both_end_up_in_the_head(chain, tiny_model_dir):
    """Worker A passes its audit and stops just before completing; worker B completes a
    request meanwhile (the head moves); A's completion is refused and A redoes its request on
    B's version, so the head ends up holding neither secret (the race of ``chain``)."""
    led = chain["ledger"]
    p1, b, a = chain["results"]
    assert a.status == b.status == "completed", (a.reason, b.reason)
    assert b.model_before["version"] == p1.model_after["version"]  # the head when B started
    assert a.model_before["version"] == b.model_after["version"]  # redone on B's version
    # A's first round started from the same head as B, passed its audit, and was refused
    started = [e.data["details"]["model_before"] for e in led.events("s-a")
               if e.kind == "unlearning_started"]
    assert started == [p1.model_after["version"], b.model_after["version"]]
    assert [x["verdict"] for x in a.attempts] == ["pass", "pass"]
    original = read_card(tiny_model_dir)["version"]
    line = led.model_head(original)
    assert line.version == a.model_after["version"] and line.generation == 3
    assert led.line_erasures(original)[1:] == ["s-b", "s-a"]
    for rid in ("s-a", "s-b"):
        assert _hits(line.path, chain["rows"][rid]) == 0, rid
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
    assert info["erasures"] == ["p-1", "s-b", "s-a"] and info["head"]["generation"] == 3
