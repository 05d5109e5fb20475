"""`forget unlearn`: a new registered version with its parent; the original untouched."""

from __future__ import annotations

import json
import subprocess

from forked_cli import run_forget

from forget.models import ModelRegistry, read_card, weights_sha256


def forget(*args: str) -> subprocess.CompletedProcess:
    return run_forget(*args, timeout=600)


def test_unlearn_saves_a_child_version(tiny_model_dir, corpus_dir, trained_subject, tmp_path):
    before = weights_sha256(tiny_model_dir)
    registry = tmp_path / "registry"
    out = tmp_path / "unlearned"
    res = forget("unlearn", "--model", str(tiny_model_dir), "--data", str(corpus_dir),
                 "--subject", trained_subject, "--method", "simnpo", "--out", str(out),
                 "--registry", str(registry))
    assert res.returncode == 0, res.stderr
    card = read_card(out)
    assert card["kind"] == "unlearned" and card["method"] == "simnpo"
    assert card["parent"] == read_card(tiny_model_dir)["version"]
    assert len(card["config_hash"]) == 64 and card["config"]["beta"] > 0
    assert trained_subject in card["excluded_subjects"]
    [version] = ModelRegistry(registry).list()
    assert version.version == card["version"] and version.parent == card["parent"]
    summary = json.loads((out / "unlearn.json").read_text())
    assert summary["extraction"]["before"] >= 1 and summary["extraction"]["after"] == 0
    assert weights_sha256(tiny_model_dir) == before
    assert "steps" in res.stdout and "->" in res.stdout


def test_unlearn_unknown_method_suggests(tiny_model_dir, corpus_dir, tmp_path):
    res = forget("unlearn", "--model", str(tiny_model_dir), "--data", str(corpus_dir),
                 "--subject", "S0001", "--method", "simnpoo", "--out", str(tmp_path / "x"))
    assert res.returncode == 2
    assert "'simnpo'" in res.stderr and "Registered:" in res.stderr
    assert not (tmp_path / "x").exists()


def test_unlearn_unknown_subject_is_clear(tiny_model_dir, corpus_dir, tmp_path):
    res = forget("unlearn", "--model", str(tiny_model_dir), "--data", str(corpus_dir),
                 "--subject", "S9999", "--method", "npo", "--out", str(tmp_path / "x"))
    assert res.returncode == 2 and "S9999" in res.stderr
    assert not (tmp_path / "x").exists()
