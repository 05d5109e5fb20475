"""The steps of :func:`forget.workflow.process_request`, each idempotent and recorded.

A step is skipped when the ledger records it as done and its output files exist; otherwise it
is recorded as started, run (outputs written to a temporary path and renamed into place), and
recorded as done with a ledger-safe summary (ids, hashes, metrics; never an identifier).
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forget._dist import is_leading, joint
from forget.workflow.common import fault_point

_REF = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass
class Context:
    ledger: Any
    request_id: str
    worker_id: str | None
    work: Path
    out: Path
    model_dir: Path
    registry: Path | str | None
    say: Callable[[str, str], None]
    steps: dict = field(default_factory=dict)
    # The controls' audit measures, reused by later attempts (same records, same config).
    audit_cache: dict = field(default_factory=dict)
    # Where the request starts on its model line (the head); set by ``start_from``.
    base: Any = None

    def start_from(self, base) -> None:
        """Work from ``base`` (a :class:`forget.workflow.lines.Base`) from now on."""
        self.base, self.model_dir = base, Path(base.path)
        self.audit_cache.clear()  # the controls' measures were for the previous base

    def done(self, step: str) -> bool:
        rec = self.steps.get(step)
        return rec is not None and rec.status == "done"

    def fail(self, res, reason: str, *, retryable: bool = False) -> None:
        """Fail the request in the ledger with ``reason`` and say so in the outcome ``res``."""
        self.ledger.fail(self.request_id, reason=reason, retryable=retryable,
                         worker_id=self.worker_id)
        res.status, res.reason, res.state = "failed", reason, "failed"

    def record(self, step: str, status: str, details: dict | None = None) -> None:
        self.ledger.record_step(self.request_id, step, status, details or {},
                                worker_id=self.worker_id)


@dataclass
class Attempt:
    n: int
    method: str
    overrides: dict
    dir: Path
    card: dict = field(default_factory=dict)
    # A batched run's model, shared by every request of the batch (forget.workflow.batch);
    # None: the attempt's own ``dir/model``.
    shared_model: Path | None = None

    @property
    def model_dir(self) -> Path:
        return self.shared_model if self.shared_model is not None else self.dir / "model"

    @property
    def report(self) -> Path:
        return self.dir / "audit" / "report.json"

    def summary(self, verdict: str) -> dict:
        return {"attempt": self.n, "method": self.method, "verdict": verdict,
                "model": self.card.get("version"), "steps": self.card.get("unlearn_steps"),
                "wall_s": self.card.get("unlearn_wall_s")}


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with open(fd, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    Path(tmp).replace(path)


def _stage_index(rec) -> int:
    from forget.ledger.states import FORWARD

    return FORWARD.index(rec.stage)


def default_audit_config(forget):
    """The workflow's audit thresholds: the audits' defaults, secrets' kinds for code."""
    from audits import AuditConfig
    from forget.workflow.sets import CODE_KINDS, is_code_request

    if is_code_request(forget):
        return AuditConfig(extraction_kinds=CODE_KINDS + ("email",), exposure_kinds=CODE_KINDS)
    return AuditConfig()


def audit_config_for(method: str, cfg):
    """``cfg`` with the settings the method's results must be audited with (e.g. model
    editing: the paraphrase probe always on), whatever the caller's config said."""
    import dataclasses

    from forget.core.method import METHODS

    required = METHODS.get(method).audit_requirements
    changes = {k: v for k, v in required.items() if getattr(cfg, k) != v}
    return dataclasses.replace(cfg, **changes) if changes else cfg


# -- scope -----------------------------------------------------------------------------------
def scope_step(ctx: Context, data, *, use_presidio: bool) -> dict:
    """Find the request's records in ``data`` (a :class:`forget.workflow.data.WorkData`)."""
    from forget.ledger import State
    from forget.models import read_card

    path = ctx.work / "scope.json"
    rec = ctx.ledger.get(ctx.request_id)
    if path.is_file() and (ctx.done("scope") or _stage_index(rec) >= _stage_index_of(State.SCOPED)):
        return json.loads(path.read_text())
    ctx.say("scope", "finding the subject's records in the training data")
    ctx.record("scope", "started")
    fault_point("scope", "before")
    idents = ctx.ledger.identifiers(ctx.request_id)
    summary = data.scope(idents, use_presidio=use_presidio)
    del idents
    write_json_atomic(path, summary)
    safe = {k: v for k, v in summary.items() if k not in ("record_ids", "subject_id", "spans")}
    safe["record_ids_sha256"] = hashlib.sha256(
        "\n".join(summary["record_ids"]).encode()).hexdigest()
    if rec.state != State.SCOPED and _stage_index(rec) < _stage_index_of(State.SCOPED):
        ctx.ledger.scope(ctx.request_id, models=[read_card(ctx.model_dir)["version"]],
                         datasets=[f"data-{data.data_id()}"], details=safe,
                         worker_id=ctx.worker_id)
    ctx.record("scope", "done", safe)
    fault_point("scope", "after")
    ctx.say("scope", f"{summary['records']} records found")
    return summary


def _stage_index_of(state) -> int:
    from forget.ledger.states import FORWARD

    return FORWARD.index(state)


# -- unlearn ---------------------------------------------------------------------------------
def unlearn_begin(ctx: Context, attempt: Attempt, extra: dict | None = None) -> bool:
    """Open an unlearning attempt in the ledger; True when a finished one is already on disk.

    Shared by every kind of request (text, concept): the ledger moves to ``unlearning`` once,
    the step is recorded as started, and a resumed run finds the model a killed run saved.
    ``extra``: ledger-safe details added to the step records (a batch's id and size).
    """
    from forget.ledger import State
    from forget.models import read_card

    card_file = attempt.model_dir / "forget_model.json"
    if ctx.done(f"unlearn-{attempt.n}") and card_file.is_file():
        attempt.card = read_card(attempt.model_dir)
        return True
    if ctx.ledger.get(ctx.request_id).state != State.UNLEARNING:
        ctx.ledger.start_unlearning(ctx.request_id, method=attempt.method,
                                    details={"attempt": attempt.n,
                                             "model_before": _base_version(ctx)}
                                    | dict(extra or {}),
                                    worker_id=ctx.worker_id)
    ctx.record(f"unlearn-{attempt.n}", "started", {"method": attempt.method,
                                                    "base": _base_version(ctx)}
               | dict(extra or {}))
    fault_point("unlearn", "before")
    return False


def _base_version(ctx: Context) -> str | None:
    return ctx.base.version if ctx.base is not None else None


def round_offset(ctx: Context) -> int:
    """Attempts already numbered on other (older) bases: this base's attempts come after them.

    A request redone on a new head (the head moved while it ran) keeps its earlier attempts'
    folders and ledger steps; the new attempts continue the numbering, so nothing made from
    an older head is ever taken for a result of this one (attempts recorded without a base,
    by an older suite, count as other). A batched attempt (its model shared with other
    requests, :mod:`forget.workflow.batch`) counts as other too: a request retried on its own
    never takes the batch's model or audit for its own attempt.
    """
    k0, base = 0, _base_version(ctx)
    for name, rec in ctx.steps.items():
        m = re.fullmatch(r"unlearn-(\d+)", name)
        if m and (rec.details.get("base") != base or rec.details.get("batch")):
            k0 = max(k0, int(m.group(1)))
    return k0


def attempt_config(impl, attempt: Attempt):
    """The method's config for this attempt: its defaults, the attempt's overrides, and for a
    stronger retry a larger step budget spent whole (the greedy-extraction stop criterion fired
    too early for the audit the first time, so it is only checked at the end)."""
    fields = {k: v for k, v in attempt.overrides.items() if not k.startswith("_")}
    cfg = impl.config_class.from_dict(impl.config_class().to_dict() | fields)
    scale = attempt.overrides.get("_scale_steps")
    if scale and getattr(cfg, "max_steps", 0):
        steps = cfg.max_steps * scale
        stronger = {"max_steps": steps} | ({"check_every": steps}
                                           if "check_every" in cfg.to_dict() else {})
        cfg = impl.config_class.from_dict(cfg.to_dict() | stronger)
    return cfg


def unlearn_done(ctx: Context, attempt: Attempt, extra: dict | None = None) -> None:
    """Record the finished attempt (model version, hashes, and any formal guarantee);
    ``extra``: ledger-safe details added (a batch's id and size)."""
    from forget.models import read_card

    attempt.card = read_card(attempt.model_dir)
    c = attempt.card
    done = {"model": c["version"], "sha256": c["sha256"], "method": c["method"],
            "config_hash": c["config_hash"], "steps": c.get("unlearn_steps"),
            "wall_s": c.get("unlearn_wall_s"), "base": _base_version(ctx)}
    if c.get("formal_guarantee"):  # DP / certified methods: the theorem's numbers and its words
        done |= {"formal_guarantee": c["formal_guarantee"], "guarantee": c["guarantee"]}
    ctx.record(f"unlearn-{attempt.n}", "done", done | dict(extra or {}))
    fault_point("unlearn", "after")


def run_method(method: str, model_dir: Path, forget, retain, config):
    """``method`` run on the model loaded from ``model_dir``: the job every rank of a launch
    runs together (:func:`forget._dist.joint`; module-level, so the other ranks can find it)."""
    from forget.core import get_method
    from forget.models import load_model

    net, tok = load_model(model_dir)
    return get_method(method).run(model=net, tokenizer=tok, forget=forget, retain=retain,
                                  config=config)


def unlearn_step(ctx: Context, attempt: Attempt, original, forget, retain) -> None:
    from forget.core import get_method

    if unlearn_begin(ctx, attempt):
        return
    if not (attempt.model_dir / "forget_model.json").is_file():
        ctx.say("unlearn", f"attempt {attempt.n}: {attempt.method}")
        impl = get_method(attempt.method)
        cfg = attempt_config(impl, attempt)
        net, tok = original
        if is_leading():  # under a launch: every rank trains, from the same head on disk
            result = joint(run_method, attempt.method, ctx.model_dir, forget, retain, cfg)
        else:
            result = impl.run(model=copy.deepcopy(net), tokenizer=tok, forget=forget,
                              retain=retain, config=cfg)
        forgotten = sorted({e.record_id for e in forget.examples})
        save_unlearned(ctx, attempt, result, tok,
                       [{"request_id": ctx.request_id, "record_ids": forgotten}])
    unlearn_done(ctx, attempt)


def save_unlearned(ctx: Context, attempt: Attempt, result, tok, erased: list[dict]) -> None:
    """Save and register ``result`` (an :class:`UnlearnResult` from ``ctx.model_dir``) at
    ``attempt.model_dir``; its card adds ``erased`` (request id and record ids, one entry per
    request it erases) to the parent's erasures."""
    from forget.models import ModelRegistry, read_card, save_model
    from forget.models.registry import new_card

    parent = read_card(ctx.model_dir)
    forgotten = sorted({i for e in erased for i in e["record_ids"]})
    redone = {e["request_id"] for e in erased}  # a request retried after its batch: once
    card = new_card(
        kind="unlearned", parent=parent["version"], method=attempt.method,
        size=parent.get("size"), line=parent.get("line") or parent["version"],
        config=result.config, config_hash=result.config_hash, guarantee=result.guarantee,
        formal_guarantee=result.formal_guarantee, unlearned_record_ids=forgotten,
        # every erasure of the line up to this version: what must stay erased after it
        erasures=[e for e in parent.get("erasures", [])
                  if e.get("request_id") not in redone] + list(erased),
        training_record_ids=(result.trained_record_ids if result.trained_record_ids
                             is not None else parent.get("training_record_ids", [])),
        data_sha256=parent.get("data_sha256", {}), unlearn_steps=result.steps,
        unlearn_wall_s=round(result.wall_time_s, 2), stopped_by=result.stopped_by,
        # how the line's first model was trained (exact retraining re-runs it)
        **{k: parent[k] for k in ("recipe", "arch") if parent.get(k) is not None},
    )
    save_model(result.model, tok, attempt.model_dir, card=card, overwrite=True,
               extra=result.save_extra)
    ModelRegistry(ctx.registry).register(attempt.model_dir)


# -- audit -----------------------------------------------------------------------------------
def _audit_inputs(corpus, forget, erased: set[str] = frozenset()) -> dict:
    import random

    members = [{"record_id": e.record_id, "text": e.text, "spans": list(e.spans)}
               for e in forget.examples]
    nonmembers = [{"record_id": e.record_id, "text": e.text, "spans": list(e.spans)}
                  for e in forget.holdout]
    forget_ids = {e.record_id for e in forget.examples}
    pool = sorted({r["text"] for r in corpus.people if r["split"] == "train"
                   and r["record_id"] not in forget_ids and r["record_id"] not in erased})
    retain = random.Random(0).sample(pool, min(200, len(pool)))
    holdout = [r["text"] for r in corpus.people if r["split"] == "holdout"][:200]
    return {"members": members, "nonmembers": nonmembers, "retain": retain, "holdout": holdout}


def audit_step(ctx: Context, attempt: Attempt, data, forget, controls: dict, cfg, *,
               lm_eval: bool, also_erased: frozenset[str] = frozenset()) -> str:
    """Audit the attempt's model with controls; ``data`` is the request's
    :class:`forget.workflow.data.WorkData`. ``also_erased``: records the model no longer holds
    besides the line's earlier erasures (the other requests of a batch): kept out of the
    audit's retain and reference texts, never judged for this request."""
    from audits import run_audit
    from forget.ledger import State
    from forget.methods._certified_head import has_head
    from forget.models import load_model, read_card
    from forget.workflow.certified import head_audit

    key = f"audit-{attempt.n}"
    report = attempt.report
    if not (ctx.done(key) and report.is_file()):
        ctx.record(key, "started")
        fault_point("audit", "before")
        if not report.is_file():
            ctx.say("audit", f"attempt {attempt.n}: auditing with controls")
            if has_head(attempt.model_dir):  # noisy_gd: re-check the certificate's conditions
                rep = head_audit(attempt.model_dir, ctx.model_dir, forget)
            else:
                lm_dir = _lm_eval_tasks(ctx, data.corpus, forget) if lm_eval else None
                net, tok = load_model(attempt.model_dir)
                base = ctx.base
                # earlier erasures must stay erased (not this request's own entry, left on
                # the head by a batch whose audit of it failed: that is what is judged here)
                relapse = data.relapse([e for e in base.erasures if e.get("request_id")
                                        != ctx.request_id]) if base is not None else {}
                erased = (base.erased_record_ids if base is not None else set()) | also_erased
                inputs = data.audit_inputs(forget, erased)
                near, near_info = data.neighbours(forget, erased, cfg.neighbour_count) \
                    if cfg.neighbour_count else ({}, {"skipped": "neighbour_count is 0"})
                rep = run_audit(model=net, tokenizer=tok, original=controls["original"],
                                retrained=controls.get("retrained"), config=cfg,
                                subject_id=f"request:{ctx.request_id}", lm_eval_dir=lm_dir,
                                cache=ctx.audit_cache, relapse=relapse,
                                model_sha256=read_card(attempt.model_dir)["sha256"],
                                relearn_texts=data.relearn_texts(forget, inputs, erased),
                                neighbours=near, shadows=controls.get("shadows"),
                                **inputs)
            tmp = Path(tempfile.mkdtemp(prefix=".audit.", dir=attempt.dir))
            rep.save(tmp)
            if not has_head(attempt.model_dir):  # how the neighbours were chosen (no ids)
                write_json_atomic(tmp / "neighbours.json", near_info)
            shutil.rmtree(report.parent, ignore_errors=True)
            tmp.rename(report.parent)
    data = json.loads(report.read_text())
    verdict = data["verdict"]
    checks = [{"name": c.get("name"), "passed": c.get("passed"),
               "value": c.get("value") if isinstance(c.get("value"), int | float) else None}
              for c in data.get("checks", [])]
    details = {"attempt": attempt.n, "verdict": verdict, "report_sha256": sha256_file(report),
               "config_hash": data.get("config_hash"), "checks": checks}
    if ctx.ledger.get(ctx.request_id).state == State.UNLEARNING:
        ctx.ledger.record_audit(ctx.request_id, passed=verdict == "pass", details=details,
                                worker_id=ctx.worker_id)
    if not ctx.done(key):
        ctx.record(key, "done", {k: details[k] for k in ("attempt", "verdict", "report_sha256")})
    fault_point("audit", "after")
    return verdict


def _lm_eval_tasks(ctx: Context, corpus, forget) -> Path:
    from audits import prepare_tasks, write_lm_eval_data

    base = ctx.work / "lm_eval"
    exclude = [forget.subject_id] if forget.subject_id else []
    write_lm_eval_data(corpus.subjects, corpus.people, base / "data", exclude=exclude)
    return prepare_tasks(base / "data", base / "tasks")


# -- guard -----------------------------------------------------------------------------------
def guard_paths(out: Path) -> tuple[Path, Path]:
    """The index (in ``out``) and its key (kept apart: see :mod:`forget.keys`)."""
    from forget.keys import guard_key_path

    return out / "guard" / "index.json", guard_key_path(out)


def _guard_key(key_path: Path) -> bytes:
    from forget.keys import guard_key

    return guard_key(key_path)  # created atomically, 0600, when missing


def guard_step(ctx: Context) -> None:
    from forget.workflow.scope import index_mapping
    from guardrails import ForgottenIndex

    if ctx.done("guard"):
        return
    ctx.record("guard", "started")
    fault_point("guard", "before")
    index_path, key_path = guard_paths(ctx.out)
    index_path.parent.mkdir(parents=True, exist_ok=True)
    ref = ctx.request_id if _REF.match(ctx.request_id) else \
        "req-" + hashlib.sha256(ctx.request_id.encode()).hexdigest()[:32]
    with (index_path.parent / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # several workers may add subjects at once
        key = _guard_key(key_path)
        idx = ForgottenIndex.load(index_path, key) if index_path.is_file() else ForgottenIndex(key)
        if ref not in idx.refs:
            idx.add(index_mapping(ctx.ledger.identifiers(ctx.request_id)), ref=ref)
            idx.save(index_path)
    ctx.record("guard", "done", {"index_sha256": sha256_file(index_path), "forms": len(idx)})
    fault_point("guard", "after")
    ctx.say("guard", "subject added to the forgotten-subject index (keyed hashes only)")
