"""`forget audit`: audit a model for one subject; writes report.json + report.html.

Exit codes: 0 pass, 1 fail, 3 inconclusive, 2 bad input (unknown subject, missing model...).
This is the only place that wires ``forget`` (data, models) to ``audits`` (plain inputs).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import typer
from rich.table import Table

from forget.commands._common import (
    DATA_HELP,
    console,
    err_console,
    group_field_option,
    id_field_option,
    open_data,
    text_field_option,
)

MAX_UTILITY_TEXTS = 200  # perplexity texts per population; enough for a stable estimate


def audit_cmd(
    model: Path = typer.Option(..., "--model", help="Model directory to audit."),
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    text_field: str = text_field_option(),
    id_field: str | None = id_field_option(),
    group_field: str | None = group_field_option(),
    subject: str = typer.Option(..., "--subject", help="Subject id, e.g. S0003."),
    out: Path = typer.Option(..., "--out", help="Directory for report.json and report.html."),
    original: Path | None = typer.Option(
        None, "--original", help="The model before unlearning (control: must fail)."),
    retrained: Path | None = typer.Option(
        None, "--retrained", help="A model retrained without the subject (control: must pass)."),
    config: Path | None = typer.Option(
        None, "--config", help="JSON file of AuditConfig overrides (thresholds fixed in advance)."),
    lm_eval: bool = typer.Option(True, "--lm-eval/--no-lm-eval",
                                 help="Run the lm-eval utility tasks (data/lm_eval)."),
    strong: bool = typer.Option(
        False, "--strong", help="Also run the per-person attack (U-LiRA): train shadow models "
        "with and without the subject (the line's own training, other seeds) and test each "
        "record; skipped, with the reason in the report, when the estimated training time "
        "exceeds the config's strong_budget_s."),
    shadows: int | None = typer.Option(
        None, "--shadows", min=2, help="Shadow models per side for --strong (default: the "
        "config's strong_shadows, 4)."),
) -> None:
    """Audit MODEL for SUBJECT: membership inference, extraction, exposure, utility, robustness."""
    import audits
    from forget.models import load_model

    corpus = open_data(data, text_field=text_field, id_field=id_field, group_field=group_field,
                       command="audit")
    corpus.subject(subject)  # unknown id: UnknownSubjectError -> one line, exit 2
    try:
        cfg = audits.AuditConfig.from_file(config) if config else audits.AuditConfig()
    except audits.AuditError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if strong:
        cfg = dataclasses.replace(cfg, strong=True, **(
            {"strong_shadows": shadows} if shadows else {}))
    pair = load_model(model)
    orig = load_model(original) if original else None
    retr = load_model(retrained) if retrained else None
    members = corpus.records_of(subject)
    holdout_ids = set(corpus.subject_ids("holdout")) - {subject}
    nonmembers = [r for r in corpus.people if r["subject_id"] in holdout_ids]
    retain = [r["text"] for r in corpus.people
              if r["split"] == "train" and r["subject_id"] != subject][:MAX_UTILITY_TEXTS]
    holdout = [r["text"] for r in nonmembers][:MAX_UTILITY_TEXTS]
    near: dict = {}
    if orig is not None and cfg.neighbour_count:  # the nearest other people (issue 18.5)
        from forget.workflow.neighbours import generated_neighbours

        _, near, _ = generated_neighbours(corpus, subject, set(), k=cfg.neighbour_count)
    provider = _shadows(original or model, corpus, members) if strong else None
    try:
        with tempfile.TemporaryDirectory(prefix="forget-audit-") as tmp:
            tasks = None
            if lm_eval:
                audits.write_lm_eval_data(corpus.subjects, corpus.people, Path(tmp) / "data",
                                          exclude=[subject], seed=cfg.seed)
                tasks = audits.prepare_tasks(Path(tmp) / "data", Path(tmp) / "tasks")
            report = audits.run_audit(
                model=pair[0], tokenizer=pair[1], members=members, nonmembers=nonmembers,
                retain=retain, holdout=holdout, original=orig, retrained=retr, config=cfg,
                subject_id=subject, lm_eval_dir=tasks, neighbours=near,
                shadows=provider)
        json_path, html_path = report.save(out)
    except audits.AuditError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    style = {"pass": "green", "fail": "red"}.get(report.verdict, "yellow")
    t = Table(title=f"audit of subject {subject}: [{style}]{report.verdict.upper()}[/]")
    for col in ("check", "value", "threshold", "result"):
        t.add_column(col)
    for c in report.checks:
        res = "[yellow]inconclusive[/]" if c.inconclusive else (
            "—" if c.passed is None else ("pass" if c.passed else "[red]fail[/]"))
        t.add_row(c.name, "—" if c.value is None else f"{c.value:.3g}", f"{c.threshold:.3g}", res)
    console.print(t)
    console.print(report.reason, highlight=False)
    console.print(f"original control: {report.controls['original']['status']}; "
                  f"retrained control: {report.controls['retrained']['status']}", highlight=False)
    console.print(f"wrote {json_path} and {html_path}")
    raise typer.Exit(report.exit_code)


def _shadows(line_dir: Path, corpus, members: list[dict]):
    """The shadow provider of the model line (the original's training, when given, else the
    audited model's); ``NoShadows`` with the reason when its training cannot be re-run."""
    from audits.strong import NoShadows
    from forget.errors import ForgetError
    from forget.workflow.shadows import shadow_provider

    try:
        return shadow_provider(line_dir, corpus, [r["record_id"] for r in members],
                               say=lambda m: console.print(m, highlight=False))
    except ForgetError as e:
        return NoShadows(str(e))
