"""Which subjects to forget in a comparison: random ones, and the worst cases.

Fan et al. ("Challenging Forgets", ECCV 2024) showed that averages over random forget sets hide
the hard cases, so the comparison also forgets the subject the model memorised most and the one
whose data is most duplicated in training.
"""

from __future__ import annotations

import random

from audits.extraction import greedy_hits
from audits.mia import token_stats
from forget.core.data import PEOPLE_KINDS
from forget.corpus.load import Corpus


def random_subjects(corpus: Corpus, n: int, *, seed: int = 0,
                    exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """``n`` trained subjects drawn without replacement (sorted, so runs are comparable)."""
    pool = [s for s in corpus.subject_ids("train") if s not in exclude]
    return sorted(random.Random(seed).sample(pool, min(n, len(pool))))


def most_duplicated(corpus: Corpus) -> str:
    """The trained subject with the most training records (their identifiers repeat most)."""
    counts = {s: sum(1 for r in corpus.records_of(s) if r["split"] == "train")
              for s in corpus.subject_ids("train")}
    return max(sorted(counts), key=lambda s: counts[s])


def most_memorized(corpus: Corpus, model, tokenizer) -> str:
    """The trained subject whose identifiers greedy decoding reproduces most often; ties go to
    the lowest mean per-token loss on their records (the model is surest of them)."""
    from audits.extraction import identifier_prompts

    subjects = corpus.subject_ids("train")
    scores = {}
    for sid in subjects:
        rows = [r for r in corpus.records_of(sid) if r["split"] == "train"]
        prompts = [p for r in rows for p in identifier_prompts(
            r["record_id"], r["text"], r["spans"], PEOPLE_KINDS)]
        hits = sum(greedy_hits(model, tokenizer, prompts)) / max(1, len(prompts))
        stats = token_stats(model, tokenizer, [r["text"] for r in rows], moments=False)
        n = sum(len(s.logprobs) for s in stats)
        loss = -sum(float(s.logprobs.sum()) for s in stats) / max(1, n)
        scores[sid] = (hits, -loss)
    return max(sorted(scores), key=lambda s: scores[s])
