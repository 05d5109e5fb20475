"""Quiet output: no library progress bars or warnings unless `--verbose`."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest
from forked_cli import run_forget

from forget import _quiet

BARS = ("Loading weights", "Writing model shards", "%|", "it/s]")


def _unlearn(model, data, subject, out, *extra: str) -> tuple[str, ...]:
    return (*extra, "unlearn", "--model", str(model), "--data", str(data), "--subject", subject,
            "--method", "gradient_ascent", "--max-steps", "1", "--out", str(out),
            "--registry", str(out.parent / "registry"))


def test_unlearn_loads_and_saves_a_model_quietly_and_verbose_brings_the_bars_back(
        tiny_model_dir, corpus_dir, trained_subject, tmp_path):
    quiet = run_forget(*_unlearn(tiny_model_dir, corpus_dir, trained_subject, tmp_path / "q"))
    assert quiet.returncode == 0, quiet.stderr
    assert "unlearned subject" in quiet.stdout  # the suite's own summary is still there
    for bar in BARS:
        assert bar not in quiet.stdout + quiet.stderr, bar
    loud = run_forget(*_unlearn(tiny_model_dir, corpus_dir, trained_subject, tmp_path / "v",
                                "--verbose"))
    assert loud.returncode == 0, loud.stderr
    assert "Loading weights" in loud.stderr and "Writing model shards" in loud.stderr


def test_a_fresh_process_is_quiet_too(tiny_model_dir, corpus_dir, trained_subject, tmp_path):
    """`python -m forget` imports the libraries after the switch: the environment path."""
    env = {k: v for k, v in os.environ.items() if k not in _quiet.QUIET_ENV}
    res = subprocess.run([sys.executable, "-m", "forget",
                          *_unlearn(tiny_model_dir, corpus_dir, trained_subject, tmp_path / "f")],
                         capture_output=True, text=True, env=env | {"COLUMNS": "200"},
                         timeout=600)
    assert res.returncode == 0, res.stderr
    for bar in BARS:
        assert bar not in res.stdout + res.stderr, bar
    assert res.stderr.strip() == ""


@pytest.fixture
def restore_output(monkeypatch):
    for key in _quiet.QUIET_ENV:
        monkeypatch.delenv(key, raising=False)
    with warnings.catch_warnings():
        yield
        _quiet.configure_output(True)
    monkeypatch.setattr(_quiet, "_verbose", True)


def test_configure_output_switches_the_libraries_loaded(restore_output):
    import datasets
    from transformers.utils import logging as tf_logging

    _quiet.configure_output(False)
    assert not _quiet.is_verbose()
    assert not tf_logging.is_progress_bar_enabled()
    assert datasets.is_progress_bar_enabled() is False
    assert tf_logging.get_verbosity() == tf_logging.ERROR
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn_explicit("library noise", UserWarning, "x.py", 1, module="transformers.x")
    assert caught == []
    _quiet.configure_output(True)
    assert tf_logging.is_progress_bar_enabled() and datasets.is_progress_bar_enabled()


def test_a_variable_the_user_set_wins(restore_output, monkeypatch):
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")
    _quiet.configure_output(False)
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "info"
