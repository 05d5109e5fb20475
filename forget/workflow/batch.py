"""``process_batch``: pending requests against one model line, unlearned in one run.

Each request is verified and scoped on its own (the existing steps, its own ledger trail). The
requests whose plan starts with the same method form a group, and each group is unlearned from
the line's head in ONE run of that method on the union of their forget sets (one retrain; one
shard retrain of each affected shard; one gradient run). Then each request is audited on its
own (its own records, its own report under ``out/<request id>/attempt-N/audit/``), and each
request whose audit passes gets its own certificate and is completed on its own, most urgent
first.

A failing audit does not hold the others back:

- the batch's model becomes the line's head when at least one request passes on it: the first
  passing request moves the head from the version the batch started from to the batch's
  model; each further one moves it from the batch's model to itself (a compare-and-swap like
  any completion, so a head moved meanwhile by another worker is detected);
- the batch's model card lists every request of the batch among its erasures (their records
  are out of it, whether or not their audits passed), so later requests keep them out too;
- a request whose audit fails is never certified nor completed on it (the ledger refuses that
  anyway): it is then redone on its own from the new head (``process_request``, the existing
  attempts plan: a stronger retry, then retraining), or left for a worker when
  ``retry_alone`` is false. When no request passes, the head does not move.

Layout: ``out/batches/<batch id>/model`` holds the batch's model (a registered version); each
request's attempt folder holds its audit and its certificate lies in its own folder. The batch
id is derived from the head, the method and the members, so re-running the same batch after a
crash reuses its model and every step already recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forget.workflow import steps as S
from forget.workflow.common import ProcessOutcome, request_dir


@dataclass
class BatchRun:
    """One unlearning run of a batch: which requests it served and what it cost."""

    batch_id: str
    method: str
    requests: list[str]
    model: dict = field(default_factory=dict)  # version, sha256
    steps: int | None = None
    wall_s: float | None = None
    passed: list[str] = field(default_factory=list)
    failed_audit: list[str] = field(default_factory=list)


@dataclass
class BatchOutcome:
    """What one call of :func:`process_batch` achieved."""

    outcomes: list[ProcessOutcome] = field(default_factory=list)
    runs: list[BatchRun] = field(default_factory=list)
    alone: list[str] = field(default_factory=list)  # redone (or processed) on their own
    wall_s: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


@dataclass
class _Member:
    rid: str
    ctx: S.Context
    res: ProcessOutcome
    scope: dict
    first: str = ""  # the first method of the request's plan
    attempt: S.Attempt | None = None
    verdict: str = ""


def pending_requests(ledger: Any) -> list[Any]:
    """Requests ready for processing (identity verified, unfinished, not failed for good, no
    live lease), most urgent first: what ``forget process --batch`` takes."""
    from forget.ledger import State
    from forget.ledger.states import CLAIMABLE_STAGES

    out = []
    for r in ledger.list():
        if (r.stage not in CLAIMABLE_STAGES or r.terminal
                or (r.state == State.FAILED and not r.retryable)):
            continue
        if r.lease_owner is not None and r.lease_expires_at and r.lease_expires_at > r.as_of:
            continue
        out.append(r)
    return sorted(out, key=lambda r: (r.due_at, r.request_id))


def process_batch(ledger: Any, request_ids: list[str] | None = None, *, model: Path | str,
                  data: Path | str, out: Path | str, method: str = "auto",
                  audit_config: Any = None, worker_id: str | None = None,
                  max_attempts: int = 2, allow_retrain: bool = True,
                  registry: Path | str | None = None, use_presidio: bool = True,
                  method_config: dict | None = None, progress: Any = None,
                  text_field: str = "text", id_field: str | None = None,
                  group_field: str | None = None, index: Path | str | None = None,
                  auto_control: bool = True, retry_alone: bool = True) -> BatchOutcome:
    """Process ``request_ids`` (default: every pending request) as batches on ``model``'s line.

    Arguments as :func:`forget.workflow.process_request` (``model`` names the line; every
    request starts from its head). Every input is checked for every request before anything
    is written. A concept request (diffusion) is processed on its own. ``retry_alone``: redo a
    request whose audit failed on the batch's model on its own, from the new head, now.
    """
    import forget.methods  # noqa: F401  (registers every method)
    from forget.core.method import resolve_method
    from forget.workflow.concept import concept_value
    from forget.workflow.data import work_data as _work_data
    from forget.workflow.lines import resolve_base
    from forget.workflow.process import _check_recipe, _open_corpus, process_request
    from forget.workflow.validate import check_request

    t0 = time.perf_counter()
    say = progress or (lambda step, msg: None)
    out, model = Path(out), Path(model)
    method, chosen = resolve_method(method)
    method_config = chosen | dict(method_config or {}) if chosen else method_config
    ids = list(dict.fromkeys(request_ids)) if request_ids is not None else [
        r.request_id for r in pending_requests(ledger)]
    for rid in ids:  # every request's inputs, before any write
        check_request(ledger, rid, model=model, data=data, method=method,
                      method_config=method_config, audit_config=audit_config, retrained=None)
    fields = {"text_field": text_field, "id_field": id_field, "group_field": group_field}
    corpus = _open_corpus(data, fields, lm_eval=False)
    _check_recipe(model, corpus, method=method, registry=registry)
    common = dict(model=model, data=data, out=out, method=method, audit_config=audit_config,
                  worker_id=worker_id, max_attempts=max_attempts, allow_retrain=allow_retrain,
                  registry=registry, use_presidio=use_presidio, method_config=method_config,
                  progress=progress, index=index, auto_control=auto_control, **fields)
    result = BatchOutcome()
    if not ids:
        return result
    base = resolve_base(ledger, model, registry=registry)
    wd = _work_data(corpus, index_dir=index,
                    trained_ids=base.card.get("training_record_ids") or ()) if corpus else None
    members: list[_Member] = []
    for rid in ids:
        m = _prepare(ledger, rid, base, wd, out=out, registry=registry, worker_id=worker_id,
                     say=say, use_presidio=use_presidio, concept=concept_value)
        if isinstance(m, ProcessOutcome):
            result.outcomes.append(m)
        elif m is None:  # not a text request: the single path handles it
            result.alone.append(rid)
            result.outcomes.append(process_request(ledger, rid, **common))
        else:
            members.append(m)
    groups = _groups(members, method, max_attempts=max_attempts, allow_retrain=allow_retrain,
                     base=base, data=wd)
    for k, (name, group) in enumerate(groups.items()):
        if k:  # an earlier group moved the head: this one starts from the new head
            base = resolve_base(ledger, model, registry=registry)
            for m in group:
                m.ctx.start_from(base)
                m.res.model_before = base.as_before()
        run = _run_group(group, name, base, wd, method=method, method_config=method_config,
                         audit_config=audit_config, auto_control=auto_control, out=out, say=say)
        result.runs.append(run)
        retry = _finish_group(group, run, base, say=say)
        for m in group:
            if m.rid not in retry:
                result.outcomes.append(m.res)
        for rid in retry:  # redone on its own from the head as it is now
            if retry_alone:
                say("batch", f"{rid}: redone on its own from the model line's head")
                result.alone.append(rid)
                result.outcomes.append(process_request(ledger, rid, **common))
            else:  # left for a worker: it is in `auditing`, its last audit failed
                res = next(m.res for m in group if m.rid == rid)
                res.status, res.state = "audit_failed", ledger.get(rid).state.value
                res.reason = "its audit on the batch's model did not pass; not completed"
                result.outcomes.append(res)
    result.wall_s = time.perf_counter() - t0
    return result


def _prepare(ledger: Any, rid: str, base: Any, wd: Any, *, out: Path, registry: Any,
             worker_id: str | None, say: Any, use_presidio: bool, concept: Any):
    """Verify and scope one request; a :class:`_Member` ready for the batch, an outcome when
    it is finished or failed here (as in the single path), or None for the single path."""
    from forget.workflow.finish import early_outcome

    t0 = time.perf_counter()
    work = request_dir(out, rid)
    work.mkdir(parents=True, exist_ok=True)
    ctx = S.Context(ledger=ledger, request_id=rid, worker_id=worker_id, work=work, out=out,
                    model_dir=Path(base.path), registry=registry,
                    say=lambda step, msg: say(step, f"{rid}: {msg}"))
    rec = ledger.get(rid)
    res = ProcessOutcome(rid, "", rec.state.value)
    early = early_outcome(ctx, res, rec, t0, rejected="leave it out of the batch")
    if early is not None:
        return early
    if wd is None or concept(ledger.identifiers(rid)) is not None:
        return None
    ctx.start_from(base)
    ctx.steps = ledger.steps(rid)
    if not ctx.done("verify"):
        ledger.record_step(rid, "verify", "done", {"identity": "verified"}, worker_id=worker_id)
    scope = S.scope_step(ctx, wd, use_presidio=use_presidio)
    res.scope, res.model_before = scope, base.as_before()
    if not scope["record_ids"]:
        ctx.fail(res, "no training record mentions the subject: nothing to unlearn in this model")
        return res
    if set(scope["record_ids"]) <= _erased_by_others(base, rid):
        ctx.fail(res, "every record found for this request was already erased from this model "
                 "line by earlier requests: nothing is left to unlearn (see their certificates)")
        return res
    return _Member(rid, ctx, res, scope)


def _erased_by_others(base: Any, rid: str) -> set[str]:
    return {i for e in base.erasures if e.get("request_id") != rid
            for i in e.get("record_ids", ())}


def _groups(members: list[_Member], method: str, *, max_attempts: int, allow_retrain: bool,
            base: Any, data: Any) -> dict[str, list[_Member]]:
    """Members by the first method of their plan (``auto``: npo for people, code_eraser for
    code secrets, shard_retrain on a sharded model...): one run per method."""
    from forget.methods._certified_head import has_head
    from forget.methods.shard_retrain import sharded_source
    from forget.models.recipe import retrain_unavailable_reason
    from forget.workflow.process import plan_attempts

    ctx0 = members[0].ctx if members else None
    no_retrain = (retrain_unavailable_reason(ctx0.model_dir, registry=ctx0.registry)
                  if ctx0 is not None and allow_retrain else None)
    out: dict[str, list[_Member]] = {}
    for m in members:
        forget, _ = data.sets(m.scope, already_erased=_erased_by_others(base, m.rid))
        plan = plan_attempts(method, forget, max_attempts=max_attempts,
                             allow_retrain=allow_retrain and not no_retrain,
                             head=has_head(m.ctx.model_dir),
                             sharded=sharded_source(m.ctx.model_dir, m.ctx.registry) is not None)
        m.first = plan[0][0]
        out.setdefault(m.first, []).append(m)
    return out


def _union_scope(group: list[_Member]) -> dict:
    """One scope for the batch: every member's records (and spans, where the data has them)."""
    ids: list[str] = []
    spans: dict[str, list] = {}
    for m in group:
        ids += [i for i in m.scope["record_ids"] if i not in ids]
        for rid, sp in (m.scope.get("spans") or {}).items():
            spans.setdefault(rid, [])
            spans[rid] += [s for s in sp if s not in spans[rid]]
    return {"record_ids": ids, "spans": spans, "subject_id": None}


def batch_id_of(base_version: str, method: str, rids: list[str]) -> str:
    """A stable id for a batch: the same head, method and members give the same id."""
    h = hashlib.sha256("\n".join([base_version, method, *sorted(rids)]).encode()).hexdigest()
    return f"batch-{h[:16]}"


def _attempt_number(ctx: S.Context, batch_id: str) -> int:
    """The member's attempt number for this batch: after every attempt on other bases or
    other batches; the same number when this batch was already begun (a resumed run)."""
    n = S.round_offset(ctx) + 1
    for name, rec in ctx.steps.items():
        if name.startswith("unlearn-") and rec.details.get("batch") == batch_id:
            return int(name.split("-", 1)[1])
    while f"unlearn-{n}" in ctx.steps:
        n += 1
    return n


def _run_group(group: list[_Member], name: str, base: Any, data: Any, *, method: str,
               method_config: dict | None, audit_config: Any, auto_control: bool, out: Path,
               say: Any) -> BatchRun:
    """One run of ``name`` on the union of the group's forget sets, then each member's audit."""
    import copy

    from forget._dist import is_leading, joint
    from forget.core import get_method
    from forget.models import load_model

    rids = [m.rid for m in group]
    bid = batch_id_of(base.version, name, rids)
    bdir = out / "batches" / bid
    run = BatchRun(bid, name, rids)
    extra = {"batch": bid, "batch_size": len(group)}
    overrides = dict(method_config or {})  # name is every member's first method
    union = _union_scope(group)
    forget, retain = data.sets(union, already_erased=_erased_by_others(base, ""))
    shared = bdir / "model"
    resumed: set[str] = set()
    for m in group:
        n = _attempt_number(m.ctx, bid)
        m.attempt = S.Attempt(n, name, overrides, m.ctx.work / f"attempt-{n}",
                              shared_model=shared)
        m.attempt.dir.mkdir(parents=True, exist_ok=True)  # its audit report goes there
        if S.unlearn_begin(m.ctx, m.attempt, extra):
            resumed.add(m.rid)
    original = load_model(base.path)  # the head: it still holds every member's records
    if not (shared / "forget_model.json").is_file():
        say("batch", f"one {name} run for {len(group)} requests ({len(forget.examples)} "
            "records)")
        impl = get_method(name)
        cfg = S.attempt_config(impl, group[0].attempt)
        if is_leading():  # under a launch: every rank trains the batch's run, from the head
            res = joint(S.run_method, name, base.path, forget, retain, cfg)
        else:
            res = impl.run(model=copy.deepcopy(original[0]), tokenizer=original[1],
                           forget=forget, retain=retain, config=cfg)
        erased = [{"request_id": m.rid, "record_ids": sorted(set(m.scope["record_ids"]))}
                  for m in group]
        S.save_unlearned(group[0].ctx, group[0].attempt, res, original[1], erased)
    for m in group:
        if m.rid not in resumed:
            S.unlearn_done(m.ctx, m.attempt, extra)
    card = group[0].attempt.card
    run.model = {"version": card["version"], "sha256": card["sha256"]}
    run.steps, run.wall_s = card.get("unlearn_steps"), card.get("unlearn_wall_s")
    controls: dict[str, Any] = {"original": original}
    if auto_control:  # one control without every member's records (the recipe, another seed)
        from types import SimpleNamespace

        from forget.workflow.control import recipe_control

        pseudo = SimpleNamespace(model_dir=Path(base.path), registry=group[0].ctx.registry,
                                 work=bdir, base=base, say=say)
        control = recipe_control(pseudo, forget, retain)
        if control is not None:
            controls["retrained"] = (control, original[1])
    all_ids = set(union["record_ids"])
    for m in group:
        own, _ = data.sets(m.scope, already_erased=_erased_by_others(base, m.rid))
        cfg = audit_config or S.default_audit_config(own)
        m.verdict = S.audit_step(m.ctx, m.attempt, data, own, controls,
                                 S.audit_config_for(name, cfg), lm_eval=False,
                                 also_erased=frozenset(all_ids - set(m.scope["record_ids"])))
        m.res.attempts.append(m.attempt.summary(m.verdict) | {"batch": bid})
        (run.passed if m.verdict == "pass" else run.failed_audit).append(m.rid)
        if m.verdict != "pass":
            say("audit", f"{m.rid}: the audit on the batch's model did not pass ({m.verdict})")
    return run


def _finish_group(group: list[_Member], run: BatchRun, base: Any, *, say: Any) -> list[str]:
    """Guard, certify and complete each passing member (the first moves the head to the
    batch's model, the others keep it there); the ids to redo on their own."""
    from forget.ledger import HeadMovedError
    from forget.workflow.finish import certify_step, complete_step, finished_outcome

    retry = [m.rid for m in group if m.verdict != "pass"]
    head = base.head
    for m in group:
        if m.verdict != "pass":
            continue
        t0 = time.perf_counter()
        S.guard_step(m.ctx)
        cert = certify_step(m.ctx, m.attempt, base.as_before())
        m.ctx.base = dataclasses.replace(base, head=head)  # the head this completion expects
        try:
            complete_step(m.ctx, m.attempt, cert)
        except HeadMovedError:  # another worker moved the line meanwhile: redo it alone
            say("complete", f"{m.rid}: the model line's head moved meanwhile: redone alone")
            retry.append(m.rid)
            continue
        head = run.model["version"]
        finished_outcome(m.ctx, m.res, t0)
    return retry
