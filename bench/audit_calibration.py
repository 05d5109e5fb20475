"""Benchmark: the audit's measured error rates (issue 18, item 6).

For each corpus seed and each of ``--subjects`` trained subjects of a generated corpus:

- **false fail**: a model retrained without the subject with *another training seed* is
  audited against a retrained control (training seed 0) and the original model; it never saw
  the subject, so any "fail" is a false fail;
- **detection**: the original model (which memorised the subject) is audited against the same
  controls; it must fail;
- **held-out**: each held-out subject (never trained on) is audited on the original model with
  no retrained control (the band is assumed); any "fail" is a false fail of that mode.

Rates come with exact (Clopper-Pearson) 95% intervals: with few audits an observed 0% is not a
proven 0%. The default run is short (one corpus seed, 3 subjects, tiny model: 7 trainings);
the issue's full run is ``--seeds 0 1 2 --subjects 10``. Writes
``bench/results/audit_calibration.json`` with ``false_fail_rate`` and ``detection_rate`` at the
top level.

    python bench/audit_calibration.py [--seeds 7] [--subjects 3] [--corpus-subjects 12] [--jobs N]
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

# The audit's defaults decide; only the work per measure is reduced (as in the test suite).
LIGHT = {"samples": 4, "bootstrap": 300, "relearn_steps": 5}


def clopper_pearson(k: int, n: int, level: float = 0.95) -> list[float] | None:
    """Exact binomial CI for k successes in n trials."""
    if n == 0:
        return None
    from scipy.stats import beta

    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return [round(lo, 4), round(hi, 4)]


def rate(verdicts: list[str], what: str) -> dict:
    k = sum(v == what for v in verdicts)
    return {"rate": round(k / len(verdicts), 4) if verdicts else None, "count": k,
            "of": len(verdicts), "ci95": clopper_pearson(k, len(verdicts))}


def memorised(corpus, pair, n: int) -> list[str]:
    from audits.extraction import greedy_hits, identifier_prompts

    out = []
    for sid in corpus.subject_ids("train"):
        prompts = [p for r in corpus.records_of(sid) if r["record_id"].startswith("S")
                   for p in identifier_prompts(r["record_id"], r["text"], r["spans"],
                                               ("phone", "email", "national_id"))]
        if any(greedy_hits(*pair, prompts)):
            out.append(sid)
        if len(out) == n:
            break
    return out


def run_seed(seed: int, subjects: int, corpus_subjects: int, size: str) -> list[dict]:
    """Every audit of one corpus seed (see the module docstring): held-out subjects, then, per
    memorised subject, a retrain with another seed and the original, against a seed-0 control."""
    from forget._env import configure_offline

    configure_offline()
    import torch

    from audits import AuditConfig, run_audit
    from forget.corpus import GenerateConfig, generate, load_corpus
    from forget.models import load_model
    from forget.models.build import train_model

    torch.set_num_threads(1)
    cfg = AuditConfig(**LIGHT)
    rows: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix=f"bench-calib-{seed}-"))
    generate(work / "data", GenerateConfig(subjects=corpus_subjects, seed=seed, code_files=8))
    corpus = load_corpus(work / "data")
    train_model(work / "data", work / "original", size=size, registry=work / "reg",
                progress=False)
    original = load_model(work / "original")

    def audit(pair, sid, retrained=None):
        t0 = time.perf_counter()
        rep = run_audit(model=pair[0], tokenizer=pair[1], members=corpus.records_of(sid),
                        original=original, retrained=retrained, config=cfg, subject_id=sid)
        return {"verdict": rep.verdict, "seconds": round(time.perf_counter() - t0, 1),
                "failed": [c.name for c in rep.checks if c.passed is False],
                "over_unlearning": any("over-unlearning" in c.note for c in rep.checks)}

    for sid in corpus.subject_ids("holdout"):
        rows.append({"seed": seed, "subject": sid, "case": "held_out_no_control"}
                    | audit(original, sid))
    for sid in memorised(corpus, original, subjects):
        pairs = {}
        for train_seed in (0, 1):  # 0: the control; 1: the "truly forgot" model
            d = work / f"retrain-{sid}-{train_seed}"
            train_model(work / "data", d, size=size, exclude_subjects=[sid],
                        seed=train_seed, registry=work / "reg", progress=False)
            pairs[train_seed] = load_model(d)
        rows.append({"seed": seed, "subject": sid, "case": "retrain_other_seed"}
                    | audit(pairs[1], sid, pairs[0]))
        rows.append({"seed": seed, "subject": sid, "case": "original"}
                    | audit(original, sid, pairs[0]))
        print(json.dumps(rows[-2:]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[7], help="corpus seeds")
    ap.add_argument("--subjects", type=int, default=3, help="trained subjects per seed")
    ap.add_argument("--corpus-subjects", type=int, default=12)
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--jobs", type=int, default=1,
                    help="corpus seeds run at once, one process each (one torch thread each)")
    ap.add_argument("--out", type=Path,
                    default=ROOT / "bench" / "results" / "audit_calibration.json")
    args = ap.parse_args()

    from audits import AuditConfig

    t_start = time.perf_counter()
    work = [(seed, args.subjects, args.corpus_subjects, args.size) for seed in args.seeds]
    if args.jobs > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(min(args.jobs, len(work))) as pool:
            per_seed = pool.starmap(run_seed, work)
    else:
        per_seed = [run_seed(*w) for w in work]
    rows = [r for seed_rows in per_seed for r in seed_rows]
    cfg = AuditConfig(**LIGHT)

    def verdicts(case: str) -> list[str]:
        return [r["verdict"] for r in rows if r["case"] == case]

    ff, det = rate(verdicts("retrain_other_seed"), "fail"), rate(verdicts("original"), "fail")
    held = rate(verdicts("held_out_no_control"), "fail")
    out = {
        "benchmark": "Audit error rates", "false_fail_rate": ff["rate"],
        "detection_rate": det["rate"],
        "false_fail": ff, "detection": det, "held_out_false_fail": held,
        "note": "false fail: a retrain with another training seed audited against a retrained "
                "control (seed 0) and the original; detection: the original model against "
                "the same controls; held-out: never-trained subjects on the original model "
                "without a retrained control (band assumed). CIs are Clopper-Pearson 95%.",
        "config": {"seeds": args.seeds, "subjects_per_seed": args.subjects,
                   "corpus_subjects": args.corpus_subjects, "size": args.size,
                   "audit": LIGHT, "config_hash": cfg.config_hash(), "jobs": args.jobs},
        "results": rows, "wall_s": round(time.perf_counter() - t_start, 1),
        "machine": f"{platform.machine()}, {platform.system()}, torch threads 1",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("false_fail", "detection", "held_out_false_fail",
                                          "wall_s")}))


if __name__ == "__main__":
    main()
