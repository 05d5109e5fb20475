"""Helpers for the workflow tests (plain functions; fixtures are in conftest.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from forked_cli import run_forget

# Thresholds fixed before the run, lighter than the default only in sample counts (speed).
# One MIA attack in the verdict (79 twin identities instead of 159: the power of both attacks
# is tested in tests/audits), and no fine-tuning-on-other-data or character-ranking attack
# (tested there too): these tests are about the workflow.
# No neighbours either (tested in tests/audits and by person_run, which turns them on).
FAST_AUDIT = {"bootstrap": 300, "samples": 4, "relearn_steps": 5, "relearn_other_steps": 0,
              "mia_verdict_attacks": ("loss",), "char_rank_kinds": (), "neighbour_count": 0}
# FAST_AUDIT without the robustness probes (relearning, int8, paraphrase): each re-runs
# extraction and exposure on a transformed copy of the audited model and of the retrained
# control, about half an audit's time. For tests whose claims do not rest on them: the probes
# and their checks are tested in tests/audits (test_robustness.py, test_verdict.py), and in the
# workflow by test_workflow.py::test_code_secret_request_end_to_end (default audit, all on).
LIGHT_AUDIT = FAST_AUDIT | {"paraphrase": False, "quantize": False, "relearn_steps": 0,
                            "relearn_other_steps": 0}


def identifiers_of(corpus, subject_id: str) -> dict[str, str]:
    ident = corpus.subject(subject_id)["identifiers"]
    return {k: ident[k] for k in ("name", "email", "phone", "national_id")}


def person_request(request_id: str, ident: dict[str, str]):
    from forget.ledger import DeletionRequest

    return DeletionRequest(request_id=request_id, name=ident["name"], emails=(ident["email"],),
                           phones=(ident["phone"],),
                           other_ids=(("national_id", ident["national_id"]),), ground="a")


def leaks(root: Path, values: dict[str, str]) -> list[str]:
    """Files under ``root`` (or the file itself) holding any value: 'path: kind' (no values)."""
    files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    out = []
    for p in files:
        blob = p.read_bytes()
        for kind, v in values.items():
            forms = {v, v.lower(), v.upper()}
            if any(f.encode() in blob for f in forms):
                out.append(f"{p.name}: {kind}")
    return out


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``forget *args`` in a new process (forked from a preloaded one: see forked_cli)."""
    return run_forget(*args, env=env, timeout=900)
