"""Run ``forget ...`` in a new process forked from one that has already imported the suite.

A fresh ``python -m forget`` spends seconds importing torch, transformers and the suite before
it does anything; the kill-and-resume test starts fourteen of them. Here a multiprocessing
fork server imports the suite once, and each run is a child forked from it: a new process that
calls the same ``forget.cli.main`` with its own argv, environment and output files, that can
be killed with SIGKILL like any other, and whose exit status reads like ``subprocess.run``'s
(a negative signal number when killed). ``tests/test_cli.py`` keeps starting real
``python -m forget`` processes, so the entry point itself stays covered.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Imported once, in the fork server, before any child is forked. Nothing here starts a thread
# or an OpenMP pool, so forking after it is safe.
PRELOAD = ["torch", "transformers", "forget.cli", "forget.workflow", "forget.methods", "audits",
           "guardrails"]

_ctx = None


def _context():
    global _ctx
    if _ctx is None:
        _ctx = mp.get_context("forkserver")
        _ctx.set_forkserver_preload(PRELOAD)
    return _ctx


def _child(args: list[str], env: dict[str, str], out: str, err: str, cwd: str | None) -> None:
    """The forked child: its own environment, argv and output files, then the CLI's main."""
    os.environ.update(env)
    if cwd:
        os.chdir(cwd)
    for fd, path in ((1, out), (2, err)):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(f, fd)
        os.close(f)
    sys.argv = ["forget", *args]
    from forget.cli import main

    main(args)  # exits through SystemExit; multiprocessing turns its code into the exit code


def run_forget(*args: str, env: dict | None = None, cwd=None,
               timeout: float = 900) -> subprocess.CompletedProcess:
    """``forget *args`` in a forked process; returns what ``subprocess.run`` would."""
    env = {"COLUMNS": "200", **(env or {})}
    with tempfile.TemporaryDirectory(prefix="forget-cli-") as tmp:
        out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
        p = _context().Process(target=_child,
                               args=(list(args), env, str(out), str(err),
                                     str(cwd) if cwd else None))
        p.start()
        p.join(timeout)
        if p.exitcode is None:
            p.kill()
            p.join()
            raise subprocess.TimeoutExpired(["forget", *args], timeout)
        return subprocess.CompletedProcess(["forget", *args], p.exitcode,
                                           out.read_text(errors="replace"),
                                           err.read_text(errors="replace"))
