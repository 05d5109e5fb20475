"""`forget process REQUEST_ID ...` and `forget worker ...`: run the deletion workflow."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from forget.commands._common import (
    DATA_HELP,
    check_data,
    console,
    group_field_option,
    id_field_option,
    shadows_option,
    strong_option,
    text_field_option,
    write_json,
)

LEDGER_HELP = "Ledger URL (sqlite:///ledger.db, postgresql+psycopg://...) or a path."
INDEX_HELP = ("A keyed-hash index of --data (`forget corpus index`): scoping looks each request "
              "up in it instead of scanning every record.")
KEY_HELP = ("The ledger's key directory (default: under the key home, never beside the database; "
            "see README, Keys).")
GUARD_KEY_HELP = ("The guard index key file (created 0600 if missing; default: under the key home, "
                  "never inside --out; or $FORGET_GUARD_KEY_FILE).")


def _use_guard_key(path: Path | None) -> None:
    """Point the workflow at ``path`` for the guard index key (forget.keys.guard_key_path)."""
    if path is not None:
        import os

        from forget.keys import GUARD_KEY_FILE_ENV

        os.environ[GUARD_KEY_FILE_ENV] = str(path.expanduser().resolve())


def _say(step: str, msg: str) -> None:
    console.print(f"[cyan]{step:>9}[/] {msg}", highlight=False)


def outcome_table(res) -> Table:
    t = Table(title=f"request {res.request_id}: {res.status}")
    t.add_column("")
    t.add_column("value")
    sc = res.scope or {}
    rows = [("state", res.state), ("records found", str(sc.get("records", "")))]
    if sc.get("recall") is not None:
        rows.append(("scoping recall / precision", f"{sc['recall']:.0%} / {sc['precision']:.0%}"))
    for a in res.attempts:
        rows.append((f"attempt {a['attempt']}", f"{a['method']}: {a['verdict']} "
                     f"({a.get('steps')} steps, {a.get('wall_s')} s)"))
    rows += [("model before", str(res.model_before.get("version", ""))),
             ("model after", str(res.model_after.get("version", ""))),
             ("certificate", res.certificate or ""), ("report", res.report or ""),
             ("reason", res.reason or ""), ("wall time", f"{res.wall_s:.0f} s")]
    for k, v in rows:
        if v:
            t.add_row(k, v)
    return t


BATCH_HELP = ("Process every pending, verified request against --model's line as batches: one "
              "unlearning run for all of them, then each its own audit, certificate and ledger "
              "trail (see README, Batched requests).")
BATCH_SIZE_HELP = "At most this many requests in one unlearning run (default: all pending)."


def process_cmd(
    request_id: str | None = typer.Argument(None, help="The request to process (or --batch)."),
    batch: bool = typer.Option(False, "--batch", help=BATCH_HELP),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help=BATCH_SIZE_HELP),
    ledger: str = typer.Option(..., "--ledger", help=LEDGER_HELP),
    model: Path = typer.Option(..., "--model", help="A model directory naming the model line "
                               "(read only); the request starts from the line's head."),
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    text_field: str = text_field_option(),
    id_field: str | None = id_field_option(),
    group_field: str | None = group_field_option(),
    out: Path = typer.Option(..., "--out", help="Output folder (models, reports, certificates)."),
    method: str = typer.Option("auto", "--method", help="A method name, or auto."),
    retrained: Path | None = typer.Option(None, "--retrained", help="Retrained control model."),
    key_dir: Path | None = typer.Option(None, "--key-dir", help=KEY_HELP),
    lm_eval: bool = typer.Option(False, "--lm-eval/--no-lm-eval", help="Run lm-eval utility tasks."),
    registry: Path | None = typer.Option(None, "--registry", help="Model registry directory."),
    audit_config: Path | None = typer.Option(
        None, "--audit-config", help="AuditConfig JSON: thresholds fixed before the run."),
    from_version: str | None = typer.Option(
        None, "--from-version", help="Unlearn from this version of the model line instead of "
        "its head (refused when erasures were made since)."),
    guard_key: Path | None = typer.Option(None, "--guard-key", help=GUARD_KEY_HELP),
    index: Path | None = typer.Option(None, "--index", help=INDEX_HELP),
    strong: bool = strong_option(),
    shadows: int | None = shadows_option(),
    frontier: Path | None = typer.Option(
        None, "--frontier", help="A cost / pass-rate frontier measured on your model "
        "(bench/frontier.py's JSON): auto tries its cheapest method passing >= 80% of "
        "subjects before retraining (default: the one shipped, measured on the tiny model)."),
) -> None:
    """Process one request end to end. Exit 0 completed, 1 failed, 3 waiting for identity.

    --model names the model line (any of its versions); the request unlearns from the line's
    head, the version serving now, and moves the head forward when it completes. Bad input
    (method, configs, folders) exits 2 before anything is written. With --batch: every
    pending request (exit 0 when all completed, 1 when any failed).
    """
    from forget.ledger import Ledger
    from forget.workflow import process_request
    from forget.workflow.validate import check_run

    cfg = None
    if audit_config is not None:
        from audits import AuditConfig

        cfg = AuditConfig.from_file(audit_config)
    check_data(data, text_field=text_field, id_field=id_field, group_field=group_field,
               command="process", own_files=True, checks_first=lambda: check_run(
                   model=model, data=data, method=method, audit_config=cfg,
                   retrained=retrained))
    if batch == (request_id is not None):
        raise typer.BadParameter("give a REQUEST_ID or --batch (not both)")
    if batch and (retrained is not None or lm_eval or strong or from_version):
        raise typer.BadParameter("--retrained, --lm-eval, --strong and --from-version are for "
                                 "one request: process it without --batch")
    _use_guard_key(guard_key)
    led = Ledger(ledger, key_dir=key_dir, create=False)
    if batch:
        _process_batches(led, batch_size, model=model, data=data, out=out, method=method,
                         registry=registry, audit_config=cfg, progress=_say,
                         text_field=text_field, id_field=id_field, group_field=group_field,
                         index=index)
    res = process_request(led, request_id, model=model, data=data, out=out, method=method,
                          retrained=retrained, lm_eval=lm_eval, registry=registry,
                          audit_config=cfg, from_version=from_version, progress=_say,
                          text_field=text_field, id_field=id_field, group_field=group_field,
                          index=index, strong=strong, shadows=shadows, frontier=frontier)
    console.print(outcome_table(res))
    write_json(Path(out) / f"outcome-{res.request_id}.json", res.__dict__)
    raise typer.Exit({"completed": 0, "failed": 1}.get(res.status, 3))


def _process_batches(led, batch_size: int | None, *, out: Path, **kw) -> None:
    """``forget process --batch``: batches of at most ``batch_size`` until none is pending."""
    from forget.workflow import process_batch
    from forget.workflow.batch import pending_requests

    outcomes, runs, done = [], [], set()
    while True:
        ids = [r.request_id for r in pending_requests(led) if r.request_id not in done]
        if not ids:
            break
        res = process_batch(led, ids[:batch_size] if batch_size else ids, out=out, **kw)
        done.update(o.request_id for o in res.outcomes)
        outcomes += res.outcomes
        runs += res.runs
    t = Table(title=f"batch: {len(outcomes)} request(s), {len(runs)} unlearning run(s)")
    for c in ("request", "status", "batch", "model after"):
        t.add_column(c)
    batch_of = {rid: r.batch_id for r in runs for rid in r.requests}
    for o in outcomes:
        t.add_row(o.request_id, o.status, batch_of.get(o.request_id, "alone"),
                  str(o.model_after.get("version", "")))
    console.print(t)
    write_json(Path(out) / "outcome-batch.json", {
        "runs": [r.__dict__ for r in runs], "outcomes": [o.__dict__ for o in outcomes]})
    raise typer.Exit(0 if all(o.status == "completed" for o in outcomes) else 1)


def worker_cmd(
    ledger: str = typer.Option(..., "--ledger", help=LEDGER_HELP),
    model: Path = typer.Option(..., "--model", help="Model directory to unlearn from (read only)."),
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    text_field: str = text_field_option(),
    id_field: str | None = id_field_option(),
    group_field: str | None = group_field_option(),
    out: Path = typer.Option(..., "--out", help="Output folder shared by the workers."),
    once: bool = typer.Option(False, "--once", help="Exit when nothing is left to claim."),
    worker_id: str | None = typer.Option(None, "--worker-id", help="Default: host-pid."),
    lease: float = typer.Option(900.0, "--lease", help="Lease in seconds (renewed on progress)."),
    method: str = typer.Option("auto", "--method"),
    key_dir: Path | None = typer.Option(None, "--key-dir", help=KEY_HELP),
    registry: Path | None = typer.Option(None, "--registry", help="Model registry directory."),
    audit_config: Path | None = typer.Option(
        None, "--audit-config", help="AuditConfig JSON: thresholds fixed before the run."),
    retries: int = typer.Option(3, "--retries", min=1,
                                help="Runs of a request that keeps failing unexpectedly."),
    backoff: float = typer.Option(30.0, "--backoff", min=0.0,
                                  help="Seconds before the first retry; doubled each time."),
    guard_key: Path | None = typer.Option(None, "--guard-key", help=GUARD_KEY_HELP),
    index: Path | None = typer.Option(None, "--index", help=INDEX_HELP),
    strong: bool = strong_option(),
    shadows: int | None = shadows_option(),
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1, help="Batch pending requests: one unlearning run for up "
        "to N of them, started once N are pending (or --batch-wait, or a deadline)."),
    batch_wait: float | None = typer.Option(
        None, "--batch-wait", min=0.0, help="With --batch-size: also start a smaller batch "
        "once the longest-waiting request has waited this many seconds."),
    deadline_margin: float = typer.Option(
        7.0, "--deadline-margin", min=0.0, max=31.0, help="With --batch-size: a request due "
        "within this many days is processed now, batch full or not."),
) -> None:
    """Claim requests from the ledger and process them (many workers may run at once).

    The configuration is checked before anything is claimed (exit 2 on a bad one). A request
    that fails on bad input fails once, for good, with the reason; one that fails otherwise
    is retried after a backoff (recorded in the ledger) until --retries runs are spent.
    """
    from forget.ledger import Ledger
    from forget.worker import RetryPolicy, run_worker
    from forget.workflow.validate import check_run

    cfg = None
    if audit_config is not None:
        from audits import AuditConfig

        cfg = AuditConfig.from_file(audit_config)
    check_data(data, text_field=text_field, id_field=id_field, group_field=group_field,
               command="worker", own_files=True, checks_first=lambda: check_run(
                   model=model, data=data, method=method, audit_config=cfg))
    policy = None
    if batch_size is not None:
        from forget.workflow import BatchPolicy

        policy = BatchPolicy(max_size=batch_size, min_size=batch_size, max_wait_s=batch_wait,
                             deadline_margin_days=deadline_margin)
    _use_guard_key(guard_key)
    led = Ledger(ledger, key_dir=key_dir, create=False)
    stats = run_worker(led, model=model, data=data, out=out, worker_id=worker_id,
                       lease_seconds=lease, once=once, method=method, registry=registry,
                       audit_config=cfg, retry=RetryPolicy(retries, backoff), say=_say,
                       text_field=text_field, id_field=id_field, group_field=group_field,
                       index=index, strong=strong, shadows=shadows, batch=policy)
    t = Table(title=f"worker {stats.worker_id}")
    t.add_column("request")
    t.add_column("status")
    for p in stats.processed:
        t.add_row(p["request_id"], p["status"])
    console.print(t)
