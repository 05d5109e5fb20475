"""Shared pieces of the command line: consoles, JSON output, the ``--data`` options."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from forget.corpus import Corpus, TextCorpus

# Under `accelerate launch` every process runs the command; only rank 0 (RANK, set by the
# launcher before the process starts) speaks: the others' consoles are quiet.
console = Console(quiet=os.environ.get("RANK", "0") != "0")
err_console = Console(stderr=True)


def write_json(path: Path | str, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (sorted keys) and return the path (under a launch, rank
    0 writes and the others wait for it)."""
    from forget._dist import on_main

    path = Path(path)

    def write() -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
        return path

    return on_main(write)


CONCEPT_DATA_MARKER = "concepts.json"  # forget.diffusion.concepts.CONCEPTS_FILE (not imported: slow)
DATA_HELP = ("Training data: a directory from `forget data generate`, a .jsonl/.json/.csv/"
             ".parquet/.txt file, a directory of them, or a datasets save_to_disk directory.")


def text_field_option() -> Any:
    return typer.Option("text", "--text-field", help="Column holding each record's text.")


def strong_option() -> Any:
    return typer.Option(
        False, "--strong", help="Also run the audit's per-person attack (U-LiRA): shadow "
        "models of the line's training with and without the request's records; skipped, "
        "with the reason in the report, over the audit config's strong_budget_s.")


def shadows_option() -> Any:
    return typer.Option(None, "--shadows", min=2, help="Shadow models per side for --strong.")


def id_field_option() -> Any:
    return typer.Option(None, "--id-field",
                        help="Column of unique record ids (default: '<file>:<row>').")


def group_field_option() -> Any:
    return typer.Option(None, "--group-field",
                        help="Optional column naming each record's owner (person, account).")


def open_data(data: Path, *, text_field: str = "text", id_field: str | None = None,
              group_field: str | None = None, command: str, own_files: bool = False
              ) -> Corpus | TextCorpus:
    """The generated corpus at ``data``; any other corpus is refused, one line, by ``command``.

    For commands that still need the generator's ground truth (subjects, identifier spans).
    The corpus is opened first, so a bad file or field is reported as such.
    """
    from forget.corpus import Corpus, open_corpus
    from forget.errors import UnsupportedCorpusError

    corpus = open_corpus(data, text_field=text_field, id_field=id_field,
                         group_field=group_field)
    if not isinstance(corpus, Corpus) and not own_files:
        raise UnsupportedCorpusError(
            f"`forget {command}` takes a directory from `forget data generate` (it names "
            f"subjects by their generated ids), not your own files ({data}: {len(corpus)} "
            f"{corpus.format} records); on your own files use `forget model finetune` and "
            "`forget process` (a request names the person; scoping finds their records)")
    return corpus


def check_data(data: Path, *, text_field: str = "text", id_field: str | None = None,
               group_field: str | None = None, command: str,
               checks_first: Callable[[], None] | None = None, own_files: bool = False) -> None:
    """Like :func:`open_data`, for commands that load the data themselves later.

    A generated directory (and, for the workflow, a concept data folder with its
    ``concepts.json``) passes without being read twice; anything else is opened and refused.
    ``checks_first``: the command's own input checks (model, method, configs), run before a
    data error is raised, so the first error a user sees is the same as without this check.
    ``own_files``: the command also takes the user's own files (opened here to check them).
    """
    from forget.corpus import is_generated
    from forget.errors import ForgetError

    if (text_field, id_field, group_field) == ("text", None, None) and (
            is_generated(data) or (checks_first is not None
                                   and (Path(data) / CONCEPT_DATA_MARKER).is_file())):
        return
    try:
        open_data(data, text_field=text_field, id_field=id_field, group_field=group_field,
                  command=command, own_files=own_files)
    except ForgetError:
        if checks_first is not None:
            checks_first()
        raise


def read_input(path: Path, what: str) -> bytes:
    """The bytes of ``path``, or of stdin when it is ``-`` (identifiers never go on argv).

    Raises:
        DataNotFoundError / InvalidInputError: named by ``what``, never echoing the content.
    """
    import sys

    from forget.errors import DataNotFoundError, InvalidInputError

    if str(path) == "-":
        return sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else \
            sys.stdin.read().encode()
    if not path.is_file():
        raise DataNotFoundError(f"no {what} at {path}: give an existing JSON file, or - for stdin")
    try:
        return path.read_bytes()
    except OSError as e:
        raise InvalidInputError(f"cannot read the {what} ({type(e).__name__})") from None


def read_json_object(path: Path, what: str) -> dict:
    """A JSON object from ``path`` (``-``: stdin); a typed one-line error otherwise."""
    from forget.errors import MalformedDataError

    raw = read_input(path, what)
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise MalformedDataError(f"the {what} is not valid JSON ({type(e).__name__})") from None
    if not isinstance(obj, dict):
        raise MalformedDataError(f"the {what} must be one JSON object, not a "
                                 f"{type(obj).__name__}")
    return obj
