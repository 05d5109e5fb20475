"""Shared pieces of the command line: consoles and JSON output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def write_json(path: Path | str, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (sorted keys) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    return path


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
