"""Pieces shared by the workflow's modules: the outcome record, fault injection, paths."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path

FAULT_ENV = "FORGET_FAULT_INJECT"  # "<step>:<before|after>": SIGKILL self there (crash tests)


@dataclass
class ProcessOutcome:
    """What one call of :func:`process_request` achieved."""

    request_id: str
    status: str  # completed | failed | waiting_identity
    state: str
    method: str | None = None
    attempts: list[dict] = field(default_factory=list)
    scope: dict = field(default_factory=dict)
    model_before: dict = field(default_factory=dict)
    model_after: dict = field(default_factory=dict)
    certificate: str | None = None
    report: str | None = None
    reason: str | None = None
    wall_s: float = 0.0


def fault_point(step: str, when: str) -> None:
    """Crash on purpose where ``$FORGET_FAULT_INJECT`` says (used by the kill-and-resume tests)."""
    if os.environ.get(FAULT_ENV) == f"{step}:{when}":
        os.kill(os.getpid(), signal.SIGKILL)


def request_dir(out: Path, request_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", request_id)
    if safe != request_id:
        safe += "-" + hashlib.sha256(request_id.encode()).hexdigest()[:8]
    return out / safe


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
