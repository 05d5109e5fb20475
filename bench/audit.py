"""Benchmark: MIA scoring throughput vs a plain batched forward pass, and one whole audit.

Uses the checked-in ``data/`` corpus; trains the tiny model there unless ``--model`` is given.
Writes ``bench/results/audit.json``.

    python bench/audit.py [--model DIR] [--subject ID] [--repeats 3]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--subject")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "audit.json")
    args = ap.parse_args()

    from forget._env import configure_offline

    configure_offline()
    import torch

    import audits
    from audits.mia import score_texts
    from forget.corpus import load_corpus
    from forget.models import load_model
    from forget.models.build import train_model

    corpus = load_corpus(ROOT / "data")
    tmp = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    train_s = None
    if args.model is None:
        t0 = time.perf_counter()
        train_model(ROOT / "data", tmp / "tiny", size="tiny", registry=tmp / "reg",
                    progress=False)
        train_s = time.perf_counter() - t0
        args.model = tmp / "tiny"
    model, tok = load_model(args.model)
    texts = [r["text"] for r in corpus.people] + [r["text"] for r in corpus.code]
    n_tokens = sum(len(tok(t)["input_ids"]) for t in texts)
    bs = audits.AuditConfig().batch_size

    @torch.no_grad()
    def plain() -> None:  # the same batches (sorted by length), logits only
        ids = [tok(t)["input_ids"] for t in texts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for b in range(0, len(order), bs):
            idx = order[b: b + bs]
            w = max(len(ids[i]) for i in idx)
            x = torch.full((len(idx), w), tok.pad_token_id, dtype=torch.long)
            m = torch.zeros_like(x)
            for r, i in enumerate(idx):
                x[r, : len(ids[i])] = torch.tensor(ids[i])
                m[r, : len(ids[i])] = 1
            model(input_ids=x, attention_mask=m).logits.sum().item()

    def full() -> None:
        score_texts(model, tok, texts, batch_size=bs)

    def best(fn) -> float:
        fn()  # warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    t_plain, t_full = best(plain), best(full)
    subject = args.subject or next(
        s for s in corpus.subject_ids("train") if corpus.records_of(s))
    hold = set(corpus.subject_ids("holdout"))
    t0 = time.perf_counter()
    report = audits.run_audit(
        model=model, tokenizer=tok, members=corpus.records_of(subject),
        nonmembers=[r for r in corpus.people if r["subject_id"] in hold],
        retain=[r["text"] for r in corpus.people
                if r["split"] == "train" and r["subject_id"] != subject][:200],
        holdout=[r["text"] for r in corpus.people if r["subject_id"] in hold][:200],
        original=(model, tok), subject_id=subject)
    t_audit = time.perf_counter() - t0
    result = {
        "benchmark": "audit",
        "texts": len(texts), "tokens": n_tokens, "batch_size": bs, "repeats": args.repeats,
        "plain_forward_s": round(t_plain, 4), "mia_scoring_s": round(t_full, 4),
        "plain_forward_tokens_per_s": round(n_tokens / t_plain, 1),
        "mia_scoring_tokens_per_s": round(n_tokens / t_full, 1),
        "ratio_mia_vs_plain": round(t_plain / t_full, 3),
        "target_ratio": 0.8,
        # cProfile of score_texts (1 thread, issue 18.9); what was removed: see audits/mia.py
        "scoring_profile": "forward pass ~85% of scoring time; the rest: log_softmax and exp "
                           "over the (B, T, V) logits (Min-K%++ moments), tokenization",
        "whole_audit_s": round(t_audit, 2),
        "whole_audit_note": "one subject, default AuditConfig, original = the same model "
                            "(reused, no extra control run), no retrained control, no lm-eval",
        "audit_verdict": report.verdict,
        "train_tiny_model_s": None if train_s is None else round(train_s, 1),
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.system()}, {torch.get_num_threads()} "
                   "torch threads (2 cores shared with other jobs: timings are noisy)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
