"""Benchmark: sharded, sliced adapter training (SISA over LoRA) against a monolithic fine-tune
of the same base (issue 21).

One base model is pretrained on a corpus of *other* fictitious people (as `forget demo` does:
it never saw anybody who may ask for erasure). On the demo corpus (``--data``, the generator's
layout) and on a corpus in the "bring your own" format (the people and code of another
generator seed written to a Parquet file with ``id``/``content`` columns and no owner column,
so records are grouped by shared identifiers), for every S in ``--shards`` and R in
``--slices``:

- utility: retain and held-out perplexity of the served model (``merge``: the mean of the
  adapters' weight deltas; ``sum``; ``ensemble``: the mean of their next-token distributions)
  and the time one perplexity pass takes (latency);
- memorisation of the people who stay: the share of trained people with an identifier given
  back by greedy decoding (the generator's ground truth), against the monolithic model;
- deletion cost: ``shard_retrain`` of ``--delete`` subjects (random; the same for every
  configuration), gradient steps and wall time, as a share of training the whole sharded
  model and of the monolithic fine-tune (the same run measures all of them);
- the audit: for the configurations in ``--audit`` (default the demo's 4x1 and the issue's
  8x4), ``--random`` random and the 2 worst-case subjects (most memorised, most duplicated)
  are erased one after the other through ``process_request`` (auto -> shard_retrain, the
  workflow's calibrated audit with its retrained control) and the verdicts recorded.

    python bench/shards.py [--shards 1 4 8 16] [--slices 1 4] [--epochs 20] [--random 5]
                           [--audit 4x1 8x4] [--no-own] [--own-shards 4 8] [--own-slices 1 4]
                           [--out bench/results/shards.json]

Writes ``bench/results/shards.json``; ``bench/summarize.py`` renders it into bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def texts_of(corpus, split: str, limit: int = 200) -> list[str]:
    rows = [r["text"] for r in corpus.people if r["split"] == split]
    return rows[:limit]


def utility(model, tok, corpus) -> dict:
    from audits.utility import perplexity_of

    t0 = time.perf_counter()
    retain, _ = perplexity_of(model, tok, texts_of(corpus, "train"))
    holdout, _ = perplexity_of(model, tok, texts_of(corpus, "holdout"))
    return {"retain_ppl": round(retain, 3), "holdout_ppl": round(holdout, 3),
            "ppl_pass_s": round(time.perf_counter() - t0, 2)}


def memorised(model, tok, corpus) -> dict:
    from forget.models.memorization import memorization_table

    table = memorization_table(model, tok, corpus)["subjects"]
    return {"train_any": table["train"]["any"], "holdout_any": table["holdout"]["any"]}


def own_format(corpus, path: Path) -> Path:
    """The corpus's training people and code as one Parquet file: ``id``, ``content``; no
    owner column (the suite links records by shared identifiers)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": r["record_id"], "content": r["text"]}
            for r in corpus.people + corpus.code if r["split"] == "train"]
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def mono(base: Path, data: Path, work: Path, hp, fields: dict) -> dict:
    from forget.models import load_model
    from forget.models.finetune import finetune

    out = work / "mono"
    res = finetune(base, data, out, hp=dataclasses.replace(hp, lora=True), seed=0,
                   registry=work / "reg", progress=False, **fields)
    return {"path": out, "steps": res.steps, "wall_s": res.wall_time_s,
            "model": load_model(out)}


def deletion(model_dir: Path, corpus_records: dict, remove: set[str]) -> dict:
    from forget.models.shard_train import retrain_shards

    texts = {k: v for k, v in corpus_records.items() if k not in remove}
    t0 = time.perf_counter()
    _, run = retrain_shards(model_dir, texts, remove)
    return {"steps": run.steps, "wall_s": round(time.perf_counter() - t0, 2),
            "shards_retrained": {str(s): r for s, r in run.affected.items()}}


def audited_requests(corpus, data: Path, model: Path, subjects: dict, work: Path) -> list:
    """Erase ``subjects`` one after the other through the workflow; the verdicts."""
    from forget.ledger import DeletionRequest, Ledger
    from forget.workflow import process_request

    led = Ledger(work / "ledger.db")
    rows = []
    for i, (sid, why) in enumerate(subjects.items()):
        ident = corpus.subject(sid)["identifiers"]
        rid = f"req-{i:02d}"
        led.submit(DeletionRequest(request_id=rid, name=ident["name"], emails=(ident["email"],),
                                   phones=(ident["phone"],),
                                   other_ids=(("national_id", ident["national_id"]),),
                                   ground="a"))
        led.verify_identity(rid)
        t0 = time.perf_counter()
        res = process_request(led, rid, model=model, data=data, out=work / "out",
                              registry=work / "reg")
        report = json.loads(Path(res.report).with_suffix(".json").read_text()) \
            if res.report else {}
        rows.append({"subject": sid, "chosen_as": why, "status": res.status,
                     "method": res.method, "verdict": report.get("verdict"),
                     "original_control": report.get("controls", {}).get("original", {})
                     .get("status"),
                     "failed_checks": [c["name"] for c in report.get("checks", [])
                                       if c.get("passed") is False],
                     "seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def one_corpus(name: str, corpus, data: Path, fields: dict, base: Path, work: Path, args,
               hp) -> dict:
    from forget.corpus import open_corpus, training_records
    from forget.corpus.load import Corpus
    from forget.evaluation.select import most_duplicated, most_memorized, random_subjects
    from forget.models.finetune import load_base
    from forget.models.shard_train import finetune_sharded, sharded_cost
    from forget.models.sharded import ensemble_model, final_states, merged_model, read_manifest

    opened = open_corpus(data, **fields)
    records = (training_records(opened) if isinstance(opened, Corpus)
               else opened.training_records())
    by_id = {r.record_id: r for r in records}
    # the deleted subjects' records, as the scope step finds them (ground truth here)
    ids_of = {sid: {r["record_id"] for r in corpus.records_of(sid) if r["split"] == "train"}
              for sid in corpus.subject_ids("train")}
    doomed = random_subjects(corpus, args.delete, seed=3)
    m = mono(base, data, work / name, hp, fields)
    net, mono_tok = m["model"]
    out = {"corpus": name, "records": len(records), "fields": fields,
           "mono": {"steps": m["steps"], "wall_s": m["wall_s"]}
           | utility(net, mono_tok, corpus) | memorised(net, mono_tok, corpus),
           "configs": []}
    print(name, "mono", json.dumps(out["mono"]), flush=True)
    base_model, _ = load_base(base)
    for shards in args.shards:
        for slices in args.slices:
            tag = f"{shards}x{slices}"
            path = work / name / f"sharded-{tag}"
            t0 = time.perf_counter()
            res = finetune_sharded(base, data, path, shards=shards, slices=slices, hp=hp,
                                   seed=0, registry=work / "reg", **fields)
            manifest = read_manifest(path)
            states = final_states(path, manifest)
            row = {"shards": shards, "slices": slices, "grouping": manifest["grouping"],
                   "steps": res.steps, "wall_s": res.wall_time_s,
                   "steps_vs_mono": round(res.steps / out["mono"]["steps"], 3),
                   "serving": {}}
            for combine in ("merge", "sum", "ensemble"):
                net = (ensemble_model(base_model, states, hp) if combine == "ensemble"
                       else merged_model(base_model, states, hp, combine=combine))
                row["serving"][combine] = utility(net, mono_tok, corpus) | memorised(
                    net, mono_tok, corpus)
            dels = []
            for sid in doomed[:1] if shards == 1 else doomed:  # S=1: a full retrain each
                d = deletion(path, by_id, ids_of[sid])
                dels.append({"subject": sid} | d | {
                    "share_of_sharded_training_steps": round(d["steps"] / res.steps, 4),
                    "share_of_mono_steps": round(d["steps"] / out["mono"]["steps"], 4),
                    "share_of_mono_wall": round(d["wall_s"] / out["mono"]["wall_s"], 4)})
            row["deletions"] = dels
            row["deletion_mean"] = {
                k: round(sum(x[k] for x in dels) / len(dels), 4)
                for k in ("share_of_sharded_training_steps", "share_of_mono_steps",
                          "share_of_mono_wall", "wall_s")} if dels else {}
            assert sharded_cost(manifest, hp) == res.steps
            row["wall_total_s"] = round(time.perf_counter() - t0, 1)
            out["configs"].append(row)
            print(name, tag, json.dumps({k: v for k, v in row.items() if k != "deletions"}),
                  flush=True)
            if args.partial:  # what is measured so far, in case the run is stopped
                args.partial.write_text(json.dumps({"results": [*args.done, out]}, indent=1,
                                                   default=str))
            if name == "demo" and tag in args.audit:
                tok = mono_tok
                subjects = {sid: "random" for sid in random_subjects(corpus, args.random,
                                                                      seed=5)}
                served = merged_model(base_model, states, hp)
                subjects.setdefault(most_memorized(corpus, served, tok), "most_memorized")
                subjects.setdefault(most_duplicated(corpus), "most_duplicated")
                row["audit"] = audited_requests(corpus, data, path, subjects,
                                                work / name / f"audit-{tag}")
                passed = sum(r["verdict"] == "pass" for r in row["audit"])
                row["audit_pass"] = f"{passed}/{len(row['audit'])}"
    return out


def merge_runs(paths: list[Path], out: Path) -> None:
    """Several runs' results in one file: ratios stay within each run (each corpus entry keeps
    the run's own monolithic model and command)."""
    results, commands, wall = [], [], 0.0
    first: dict = {}
    for p in paths:
        d = json.loads(p.read_text())
        first = first or d
        command = d.get("command") or f"(stopped run; see {p.name}: its configs so far)"
        commands.append(command)
        wall += d.get("wall_s") or 0.0
        results += [r | {"command": command} for r in d["results"]]
    merged = {k: v for k, v in first.items() if k not in ("results", "command", "wall_s")}
    merged |= {"benchmark": "sharded, sliced LoRA adapters (SISA) vs a monolithic fine-tune",
               "command": " ; ".join(commands), "results": results,
               "wall_s": round(wall, 1) or None, "merged_from": [p.name for p in paths]}
    out.write_text(json.dumps(merged, indent=2, default=str) + "\n")
    print("wrote", out, "from", len(paths), "runs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data")
    ap.add_argument("--shards", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--slices", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--delete", type=int, default=3, help="subjects deleted (timed) per config")
    ap.add_argument("--random", type=int, default=5, help="random subjects audited")
    ap.add_argument("--audit", nargs="*", default=["4x1", "8x4"])
    ap.add_argument("--base", type=Path, default=None,
                    help="a base built by an earlier run (its models/base), reused")
    ap.add_argument("--no-own", action="store_true", help="skip the bring-your-own corpus")
    ap.add_argument("--no-demo", action="store_true", help="skip the demo corpus")
    ap.add_argument("--own-shards", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--own-slices", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "shards.json")
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="instead of running: put the results of earlier runs (their --out, or "
                         "the .partial.json of a stopped run) into --out, each corpus table "
                         "with its own monolithic baseline and command")
    args = ap.parse_args()
    if args.merge:
        merge_runs(args.merge, args.out)
        return
    args.partial = args.out.with_suffix(".partial.json")

    from forget._env import configure_offline
    from forget._quiet import configure_output

    configure_offline()
    configure_output()  # the libraries' progress bars off: this script's own lines only
    import torch

    from forget.commands.demo import BASE_SEED, build_base, demo_finetune_params
    from forget.corpus import GenerateConfig, generate, load_corpus

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    random.seed(0)
    hp = dataclasses.replace(demo_finetune_params(), epochs=args.epochs)
    corpus = load_corpus(args.data)
    base = args.base or build_base(work, args.data, registry=work / "reg")
    print("base trained", round(time.perf_counter() - t_start), "s", flush=True)
    args.done = results = []
    if not args.no_demo:
        results.append(one_corpus("demo", corpus, args.data, {}, base, work, args, hp))
    if not args.no_own:
        own_dir = work / "own-src"
        generate(own_dir, GenerateConfig(subjects=40, seed=BASE_SEED + 7))
        own = load_corpus(own_dir)
        parquet = own_format(own, work / "own.parquet")
        fields = {"text_field": "content", "id_field": "id"}
        own_args = argparse.Namespace(**vars(args) | {"shards": args.own_shards,
                                                       "slices": args.own_slices,
                                                       "done": results})
        results.append(one_corpus("own", own, parquet, fields, base, work, own_args, hp))
    out = {
        "benchmark": "sharded, sliced LoRA adapters (SISA) vs a monolithic fine-tune",
        "command": "python bench/shards.py " + " ".join(sys.argv[1:]),
        "params": hp.to_dict(), "base": "demo architecture pretrained on other people",
        "results": results, "wall_s": round(time.perf_counter() - t_start, 1),
        "machine": f"{platform.machine()}, {platform.system()}, torch threads 1 (2 cores "
                   "shared with other jobs: wall times are noisy, step counts are exact)",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
    args.partial.unlink(missing_ok=True)
    print("wrote", args.out, round(out["wall_s"]), "s")


if __name__ == "__main__":
    main()
