"""Benchmark: batched requests against one by one (issue 22), with ``retrain`` and with
``shard_retrain``, through the real workflow.

For N in ``--counts`` (1, 5, 20) and each method, N erasure requests (memorised people of a
generated corpus, every identifier given) are processed on a fresh ledger and model line in
two ways: ``batched`` (:func:`forget.workflow.process_batch`: one unlearning run for the N
requests, then N audits, certificates and completions) and ``one_by_one``
(:func:`forget.workflow.process_request` for each, in turn, each from the head the previous one
left). Measured: the total wall seconds, the unlearning runs and their gradient steps (the
models' cards) and wall seconds, and the same per request; whether every request completed.

Sizes are the tests' (a ``tiny`` model; a small corpus), so the whole run takes minutes on one
shared core; they are written into the JSON. The audit is the workflow's with lighter sample
counts (as the tests' ``FAST_AUDIT``, robustness probes off) and no retrained control, the
same in both modes: its cost per request does not change with batching.

    python bench/batch.py [--counts 1 5 20] [--subjects 32] [--epochs 2] [--shards 4]
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


def one_case(mode: str, method: str, model: Path, data: Path, reqs: list, work: Path,
             method_config: dict) -> dict:
    """``reqs`` on a fresh ledger and line, batched or one by one: costs and outcomes."""
    from audits import AuditConfig
    from forget.ledger import Ledger
    from forget.models import read_card
    from forget.workflow import process_batch, process_request

    led = Ledger(work / "ledger.db")
    for r in reqs:
        led.submit(r)
        led.verify_identity(r.request_id)
    kw = {"model": model, "data": data, "out": work / "out", "registry": work / "reg",
          "method": method, "method_config": method_config, "use_presidio": False,
          "audit_config": AuditConfig(**AUDIT), "auto_control": False}
    t0 = time.perf_counter()
    if mode == "batched":
        res = process_batch(led, [r.request_id for r in reqs], **kw)
        outcomes = res.outcomes
    else:
        outcomes = [process_request(led, r.request_id, max_attempts=1, **kw) for r in reqs]
    wall = time.perf_counter() - t0
    models = {a["model"] for o in outcomes for a in o.attempts}
    cards = [read_card(p.parent) for p in (work / "out").rglob("forget_model.json")
             if "control" not in str(p)]
    runs = [c for c in cards if c["version"] in models]
    steps = sum(int(c.get("unlearn_steps") or 0) for c in runs)
    unlearn_s = sum(float(c.get("unlearn_wall_s") or 0) for c in runs)
    n = len(reqs)
    return {"mode": mode, "method": method, "requests": n, "runs": len(runs),
            "completed": sum(o.status == "completed" for o in outcomes),
            "total_s": round(wall, 1), "per_request_s": round(wall / n, 1),
            "unlearn_s": round(unlearn_s, 1), "unlearn_per_request_s": round(unlearn_s / n, 1),
            "gradient_steps": steps, "steps_per_request": round(steps / n, 1),
            "ledger_ok": led.verify().ok}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 5, 20])
    ap.add_argument("--subjects", type=int, default=32, help="corpus subjects (tests: 12)")
    ap.add_argument("--epochs", type=int, default=2, help="training epochs of both models")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--slices", type=int, default=2)
    ap.add_argument("--methods", nargs="+", default=["retrain", "shard_retrain"])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "batch.json")
    args = ap.parse_args()

    from forget._env import configure_offline

    configure_offline()
    import torch

    from forget.commands.demo import demo_finetune_params
    from forget.corpus import GenerateConfig, generate, load_corpus
    from forget.models.build import train_model
    from forget.models.shard_train import finetune_sharded

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
    rows = []
    for method, (model, cfg) in models.items():
        for n in args.counts:
            reqs = requests_for(corpus, trained[:n])
            for mode in ("batched", "one_by_one"):
                case = work / f"{method}-{n}-{mode}"
                case.mkdir()
                (case / "reg").symlink_to(work / "reg", target_is_directory=True)
                rows.append(one_case(mode, method, model, data, reqs, case, cfg))
                print(json.dumps(rows[-1]), flush=True)
    ratios = {}
    for method in models:
        for n in args.counts:
            b, o = (next(r for r in rows if r["method"] == method and r["requests"] == n
                         and r["mode"] == m) for m in ("batched", "one_by_one"))
            ratios[f"{method}_{n}"] = {
                "total_s_batched_over_one_by_one": round(b["total_s"] / o["total_s"], 3),
                "steps_batched_over_one_by_one": round(b["gradient_steps"]
                                                       / max(1, o["gradient_steps"]), 3)}
    result = {
        "sizes": {"model": "tiny (2 layers, d_model 128)", "corpus_subjects": args.subjects,
                  "trained_subjects": len(trained), "people_records": len(corpus.people),
                  "code_files": len(corpus.code), "epochs": args.epochs,
                  "shards": args.shards, "slices": args.slices,
                  "training_records": len([r for r in corpus.people + corpus.code
                                           if r["split"] == "train"])},
        "audit": AUDIT | {"retrained_control": False},
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
