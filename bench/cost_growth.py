"""Cost growth on paper: the measured per-request costs, extrapolated to a 7B model fine-tuned
on a 1B-token corpus (gradient steps and GPU-hours; assumptions in ``forget.evaluation.cost``).

Reads what the other benchmarks measured (nothing is re-run):
- ``bench/results/shards.json``: ``shard_retrain``'s steps as a share of the one-piece
  (monolithic LoRA) fine-tune, per deleted subject, for S shards x R slices;
- ``bench/results/frontier.json``: retraining's steps and tokens per subject, and each
  empirical method's share of them with its pass rate under the calibrated audit;
- ``bench/results/batch.json`` when present: batched against one-by-one runs.

Writes ``bench/results/cost_growth.json``: one row per method (measured share, pass rate, and
the 7B / 1B-token figures for 1, 20 and 100 requests batched into one run).
Run: ``python bench/cost_growth.py [--params 7e9 --tokens 1e9 --mfu 0.4]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results"
BATCHES = (1, 20, 100)


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def shard_rows(shards: dict) -> list[dict]:
    """shard_retrain rows: the demo corpus's mean per-request share of one-piece steps."""
    out = []
    for res in shards["results"]:
        if res["corpus"] != "demo":
            continue
        for c in res["configs"]:
            if c["shards"] == 1:
                continue
            audits = c.get("audit") or []
            out.append({"method": "shard_retrain", "setting": f"{c['shards']}x{c['slices']}",
                        "shards": c["shards"], "kind": "adapter",
                        "share_of_training": c["deletion_mean"]["share_of_mono_steps"],
                        "training_overhead": c["steps_vs_mono"],
                        "pass_rate": (sum(a["verdict"] == "pass" for a in audits) / len(audits)
                                      if audits else None),
                        "audited": len(audits) or None, "guarantee": "exact"})
    return sorted(out, key=lambda r: r["share_of_training"])


# Empirical methods whose work follows the subject's records (ascent on the forget set, a
# few steps), not the corpus; the others (undo: distillation on the retain data) follow the
# corpus, like retraining.
PER_SUBJECT = {"npo", "grad_diff", "gradient_ascent", "simnpo"}


def frontier_rows(frontier: dict) -> list[dict]:
    """Empirical rows with their measured steps share of retraining and mean tokens."""
    tokens: dict[tuple, list[int]] = {}
    for subj in frontier["per_subject"]:
        for run in subj["runs"]:
            tokens.setdefault((run["method"], run["setting"]), []).append(run["tokens"])
    retrain_tokens = [v["tokens"] for v in frontier["retrain"].values()]
    out = []
    for r in frontier["rows"]:
        t = tokens.get((r["method"], r["setting"])) or []
        out.append({"method": r["method"], "setting": r["setting"], "shards": 1,
                    "kind": "full+reference", "share_of_training": r["share_of_retrain"]["steps"],
                    "grows_with": "subject" if r["method"] in PER_SUBJECT else "corpus",
                    "mean_tokens": sum(t) / len(t) if t else None,
                    "retrain_mean_tokens": sum(retrain_tokens) / len(retrain_tokens),
                    "pass_rate": r["pass_rate"], "audited": r["of"],
                    "guarantee": "empirical, audited"})
    return out


def project(row: dict, scale) -> dict:
    """The row's cost at ``scale``, per request, for batches of 1, 20 and 100 requests."""
    from forget.evaluation.cost import batched_share, extrapolate

    out = {}
    for k in BATCHES:
        if row["method"] in ("retrain", "shard_retrain"):  # one run serves the batch
            whole = row.get("training_overhead", 1.0) / row["shards"]  # one whole shard
            e = extrapolate(batched_share(row["share_of_training"], k, shards=row["shards"],
                                          shard_share=whole), scale, kind=row["kind"])
            per = {"gpu_hours": e["gpu_hours"] / k, "steps": e["steps"] / k}
        elif row["grows_with"] == "subject":  # its own tokens, per request, at any corpus size
            e = extrapolate(0.0, scale, kind=row["kind"], tokens=row["mean_tokens"])
            per = {"gpu_hours": e["gpu_hours"], "steps": e["steps"]}
        else:  # a share of retraining, per request
            e = extrapolate(row["share_of_training"], scale, kind=row["kind"])
            per = {"gpu_hours": e["gpu_hours"], "steps": e["steps"]}
        out[str(k)] = {"per_request_gpu_hours": per["gpu_hours"],
                       "per_request_steps": per["steps"]}
    return out


def main(argv: list[str] | None = None) -> dict:
    from forget.evaluation.cost import Scale, extrapolate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=float, default=7e9)
    ap.add_argument("--tokens", type=float, default=1e9)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--mfu", type=float, default=0.4)
    ap.add_argument("--out", type=Path, default=RESULTS / "cost_growth.json")
    args = ap.parse_args(argv)
    scale = Scale(params=args.params, tokens=args.tokens, epochs=args.epochs, mfu=args.mfu)
    shards, frontier, batch = _load("shards"), _load("frontier"), _load("batch")
    if shards is None or frontier is None:
        raise SystemExit("bench/results/shards.json and frontier.json are needed: run "
                         "bench/shards.py and bench/frontier.py first")
    rows = [{"method": "retrain", "setting": "one piece, full fine-tune", "shards": 1,
             "kind": "full", "share_of_training": 1.0, "pass_rate": 1.0,
             "guarantee": "exact", "audited": None}]
    rows += shard_rows(shards) + frontier_rows(frontier)
    for r in rows:
        r["at_scale"] = project(r, scale)
    full = extrapolate(1.0, scale, kind="full")
    result = {
        "benchmark": "cost growth: measured per-request shares extrapolated to a large model",
        "scale": asdict(scale), "one_piece_full": full,
        "one_piece_adapter": extrapolate(1.0, scale, kind="adapter"),
        "batches": list(BATCHES),
        "assumptions": [
            "FLOPs per token: 6N full fine-tune, 4N frozen base with adapters, 8N with a frozen "
            "reference model (NPO, KL); attention FLOPs left out",
            "GPU-hours at peak_flops x mfu (an H100 at 40% of dense bf16 peak)",
            "shard_retrain: the measured share of one-piece (LoRA) steps per deleted subject on "
            "the demo model; a batch retrains each touched shard once, at worst whole (its "
            "share of the sharded training, measured), subjects spread uniformly over shards "
            "(S(1-(1-1/S)^k) shards touched), never more than the requests one by one",
            "retrain: one re-run of the recipe serves a whole batch",
            "empirical methods, one run per request: ascent methods (npo, grad_diff) process "
            "the tokens measured per subject on the tiny model (a real person's records may be "
            "longer: the cost grows with them, not with the corpus); undo and targeted_undo "
            "distil on the retain data, so their measured share of retraining's steps is "
            "applied to the corpus; pass rates are the calibrated audit's on the tiny model",
        ],
        "rows": rows,
        "batch_measured": ({k: batch[k] for k in batch if k not in ("runs",)}
                           if batch else None),
        "sources": ["bench/results/shards.json", "bench/results/frontier.json"]
                   + (["bench/results/batch.json"] if batch else []),
        "command": "python bench/cost_growth.py " + " ".join(argv or sys.argv[1:]),
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
