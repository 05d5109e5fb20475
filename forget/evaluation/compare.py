"""``run_comparison``: every method on the same subjects, audited the same way.

For each subject (random ones and the worst cases) and each method: unlearn from the original
model, then run the full audit (extraction greedy and sampled, exposure, MIA with bootstrap
CIs, utility with lm-eval, robustness: relearning, int8, paraphrases) with the original model
and a retrained model as controls. Also: all subjects forgotten as one batch, leaked code
secrets (code_eraser against a plain method), and sequential requests on one model line.

Full-training methods (``retrain``, ``dp_retrain``) train one model without *all* the
comparison's subjects and that model is audited for each subject: it is exactly the batch
answer, and for one subject it differs from a per-subject retrain only in also lacking the
others' records (the wall time of one per-subject retrain is the same training run). The
retrained model is also every audit's second control and the PrivLeak reference (MUSE:
``100 * (AUC_method - AUC_retrain) / AUC_retrain`` with the LOSS attack against twins).

Rows carry subject ids (pseudonymous ``S0003``), never identifiers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forget.errors import InvalidInputError

DEFAULT_METHODS = ("retrain", "shard_retrain", "gradient_ascent", "grad_diff", "npo", "simnpo",
                   "idk_dpo", "lora_forget", "dp_retrain", "rome")
NEEDS_SHARDS = ("shard_retrain",)  # compared only on a sharded model
FULL_TRAINING = ("retrain", "dp_retrain")
# Thresholds stay the audits' defaults; only the work per measure is reduced.
LIGHT_AUDIT = {"bootstrap": 300, "samples": 4}


@dataclass
class CompareConfig:
    """What to compare. ``scaled(s)`` gives the issue's sizes times ``s``.

    Attributes:
        methods: LLM methods compared on people (those not registered are skipped, said so).
        subjects: random trained subjects forgotten one at a time (and then as one batch).
        worst_case: also forget the most-memorised and the most-duplicated subject.
        batch: forget all the comparison's subjects in one request per method.
        sequential: requests processed one after another on one model line.
        sequential_methods: the methods run sequentially.
        code_files: leaked code secrets forgotten (one request) by ``code_methods``.
        lm_eval: run the lm-eval utility tasks in every audit.
        audit: overrides of :class:`audits.AuditConfig` (thresholds stay the defaults).
        subject_ids: the subjects to forget one at a time instead of ``subjects`` random ones.
    """

    methods: tuple[str, ...] = DEFAULT_METHODS
    subjects: int = 20
    worst_case: bool = True
    batch: bool = True
    sequential: int = 10
    sequential_methods: tuple[str, ...] = ("npo",)
    code_files: int = 5
    code_methods: tuple[str, ...] = ("code_eraser", "npo")
    lm_eval: bool = True
    seed: int = 0
    subject_ids: tuple[str, ...] | None = None
    audit: dict[str, Any] = field(default_factory=lambda: dict(LIGHT_AUDIT))


def scaled(scale: float, **overrides: Any) -> CompareConfig:
    """The issue's sizes (20 subjects, 10 sequential requests, 5 code secrets) times ``scale``."""
    if scale <= 0:
        raise InvalidInputError(f"scale must be positive, got {scale}")
    return CompareConfig(subjects=max(1, round(20 * scale)),
                         sequential=max(2, round(10 * scale)),
                         code_files=max(1, round(5 * scale)), **overrides)


def privleak(auc_method: float | None, auc_retrain: float | None) -> float | None:
    """MUSE's PrivLeak: 100 * (AUC_method - AUC_retrain) / AUC_retrain (0 = like retraining)."""
    if auc_method is None or not auc_retrain:
        return None
    return 100.0 * (auc_method - auc_retrain) / auc_retrain


def row_from_report(rep: dict) -> dict:
    """The figures of one audit report that the comparison tabulates."""
    a = rep["models"]["audited"]
    r = rep["models"].get("retrained")
    loss = a["mia"]["attacks"].get("loss", {})
    r_auc = r["mia"]["attacks"].get("loss", {}).get("auc") if r else None
    util = a.get("utility") or {}
    lm = {f"{task}:{metric}": v for task, ms in (util.get("lm_eval") or {}).items()
          for metric, v in ms.items() if isinstance(v, int | float)}
    rob = {c["name"]: c["extraction"]["hits"] + c["exposure"]["exposed"]
           for c in a.get("robustness", [])}
    return {
        "verdict": rep["verdict"],
        "failed_checks": [c["name"] for c in rep["checks"] if c["passed"] is False],
        "probes": len(a["extraction"]["probes"]),
        "greedy_hits": a["extraction"]["greedy_hits"],
        "sampled_hits": a["extraction"]["sampled_hits"],
        "exposure_min_p": a["exposure"]["min_p"], "exposed": a["exposure"]["exposed"],
        "mia_auc": loss.get("auc"), "mia_auc_ci_high": loss.get("ci_high"),
        "retrain_mia_auc": r_auc, "privleak": privleak(loss.get("auc"), r_auc),
        "retain_ppl": util.get("retain_perplexity"),
        "holdout_ppl": util.get("holdout_perplexity"), "lm_eval": lm,
        "robustness_recovered": rob,
    }


class _Bench:
    """State shared by the parts of one comparison run."""

    def __init__(self, corpus, model, tok, cfg: CompareConfig, work: Path, say) -> None:
        from audits import AuditConfig

        self.corpus, self.model, self.tok, self.cfg, self.work, self.say = (
            corpus, model, tok, cfg, work, say)
        self.audit_cfg = AuditConfig(**cfg.audit)
        self.cache: dict = {}
        self.full: dict[str, Any] = {}  # full-training method -> UnlearnResult
        self.retrained = None
        self.retrain_s: float | None = None
        self.lm_dir: Path | None = None
        self.compared_texts: set[str] = set()  # texts of every subject the comparison forgets

    def run_method(self, name: str, fset, rset) -> tuple[Any, dict]:
        from forget.core import get_method

        if name in self.full:
            res = self.full[name]
            return res.model, {"wall_s": res.wall_time_s, "steps": res.steps, "shared": True,
                               "formal_guarantee": res.formal_guarantee}
        res = get_method(name).run(model=self.model, tokenizer=self.tok, forget=fset,
                                   retain=rset, config=None)
        return res.model, {"wall_s": res.wall_time_s, "steps": res.steps,
                           "stopped_by": res.stopped_by,
                           "formal_guarantee": res.formal_guarantee}

    def audit(self, net, fset, *, subject_id: str, config=None, retrained: bool = True) -> dict:
        from audits import run_audit
        from forget.workflow.steps import _audit_inputs

        inputs = _audit_inputs(self.corpus, fset)
        # Utility is measured on people no model here forgot: the full-training methods'
        # model never saw any of the comparison's subjects.
        inputs["retain"] = [t for t in inputs["retain"] if t not in self.compared_texts]
        rep = run_audit(model=net, tokenizer=self.tok, original=(self.model, self.tok),
                        retrained=(self.retrained, self.tok) if retrained else None,
                        config=config or self.audit_cfg, subject_id=subject_id,
                        lm_eval_dir=self.lm_dir, cache=self.cache, **inputs)
        return row_from_report(rep.to_dict())

    def compare(self, name: str, fset, rset, *, subject_id: str, group: str,
                config=None, retrained: bool = True) -> dict:
        t0 = time.perf_counter()
        net, info = self.run_method(name, fset, rset)
        row = {"method": name, "subject": subject_id, "group": group, **info}
        row.update(self.audit(net, fset, subject_id=subject_id, config=config,
                              retrained=retrained))
        if self.retrain_s:
            row["share_of_retrain_time"] = info["wall_s"] / self.retrain_s
        auc = "n/a" if row["mia_auc"] is None else f"{row['mia_auc']:.2f}"
        self.say(f"{group:>15} {subject_id:>8} {name:<16} {row['verdict']:<12} "
                 f"extracted {row['greedy_hits']}+{row['sampled_hits']}/{row['probes']}  "
                 f"AUC {auc}  ({time.perf_counter() - t0:.0f} s) "
                 f"{','.join(row['failed_checks'])}")
        return row


def _available(names, say, *, sharded: bool = True) -> list[str]:
    import forget.methods  # noqa: F401
    from forget.core import METHODS

    known = set(METHODS.names())
    for n in names:
        if n not in known:
            say(f"method {n!r} is not registered here; skipped")
        elif n in NEEDS_SHARDS and not sharded:
            say(f"method {n!r} deletes from a sharded model (forget model finetune --shards); "
                "this model was trained in one piece: skipped")
    return [n for n in names if n in known and (sharded or n not in NEEDS_SHARDS)]


def _machine() -> dict:
    import torch

    return {"platform": platform.platform(), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2)}


def run_comparison(data: Path | str, model_dir: Path | str, work: Path | str, *,
                   config: CompareConfig | None = None, retrained: Path | str | None = None,
                   say: Callable[[str], None] = print) -> dict:
    """Run the comparison; returns the JSON-able results (see the module docstring).

    ``retrained``: a model already retrained without exactly the comparison's subjects (its
    card's training time is used as retrain's wall time); otherwise one is trained here.
    """
    from audits import prepare_tasks, write_lm_eval_data
    from forget.corpus import load_corpus
    from forget.evaluation import parts
    from forget.evaluation.select import most_duplicated, most_memorized, random_subjects
    from forget.models import load_model

    cfg = config or CompareConfig()
    t0 = time.perf_counter()
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus(data)
    model, tok = load_model(model_dir)
    from forget.methods.shard_retrain import sharded_source

    methods = _available(cfg.methods, say, sharded=sharded_source(model_dir) is not None)
    b = _Bench(corpus, model, tok, cfg, work, say)

    worst = {}
    if cfg.worst_case:
        worst = {"most_memorized": most_memorized(corpus, model, tok),
                 "most_duplicated": most_duplicated(corpus)}
    chosen = (sorted(cfg.subject_ids) if cfg.subject_ids
              else random_subjects(corpus, cfg.subjects, seed=cfg.seed))
    everyone = sorted(set(chosen) | set(worst.values()))
    say(f"subjects: {len(chosen)} random {chosen}; worst cases {worst}")
    b.compared_texts = {r["text"] for s in everyone for r in corpus.records_of(s)}
    if cfg.lm_eval:
        write_lm_eval_data(corpus.subjects, corpus.people, work / "lm_data", exclude=everyone)
        b.lm_dir = prepare_tasks(work / "lm_data", work / "lm_tasks")

    parts.train_full(b, everyone, [m for m in methods if m in FULL_TRAINING], retrained)
    rows = parts.per_subject(b, methods, chosen, "random")
    for group, sid in worst.items():
        rows += parts.per_subject(b, methods, [sid], group)
    batch = parts.batch(b, methods, everyone) if cfg.batch else []
    code = parts.code(b, _available(cfg.code_methods, say), cfg.code_files)
    seq_subjects = (chosen + random_subjects(corpus, cfg.sequential, seed=cfg.seed + 1,
                                             exclude=set(chosen)))[: cfg.sequential]
    sequential = {m: parts.sequential(b, m, seq_subjects)
                  for m in _available(cfg.sequential_methods, say)}
    return {
        "benchmark": "method comparison: every method, the same subjects, the same audit",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": dataclasses.asdict(cfg), "methods": methods,
        "subjects": {"random": chosen, **worst}, "retrain_wall_s": b.retrain_s,
        "audit_config": b.audit_cfg.to_dict(), "rows": rows, "batch": batch, "code": code,
        "sequential": sequential, "summary": parts.summarize(rows, methods),
        "machine": _machine(), "wall_s": round(time.perf_counter() - t0, 1),
    }
