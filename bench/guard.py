"""Benchmark of the guard: recall on obfuscated identifiers, false positives, latency.

* recall: every obfuscation in :data:`guardrails.obfuscate.OBFUSCATIONS` applied to every
  identifier (name, email, phone, id) of 25 indexed fake people, each inside a carrier
  sentence; a variant counts as caught when one forgotten-subject finding covers all its
  letters and digits. Target >= 99%.
* false positives: 500 texts about 500 other (non-indexed) fake people. ``index_fp_rate``:
  texts with a forgotten-subject finding (with those people's own names, emails, phones and
  ids in the text). ``clean_fp_rate``: texts without contact details (name, job, company, city,
  date) that the full guard changes at all. Target <= 1%.
* latency: ms per 1,000 characters of the full guard (``Guard.analyze``: index + obfuscated
  emails + Presidio) vs Presidio's ``AnalyzerEngine.analyze`` alone on the same documents,
  median of repetitions, each document timed both ways back to back. Target <= 1.1x.

Writes ``bench/results/guard.json``. Run: ``python bench/guard.py``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from faker import Faker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guardrails import FORGOTTEN, ForgottenIndex, Guard  # noqa: E402
from guardrails.obfuscate import OBFUSCATIONS  # noqa: E402

SEED = 20240617
CARRIERS = ("Sure, the person you mean is {} as far as I know.",
            "Record 17: {}\nStatus: archived.",
            "According to the file ({}), nothing changed.")


def people(fake: Faker, n: int, taken: set[str]) -> list[dict[str, str]]:
    out = []
    while len(out) < n:
        first, last = fake.first_name(), fake.last_name()
        name = f"{first} {last}"
        if name in taken:
            continue
        taken.add(name)
        out.append({"name": name,
                    "email": f"{first}.{last}{fake.random_int(1, 99)}@{fake.free_email_domain()}"
                    .lower(),
                    "phone": fake.numerify("(###) ###-####").replace("(0", "(2")
                    .replace("(1", "(3"),
                    "id": fake.bothify("??-######").upper(),
                    "job": fake.job(), "company": fake.company(), "city": fake.city(),
                    "date": fake.date(), "first": first})
    return out


def recall(guard: Guard, subjects: list[dict[str, str]]) -> dict:
    total, caught = 0, 0
    by: dict[str, list[int]] = {}
    for i, p in enumerate(subjects):
        for kind, fns in OBFUSCATIONS.items():
            for fn in fns:
                shown = fn(p[kind])
                text = CARRIERS[(i + total) % len(CARRIERS)].format(shown)
                start = text.index(shown)
                alnum = [j for j in range(start, start + len(shown)) if text[j].isalnum()]
                ok = any(f.entity == FORGOTTEN and f.start <= alnum[0] and alnum[-1] < f.end
                         for f in guard.analyze(text))
                total, caught = total + 1, caught + ok
                key = f"{kind}:{fn.__name__}"
                by.setdefault(key, [0, 0])
                by[key][0] += ok
                by[key][1] += 1
    return {"variants": total, "caught": caught, "recall": caught / total,
            "missed_by_obfuscation": {k: v[1] - v[0] for k, v in sorted(by.items()) if v[0] < v[1]}}


def false_positives(guard: Guard, others: list[dict[str, str]]) -> dict:
    contact = [f"{p['name']} ({p['email']}, {p['phone']}, customer {p['id']}) works as a "
               f"{p['job']} at {p['company']}." for p in others]
    clean = [f"{p['name']} moved to {p['city']} on {p['date']} and works as a {p['job']} at "
             f"{p['company']}. {p['first']} enjoys it there." for p in others]
    index_hits = sum(any(f.entity == FORGOTTEN for f in guard.analyze(t)) for t in contact)
    changed = [t for t in clean if guard.redact(t) != t]
    return {"texts": len(others), "index_fp": index_hits, "index_fp_rate": index_hits / len(others),
            "clean_changed": len(changed), "clean_fp_rate": len(changed) / len(others),
            "clean_fp_entities": sorted({f.entity for t in changed for f in guard.analyze(t)
                                         if f.action.value != "allow"})}


def latency(guard: Guard, docs: list[str], reps: int = 9) -> dict:
    """Per document, Presidio alone and the full guard back to back (alternating order),
    so machine load hits both alike; medians and minima over repetitions."""
    analyzer = guard.analyzer
    for d in docs[:3]:  # warm up caches (regexes, fold table)
        guard.analyze(d)
    chars = sum(len(d) for d in docs)
    t_presidio, t_guard = [], []
    for rep in range(reps):
        tp = tg = 0.0
        for i, d in enumerate(docs):
            for which in ((0, 1) if (i + rep) % 2 else (1, 0)):
                t0 = time.perf_counter()
                if which == 0:
                    analyzer.analyze(text=d, language="en",
                                     score_threshold=guard.policy.min_score)
                    tp += time.perf_counter() - t0
                else:
                    guard.analyze(d)
                    tg += time.perf_counter() - t0
        t_presidio.append(tp / chars * 1e6)
        t_guard.append(tg / chars * 1e6)
    p, g = statistics.median(t_presidio), statistics.median(t_guard)
    return {"documents": len(docs), "characters": chars, "repetitions": reps,
            "presidio_ms_per_1k_chars": round(p, 3), "guard_ms_per_1k_chars": round(g, 3),
            "ratio": round(g / p, 3),
            "ratio_of_minima": round(min(t_guard) / min(t_presidio), 3)}


def main() -> dict:
    fake = Faker("en_US")
    fake.seed_instance(SEED)
    taken: set[str] = set()
    subjects = people(fake, 25, taken)
    others = people(fake, 500, taken)
    index = ForgottenIndex(b"bench-key-" + b"0" * 22)
    for i, p in enumerate(subjects):
        index.add({k: p[k] for k in ("name", "email", "phone", "id")}, ref=f"bench-{i}")
    guard = Guard(index)
    t0 = time.perf_counter()
    _ = guard.analyzer  # build the offline analyzer once (cached)
    build_s = time.perf_counter() - t0
    text = " ".join(f"{p['name']} moved to {p['city']} and works as a {p['job']} at "
                    f"{p['company']}; reach them at {p['email']} or {p['phone']}." for p in others)
    docs = [text[i:i + 1000] for i in range(0, 40_000, 1000)]
    rec = recall(guard, subjects)
    fp = false_positives(guard, others)
    lat = latency(guard, docs)
    result = {
        "targets": {"recall": ">= 0.99", "fp_rate": "<= 0.01", "latency_ratio": "<= 1.1"},
        "met": {"recall": rec["recall"] >= 0.99,
                "fp_rate": max(fp["index_fp_rate"], fp["clean_fp_rate"]) <= 0.01,
                "latency_ratio": lat["ratio"] <= 1.1},
        "recall": rec, "false_positives": fp, "latency": lat,
        "setup": {"indexed_subjects": len(subjects), "index_forms": len(index),
                  "longest_form": index.max_len, "seed": SEED,
                  "analyzer_build_s": round(build_s, 2)},
    }
    out = ROOT / "bench" / "results" / "guard.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps({"recall": rec["recall"], "index_fp_rate": fp["index_fp_rate"],
                      "clean_fp_rate": fp["clean_fp_rate"], "latency_ratio": lat["ratio"]}))
    return result


if __name__ == "__main__":
    main()
