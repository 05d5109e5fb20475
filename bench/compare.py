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


def merge(old: dict, new: dict) -> dict:
    """``old`` with ``new``'s methods added (or replaced); refuses other subjects."""
    from forget.evaluation.parts import summarize

    if old["subjects"] != new["subjects"]:
        raise SystemExit(f"--append chose other subjects ({new['subjects']} vs "
                         f"{old['subjects']}): use the same model, data, scale and seed")
    added = set(new["methods"])
    for key in ("rows", "batch", "code"):
        old[key] = [r for r in old[key] if r["method"] not in added] + new[key]
    old["methods"] = [m for m in old["methods"] if m not in added] + new["methods"]
    old["summary"] = summarize(old["rows"], old["methods"])
    old.setdefault("appended", []).append({"methods": new["methods"], "created": new["created"],
                                           "wall_s": new["wall_s"]})
    return old


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--data", default="data")
    ap.add_argument("--size", default="demo")
    ap.add_argument("--model", default=None, help="an already trained model (else train one)")
    ap.add_argument("--methods", nargs="*", default=None)
    ap.add_argument("--no-lm-eval", action="store_true")
    ap.add_argument("--out", default="bench/results/compare.json")
    ap.add_argument("--append", action="store_true",
                    help="run only --methods and merge them into the existing --out (same "
                         "model, data, scale and seed give the same subjects)")
    args = ap.parse_args()
    if args.append and not (args.methods and args.model and Path(args.out).is_file()):
        raise SystemExit("--append needs --methods, --model (the same model as before) and an "
                         "existing --out")
    configure_offline()

    from forget.evaluation import run_comparison, scaled
    from forget.models.build import train_model

    overrides = {"lm_eval": not args.no_lm_eval}
    if args.methods:
        overrides["methods"] = tuple(args.methods)
    if args.append:  # the code and sequential parts were run the first time
        overrides.update(code_methods=(), sequential_methods=())
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
    if args.append:
        out = merge(json.loads(Path(args.out).read_text()), out)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(json.dumps(out["summary"], indent=2))


if __name__ == "__main__":
    main()
