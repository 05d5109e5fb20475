"""The ``forget`` command line: assembles the command groups and maps errors to exit codes.

Exit codes: 0 success; 1 a check failed (audit fail, ledger broken, request failed); 2 bad
input or environment (any error of the suite: ``ForgetError``, ``audits.AuditError``,
``guardrails.GuardrailError``), printed as one line naming the problem and the fix;
3 inconclusive (audits) or waiting. Heavy libraries are imported
inside commands so ``forget --help`` stays fast.
"""

from __future__ import annotations

import sys

import typer
from typer._click import exceptions as click_exc  # typer >= 0.24 vendors click

from forget._dist import led_by_rank_zero
from forget._env import configure_offline
from forget._quiet import configure_output
from forget.commands import (
    audit,
    certificate,
    corpus,
    data,
    demo,
    guard,
    ledger,
    model,
    process,
    request,
    unlearn,
)
from forget.commands._common import err_console
from forget.errors import ForgetError
from guardrails.errors import GuardrailError


def suite_error(e: BaseException) -> bool:
    """Whether ``e`` is one of the suite's errors (bad input or environment): a ForgetError,
    an audits.AuditError or a guardrails.GuardrailError."""
    roots: list[type] = [ForgetError, GuardrailError]
    audit_errors = sys.modules.get("audits.errors")  # importing audits costs seconds (torch)
    if audit_errors is not None:
        roots.append(audit_errors.AuditError)
    return isinstance(e, tuple(roots))


def one_line(e: BaseException) -> str:
    """The error's message on one line (rich markup escaped)."""
    from rich.markup import escape

    return escape(" ".join(str(e).split()) or type(e).__name__)

app = typer.Typer(
    name="forget",
    help="Right-to-be-forgotten for language models: requests, unlearning, audits, certificates.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", envvar="FORGET_VERBOSE",
        help="Also show the libraries' progress bars, log lines and warnings (model loading "
        "and saving, datasets, the Trainer); by default only the suite's own output."),
) -> None:
    """Right-to-be-forgotten for language models: requests, unlearning, audits, certificates."""
    configure_output(verbose)


app.add_typer(data.app, name="data")
app.add_typer(corpus.app, name="corpus")
app.add_typer(model.app, name="model")
app.add_typer(request.app, name="request")
app.add_typer(ledger.app, name="ledger")
app.add_typer(guard.app, name="guard")
app.add_typer(certificate.app, name="certificate")
app.command("unlearn")(unlearn.unlearn_cmd)
app.command("audit")(audit.audit_cmd)
# under `accelerate launch`: rank 0 runs the workflow, the other ranks join its training runs
app.command("process")(led_by_rank_zero(process.process_cmd))
app.command("worker")(led_by_rank_zero(process.worker_cmd))
app.command("demo")(demo.demo_cmd)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script; errors become one plain line and an exit code."""
    configure_offline()
    try:
        rv = app(args=argv, standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except click_exc.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as e:
        if not suite_error(e):
            raise
        err_console.print(f"[bold red]error:[/] {one_line(e)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
