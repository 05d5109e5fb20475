"""Issue 20: CI always tests PostgreSQL (and says so loudly when it cannot); git never takes
ledgers, keys or outputs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run_ci(tmp_path: Path, url: str | None) -> subprocess.CompletedProcess:
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "make").write_text('#!/bin/sh\necho "make $* with $FORGET_TEST_POSTGRES_URL"\n')
    (fake / "make").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "FORGET_TEST_POSTGRES_URL"}
    env["PATH"] = f"{fake}:{env['PATH']}"
    if url is not None:
        env["FORGET_TEST_POSTGRES_URL"] = url
    return subprocess.run(["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True,
                          text=True, timeout=60)


def test_ci_fails_loudly_when_postgres_does_not_answer(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = _run_ci(tmp_path, f"postgresql+psycopg://postgres@127.0.0.1:{port}/test")
    assert res.returncode != 0 and "no PostgreSQL server answers" in res.stderr
    assert "make" not in res.stdout


def test_ci_always_points_the_tests_at_the_local_server(tmp_path):
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", 5432)) != 0:
            pytest.skip("no PostgreSQL server on 127.0.0.1:5432 here")
    res = _run_ci(tmp_path, None)
    assert res.returncode == 0, res.stderr
    assert "make test with postgresql+psycopg://postgres@127.0.0.1:5432/test" in res.stdout


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="not a git checkout")
@pytest.mark.parametrize("path", ["ledger.db", "run/ledger.db-wal", "x/ledger.db.keys/a",
                                  "keys/ledger.secret", "guard/index.key", "signing.pub",
                                  "out/r-1/certificate.json", "demo-out/run/ledger.db",
                                  "outcome-r-1.json", "a.pem"])
def test_git_ignores_ledgers_keys_and_outputs(path):
    res = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT)
    assert res.returncode == 0, f"{path} is not ignored"
