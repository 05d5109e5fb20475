"""Benchmark: every LLM method on the same subjects, with the full audit (issue 11).

Trains the ``demo`` model on ``data/`` (or takes ``--model``), then forgets random subjects one
at a time, the most-memorised and most-duplicated subjects, all of them as one batch, leaked
code secrets, and a run of sequential requests, auditing each result with the original and a
retrained model as controls. ``--scale 1`` is the issue's size (20 subjects, 10 sequential
requests, 5 secrets); the default ``--scale 0.1`` (2 subjects, 2 sequential requests, 1
secret) is what finishes in a reasonable time on 2 CPU cores. Writes
``bench/results/compare.json``.

    python bench/compare.py [--scale 0.1] [--data data] [--size demo] [--model DIR]
                            [--methods ...] [--out bench/results/compare.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from forget._env import configure_offline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--data", default="data")
    ap.add_argument("--size", default="demo")
    ap.add_argument("--model", default=None, help="an already trained model (else train one)")
    ap.add_argument("--methods", nargs="*", default=None)
    ap.add_argument("--no-lm-eval", action="store_true")
    ap.add_argument("--out", default="bench/results/compare.json")
    args = ap.parse_args()
    configure_offline()

    from forget.evaluation import run_comparison, scaled
    from forget.models.build import train_model

    overrides = {"lm_eval": not args.no_lm_eval}
    if args.methods:
        overrides["methods"] = tuple(args.methods)
    cfg = scaled(args.scale, **overrides)
    with tempfile.TemporaryDirectory(prefix="forget-compare-") as tmp:
        model_dir, train_s = Path(args.model) if args.model else Path(tmp) / "original", None
        if not args.model:
            t0 = time.perf_counter()
            train_model(args.data, model_dir, size=args.size, registry=Path(tmp) / "registry",
                        progress=False)
            train_s = time.perf_counter() - t0
        out = run_comparison(args.data, model_dir, Path(tmp) / "work", config=cfg,
                             say=lambda m: print(f"[compare] {m}", flush=True))
    out.update(scale=args.scale, size=args.size, data=str(args.data),
               original_train_time_s=train_s)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(json.dumps(out["summary"], indent=2))


if __name__ == "__main__":
    main()
