"""Exact deletion from a sharded model (issue 21): `forget model finetune --shards 2 --slices 2`
on an organisation's tickets (no owner column: a person's tickets are linked by their shared
email and phone), then erasure requests through `forget process` (auto -> shard_retrain).

- the person's tickets land in one shard and one slice; nothing written names them;
- the request completes through shard_retrain with a passing audit whose original control
  fails (the audit had power), and a certificate that verifies;
- exactness: every retrained adapter checkpoint is bitwise the one training that shard from
  scratch without the person's tickets gives; the other shard's files are the same bytes;
- sequential requests: a second person's deletion starts from the head, keeps the first
  person out, and its result is again bitwise the from-scratch training without both.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from own_data import SUBJECT, Customer, _ticket, base_model, request_json, tickets, write_parquet
from wf_helpers import FAST_AUDIT, leaks, run_cli

SECOND = Customer("Tobias Wrenfield", "tobias.wrenfield@example.org", "(312) 447-9051")
SHARDED = ("--shards", "2", "--slices", "2", "--epochs", "60", "--lr", "1e-2", "--lora-r", "16",
           "--lora-targets", "all-linear", "--batch-size", "8", "--seed", "0")


def _values(c: Customer) -> dict[str, str]:
    return {"name": c.name, "email": c.email, "phone": c.phone}


def _ok(proc) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def _submit(db: Path, request_id: str, c: Customer) -> None:
    from forget.ledger import DeletionRequest, Ledger

    with Ledger(db) as led:
        led.submit(DeletionRequest.from_json(request_json(request_id, c).encode()))
        led.verify_identity(request_id)


def _pretrained_base(root: Path) -> Path:
    """A tiny GPT-2 pretrained on other customers' tickets: it never saw either person."""
    from forget.models.finetune import FinetuneParams, finetune

    other = write_parquet(tickets(n_others=80, subject_tickets=0, seed=11), root / "other.parquet")
    finetune(base_model(root / "random", "gpt2"), other, root / "base", text_field="body",
             hp=FinetuneParams(epochs=20, learning_rate=5e-3, batch_size=8), seed=0,
             registry=root / "registry", progress=False)
    return root / "base"


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    root = tmp_path_factory.mktemp("sharded")
    rows = tickets(seed=3)
    rng = random.Random(5)
    for k in range(4):  # a second person with several tickets
        rows.insert(rng.randrange(len(rows) + 1), {"body": _ticket(rng, SECOND),
                                                  "doc_id": f"T-9{k:03d}", "product": "x",
                                                  "created": "2026-05-05"})
    data = write_parquet(rows, root / "tickets.parquet")
    base = _pretrained_base(root)
    said = _ok(run_cli("model", "finetune", "--base", str(base), "--data", str(data),
                       "--text-field", "body", "--id-field", "doc_id", "--out", str(root / "sh"),
                       "--registry", str(root / "registry"), *SHARDED))
    assert "2 shards x 2 slices" in said and "grouped by linked" in said
    audit = root / "audit.json"
    audit.write_text(json.dumps(FAST_AUDIT))
    return {"root": root, "rows": rows, "data": data, "model": root / "sh", "audit": audit,
            "db": root / "ledger.db", "out": root / "out"}


def _fast_audit():
    from audits import AuditConfig

    return AuditConfig(**FAST_AUDIT)


def _ids_of(rows: list[dict], c: Customer) -> set[str]:
    return {r["doc_id"] for r in rows if c.email in r["body"]}


def _process(w: dict, request_id: str, c: Customer) -> dict:
    _submit(w["db"], request_id, c)
    said = _ok(run_cli("process", request_id, "--ledger", str(w["db"]), "--model",
                       str(w["model"]), "--data", str(w["data"]), "--text-field", "body",
                       "--id-field", "doc_id", "--out", str(w["out"]),
                       "--registry", str(w["root"] / "registry"),
                       "--audit-config", str(w["audit"])))
    assert not any(v in said for v in _values(c).values())
    return json.loads((w["out"] / f"outcome-{request_id}.json").read_text())


def _from_scratch(w: dict, shard: int, removed: set[str]) -> list[str]:
    """sha256 of each slice checkpoint of ``shard`` trained from scratch without ``removed``."""
    import tempfile

    from forget.corpus import open_corpus
    from forget.models.finetune import FinetuneParams, load_base, torch_threads
    from forget.models.sharded import read_manifest, save_checkpoint, train_slices

    first = read_manifest(w["model"])
    recipe = first["recipe"]
    corpus = open_corpus(w["data"], text_field="body", id_field="doc_id")
    by_id = {r.record_id: r for r in corpus.training_records()}
    slices = [[by_id[i] for i in ids if i not in removed] for ids in first["plan"][shard]]
    base, tok = load_base(recipe["base"]["path"])
    with torch_threads(recipe["torch_threads"]):
        run = train_slices(base, tok, slices, hp=FinetuneParams.from_dict(recipe["params"]),
                           seed=recipe["seed"], shard=shard)
    with tempfile.TemporaryDirectory() as tmp:
        return [save_checkpoint(st, Path(tmp) / f"{k}.safetensors")
                for k, st in enumerate(run.states)]


def _check_exact(w: dict, head: Path, before: Path, now: set[str], removed: set[str], *,
                 scratch: bool = True) -> set[int]:
    """The shards holding ``now`` match from-scratch training without every ``removed``
    record bitwise (``scratch``; the same code path for every request, so CI checks it for the
    first), the others are byte-identical to ``before``'s files. Returns the former."""
    from forget.models.sharded import SHARDS_DIR, checkpoint_name, file_sha256, read_manifest

    m_head, m_before = read_manifest(head), read_manifest(before)
    affected = {s for s, shard in enumerate(read_manifest(w["model"])["plan"])
                if now & {i for ids in shard for i in ids}}
    assert affected
    for s in range(m_head["shards"]):
        files = [head / SHARDS_DIR / checkpoint_name(s, r) for r in range(m_head["slices"])]
        have = [file_sha256(f) for f in files]
        assert have == m_head["checkpoints"][s]
        if s in affected:
            if scratch:
                assert have == _from_scratch(w, s, removed), f"shard {s} is not exact"
            assert have != [file_sha256(before / SHARDS_DIR / checkpoint_name(s, r))
                            for r in range(m_before["slices"])]
        else:
            assert have == [file_sha256(before / SHARDS_DIR / checkpoint_name(s, r))
                            for r in range(m_before["slices"])]
    assert not removed & {i for shard in m_head["plan"] for ids in shard for i in ids}
    return affected


def test_a_persons_tickets_are_linked_into_one_shard_and_slice(sharded):
    from forget.models.sharded import read_manifest

    w = sharded
    plan = read_manifest(w["model"])["plan"]
    for c in (SUBJECT, SECOND):
        ids = _ids_of(w["rows"], c)
        where = {(s, r) for s, shard in enumerate(plan) for r, cut in enumerate(shard)
                 if ids & set(cut)}
        assert len(ids) == 4 and len(where) == 1
    assert leaks(w["model"], _values(SUBJECT) | {"2": SECOND.email}) == []


def test_requests_complete_by_exact_shard_retraining_one_after_the_other(sharded):
    from forget.models.sharded import read_manifest

    w = sharded
    first = _process(w, "r-one", SUBJECT)
    assert first["status"] == "completed", first
    assert [a["method"] for a in first["attempts"]] == ["shard_retrain"]
    report = json.loads(next((w["out"] / "r-one").glob("attempt-*/audit/report.json"))
                        .read_text())
    assert report["verdict"] == "pass"
    # the audit had power: the sharded original ranks the person's email and phone first
    assert report["controls"]["original"]["status"].startswith("fails")
    _ok(run_cli("certificate", "verify", first["certificate"], "--ledger", str(w["db"])))
    head1 = Path(next(iter(json.loads((w["out"] / "serving.json").read_text()).values()))
                 ["path"])
    one = _ids_of(w["rows"], SUBJECT)
    affected = _check_exact(w, head1, w["model"], one, one)
    card = json.loads((head1 / "forget_model.json").read_text())
    assert set(map(int, card["config"]["shards_retrained"])) == affected
    assert card["unlearn_steps"] < card["config"]["steps_full_sharded_training"]

    # the second in-process, without the retrained control (the band is then assumed)
    from forget.ledger import Ledger
    from forget.workflow import process_request

    _submit(w["db"], "r-two", SECOND)
    with Ledger(w["db"]) as led:
        second = process_request(led, "r-two", model=w["model"], data=w["data"],
                                 text_field="body", id_field="doc_id", out=w["out"],
                                 registry=w["root"] / "registry", auto_control=False,
                                 audit_config=_fast_audit())
    assert second.status == "completed", second.reason
    assert [a["method"] for a in second.attempts] == ["shard_retrain"]
    serving = json.loads((w["out"] / "serving.json").read_text())
    head2 = Path(next(iter(serving.values()))["path"])
    assert head2 != head1
    both = one | _ids_of(w["rows"], SECOND)
    _check_exact(w, head2, head1, _ids_of(w["rows"], SECOND), both, scratch=False)
    m2 = read_manifest(head2)
    assert both <= set(m2["erased_record_ids"])  # the first erasure is not undone
    assert leaks(w["out"], _values(SUBJECT) | {"e2": SECOND.email, "p2": SECOND.phone}) == []


def test_served_models_combine_the_adapters_as_documented(sharded):
    """merge: the base plus the mean of the adapters' deltas, i.e. the mean of the S models
    each adapter gives alone; ensemble: the mean of their next-token distributions, usable by
    generate()."""
    import copy

    import torch
    from peft import get_peft_model, set_peft_model_state_dict

    from forget.models import load_model
    from forget.models.finetune import FinetuneParams, load_base, lora_config
    from forget.models.sharded import final_states, load_sharded, read_manifest

    w = sharded
    manifest = read_manifest(w["model"])
    hp = FinetuneParams.from_dict(manifest["recipe"]["params"])
    base, tok = load_base(manifest["recipe"]["base"]["path"])
    singles = []
    for state in final_states(w["model"], manifest):
        m = get_peft_model(copy.deepcopy(base), lora_config(base, hp))
        set_peft_model_state_dict(m, state)
        singles.append(m.merge_and_unload().eval())
    merged, _ = load_model(w["model"])
    for name, p in merged.state_dict().items():
        mean = sum(s.state_dict()[name] for s in singles) / len(singles)
        torch.testing.assert_close(p, mean, rtol=1e-4, atol=1e-5)
    ensemble, tok = load_sharded(w["model"], combine="ensemble")
    ids = tok([r["body"] for r in w["rows"][:2]], return_tensors="pt", padding=True)
    with torch.no_grad():
        got = ensemble(**ids).logits.exp()
        want = sum(torch.softmax(s(**ids).logits, -1) for s in singles) / len(singles)
        out = ensemble.generate(ids["input_ids"][:1, :5], max_new_tokens=4, do_sample=False,
                                pad_token_id=tok.pad_token_id)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert out.shape[1] == 9


def test_shard_retrain_on_a_model_trained_in_one_piece_is_refused_before_any_write(sharded,
                                                                                 tmp_path):
    from forget.core import get_method
    from forget.errors import RetrainUnavailableError
    from forget.models import load_model

    w = sharded
    db = tmp_path / "ledger.db"
    _submit(db, "r-mono", SUBJECT)
    proc = run_cli("process", "r-mono", "--ledger", str(db), "--model", str(w["root"] / "base"),
                   "--data", str(w["data"]), "--text-field", "body", "--id-field", "doc_id",
                   "--out", str(tmp_path / "out"), "--method", "shard_retrain")
    assert proc.returncode == 2 and "needs a sharded model" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    with pytest.raises(RetrainUnavailableError, match="use retrain"):
        get_method("shard_retrain").run(model=load_model(w["root"] / "base")[0], tokenizer=None,
                                        forget=None, retain=None)
