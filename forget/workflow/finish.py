"""The last steps of a request: certify, complete (moving the model line's head), the outcome.

Completion moves the line's head from the version the request started from to its new version
in the same ledger transaction (compare-and-swap). If another request moved the head meanwhile,
the ledger refuses (:class:`forget.ledger.HeadMovedError`), nothing is completed, and the
caller redoes the request on the new head: a certificate issued for the old head is replaced.
"""

from __future__ import annotations

import json
import time

from forget.workflow.common import ProcessOutcome, fault_point, now_iso
from forget.workflow.steps import Attempt, Context, sha256_file, write_json_atomic


def certify_step(ctx: Context, attempt: Attempt, model_before: dict):
    """Issue (once per passing attempt) the signed certificate for ``attempt``."""
    from forget import certificate as C

    path = ctx.work / "certificate.json"
    if ctx.done("certify") and path.is_file():
        existing = C.Certificate.read(path)
        if existing.model_after.get("version") == attempt.card.get("version"):
            return existing
    ctx.record("certify", "started")
    fault_point("certify", "before")
    audits = [e for e in ctx.ledger.events(ctx.request_id) if e.kind == "audit_recorded"
              and e.data.get("passed")]
    report = json.loads(attempt.report.read_text())
    card = attempt.card
    cert = C.issue(
        ctx.ledger, ctx.request_id, event_seq=audits[-1].seq, model_before=model_before,
        model_after={"version": card["version"], "sha256": card["sha256"]},
        method=card["method"], method_config_hash=card["config_hash"],
        guarantee=card["guarantee"], formal_guarantee=card.get("formal_guarantee"),
        audit={"verdict": report["verdict"], "report_sha256": sha256_file(attempt.report),
               "config_hash": report.get("config_hash"), "attempt": attempt.n},
        issued_at=now_iso(),
    )
    write_json_atomic(path, json.loads(cert.to_json()))
    ctx.record("certify", "done", {"certificate_sha256": sha256_file(path),
                                   "attempt": attempt.n})
    fault_point("certify", "after")
    ctx.say("certify", f"certificate written: {path}")
    return cert


def complete_step(ctx: Context, attempt: Attempt, cert) -> None:
    """Complete the request and move the line's head to ``attempt``'s model (one transaction).

    Raises:
        HeadMovedError: the head is no longer the version this request started from.
    """
    from forget.ledger import HeadMove, State
    from forget.workflow.lines import write_serving

    if ctx.ledger.get(ctx.request_id).state == State.COMPLETED:
        return
    base = ctx.base
    move = None if base is None else HeadMove(
        line=base.line, expected=base.head, version=attempt.card["version"],
        sha256=attempt.card["sha256"], path=str(attempt.model_dir.resolve()))
    fault_point("complete", "before")
    ctx.ledger.complete(ctx.request_id, details={
        "certificate_sha256": sha256_file(ctx.work / "certificate.json"),
        "model": attempt.card["version"]}, worker_id=ctx.worker_id, head=move)
    fault_point("complete", "after")
    if base is not None:
        write_serving(ctx.out, ctx.ledger, base.line)
    ctx.say("complete", "request completed; the model line's head moved to the new version; "
            "the subject's identifiers were crypto-shredded")


def finished_outcome(ctx: Context, res: ProcessOutcome, t0: float) -> ProcessOutcome:
    from forget.workflow.lines import write_serving

    rec = ctx.ledger.get(ctx.request_id)
    res.state = rec.state.value
    res.status = "completed" if rec.state.value == "completed" else res.status or rec.state.value
    scope = ctx.work / "scope.json"
    if scope.is_file() and not res.scope:
        res.scope = json.loads(scope.read_text())
    cert = ctx.work / "certificate.json"
    if cert.is_file():
        c = json.loads(cert.read_text())
        res.certificate, res.method = str(cert), c["method"]
        res.model_before, res.model_after = c["model_before"], c["model_after"]
        n = c["audit"].get("attempt")
        if n:
            res.report = str(ctx.work / f"attempt-{n}" / "audit" / "report.html")
        line = c["model_before"].get("line")
        if res.status == "completed" and line:  # a run killed after completing: catch up
            write_serving(ctx.out, ctx.ledger, line)
    res.wall_s = time.perf_counter() - t0
    return res


def early_outcome(ctx: Context, res: ProcessOutcome, rec, t0: float, *,
                  rejected: str) -> ProcessOutcome | None:
    """The outcome of a request with nothing to run (completed, failed for good, waiting for
    identity); raises for a rejected one (``rejected``: the message's end); None otherwise."""
    from forget.errors import InvalidInputError
    from forget.ledger import State

    if rec.state == State.COMPLETED:
        return finished_outcome(ctx, res, t0)
    if rec.state == State.REJECTED:
        raise InvalidInputError(f"request {ctx.request_id!r} was rejected; {rejected}")
    if rec.state == State.FAILED and not rec.retryable:
        res.status, res.reason = "failed", "the request failed earlier and is not retryable"
        return res
    if rec.stage == State.RECEIVED:
        ctx.say("verify", "identity not verified yet: the request waits (deadline clock paused)")
        res.status = "waiting_identity"
        return res
    return None

# A request is redone at most this many times because other requests kept moving the head;
# then it fails retryable and a worker takes it up again later.
MAX_ROUNDS = 8


def complete_on_head(ctx: Context, res: ProcessOutcome, t0: float, one_round, *, guard,
                     head_base) -> ProcessOutcome:
    """Run ``one_round`` (unlearn + audit from ``ctx.base``), then guard, certify and complete;
    when the head moved meanwhile, start again from the new head (``head_base()``).

    ``one_round()`` returns the passing attempt, or None when it failed the request.
    """
    from forget.ledger import HeadMovedError

    for _ in range(MAX_ROUNDS):
        passed = one_round()
        if passed is None:
            res.wall_s = time.perf_counter() - t0
            return res
        guard(ctx)
        cert = certify_step(ctx, passed, ctx.base.as_before())
        try:
            complete_step(ctx, passed, cert)
        except HeadMovedError:
            ctx.say("complete", "another request moved the model line's head meanwhile: "
                    "redoing this request from the new head")
            ctx.start_from(head_base())
            ctx.steps = ctx.ledger.steps(ctx.request_id)
            continue
        return finished_outcome(ctx, res, t0)
    reason = (f"the model line's head moved {MAX_ROUNDS} times while this request ran; it is "
              "retried later from the head")
    ctx.fail(res, reason, retryable=True)
    res.wall_s = time.perf_counter() - t0
    return res
