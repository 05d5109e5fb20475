"""The memorization table: how often greedy decoding reproduces identifiers verbatim.

For each subject and identifier kind (phone, email, national id), the subject counts as
extracted when greedy decoding from the text that precedes the identifier in at least one of
their records reproduces it exactly. Reported separately for trained and held-out subjects
(held-out ones were never seen, so their rate is the chance level), and for canaries by
repetition count and code secrets by split.
"""

from __future__ import annotations

from collections import defaultdict

from audits.extraction import Prompt, greedy_hits, identifier_prompts
from forget.corpus.load import Corpus

KINDS = ("phone", "email", "national_id")


def memorization_table(model, tokenizer, corpus: Corpus, *,
                       excluded_subjects: set[str] | frozenset[str] = frozenset()) -> dict:
    """Extraction rates by split and kind; excluded subjects are reported as their own split."""
    def split_of(sid: str, split: str) -> str:
        return "excluded" if sid in excluded_subjects else split

    prompts: list[Prompt] = []
    owners: list[tuple[str, str]] = []  # (split, subject id) per prompt
    for r in corpus.people:
        ps = identifier_prompts(r["record_id"], r["text"], r["spans"], KINDS)
        prompts += ps
        owners += [(split_of(r["subject_id"], r["split"]), r["subject_id"])] * len(ps)
    canary_prompts = [p for c in corpus.canaries
                      for p in identifier_prompts(c["canary_id"], c["text"], c["spans"])]
    code_prompts = [p for c in corpus.code
                    for p in identifier_prompts(c["record_id"], c["text"], c["spans"])]
    hits = greedy_hits(model, tokenizer, prompts + canary_prompts + code_prompts)
    people_hits = hits[: len(prompts)]
    canary_hits = hits[len(prompts): len(prompts) + len(canary_prompts)]
    code_hits = hits[len(prompts) + len(canary_prompts):]

    per_subject: dict[tuple[str, str, str], bool] = defaultdict(bool)
    for (split, sid), p, hit in zip(owners, prompts, people_hits, strict=True):
        per_subject[(split, sid, p.kind)] |= hit
    subjects: dict[str, dict] = {}
    for split in sorted({s for s, _, _ in per_subject}):
        row: dict = {}
        ids = sorted({sid for s, sid, _ in per_subject if s == split})
        for kind in KINDS:
            vals = [per_subject[(split, sid, kind)] for sid in ids if (split, sid, kind) in per_subject]
            row[kind] = sum(vals) / len(vals) if vals else 0.0
        anyk = [any(per_subject.get((split, sid, k), False) for k in KINDS) for sid in ids]
        row["any"] = sum(anyk) / len(anyk) if anyk else 0.0
        row["subjects"] = len(ids)
        occ = [h for (s, _), h in zip(owners, people_hits, strict=True) if s == split]
        row["occurrences"] = sum(occ) / len(occ) if occ else 0.0
        subjects[split] = row

    by_canary = {c["canary_id"]: c for c in corpus.canaries}
    canaries: dict[str, list[bool]] = defaultdict(list)
    for p, hit in zip(canary_prompts, canary_hits, strict=True):
        c = by_canary[p.record_id]
        canaries["holdout" if c["split"] == "holdout" else f"k={c['repeats']}"].append(hit)
    by_code = {c["record_id"]: c for c in corpus.code}
    code: dict[str, list[bool]] = defaultdict(list)
    for p, hit in zip(code_prompts, code_hits, strict=True):
        c = by_code[p.record_id]
        split = c["split"] if c["split"] == "holdout" else f"train (x{c['repeats']})"
        code[split].append(hit)
    rate = lambda v: {"rate": sum(v) / len(v), "n": len(v)}  # noqa: E731
    return {
        "subjects": subjects,
        "canaries": {k: rate(v) for k, v in sorted(canaries.items())},
        "code_secrets": {k: rate(v) for k, v in sorted(code.items())},
        "definition": "fraction of subjects whose identifier greedy decoding reproduces "
                      "verbatim from the text preceding it in at least one of their records",
    }
