"""Workers: claim requests from the ledger and run the workflow on them.

Many workers may run at once, on one machine or many (PostgreSQL ledger): a claim is a lease
taken atomically, so each request is processed by one worker at a time; a worker that dies
leaves its lease to expire and another worker resumes the request where it stopped (every step
is recorded and idempotent). The lease is renewed whenever the workflow reports progress.

A worker cannot spin on a request that fails the same way every time:

- its own configuration (method, configs, model and data folders) is checked once, before it
  claims anything (:func:`forget.workflow.validate.check_run`): a typo stops the worker, and
  no request is touched;
- a configuration error that only shows for one request (a suite error: ``ForgetError``,
  ``AuditError``, ``GuardrailError``, e.g. a method the request's model cannot take) fails that
  request once, not retryable, with the error's message as the reason (these messages never
  hold personal data);
- any other error fails the request as retryable with an exponential backoff recorded in the
  ledger (``retry_after``: no worker claims it before), until the retry budget is spent; then
  it fails for good, with the reason. The traceback goes to the log as frames only
  (file, line, function, error type): no message, no local value, so no personal data;
- ``once`` processes each request at most once per run and exits when nothing is claimable.

With a :class:`forget.workflow.batch_policy.BatchPolicy` (``batch``), the worker groups the
pending requests into one unlearning run each time the policy says so (a count, a schedule,
or a request within the deadline margin): see :mod:`forget.worker_batch`.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("forget.worker")

MAX_REASON = 300  # characters of an error message kept in a failure reason


@dataclass
class WorkerStats:
    worker_id: str
    processed: list[dict] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for p in self.processed if p["status"] == status)


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of unexpected errors: ``max_attempts`` runs in all, waiting
    ``base_s * 2**(n-1)`` seconds (at most ``max_s``) after the n-th failure."""

    max_attempts: int = 3
    base_s: float = 30.0
    max_s: float = 3600.0

    def backoff(self, attempt: int) -> float:
        return min(self.max_s, self.base_s * 2 ** (attempt - 1))


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def safe_traceback(e: BaseException) -> str:
    """The traceback as frames and error types only: no message, no values (no personal data)."""
    lines = ["Traceback (frames only; messages left out):"]
    for fr in traceback.extract_tb(e.__traceback__):
        lines.append(f'  File "{fr.filename}", line {fr.lineno}, in {fr.name}')
    lines.append(type(e).__qualname__)
    return "\n".join(lines)


def is_suite_error(e: BaseException) -> bool:
    """A suite error (bad input or configuration): not worth retrying."""
    import sys

    from forget.errors import ForgetError
    from forget.ledger.errors import LeaseError

    if isinstance(e, LeaseError):
        return False  # the lease was lost: another worker has the request now
    roots: list[type] = [ForgetError]
    for mod, name in (("audits.errors", "AuditError"), ("guardrails.errors", "GuardrailError")):
        m = sys.modules.get(mod)
        if m is not None:
            roots.append(getattr(m, name))
    return isinstance(e, tuple(roots))


def _one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    return msg[:MAX_REASON - 3] + "..." if len(msg) > MAX_REASON else msg


def earlier_failures(ledger, request_id: str) -> int:
    """How many retryable failures the ledger records for the request (attempts so far)."""
    return sum(1 for e in ledger.events(request_id)
               if e.kind == "failed" and e.data.get("retryable"))


def record_failure(ledger, rid: str, wid: str, e: BaseException, policy: RetryPolicy) -> dict:
    """Fail the request in the ledger as the error deserves; what was recorded."""
    from forget.ledger.errors import LeaseError

    if isinstance(e, LeaseError):
        log.warning("lost the lease on a request; another worker has it now")
        return {"status": "lease_lost", "error": type(e).__name__}
    kind = type(e).__name__
    if is_suite_error(e):
        reason = f"configuration error ({kind}): {_one_line(e)}"
        log.error("request %s failed for good: %s", rid, reason)
        kw: dict = {"retryable": False, "details": {"error": kind, "retryable": False}}
        out = {"status": "failed", "error": kind, "retryable": False}
    else:
        attempt = earlier_failures(ledger, rid) + 1
        log.error("request %s: attempt %d failed with %s\n%s", rid, attempt, kind,
                  safe_traceback(e))
        if attempt >= policy.max_attempts:
            reason = (f"worker error ({kind}) on attempt {attempt} of {policy.max_attempts}: "
                      "retry budget spent; see the worker log")
            kw = {"retryable": False, "details": {"error": kind, "attempt": attempt}}
            out = {"status": "failed", "error": kind, "retryable": False}
        else:
            wait = policy.backoff(attempt)
            reason = (f"worker error ({kind}) on attempt {attempt} of {policy.max_attempts}; "
                      f"retried after {wait:g} s")
            kw = {"retryable": True, "retry_after": wait,
                  "details": {"error": kind, "attempt": attempt, "backoff_s": wait}}
            out = {"status": "error", "error": kind, "retryable": True, "backoff_s": wait}
    try:
        ledger.fail(rid, reason=reason, worker_id=wid, **kw)
    except Exception as err:  # noqa: BLE001 - e.g. the lease was lost meanwhile
        log.warning("could not record the failure (%s)", type(err).__name__)
        out["recorded"] = False
    return out


def run_worker(ledger, *, model: Path | str, data: Path | str, out: Path | str,
               worker_id: str | None = None, lease_seconds: float = 900.0, once: bool = False,
               poll_seconds: float = 5.0, max_requests: int | None = None,
               retry: RetryPolicy | None = None,
               say: Callable[[str, str], None] | None = None, batch=None,
               **workflow) -> WorkerStats:
    """Claim and process requests until the queue is empty (``once``) or forever.

    ``batch``: a :class:`forget.workflow.batch_policy.BatchPolicy`: process the pending
    requests in batches (:func:`forget.workflow.process_batch`) when it says so.

    ``workflow`` keyword arguments go to :func:`forget.workflow.process_request`. The worker's
    configuration is checked before the first claim (a typed error, nothing written). Errors
    while processing a request fail it as the module docstring says; the worker goes on.
    """
    from forget.workflow import process_request
    from forget.workflow.validate import check_run

    check_run(model=model, data=data, method=workflow.get("method", "auto"),
              method_config=workflow.get("method_config"),
              audit_config=workflow.get("audit_config"), retrained=workflow.get("retrained"))
    policy = retry or RetryPolicy()
    wid = worker_id or default_worker_id()
    stats = WorkerStats(wid)
    tell = say or (lambda step, msg: None)
    if batch is not None:
        from forget.errors import InvalidInputError
        from forget.worker_batch import run_batch_worker

        for k in ("retrained", "strong", "lm_eval"):  # one subject's control / attacks
            if workflow.pop(k, None):
                raise InvalidInputError(
                    f"{k} is not available when batching: process such requests one by one "
                    "(without a batch size)")
        workflow.pop("shadows", None)
        return run_batch_worker(ledger, policy=batch, model=model, data=data, out=out,
                                wid=wid, lease_seconds=lease_seconds, once=once,
                                poll_seconds=poll_seconds, max_requests=max_requests,
                                retry=policy, tell=tell, stats=stats, **workflow)
    seen: set[str] = set()
    while max_requests is None or len(stats.processed) < max_requests:
        rec = ledger.claim(wid, lease_seconds)
        if rec is None:
            if once:
                break
            time.sleep(poll_seconds)
            continue
        rid = rec.request_id
        if once and rid in seen:  # claimable again at once (no backoff): leave it for later
            ledger.release(rid, wid)
            break
        seen.add(rid)

        def progress(step: str, msg: str, rid: str = rid) -> None:
            ledger.renew(rid, wid, lease_seconds)  # long steps keep the lease alive
            tell(step, msg)

        tell("claim", f"claimed {rid}")
        try:
            res = process_request(ledger, rid, model=model, data=data, out=out, worker_id=wid,
                                  progress=progress, **workflow)
            entry = {"request_id": rid, "status": res.status}
            if res.status == "waiting_identity":
                ledger.release(rid, wid)
        except Exception as e:  # noqa: BLE001 - a worker must survive one bad request
            entry = {"request_id": rid} | record_failure(ledger, rid, wid, e, policy)
            tell("error", f"{rid}: {entry['status']} ({entry.get('error')})")
        stats.processed.append(entry)
    return stats
