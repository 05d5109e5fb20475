"""`forget guard` and `forget guard add-subject` through the real command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from forget.cli import app

runner = CliRunner()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "guard.key"
    assert runner.invoke(app, ["guard", "new-key", "--out", str(path)]).exit_code == 0
    return path


def test_add_subject_then_filter(tmp_path: Path, key_file: Path, people) -> None:
    p, index = people[2], tmp_path / "forgotten.json"
    result = runner.invoke(app, ["guard", "add-subject", "--index", str(index), "--key-file",
                                 str(key_file), "--name", p.name, "--email", p.email,
                                 "--phone", p.phone, "--id", p.id, "--ref", "req-7"])
    assert result.exit_code == 0, result.output
    assert p.name not in result.output and p.name not in index.read_text()
    text = f"Answer: {p.name.upper()} ({p.email.replace('@', ' at ').replace('.', ' dot ')})\n"
    out = runner.invoke(app, ["guard", "--index", str(index), "--key-file", str(key_file),
                              "--no-presidio", "--report", str(tmp_path / "r.json")], input=text)
    assert out.exit_code == 0, out.output
    assert "<FORGOTTEN_SUBJECT>" in out.stdout and p.name.split()[-1] not in out.stdout
    assert p.name not in (tmp_path / "r.json").read_text()


def test_key_from_environment_and_errors(tmp_path: Path, people, monkeypatch) -> None:
    index = tmp_path / "i.json"
    monkeypatch.setenv("FORGET_GUARD_KEY", "an-environment-key-of-some-length")
    ok = runner.invoke(app, ["guard", "add-subject", "--index", str(index),
                             "--name", people[3].name])
    assert ok.exit_code == 0, ok.output
    strict = runner.invoke(app, ["guard", "--index", str(index), "--strict", "--no-presidio"],
                           input=f"It is {people[3].name}.")
    assert strict.exit_code == 1 and people[3].name not in strict.stdout
    monkeypatch.setenv("FORGET_GUARD_KEY", "a-different-key-of-some-length")
    bad = runner.invoke(app, ["guard", "--index", str(index)], input="x")
    assert bad.exit_code == 2 and "key does not match" in bad.output
    missing = runner.invoke(app, ["guard", "--index", str(tmp_path / "none.json")], input="x")
    assert missing.exit_code == 2
