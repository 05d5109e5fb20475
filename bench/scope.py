"""Benchmark of scoping a request in a 100,000-document corpus: the keyed-hash corpus index
(``forget corpus index``) against today's full rescan per request, in one run.

The corpus: the generator's biographies (``forget.corpus.generate``: Faker people, the
templates of ``forget.corpus.templates``) for enough subjects to give ``--docs`` documents,
written as a Parquet file with the columns ``doc_id``, ``body``, ``owner`` and opened as a
``TextCorpus``. ``--requests`` planted subjects (train split, drawn with a seed) have a third
of their records rewritten with obfuscated mentions (``guardrails.obfuscate``: "Last, First",
"F. Last", caps, spaced letters, look-alike letters, "at"/"dot" emails, dotted phones).

Measured: the index build (documents/s with ``--num-proc`` workers, and per core from a
one-process build of a ``--core-sample`` prefix), its size; per request: scoping with the
index (look-up + ``find`` on the candidates; Presidio off, as in the scan; then again with
Presidio's spans of the records found, as the audit needs them) against one full
scan (``ForgottenIndex.find`` on every record, in Arrow batches; ``--scan-requests`` of them
timed in full, no extrapolation), and one scan of all requests together (one pass, a
``ForgottenIndex`` holding every subject). Recall and precision of the index's records
against the full scan's, and of both against the generator's ground truth.

On a machine whose cores other work shares, the ``num_proc`` build's per-core figure is
lower than the one-process figure: both are reported, neither extrapolated.

Writes ``bench/results/scope.json``.
Run: ``nice -n 10 python bench/scope.py [--docs 100000] [--num-proc 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results" / "scope.json"
RECORDS_PER_SUBJECT = 12.5  # the generator's mean (5-20 records a subject)


def make_corpus(root: Path, docs: int, requests: int, seed: int) -> tuple[Path, dict]:
    """Write the Parquet corpus; returns it and ``{subject_id: (identifiers, truth ids)}``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from forget.corpus import GenerateConfig, generate
    from guardrails import obfuscate as O

    subjects_n = int(docs / RECORDS_PER_SUBJECT * 1.02) + 1
    generate(root / "gen", GenerateConfig(subjects=subjects_n, seed=seed, code_files=6))
    subjects = {json.loads(line)["subject_id"]: json.loads(line)
                for line in (root / "gen" / "subjects.jsonl").open()}
    people = [json.loads(line) for line in (root / "gen" / "people.jsonl").open()][:docs]
    rng = random.Random(seed)
    present = sorted({r["subject_id"] for r in people if subjects[r["subject_id"]]["split"]
                      == "train"})
    planted = rng.sample(present, requests)
    swaps = {"name": (O.last_first, O.initial, O.upper, O.spaced, O.homoglyph, O.punctuated),
             "email": (O.at_dot, O.bracketed, O.upper), "phone": (O.dotted_digits,
                                                                 O.digits_only, O.spaced)}
    truth: dict[str, set[str]] = {s: set() for s in planted}
    for r in people:
        if r["subject_id"] in truth:
            truth[r["subject_id"]].add(r["record_id"])
            if rng.random() < 1 / 3:
                r["text"] = _obfuscate(r, subjects[r["subject_id"]]["identifiers"], swaps, rng)
    table = pa.table({"doc_id": [r["record_id"] for r in people],
                      "body": [r["text"] for r in people],
                      "owner": [r["subject_id"] for r in people]})
    path = root / "corpus.parquet"
    pq.write_table(table, path)
    return path, {s: (subjects[s]["identifiers"], truth[s]) for s in planted}


def _obfuscate(r: dict, ident: dict, swaps: dict, rng: random.Random) -> str:
    text, out, last = r["text"], [], 0
    for sp in sorted(r["spans"], key=lambda s: s["start"]):
        value = text[sp["start"]:sp["end"]]
        fns = swaps.get(sp["kind"])
        out += [text[last:sp["start"]], rng.choice(fns)(value) if fns else value]
        last = sp["end"]
    return "".join(out + [text[last:]])


def request_of(ident: dict):
    from forget.ledger.request import Identifiers

    return Identifiers(name=ident["name"], emails=(ident["email"],), phones=(ident["phone"],),
                       other_ids=(("national_id", ident["national_id"]),))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--scan-requests", type=int, default=2,
                    help="requests timed with a full per-request scan")
    ap.add_argument("--num-proc", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--core-sample", type=int, default=10_000,
                    help="documents of the one-process build (per-core throughput)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import datasets

    from forget import configure_output
    from forget.corpus import open_corpus
    from forget.corpus.index import CorpusIndex, build_index
    from forget.workflow.scope_text import scope_text_many, scope_text_records

    configure_output(False)
    datasets.disable_progress_bars()
    out: dict = {"benchmark": "scope", "docs": args.docs, "requests": args.requests,
                 "num_proc": args.num_proc, "cpu_count": os.cpu_count(),
                 "python": platform.python_version(), "datasets": datasets.__version__,
                 "command": "nice -n 10 python bench/scope.py " + " ".join(sys.argv[1:])}
    with tempfile.TemporaryDirectory(prefix="forget-bench-scope-") as tmp:
        root = Path(tmp)
        os.environ["FORGET_KEY_HOME"] = str(root / "keys")
        t = time.perf_counter()
        path, planted = make_corpus(root, args.docs, args.requests, args.seed)
        out["generate_s"] = round(time.perf_counter() - t, 1)
        corpus = open_corpus(path, text_field="body", id_field="doc_id", group_field="owner",
                             cache_dir=root / "cache")
        out["docs"] = len(corpus)
        out["text_mb"] = round(sum(len(r.text) for b in corpus.batches() for r in b) / 1e6, 1)
        _ = corpus.fingerprint  # hashed once; the build and every open reuse it

        t = time.perf_counter()
        manifest = build_index(corpus, root / "index", num_proc=args.num_proc)
        build_s = time.perf_counter() - t
        sample = root / "sample.parquet"
        import pyarrow.parquet as pq

        pq.write_table(pq.read_table(path).slice(0, args.core_sample), sample)
        small = open_corpus(sample, text_field="body", id_field="doc_id", cache_dir=root / "c2")
        _ = small.fingerprint
        t = time.perf_counter()
        build_index(small, root / "index-1proc", num_proc=None)
        one_s = time.perf_counter() - t
        size = sum(f.stat().st_size for f in (root / "index").iterdir())
        out["index"] = {
            "build_s": round(build_s, 1), "docs_per_s": round(len(corpus) / build_s),
            "docs_per_s_per_core_from_num_proc": round(len(corpus) / build_s / args.num_proc),
            "one_process_docs": len(small), "one_process_docs_per_s": round(len(small) / one_s),
            "size_mb": round(size / 1e6, 1), "terms": manifest["counts"]["terms"],
            "postings": manifest["counts"]["postings"]}
        print(json.dumps(out["index"]))

        t = time.perf_counter()
        CorpusIndex.open(root / "index", corpus)
        out["index"]["open_s"] = round(time.perf_counter() - t, 3)

        rows, lookups = [], []
        for sid, (ident, truth) in planted.items():
            req = request_of(ident)
            t = time.perf_counter()
            sc = scope_text_records(corpus, req, index_dir=root / "index", use_presidio=False)
            dt_ = time.perf_counter() - t
            lookups.append(dt_)
            rows.append({"subject": sid, "truth": len(truth), "index_records": len(sc.record_ids),
                         "candidates": sc.details["candidates"], "lookup_ms": round(dt_ * 1e3, 1),
                         "_found": set(sc.record_ids), "_truth": truth, "_req": req})

        # the same look-ups with Presidio's spans added (the audit's spans); analyzer warmed up
        scope_text_records(corpus, rows[0]["_req"], index_dir=root / "index")
        with_pii = []
        for r in rows:
            t = time.perf_counter()
            scope_text_records(corpus, r["_req"], index_dir=root / "index")
            with_pii.append(time.perf_counter() - t)

        # one pass with every request in one ForgottenIndex: the full scan's records per request
        t = time.perf_counter()
        batch = scope_text_many(corpus, {f"r{k}": r["_req"] for k, r in enumerate(rows)},
                                use_presidio=False)
        batch_scan_s = time.perf_counter() - t
        scan_found = {label: set(sc.record_ids) for label, sc in batch.items()}

        scans = []
        for r in rows[:args.scan_requests]:
            t = time.perf_counter()
            sc = scope_text_records(corpus, r["_req"], use_presidio=False)
            scans.append(time.perf_counter() - t)
            assert set(sc.record_ids) == scan_found[f"r{rows.index(r)}"]
        for k, r in enumerate(rows):
            scan = scan_found[f"r{k}"]
            found, truth = r.pop("_found"), r.pop("_truth")
            r.pop("_req")
            r |= {"scan_records": len(scan),
                  "recall_vs_scan": round(len(found & scan) / len(scan), 4) if scan else 1.0,
                  "precision_vs_scan": round(len(found & scan) / len(found), 4) if found else 1.0,
                  "recall_vs_truth": round(len(found & truth) / len(truth), 4),
                  "scan_recall_vs_truth": round(len(scan & truth) / len(truth), 4)}
        out["results"] = rows
        scan_s = statistics.mean(scans)
        out["per_request"] = {
            "index_lookup_ms_median": round(statistics.median(lookups) * 1e3, 1),
            "index_lookup_ms_max": round(max(lookups) * 1e3, 1),
            "index_lookup_with_presidio_spans_ms_median": round(statistics.median(with_pii)
                                                                 * 1e3, 1),
            "full_scan_s_mean": round(scan_s, 1), "full_scan_requests_timed": len(scans),
            "full_scan_extrapolated": False,
            "speedup_median": round(scan_s / statistics.median(lookups)),
            "batch_scan_all_requests_s": round(batch_scan_s, 1),
            "candidates_median": statistics.median(r["candidates"] for r in rows)}
        out["recall"] = {
            "index_vs_scan_min": min(r["recall_vs_scan"] for r in rows),
            "index_vs_scan_all_equal": all(r["recall_vs_scan"] == 1.0 and
                                           r["precision_vs_scan"] == 1.0 for r in rows),
            "index_vs_truth_mean": round(statistics.mean(r["recall_vs_truth"] for r in rows), 4),
            "scan_vs_truth_mean": round(statistics.mean(r["scan_recall_vs_truth"]
                                                        for r in rows), 4)}
        print(json.dumps(out["per_request"]), json.dumps(out["recall"]))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
