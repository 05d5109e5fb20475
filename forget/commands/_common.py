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
