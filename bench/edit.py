"""Benchmark: ROME editing vs the gradient methods vs retraining, with EasyEdit's three scores.

Trains (or loads) a model, picks the first trained subjects whose identifiers it reproduces,
then for each method: wall time (and its share of the retrain time), identifiers still
extracted by greedy decoding, perplexity on other subjects' records, and reliability,
generalisation (three paraphrases per fact) and locality (other subjects' facts unchanged),
as ``forget.methods._rome_eval.edit_scores`` defines them. ``rome`` runs on ``--subjects``
subjects (its scores vary by subject); the others on the first. Writes
``bench/results/edit.json``.

    python bench/edit.py [--data data] [--size demo] [--model DIR] [--subjects 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from forget._env import configure_offline

KINDS = ("phone", "email", "national_id")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data")
    ap.add_argument("--size", default="demo")
    ap.add_argument("--model", default=None, help="an already trained model (else train one)")
    ap.add_argument("--subjects", type=int, default=3, help="subjects rome is scored on")
    ap.add_argument("--methods", nargs="*",
                    default=["retrain", "rome", "gradient_ascent", "grad_diff", "npo", "simnpo"])
    ap.add_argument("--out", default="bench/results/edit.json")
    args = ap.parse_args()
    configure_offline()

    import forget.methods  # noqa: F401
    from audits.extraction import greedy_hits
    from forget.core import get_method, subject_sets
    from forget.core.criteria import perplexity
    from forget.core.data import Example
    from forget.corpus import load_corpus
    from forget.methods import _rome_model as MD
    from forget.methods._rome_eval import edit_scores
    from forget.models import load_model
    from forget.models.build import train_model

    corpus = load_corpus(args.data)
    with tempfile.TemporaryDirectory(prefix="forget-bench-") as tmp:
        model_dir = Path(args.model) if args.model else Path(tmp) / "original"
        if not args.model:
            train_model(args.data, model_dir, size=args.size, registry=Path(tmp) / "registry",
                        progress=False)
        model, tok = load_model(model_dir)

    def facts_of(rows):
        return [f for r in rows for f in MD.facts_of(
            [Example(r["record_id"], r["text"], tuple(r["spans"]))], KINDS)]

    subjects = []
    for sid in corpus.subject_ids("train"):
        fset, _ = subject_sets(corpus, sid)
        if sum(greedy_hits(model, tok, fset.prompts())):
            subjects.append(sid)
        if len(subjects) == args.subjects:
            break
    rows = []
    for name in args.methods:
        for sid in subjects if name == "rome" else subjects[:1]:
            fset, rset = subject_sets(corpus, sid)
            train = [r for r in corpus.people if r["split"] == "train"]
            facts = facts_of([r for r in train if r["subject_id"] == sid])
            others = [f.prompt for f in facts_of([r for r in train if r["subject_id"] != sid])
                      if not f.prompt.record_id.endswith("~canonical")]
            other_texts = [Example(r["record_id"], r["text"]) for r in train
                           if r["subject_id"] != sid]
            print(f"[bench] {name} on {sid} ...", flush=True)
            result = get_method(name).run(model=model, tokenizer=tok, forget=fset, retain=rset,
                                          config=None)
            scores = edit_scores(model, result.model, tok,
                                 edit_prompts=[f.prompt for f in facts],
                                 paraphrase_prompts=[f.prompt for f in MD.paraphrase_facts(facts)],
                                 locality_prompts=others)
            rows.append({
                "method": name, "subject": sid, "wall_time_s": round(result.wall_time_s, 2),
                "steps": result.steps, "extracted_after": sum(greedy_hits(
                    result.model, tok, fset.prompts())),
                "extraction_probes": len(fset.prompts()),
                "retain_ppl": round(perplexity(result.model, tok, other_texts), 4),
                "original_retain_ppl": round(perplexity(model, tok, other_texts), 4),
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()},
                "load_average_1m": round(os.getloadavg()[0], 2),
            })
            print(f"[bench] {rows[-1]}", flush=True)
    retrain = next((r for r in rows if r["method"] == "retrain"), None)
    for r in rows:
        if retrain:
            r["share_of_retrain_time"] = round(r["wall_time_s"] / retrain["wall_time_s"], 4)
    rome = [r for r in rows if r["method"] == "rome"]
    out = {
        "benchmark": "ROME suppression vs gradient unlearning vs retraining (EasyEdit scores)",
        "data": str(args.data), "size": args.size, "subjects": subjects,
        "definitions": {
            "reliability": "share of the subject's fact prompts (record prefixes and "
                           "'<subject>'s <attribute> is') whose greedy output no longer "
                           "contains the value",
            "generalisation": "the same on 3 paraphrases per fact never used by the edit; "
                              "generalisation_live: only those the original model answered",
            "locality": "share of other subjects' fact prompts whose greedy continuation is "
                        "unchanged; locality_token: EasyEdit's teacher-forced argmax agreement",
        },
        "rome_mean": {k: round(sum(r[k] for r in rome) / len(rome), 4) for k in
                      ("reliability", "generalisation", "locality", "locality_token",
                       "wall_time_s")} if rome else None,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
                    "when": time.strftime("%Y-%m-%d")},
        "results": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["rome_mean"], indent=2))


if __name__ == "__main__":
    main()
