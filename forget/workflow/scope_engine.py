"""Scoping a batch of pending requests in ONE pass of a data-processing engine (HF datatrove).

:func:`scope_pending` finds, for every request of a batch, the records that mention its
identifiers, as :func:`forget.workflow.scope.scope_records` (the generator's corpus) and
:func:`forget.workflow.scope_text.scope_text_many` (any ``TextCorpus``) do, and returns the
same record ids (and matched kinds, owner, spans, Presidio counts) per request. The work runs
as a datatrove pipeline, the engine made for LLM training data, so the pass that serves every
pending request reads each document once and spreads over processes here (its
``LocalPipelineExecutor``) or over a cluster (its Slurm or Ray executors, given
:func:`pipeline`'s steps):

1. :class:`CorpusShardReader`: rank ``r`` of ``T`` tasks reads rows ``[r n / T, (r+1) n / T)``
   of the corpus (its memory-mapped Arrow table; the workers open the same files).
2. :class:`DigestMatcher`: a ``guardrails.ForgottenIndex`` rebuilt in the worker from the
   batch's digests (``to_dict``: keyed hashes of every request's normalised identifier forms
   and name variants, under opaque refs ``r<k>``) and runs ``find`` on each document: the
   document's normalised candidate spans are hashed under the same key and looked up (the
   pre-filter's verdicts and look-ups of recurring windows are kept across the task's
   documents: ``ForgottenIndex.new_memo``). With
   Presidio on, the records found also get Presidio's findings, in the worker.
3. :class:`ScopeWriter`: per task, one JSON file of row numbers, record ids, matched kinds
   and span offsets per request index (no text, no identifier, no group value).

The ledger's process (this one) merges the files in corpus order and maps request indices
back to request ids.

Trust model. The plaintext identifiers never leave this process: the workers receive the
batch's digests (HMAC-SHA256 of each normalised form, 128 bits, plus 16-bit keyed prefix
tags) and the key they were made with. A keyed hash cannot be computed without its key, so
matching in the worker needs the key there; it is a throwaway key drawn for this pass only
(never the ledger's keys, never stored by the suite), so digests of two passes cannot be
linked and nothing learnt from one pass helps against the ledger. What a worker CAN do, with
key and digests, is what matching itself does: test a guessed identifier against the batch
(a dictionary attack on names it already knows), and see which spans of the documents it
reads matched which opaque request index (it reads those documents anyway). So the workers
must be trusted as much as the corpus's storage is, and the pass's temporary files (below)
must be deleted after the pass. The key and digests are held by :class:`Sealed`, which
datatrove's ``executor.json`` and log lines render as ``<sealed ...>``; the local executor
hands them to its workers through a pipe. A cluster executor (Slurm) pickles the whole
pipeline, key included, into its logging folder to start its jobs: put that folder on
private storage and delete it after the pass.

Datatrove's logs and stats go to ``<work_dir>/logs`` (a temporary folder removed after the
pass unless ``work_dir`` is given); they name steps, counts and times, never an identifier
(a test greps them). Its loguru lines are off unless the suite is verbose
(``forget -v`` / :func:`forget.configure_output`).
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.base import PipelineStep

from forget.corpus.load import Corpus
from forget.corpus.text import Segment, TextCorpus
from forget.errors import InvalidInputError, UnsupportedCorpusError
from forget.workflow.scope import Scope

if TYPE_CHECKING:
    from datatrove.data import DocumentsPipeline

ENGINE = "datatrove"


class Sealed:
    """A value handed to the workers (pickled with the pipeline) that datatrove's
    ``executor.json`` and its log lines show only as ``<sealed LABEL>``."""

    def __init__(self, value: Any, label: str) -> None:
        self._value = value
        self._label = label

    def open(self) -> Any:
        return self._value

    def __repr__(self) -> str:
        return f"<sealed {self._label}>"

    __str__ = __repr__


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of task ``rank`` of ``world_size`` over ``n`` rows: contiguous,
    disjoint, covering ``0..n`` in order, sizes differing by at most one."""
    return n * rank // world_size, n * (rank + 1) // world_size


class CorpusShardReader(PipelineStep):
    """Reads this task's contiguous shard of a ``TextCorpus`` as datatrove ``Document``s
    (``id`` = record id, ``metadata["row"]`` = row number in the corpus)."""

    name = "forget corpus shard"
    type = "📖 - READER"

    def __init__(self, corpus: TextCorpus) -> None:
        super().__init__()
        self.corpus = corpus

    def run(self, data: DocumentsPipeline = None, rank: int = 0,
            world_size: int = 1) -> DocumentsPipeline:
        from datatrove.data import Document

        start, stop = shard_bounds(len(self.corpus), rank, world_size)
        row = start
        for batch in self.corpus.batches(start=start, stop=stop):
            for r in batch:
                self.stat_update("documents")
                yield Document(text=r.text, id=r.record_id, metadata={"row": row})
                row += 1


class DigestMatcher(PipelineStep):
    """Matches each document against every request's digests; a document with a match
    carries ``metadata["hits"]``: ``{k: [kinds, spans, pii]}`` per request index ``k``."""

    name = "forget keyed-hash matcher"
    type = "🔢 - MATCHER"

    def __init__(self, sealed: Sealed) -> None:
        super().__init__()
        self.sealed = sealed

    def run(self, data: DocumentsPipeline = None, rank: int = 0,
            world_size: int = 1) -> DocumentsPipeline:
        from guardrails import ForgottenIndex

        p = self.sealed.open()
        from guardrails.normalize import normalize

        index = ForgottenIndex.from_dict(p["index"], p["key"])
        memo = index.new_memo()  # verdicts on recurring windows, kept across documents
        guard = None
        for doc in data or ():
            with self.track_time():
                matches = index.find_normalized(normalize(doc.text), memo=memo)
                if matches:
                    if p["presidio"] and guard is None:
                        from guardrails import Guard

                        guard = Guard(None, use_presidio=True)
                    doc.metadata["hits"] = _hits(doc.text, matches, p["kinds"], p["mode"],
                                                 guard)
                    self.stat_update("matched")
            yield doc


def _hits(text: str, matches: list, kinds: dict[str, str | None], mode: str,
          guard: Any) -> dict[int, list]:
    """``{k: [sorted kinds, spans, pii]}`` of one record: as ``scope_text_many`` counts them
    (mode ``text``: spans and Presidio spans outside the identifiers'), or as
    ``scope_records`` does (mode ``records``: no spans; every Presidio finding counted)."""
    from forget.workflow.scope_text import request_hits

    if mode == "text":
        return {k: [sorted(kd), spans, extra] for k, (kd, spans, extra)
                in request_hits(text, matches, kinds, guard).items()}
    pii = len(guard.analyze(text)) if guard is not None else 0
    return {k: [sorted(kd), [], pii] for k, (kd, _, _)
            in request_hits(text, matches, kinds, None).items()}


class ScopeWriter(PipelineStep):
    """Writes this task's matches to ``<output>/<rank>.json``: per request index, rows
    ``[row, record id, kinds, spans, pii]``; plus the task's documents, CPU and wall time."""

    name = "forget per-request record ids"
    type = "💽 - WRITER"

    def __init__(self, output: str) -> None:
        super().__init__()
        self.output = output

    def run(self, data: DocumentsPipeline = None, rank: int = 0,
            world_size: int = 1) -> DocumentsPipeline:
        from datatrove.io import get_datafolder

        t0, c0 = time.perf_counter(), time.process_time()
        hits: dict[str, list] = {}
        docs = 0
        for doc in data or ():
            docs += 1
            for k, (kinds, spans, pii) in doc.metadata.get("hits", {}).items():
                hits.setdefault(str(k), []).append([doc.metadata["row"], doc.id, kinds, spans,
                                                    pii])
        out = {"rank": rank, "world_size": world_size, "documents": docs,
               "cpu_s": round(time.process_time() - c0, 4),
               "wall_s": round(time.perf_counter() - t0, 4), "hits": hits}
        with get_datafolder(self.output).open(f"{rank:05d}.json", "w") as f:
            json.dump(out, f)
        self.stat_update("written")
        yield from ()


def pipeline(corpus: TextCorpus, sealed: Sealed, output: str) -> list:
    """The pass's steps, for any datatrove executor (local, Slurm, Ray)."""
    return [CorpusShardReader(corpus), DigestMatcher(sealed), ScopeWriter(output)]


def quiet_loguru(verbose: bool) -> None:
    """datatrove's loguru lines on (verbose) or off, in this process."""
    from loguru import logger

    (logger.enable if verbose else logger.disable)("datatrove")


class QuietLocalExecutor(LocalPipelineExecutor):
    """datatrove's ``LocalPipelineExecutor`` whose workers follow the suite's ``--verbose``."""

    def __init__(self, *args: Any, verbose: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.verbose = verbose

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1) -> Any:
        quiet_loguru(self.verbose)  # runs in the worker process
        return super()._run_for_rank(rank, local_rank, node_rank)


def _as_view(corpus: Corpus | TextCorpus | Path | str) -> tuple[Corpus | TextCorpus,
                                                                   TextCorpus, str]:
    """(the corpus, the ``TextCorpus`` the workers read, mode): the generator's corpus is
    read as its train records (people, then code) held in memory."""
    if isinstance(corpus, str | Path):
        from forget.corpus import open_corpus

        corpus = open_corpus(corpus)
    if isinstance(corpus, TextCorpus):
        return corpus, corpus, "text"
    if not isinstance(corpus, Corpus):
        raise UnsupportedCorpusError(
            f"scope_pending takes a Corpus, a TextCorpus or a data path, not "
            f"{type(corpus).__name__}; open files with forget.corpus.open_corpus")
    import datasets

    rows = [r for r in corpus.people + corpus.code if r["split"] == "train"]
    ds = datasets.Dataset.from_dict({"record_id": [r["record_id"] for r in rows],
                                     "text": [r["text"] for r in rows],
                                     "group": [r.get("subject_id") or None for r in rows]})
    view = TextCorpus(corpus.root, ds, text_field="text", id_field="record_id",
                      group_field="group", segments=(Segment("train", 0, len(rows)),),
                      files=(), format="arrow")
    return corpus, view, "records"


def _work_dir(work_dir: Path | str | None) -> tuple[Path, bool]:
    if work_dir is None:
        return Path(tempfile.mkdtemp(prefix="forget-scope-pass-")), True
    path = Path(work_dir)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InvalidInputError(f"--work-dir {path} exists and is not an empty directory; "
                                "give a new or empty one")
    path.mkdir(parents=True, exist_ok=True)
    return path, False


def scope_pending(corpus: Corpus | TextCorpus | Path | str, requests: Mapping[str, Any], *,
                  workers: int = 2, tasks: int | None = None, use_presidio: bool = True,
                  work_dir: Path | str | None = None, start_method: str = "fork",
                  ) -> dict[str, Scope]:
    """Scope every request of ``requests`` in one datatrove pass over ``corpus``.

    Args:
        corpus: the generator's ``Corpus``, a ``TextCorpus``, or a data path (opened with
            ``open_corpus``'s default fields).
        requests: request id -> identifiers (``forget.ledger.Identifiers``, as the other
            scope functions take).
        workers: processes at once (datatrove local executor).
        tasks: shards of the corpus (default: ``workers``).
        use_presidio: also run Presidio on the records found (in the workers).
        work_dir: keep datatrove's logs and the per-task results there (new or empty);
            ``None``: a temporary folder, deleted after the pass.
        start_method: multiprocessing start method of the executor's pool: ``fork``
            (workers start at once, and a script calling this needs no ``__main__`` guard),
            or ``forkserver`` / ``spawn`` (each worker re-imports the caller's main module).

    Returns:
        request id -> ``Scope``: the same record ids (order included), matched kinds, owner,
        Presidio counts and spans as ``scope_text_many`` (a ``TextCorpus``) or
        ``scope_records`` (the generator's corpus) give; ``details`` says how it ran.
    """
    if workers < 1 or (tasks is not None and tasks < 1):
        raise InvalidInputError(f"--workers and --tasks must be at least 1, got {workers} and "
                                f"{tasks}")
    if not requests:
        raise InvalidInputError("no request to scope; give at least one pending request")
    from forget._quiet import is_verbose
    from forget.workflow.scope_text import batch_index

    base, view, mode = _as_view(corpus)
    labels = list(requests)
    key = secrets.token_bytes(32)  # this pass only
    index, _, kinds = batch_index([requests[label] for label in labels], key)
    sealed = Sealed({"key": key, "index": index.to_dict(), "kinds": kinds, "mode": mode,
                     "presidio": use_presidio}, f"digests of {len(labels)} request(s)")
    del key, index
    tasks = tasks or workers
    if use_presidio and start_method == "fork":
        from guardrails import Guard

        _ = Guard(None, use_presidio=True).analyzer  # built once (cached), inherited by workers
    root, temporary = _work_dir(work_dir)
    verbose = is_verbose()
    quiet_loguru(verbose)
    try:
        t0 = time.perf_counter()
        executor = QuietLocalExecutor(
            pipeline(view, sealed, str(root / "matches")), tasks=tasks,
            workers=min(workers, tasks), logging_dir=str(root / "logs"), skip_completed=False,
            start_method=start_method, verbose=verbose)
        executor.run()
        wall = time.perf_counter() - t0
        parts = [json.loads((root / "matches" / f"{r:05d}.json").read_text())
                 for r in range(tasks)]
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
    run = {"mode": "engine", "engine": ENGINE, "executor": "local", "tasks": tasks,
           "workers": min(workers, tasks), "requests_in_pass": len(labels),
           "candidates": len(view), "wall_s": round(wall, 3),
           "cpu_s": round(sum(p["cpu_s"] for p in parts), 3)}
    return _merge(parts, labels, view, mode, run)


def _merge(parts: list[dict], labels: list[str], view: TextCorpus, mode: str,
           run: dict) -> dict[str, Scope]:
    """The per-task results (rank order = corpus order) as one ``Scope`` per request."""
    rows_of: list[list[list]] = [[] for _ in labels]
    for part in parts:
        for k, rows in part["hits"].items():
            rows_of[int(k)] += rows
    groups = _groups(view, sorted({row[0] for rows in rows_of for row in rows}))
    out = {}
    for k, label in enumerate(labels):
        kinds: Counter[str] = Counter()
        owners: Counter[str] = Counter()
        spans: dict[str, list[dict]] = {}
        pii = 0
        for row, record_id, matched, record_spans, n in rows_of[k]:
            kinds.update(matched)
            pii += n
            spans[record_id] = record_spans
            group = groups.get(row)
            if group is not None:  # as scope_text_many counts owners ("" is one)
                owners[group] += 1
        owner = owners.most_common(1)[0][0] if owners else None
        if mode == "records":
            out[label] = Scope(sorted(spans), dict(sorted(kinds.items())), owner, pii,
                               details=dict(run))
        else:
            out[label] = Scope(list(spans), dict(sorted(kinds.items())), owner, pii,
                               details=dict(run), spans=spans)
    return out


def _groups(view: TextCorpus, rows: list[int]) -> dict[int, str | None]:
    """The group (owner) of each matched row, read here, never written by the workers."""
    if not view.group_field or not rows:
        return {}
    return dict(zip(rows, (r.group for r in view.take(rows)), strict=True))

