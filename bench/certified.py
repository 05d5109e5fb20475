"""Benchmark: the two methods with a formal guarantee.

1. DP utility table: the model retrained without one subject, non-privately and with DP-SGD at
   epsilon 1, 3 and 8 (Opacus, RDP accountant, delta 1e-5): perplexity on retained and held-out
   people records, and for the canaries seen 5 and 20 times, greedy extraction and exposure
   (rank of the true secret among 199 random secrets of its format; rank 1 = fully exposed).
2. noisy-GD certified deletion from a softmax head over the frozen non-private retrained LM
   (which never saw the subject): the deletion's steps K_U and gradient computations against
   retraining the head from scratch with noisy GD (K_A steps), wall times, and the accuracy of
   the unlearned head against the retrained one. Target: <= 10% of retraining's gradient
   computations (Langevin unlearning reports 2-10%).

Writes ``bench/results/certified.json``.

    python bench/certified.py [--data data] [--size tiny] [--dp-epochs N] [--out ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import time
from pathlib import Path

import torch

from forget._env import configure_offline

TARGET_SHARE = 0.10
EPSILONS = (1.0, 3.0, 8.0)
SIGMAS = (0.05, 0.1, 0.15, 0.2)


def canary_rows(corpus, model, tok, canaries, alternatives: int = 199) -> list[dict]:
    """Greedy extraction and exposure rank of each canary's secret (no secret is written)."""
    from audits.exposure import continuation_logliks
    from audits.extraction import greedy_hits, identifier_prompts

    rows = []
    for c in canaries:
        (p,) = identifier_prompts(c["canary_id"], c["text"], c["spans"])
        rng = random.Random(c["canary_id"])
        secret = p.target.strip()
        alts = {"".join(rng.choice("0123456789") for _ in secret) for _ in range(alternatives)}
        alts.discard(secret)
        lead = p.target[: len(p.target) - len(p.target.lstrip())]
        cands = [secret] + sorted(alts)
        ll = continuation_logliks(model, tok, [(p.prefix, lead + s) for s in cands])
        rank = 1 + int((ll[1:] > ll[0]).sum())
        rows.append({"canary": c["canary_id"], "repeats": c["repeats"],
                     "extracted": bool(greedy_hits(model, tok, [p])[0]), "rank": rank,
                     "candidates": len(cands)})
    return rows


def dp_table(corpus, tok, fset, rset, size: str, epochs: int, seed: int) -> tuple[list, object]:
    from audits.utility import perplexity_of
    from forget.core import get_method
    from forget.methods.dp_retrain import DPRetrainConfig
    from forget.methods.retrain import RetrainConfig

    sid = fset.subject_id
    retain_texts = random.Random(0).sample(
        sorted({r["text"] for r in corpus.people if r["split"] == "train"
                and r["subject_id"] != sid}), 200)
    holdout = [r["text"] for r in corpus.people if r["split"] == "holdout"][:200]
    canaries = [c for c in corpus.canaries if c["split"] == "train" and c["repeats"] in (5, 20)]
    rows, public = [], None
    runs = [("retrain", None)] + [("dp_retrain", e) for e in EPSILONS]
    for name, eps in runs:
        print(f"[bench] {name} epsilon={eps} ...", flush=True)
        cfg = (RetrainConfig(size=size, seed=seed) if eps is None else
               DPRetrainConfig(target_epsilon=eps, size=size, seed=seed,
                               **({} if epochs is None else {"epochs": epochs})))
        # both methods train a fresh model of ``size``: they never read the given model
        res = get_method(name).run(model=None, tokenizer=tok, forget=fset, retain=rset,
                                   config=cfg)
        f = res.formal_guarantee or {}
        rows.append({
            "model": "non-private retrain" if eps is None else f"DP-SGD epsilon={eps:g}",
            "epsilon": f.get("epsilon"), "delta": f.get("delta"),
            "noise_multiplier": f.get("noise_multiplier"), "steps": res.steps,
            "sample_rate": f.get("sample_rate"), "wall_time_s": round(res.wall_time_s, 1),
            "retain_ppl": round(perplexity_of(res.model, tok, retain_texts)[0], 3),
            "holdout_ppl": round(perplexity_of(res.model, tok, holdout)[0], 3),
            "canaries": canary_rows(corpus, res.model, tok, canaries),
        })
        print(f"[bench] {json.dumps(rows[-1])}", flush=True)
        if eps is None:
            public = res.model
    return rows, public


def head_bench(corpus, public, tok, fset, rset, tmp: Path, seed: int,
               sigma: float | None = None) -> dict:
    from forget.core import get_method
    from forget.methods._certified_head import (
        HeadState,
        HeadTrainConfig,
        accuracy,
        lm_features,
        train_head,
    )
    from forget.methods.noisy_gd import build_head_model, corpus_head_records
    from forget.models import load_model, save_model
    from forget.models.registry import new_card

    tmp.mkdir(parents=True, exist_ok=True)
    lm_dir = tmp / "public-lm"
    save_model(public, tok, lm_dir, card=new_card(kind="bench", parent=None))
    records = corpus_head_records(corpus)
    cfg = HeadTrainConfig(seed=seed) if sigma is None else HeadTrainConfig(seed=seed, sigma=sigma)
    t0 = time.perf_counter()
    build_head_model(lm_dir, records, tmp / "head", config=cfg, registry=tmp / "reg")
    train_s = time.perf_counter() - t0
    model, tok = load_model(tmp / "head")
    res = get_method("noisy_gd").run(model=model, tokenizer=tok, forget=fset, retain=rset)
    res.save_extra(tmp)
    after, before = HeadState.load(tmp), HeadState.load(tmp / "head")
    text = {r[0]: r[1] for r in records}
    t0 = time.perf_counter()
    x, _ = lm_features(model, tok, [text[r] for r in after.record_ids])
    features_s = time.perf_counter() - t0
    y = torch.tensor([after.labels[r] for r in after.record_ids])
    t0 = time.perf_counter()
    retrained, _ = train_head(x, y, len(before.classes),
                              dataclasses.replace(cfg, seed=seed + 1))
    retrain_s = time.perf_counter() - t0
    held = [r for r in corpus.people + corpus.code if r["split"] == "holdout"]
    label = {c: i for i, c in enumerate(before.classes)}
    hx, _ = lm_features(model, tok, [r["text"] for r in held])
    hy = torch.tensor([label["code" if "path" in r else "people"] for r in held])
    f = res.formal_guarantee
    n_rem = len(after.record_ids)
    deletion_grads, retrain_grads = f["deletion_steps"] * n_rem, before.train_steps * n_rem
    # wall of the deletion's noisy-GD part alone: the method's wall less its feature pass
    return {
        "records": f["n"], "removed": f["removed"], "classes": before.classes,
        "hyper_parameters": {k: f[k] for k in ("lambda", "eta", "sigma", "clip")},
        "guarantee": {k: f[k] for k in ("order", "epsilon", "target_epsilon", "epsilon_dp",
                                        "delta", "initial_epsilon")},
        "deletion_steps_K_U": f["deletion_steps"], "training_steps_K_A": before.train_steps,
        "deletion_gradient_computations": deletion_grads,
        "retrain_gradient_computations": retrain_grads,
        "share_of_retrain_gradients": round(deletion_grads / retrain_grads, 4),
        "meets_target": deletion_grads / retrain_grads <= TARGET_SHARE,
        "deletion_wall_s_incl_features": round(res.wall_time_s, 3),
        "feature_pass_wall_s": round(features_s, 3),
        "retrain_head_wall_s_excl_features": round(retrain_s, 3),
        "head_build_wall_s_incl_features": round(train_s, 3),
        "train_accuracy": {"unlearned": accuracy(after.theta, x, y),
                           "retrained": accuracy(retrained, x, y)},
        "holdout_accuracy": {"unlearned": accuracy(after.theta, hx, hy),
                             "retrained": accuracy(retrained, hx, hy),
                             "holdout_records": len(held)},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data")
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--dp-epochs", type=int, default=None,
                    help="DP-SGD epochs (default: the method's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/results/certified.json")
    args = ap.parse_args()
    configure_offline()
    import tempfile

    import forget.methods  # noqa: F401
    from forget.core import subject_sets
    from forget.corpus import load_corpus
    from forget.models.build import tokenizer_texts
    from forget.models.tokenizer import train_tokenizer

    corpus = load_corpus(args.data)
    sid = corpus.subject_ids("train")[0]
    fset, rset = subject_sets(corpus, sid)
    with tempfile.TemporaryDirectory(prefix="forget-bench-") as tmp:
        tok = train_tokenizer(tokenizer_texts(corpus))  # identifiers cut out, as in training
        rows, public = dp_table(corpus, tok, fset, rset, args.size, args.dp_epochs, args.seed)
        head = head_bench(corpus, public, tok, fset, rset, Path(tmp) / "default", args.seed)
        sweep = []
        for sigma in SIGMAS:  # the noise / cost / accuracy trade-off
            r = head_bench(corpus, public, tok, fset, rset, Path(tmp) / f"s{sigma}", args.seed,
                           sigma=sigma)
            sweep.append({"sigma": sigma, **{k: r[k] for k in (
                "deletion_steps_K_U", "training_steps_K_A", "share_of_retrain_gradients",
                "meets_target", "train_accuracy", "holdout_accuracy")}})
    out = {
        "benchmark": "formal guarantees: DP-SGD retraining utility, noisy-GD head deletion",
        "data": str(args.data), "size": args.size, "subject": sid,
        "forget_records": len(fset.examples), "dp_epochs": args.dp_epochs,
        "dp_utility": rows, "noisy_gd_head": head, "noisy_gd_sigma_sweep": sweep,
        "target": f"noisy-GD deletion <= {TARGET_SHARE:.0%} of retraining's gradient "
                  "computations",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(),
                    "load_average_1m": round(os.getloadavg()[0], 2)},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
