"""The command line as a user meets it: help, generation, and plain one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def forget(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "forget", *args], capture_output=True,
                          text=True, cwd=cwd, env=os.environ | {"COLUMNS": "200"}, timeout=300)


def test_help_lists_the_command_groups():
    res = forget("--help")
    assert res.returncode == 0
    for name in ("data", "model", "corpus"):
        assert name in res.stdout


def test_data_generate_writes_the_four_files(tmp_path):
    res = forget("data", "generate", "--out", str(tmp_path), "--subjects", "5", "--seed", "2")
    assert res.returncode == 0, res.stderr
    for name in ("subjects.jsonl", "people.jsonl", "code.jsonl", "canaries.jsonl"):
        assert (tmp_path / name).is_file()
    assert json.loads((tmp_path / "manifest.json").read_text())["counts"]["subjects.jsonl"] == 5


def test_model_train_on_missing_data_dir_is_one_line_naming_it(tmp_path):
    res = forget("model", "train", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "m"))
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "absent" in lines[0] and "forget data generate" in lines[0]
    assert not (tmp_path / "m").exists()


def test_model_train_on_malformed_file_names_file_and_line(tmp_path):
    forget("data", "generate", "--out", str(tmp_path), "--subjects", "4")
    with (tmp_path / "people.jsonl").open("a") as f:
        f.write("{not json\n")
    res = forget("model", "train", "--data", str(tmp_path), "--out", str(tmp_path / "m"))
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "people.jsonl:" in lines[0] and "not valid JSON" in lines[0]
    assert "Traceback" not in res.stderr


def test_model_list_json(tiny_model_dir, registry_dir):
    res = forget("model", "list", "--registry", str(registry_dir), "--json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert any(r["path"] == str(tiny_model_dir.resolve()) for r in rows)
