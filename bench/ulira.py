"""Benchmark: the per-person attack (U-LiRA) on the tiny model, original vs exact retrain.

Generates the test suite's corpus (12 subjects, seed 7, 24 code files), trains the tiny model
(the original), picks the first trained subject whose phone, email or id it gives back
verbatim, retrains without them (same seed: the exact retrain), then trains ``k`` shadows with
the subject and ``k`` without through ``forget.workflow.shadows`` (seeds 1..k) and runs the
per-person test on both models.

Then the same on a small fine-tuned line, where shadows are cheap enough for a calibration
that resolves 1% false positives: the retrained tiny model as base, fine-tuned (4 epochs, lr
2e-3) on the subject's records and 24 others with a recorded recipe (the original) and without
them (the exact retrain), ``--finetune-shadows`` recipe re-runs per side.

Writes ``bench/results/ulira.json``.

    OMP_NUM_THREADS=1 python bench/ulira.py [--shadows 4] [--finetune-shadows 6]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _test(t) -> dict:
    d = dataclasses.asdict(t)
    d.pop("log_lr")
    d["p_values"] = [float(f"{p:.3g}") for p in d["p_values"]]
    d["tpr_at_1pct_fpr"] = t.flagged_at["0.01"] / t.records  # records flagged / records
    d["tpr_at_0.1pct_fpr"] = t.flagged_at["0.001"] / t.records
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shadows", type=int, default=4, help="shadows per side (tiny)")
    ap.add_argument("--finetune-shadows", type=int, default=6,
                    help="shadows per side (small fine-tuned line)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ulira.json")
    args = ap.parse_args()

    from forget._env import configure_offline

    configure_offline()
    import numpy as np
    import torch

    from audits import AuditConfig
    from audits import ulira as U
    from audits.extraction import greedy_hits, identifier_prompts
    from audits.strong import record_scores, run_strong
    from forget.corpus import GenerateConfig, generate, load_corpus
    from forget.models import load_model
    from forget.models.build import train_model
    from forget.workflow.shadows import shadow_provider

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench-ulira-"))
    generate(work / "data", GenerateConfig(subjects=12, seed=7, code_files=24))
    corpus = load_corpus(work / "data")
    t0 = time.perf_counter()
    train_model(work / "data", work / "original", size="tiny", registry=work / "reg",
                progress=False)
    train_s = time.perf_counter() - t0
    orig = load_model(work / "original")
    subject = next(s for s in corpus.subject_ids("train") if any(greedy_hits(*orig, [
        p for r in corpus.records_of(s) if r["record_id"].startswith("S")
        for p in identifier_prompts(r["record_id"], r["text"], r["spans"],
                                    ("phone", "email", "national_id"))])))
    train_model(work / "data", work / "retrained", size="tiny", exclude_subjects=[subject],
                registry=work / "reg", progress=False)
    retr = load_model(work / "retrained")
    members = corpus.records_of(subject)
    texts = [r["text"] for r in members]
    provider = shadow_provider(work / "original", corpus, [r["record_id"] for r in members])
    k = args.shadows
    estimate = provider.estimate_seconds(k)
    t0 = time.perf_counter()
    shadows = provider(k)
    shadow_s = time.perf_counter() - t0
    cfg = AuditConfig(strong=True, strong_shadows=k, strong_budget_s=float("inf"))

    def attack(orig, retr, shadows, cfg):
        hit = run_strong(model=orig[0], tokenizer=orig[1], texts=texts, shadows=shadows,
                         config=cfg)
        miss = run_strong(model=retr[0], tokenizer=retr[1], texts=texts, shadows=shadows,
                          config=cfg)
        # The original and the retrain as one more pseudo-target per side (k + 1 per side).
        a = np.stack([record_scores(*p, texts) for p in [orig, *shadows.inside]])
        b = np.stack([record_scores(*p, texts) for p in [retr, *shadows.outside]])
        return hit, miss, U.calibrate(a, b, alpha=cfg.strong_alpha)

    hit, miss, wider = attack(orig, retr, shadows, cfg)
    ft = _finetune_line(work, corpus, subject, members, args.finetune_shadows, attack)
    out = {
        "what": "U-LiRA per-person test, tiny model, original (trained with the subject) vs "
                "exact retrain (without); per-record TPR at a per-record FPR = records with "
                "OUT p-value <= FPR / records",
        "records": len(texts), "shadows_per_side": k,
        "train_one_tiny_model_s": round(train_s, 1),
        "shadow_estimate_s": round(estimate, 1), "shadow_training_s": round(shadow_s, 1),
        "original": _test(hit.audited), "retrained": _test(miss.audited),
        "calibration_k": dataclasses.asdict(hit.calibration),
        "calibration_k_plus_original_and_retrain": dataclasses.asdict(wider),
        "finetune_line": ft,
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "threads": torch.get_num_threads()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(json.dumps({key: out[key] for key in ("records", "shadow_estimate_s",
                                                  "shadow_training_s")}))
    for role in ("original", "retrained"):
        r = out[role]
        print(f"{role}: decision {r['decision']}; TPR@1%FPR {r['tpr_at_1pct_fpr']:.2f} "
              f"TPR@0.1%FPR {r['tpr_at_0.1pct_fpr']:.2f}; min p {r['min_p']:.3g}; power "
              f"{r['power']:.2f}")
    print("fine-tuned line:", json.dumps({key: ft[key] for key in (
        "shadows_per_side", "shadow_estimate_s", "shadow_training_s")}))
    for role in ("original", "retrained"):
        r = ft[role]
        print(f"  {role}: decision {r['decision']}; TPR@1%FPR {r['tpr_at_1pct_fpr']:.2f} "
              f"TPR@0.1%FPR {r['tpr_at_0.1pct_fpr']:.2f}; min p {r['min_p']:.3g}")
    print("  calibration (k+1 per side):", {key: ft["calibration"][key] for key in (
        "tpr_at", "reasons", "auc", "person_detected", "person_false", "instances_out")})
    print("calibration (k+1 per side):", {key: out["calibration_k_plus_original_and_retrain"][key]
                                          for key in ("tpr_at", "reasons", "auc",
                                                      "person_detected", "person_false")})


def _finetune_line(work: Path, corpus, subject: str, members: list[dict], k: int,
                   attack) -> dict:
    """The small fine-tuned line (see the module docstring) and its per-person attack."""
    from audits import AuditConfig
    from forget.corpus import open_corpus
    from forget.models import load_model
    from forget.models.finetune import FinetuneParams, finetune
    from forget.workflow.shadows import shadow_provider

    others = [r for r in corpus.people
              if r["split"] == "train" and r["subject_id"] != subject][:24]
    data = work / "ft.jsonl"
    data.write_text("".join(json.dumps({"id": r["record_id"], "text": r["text"]}) + "\n"
                            for r in members + others))
    kw = dict(id_field="id", hp=FinetuneParams(epochs=4, learning_rate=2e-3, batch_size=8),
              seed=0, registry=work / "reg", progress=False)
    finetune(work / "retrained", data, work / "ft-original", **kw)
    finetune(work / "retrained", data, work / "ft-retrained",
             exclude_record_ids=[r["record_id"] for r in members], **kw)
    provider = shadow_provider(work / "ft-original", open_corpus(data, id_field="id"),
                               [r["record_id"] for r in members])
    estimate = provider.estimate_seconds(k)
    t0 = time.perf_counter()
    shadows = provider(k)
    seconds = time.perf_counter() - t0
    hit, miss, cal = attack(load_model(work / "ft-original"), load_model(work / "ft-retrained"),
                            shadows, AuditConfig(strong=True, strong_shadows=k,
                                                 strong_budget_s=float("inf")))
    return {"shadows_per_side": k, "shadow_estimate_s": round(estimate, 1),
            "shadow_training_s": round(seconds, 1), "original": _test(hit.audited),
            "retrained": _test(miss.audited), "calibration": dataclasses.asdict(cal)}


if __name__ == "__main__":
    main()
