"""Benchmark of ``open_corpus`` on a user's own files (100,000 support tickets by default).

Measures, for a Parquet file, a JSON Lines file and a directory of 200 JSON Lines files of
the same rows, in a fresh ``datasets``
cache: the first open (the file converted to a memory-mapped Arrow file in the cache), a
second open (the cached Arrow file reused), one pass over every record in batches, selecting
100 records by id, the content fingerprint, and the peak Python heap during a pass against
the text's size (the corpus is read in batches, never held as Python lists).

Writes ``bench/results/corpus_load.json``.
Run: ``python bench/corpus_load.py [--rows N]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results" / "corpus_load.json"


def tickets(n: int):
    """``n`` synthetic tickets (about 150 characters each); no personal data."""
    import pyarrow as pa

    words = ("printer", "laptop", "invoice", "password", "network", "refund", "screen", "VPN")
    body = [f"Ticket {i}: the {words[i % 8]} on floor {i % 17} fails since update {i % 97}; "
            f"customer account {i * 7919 % 100003} reports it again after the {words[(i // 8) % 8]} "
            "was replaced." for i in range(n)]
    return pa.table({"doc_id": [f"T{i:07d}" for i in range(n)], "body": body,
                     "queue": [words[i % 3] for i in range(n)]})


def measure(path: Path, cache: Path) -> dict:
    from forget.corpus import open_corpus

    t = time.perf_counter()
    c = open_corpus(path, text_field="body", id_field="doc_id", group_field="queue",
                    cache_dir=cache)
    first = time.perf_counter() - t
    t = time.perf_counter()
    c = open_corpus(path, text_field="body", id_field="doc_id", group_field="queue",
                    cache_dir=cache)
    second = time.perf_counter() - t
    t = time.perf_counter()
    n = chars = 0
    for batch in c.batches():
        n += len(batch)
        chars += sum(len(r.text) for r in batch)
    iterate = time.perf_counter() - t
    tracemalloc.start()
    for _batch in c.batches():
        pass
    heap_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    ids = [f"T{i:07d}" for i in range(0, len(c), max(1, len(c) // 100))][:100]
    t = time.perf_counter()
    picked = c.select(ids)
    select = time.perf_counter() - t
    t = time.perf_counter()
    fp = c.fingerprint
    fingerprint = time.perf_counter() - t
    return {"rows": n, "text_mb": round(chars / 1e6, 1),
            "file_mb": round(sum(f.stat().st_size for f in ([path] if path.is_file() else
                                                             path.iterdir())) / 1e6, 1), "first_open_s": round(first, 2),
            "cached_open_s": round(second, 3), "iterate_s": round(iterate, 2),
            "records_per_s": round(n / iterate), "select_100_s": round(select, 3),
            "selected": len(picked), "fingerprint_s": round(fingerprint, 3),
            "fingerprint": fp[:16],
            "python_heap_peak_mb_in_a_pass": round(heap_peak / 1e6, 2), "memory_mapped": bool(c.dataset.cache_files)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    import datasets
    import pyarrow.parquet as pq

    from forget import configure_output

    configure_output(False)
    datasets.disable_progress_bars()
    out: dict = {"benchmark": "corpus_load", "rows": args.rows, "python": platform.python_version(),
                 "datasets": datasets.__version__, "results": []}
    with tempfile.TemporaryDirectory(prefix="forget-bench-corpus-") as tmp:
        root = Path(tmp)
        table = tickets(args.rows)
        pq.write_table(table, root / "tickets.parquet")
        table.to_pandas().to_json(root / "tickets.jsonl", orient="records", lines=True)
        del table
        parts = root / "tickets-200-files"  # the same rows as 200 JSON Lines files
        parts.mkdir()
        df = pq.read_table(root / "tickets.parquet").to_pandas()
        step = -(-len(df) // 200)
        for k in range(200):
            df.iloc[k * step:(k + 1) * step].to_json(parts / f"part-{k:03d}.jsonl",
                                                     orient="records", lines=True)
        for name in ("tickets.parquet", "tickets.jsonl", "tickets-200-files"):
            row = {"file": name} | measure(root / name, root / "cache")
            out["results"].append(row)
            print(json.dumps(row))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
