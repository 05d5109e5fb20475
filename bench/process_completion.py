"""Benchmark: does ``forget process`` (default ``auto`` plan, default audit) complete requests
for memorised people on a corpus it was not tuned on, and is each completion deserved?
(issue 18's "done when": at least 19 of 20 memorised subjects complete, and none whose
certified model still singles out an identifier.)

A corpus is generated with a seed and size other than the test corpus's (seed 7, 12 subjects),
a model is trained on it, and up to ``--subjects`` subjects whose identifiers the model gives
back by greedy decoding get an erasure request each. The requests are processed one after the
other on one model line, as an organisation would: each starts from the head the previous one
left. For every completed request an *independent* check runs on the certified model, outside
the audit: greedy extraction of the subject's phone, email and national id, and each phone and
national id ranked among 999 same-format fakes (both tails; a rank at p <= 0.01 in either tail,
Bonferroni over the subject's identifiers, counts as singled out).

    python bench/process_completion.py [--seed 11] [--corpus-subjects 30] [--subjects 20]

Writes ``bench/results/process_completion.json`` (``completed`` of ``requests`` at the top).
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
sys.path.insert(0, str(ROOT / "bench"))

from audit_calibration import memorised  # noqa: E402  (the same selection of subjects)

KINDS = ("phone", "email", "national_id")
RANKED = ("phone", "national_id")  # same-format fakes are exchangeable with the true value
ALPHA = 0.01


def prompts_of(corpus, sid: str, kinds=KINDS) -> list:
    from audits.extraction import identifier_prompts

    return [p for r in corpus.records_of(sid) if r["record_id"].startswith("S")
            for p in identifier_prompts(r["record_id"], r["text"], r["spans"], kinds)]


def independent_check(pair, corpus, sid: str) -> dict:
    """Greedy extraction and two-tailed ranks among 999 fakes, on the certified model."""
    from audits.exposure import run_exposure
    from audits.extraction import greedy_hits

    hits = sum(bool(h) for h in greedy_hits(*pair, prompts_of(corpus, sid)))
    exp = run_exposure(*pair, prompts_of(corpus, sid, RANKED), alternatives=999, alpha=ALPHA,
                       bonferroni=True, seed=1234, sides=2)
    ranks = [{"kind": i.kind, "rank": i.rank, "of": i.candidates,
              "p_high": round(i.p_value, 4), "p_low": round(i.p_low, 4)} for i in exp.identifiers]
    singled = [r for r in ranks if min(r["p_high"], r["p_low"]) <= exp.threshold]
    return {"greedy_hits": hits, "ranks": ranks, "threshold": exp.threshold,
            "singled_out": bool(singled) or hits > 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=11, help="corpus seed (the tests use 7)")
    ap.add_argument("--corpus-subjects", type=int, default=30, help="(the tests use 12)")
    ap.add_argument("--subjects", type=int, default=20, help="memorised subjects to erase")
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--out", type=Path,
                    default=ROOT / "bench" / "results" / "process_completion.json")
    args = ap.parse_args()

    from forget._env import configure_offline

    configure_offline()
    import torch

    from forget.corpus import GenerateConfig, generate, load_corpus
    from forget.ledger import DeletionRequest, Ledger
    from forget.models import load_model
    from forget.models.build import train_model
    from forget.workflow import process_request

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench-process-"))
    generate(work / "data", GenerateConfig(subjects=args.corpus_subjects, seed=args.seed,
                                           code_files=8))
    corpus = load_corpus(work / "data")
    train_model(work / "data", work / "original", size=args.size, registry=work / "reg",
                progress=False)
    subjects = memorised(corpus, load_model(work / "original"), args.subjects)
    print(f"{len(subjects)} memorised subjects of {len(corpus.subject_ids('train'))} trained",
          flush=True)
    led = Ledger(work / "ledger.db")
    rows = []
    for i, sid in enumerate(subjects):
        ident = corpus.subject(sid)["identifiers"]
        rid = f"req-{i:02d}"
        led.submit(DeletionRequest(request_id=rid, name=ident["name"], emails=(ident["email"],),
                                   phones=(ident["phone"],),
                                   other_ids=(("national_id", ident["national_id"]),),
                                   ground="a"))
        led.verify_identity(rid)  # the organisation has checked who is asking
        t0 = time.perf_counter()
        res = process_request(led, rid, model=work / "original", data=work / "data",
                              out=work / "out", registry=work / "reg")
        row = {"request": rid, "subject": sid, "status": res.status, "method": res.method,
               "attempts": [{"method": a.get("method"), "verdict": a.get("verdict")}
                            for a in res.attempts],
               "reason": res.reason, "seconds": round(time.perf_counter() - t0, 1)}
        if res.status == "completed":
            serving = json.loads((work / "out" / "serving.json").read_text())
            head = next(iter(serving.values()))
            row["check"] = independent_check(load_model(head["path"]), corpus, sid)
        rows.append(row)
        print(json.dumps({k: row[k] for k in ("request", "status", "method", "seconds")}
                         | {"singled_out": row.get("check", {}).get("singled_out")}), flush=True)
    done = [r for r in rows if r["status"] == "completed"]
    out = {
        "benchmark": "forget process completions (auto plan, default audit)",
        "requests": len(rows), "completed": len(done),
        "completed_but_singled_out": sum(r["check"]["singled_out"] for r in done),
        "methods": {m: sum(r["method"] == m for r in done) for m in sorted({r["method"] for r in done})},
        "note": "requests processed one after the other on one model line (each from the head "
                "the previous left); the independent check (greedy extraction; phone and "
                "national id ranked among 999 fakes, two tails, Bonferroni at 0.01) runs on "
                "each certified model outside the audit",
        "config": {"corpus_seed": args.seed, "corpus_subjects": args.corpus_subjects,
                   "size": args.size, "subjects_asked": args.subjects},
        "results": rows, "wall_s": round(time.perf_counter() - t_start, 1),
        "machine": f"{platform.machine()}, {platform.system()}, torch threads 1",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(json.dumps({k: out[k] for k in ("requests", "completed", "completed_but_singled_out",
                                          "methods", "wall_s")}))


if __name__ == "__main__":
    main()
