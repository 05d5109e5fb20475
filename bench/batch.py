"""Benchmark: batched requests against one by one (issue 22), with ``retrain`` and with
``shard_retrain``: what batching changes is the number of unlearning runs.

For N in ``--counts`` (1, 5, 20) and each method, the records of N people (the generator's
ground truth, as scoping finds them) are unlearned from a fresh model line in two ways, with
the workflow's own pieces (``WorkData.sets``, ``Method.run``, ``steps.save_unlearned``: what
:func:`forget.workflow.process_batch` and :func:`forget.workflow.process_request` run):

- ``batched``: ONE run of the method on the union of the N forget sets, saved once;
- ``one_by_one``: N runs, each from the version the previous one saved, each keeping the
  earlier requests' records out (as requests on one model line do).

Measured: wall seconds (load, run, save) and gradient steps, in all and per request. The rest
of a request's cost (scoping, its audit, certificate, ledger) is paid per request in both
modes; it is measured once, through ``process_request`` on the same model with the tests'
light audit (``workflow_per_request_s``), so a per-request total can be read off.

Sizes are the tests' (a ``tiny`` model; a small generated corpus) and the training is short
(``--epochs``), so the run takes minutes on one shared core; every size is in the JSON.

    python bench/batch.py [--counts 1 5 20] [--subjects 120] [--epochs 1] [--shards 4]
                          [--slices 2] [--out bench/results/batch.json]

Writes ``bench/results/batch.json``; ``bench/summarize.py`` renders it into bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AUDIT = {"bootstrap": 300, "samples": 4, "relearn_steps": 0, "relearn_other_steps": 0,
         "mia_verdict_attacks": ("loss",), "char_rank_kinds": (), "neighbour_count": 0,
         "paraphrase": False, "quantize": False}
CORPUS_SEED, BASE_SEED = 13, 14


def tiny_base(work: Path, mine, *, epochs: int) -> Path:
    """A tiny base trained on other fictitious people (another seed), texts holding any of the
    corpus's identifiers dropped: the sharded fine-tune's base never saw who may ask."""
    from forget.corpus import GenerateConfig, generate, load_corpus
    from forget.corpus.load import TrainingRecord
    from forget.models.io import save_model
    from forget.models.registry import ModelRegistry, new_card
    from forget.models.tokenizer import strip_spans, train_tokenizer
    from forget.models.train import get_size, size_dict, train_lm

    generate(work / "base-data", GenerateConfig(subjects=12, seed=BASE_SEED, code_files=8))
    other = load_corpus(work / "base-data")
    values = {v for s in mine.subjects for k, v in s["identifiers"].items()
              if k in ("name", "email", "phone", "national_id")}
    rows = [r for r in other.people + other.code if r["split"] == "train"]
    texts = [(f"base:{r['record_id']}", strip_spans(r["text"], r["spans"])) for r in rows]
    texts = [(rid, t) for rid, t in texts if not any(v in t for v in values)]
    spec = get_size("tiny")
    tok = train_tokenizer([t for _, t in texts], vocab_size=spec.vocab_size)
    model = train_lm([TrainingRecord(rid, t, "base") for rid, t in texts], tok, spec, seed=0,
                     progress=False, epochs=epochs)
    card = new_card(kind="base", size="tiny", arch="llama", trained_on="other people (bench)",
                    training_record_ids=sorted(rid for rid, _ in texts),
                    config={"size": size_dict(spec), "seed": 0})
    path = save_model(model, tok, work / "base", card=card)
    ModelRegistry(work / "reg").register(path)
    return path


def requests_for(corpus, subjects: list[str]) -> list:
    from forget.ledger import DeletionRequest

    out = []
    for i, sid in enumerate(subjects):
        ident = corpus.subject(sid)["identifiers"]
        out.append(DeletionRequest(request_id=f"r-{i:02d}", name=ident["name"],
                                   emails=(ident["email"],), phones=(ident["phone"],),
                                   other_ids=(("national_id", ident["national_id"]),),
                                   ground="a"))
    return out


def scopes_of(corpus, subjects: list[str]) -> list[dict]:
    """Each request's scope: the person's training records (the generator's ground truth)."""
    return [{"record_ids": [r["record_id"] for r in corpus.records_of(sid)
                            if r["split"] == "train"], "subject_id": sid} for sid in subjects]


def unlearn_once(method: str, model: Path, wd, scope: dict, erased: set[str], out: Path,
                 cfg: dict, registry: Path, erasures: list[dict]) -> dict:
    """One unlearning run as the workflow makes it: sets, the method on the line's version
    ``model``, the new version saved and registered at ``out``."""
    import copy

    from forget.core import get_method
    from forget.models import load_model
    from forget.workflow import steps as S

    t0 = time.perf_counter()
    net, tok = load_model(model)
    forget, retain = wd.sets(scope, already_erased=erased)
    impl = get_method(method)
    res = impl.run(model=copy.deepcopy(net), tokenizer=tok, forget=forget, retain=retain,
                   config=impl.config_class.from_dict(impl.config_class().to_dict() | cfg))
    ctx = S.Context(ledger=None, request_id="", worker_id=None, work=out, out=out,
                    model_dir=Path(model), registry=registry, say=lambda *a: None)
    S.save_unlearned(ctx, S.Attempt(1, method, {}, out), res, tok, erasures)
    return {"steps": int(res.steps), "wall_s": time.perf_counter() - t0}


def one_case(mode: str, method: str, model: Path, wd, scopes: list[dict], work: Path,
             cfg: dict) -> dict:
    """The N requests' unlearning, batched or one by one, on a fresh line from ``model``."""
    runs = []
    if mode == "batched":
        union = {"record_ids": sorted({i for s in scopes for i in s["record_ids"]}),
                 "subject_id": None}
        erasures = [{"request_id": f"r-{k:02d}", "record_ids": s["record_ids"]}
                    for k, s in enumerate(scopes)]
        runs.append(unlearn_once(method, model, wd, union, set(), work / "batch", cfg,
                                 work / "reg", erasures))
    else:
        current, erased = model, set()
        for k, scope in enumerate(scopes):
            out = work / f"r-{k:02d}"
            runs.append(unlearn_once(method, current, wd, scope, erased, out, cfg, work / "reg",
                                     [{"request_id": f"r-{k:02d}",
                                       "record_ids": scope["record_ids"]}]))
            current, erased = out / "model", erased | set(scope["record_ids"])
    n = len(scopes)
    wall, steps = sum(r["wall_s"] for r in runs), sum(r["steps"] for r in runs)
    return {"mode": mode, "method": method, "requests": n, "runs": len(runs),
            "records": sum(len(s["record_ids"]) for s in scopes),
            "wall_s": round(wall, 1), "wall_per_request_s": round(wall / n, 2),
            "gradient_steps": steps, "steps_per_request": round(steps / n, 1)}


def workflow_per_request(model: Path, data: Path, corpus, sid: str, work: Path,
                         cfg: dict) -> dict:
    """One request through ``process_request`` (retrain, the tests' light audit): its wall
    time less its unlearning run: what every request costs besides the run, in both modes."""
    from audits import AuditConfig
    from forget.ledger import Ledger
    from forget.models import read_card
    from forget.workflow import process_request

    led = Ledger(work / "ledger.db")
    (req,) = requests_for(corpus, [sid])
    led.submit(req)
    led.verify_identity(req.request_id)
    t0 = time.perf_counter()
    res = process_request(led, req.request_id, model=model, data=data, out=work / "out",
                          registry=work / "reg", method="retrain", method_config=cfg,
                          max_attempts=1, use_presidio=False, audit_config=AuditConfig(**AUDIT),
                          auto_control=False)
    wall = time.perf_counter() - t0
    cards = [read_card(p.parent) for p in (work / "out").rglob("forget_model.json")]
    run = sum(float(c.get("unlearn_wall_s") or 0) for c in cards)
    return {"total_s": round(wall, 1), "unlearn_s": round(run, 1),
            "workflow_per_request_s": round(wall - run, 1), "status": res.status,
            "verdict": res.attempts[-1]["verdict"] if res.attempts else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 5, 20])
    ap.add_argument("--subjects", type=int, default=120,
                    help="corpus subjects (tests: 12): 20 requests stay a minority of the people")
    ap.add_argument("--epochs", type=int, default=1, help="training epochs of both models")
    ap.add_argument("--no-workflow", action="store_true",
                    help="skip the one-request workflow measurement")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--slices", type=int, default=2)
    ap.add_argument("--methods", nargs="+", default=["retrain", "shard_retrain"])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "batch.json")
    args = ap.parse_args()

    from forget import configure_output
    from forget._env import configure_offline

    configure_offline()
    configure_output(False)  # the libraries' progress bars and warnings off
    import torch

    from forget.commands.demo import demo_finetune_params
    from forget.corpus import GenerateConfig, generate, load_corpus
    from forget.models.build import train_model
    from forget.models.shard_train import finetune_sharded
    from forget.workflow.data import work_data

    t_start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    data = work / "data"
    generate(data, GenerateConfig(subjects=args.subjects, seed=CORPUS_SEED, code_files=8))
    corpus = load_corpus(data)
    trained = corpus.subject_ids("train")
    if len(trained) < max(args.counts):
        raise SystemExit(f"{len(trained)} trained subjects < {max(args.counts)}: raise "
                         "--subjects")
    models = {}
    if "retrain" in args.methods:
        train_model(data, work / "tiny", size="tiny", registry=work / "reg", progress=False,
                    epochs=args.epochs)
        models["retrain"] = (work / "tiny", {"epochs": args.epochs})
    if "shard_retrain" in args.methods:
        base = tiny_base(work, corpus, epochs=args.epochs)
        hp = demo_finetune_params()
        hp = type(hp).from_dict(hp.to_dict() | {"epochs": args.epochs})
        finetune_sharded(base, data, work / "sharded", shards=args.shards, slices=args.slices,
                         hp=hp, seed=0, registry=work / "reg")
        models["shard_retrain"] = (work / "sharded", {})
    setup_s = time.perf_counter() - t_start
    print(f"models trained in {setup_s:.0f} s", flush=True)
    wd = work_data(corpus)
    rows = []
    for method, (model, cfg) in models.items():
        for n in args.counts:
            scopes = scopes_of(corpus, trained[:n])
            for mode in ("batched", "one_by_one"):
                case = work / f"{method}-{n}-{mode}"
                case.mkdir()
                (case / "reg").symlink_to(work / "reg", target_is_directory=True)
                rows.append(one_case(mode, method, model, wd, scopes, case, cfg))
                print(json.dumps(rows[-1]), flush=True)
    flow = None
    if "retrain" in models and not args.no_workflow:
        (work / "flow").mkdir()
        flow = workflow_per_request(models["retrain"][0], data, corpus, trained[0],
                                    work / "flow", models["retrain"][1])
        print(json.dumps(flow), flush=True)
    ratios = {}
    for method in models:
        for n in args.counts:
            b, o = (next(r for r in rows if r["method"] == method and r["requests"] == n
                         and r["mode"] == m) for m in ("batched", "one_by_one"))
            ratios[f"{method}_{n}"] = {
                "wall_s_batched_over_one_by_one": round(b["wall_s"] / o["wall_s"], 3),
                "steps_batched_over_one_by_one": round(b["gradient_steps"]
                                                       / max(1, o["gradient_steps"]), 3)}
    result = {
        "sizes": {"model": "tiny (2 layers, d_model 128)", "corpus_subjects": args.subjects,
                  "trained_subjects": len(trained), "people_records": len(corpus.people),
                  "code_files": len(corpus.code), "epochs": args.epochs,
                  "shards": args.shards, "slices": args.slices,
                  "training_records": len([r for r in corpus.people + corpus.code
                                           if r["split"] == "train"])},
        "workflow_one_request": flow,
        "workflow_audit": AUDIT | {"retrained_control": False},
        "scope": "each person's training records (ground truth), the same in both modes",
        "rows": rows, "ratios": ratios, "setup_s": round(setup_s, 1),
        "wall_s": round(time.perf_counter() - t_start, 1),
        "machine": {"platform": platform.platform(), "torch": torch.__version__,
                    "threads": torch.get_num_threads()},
        "command": "python bench/batch.py " + " ".join(sys.argv[1:]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(ratios, indent=2))


if __name__ == "__main__":
    main()
