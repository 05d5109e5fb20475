"""The legal reviewers' notebooks run top to bottom (nbclient) on the tiny model."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
# One intra-op thread in the kernels: on 2 shared cores, a second torch thread waiting for a busy
# core slowed a notebook from 30 s to many minutes.
# FORGET_NB_QUICK: the notebooks' audits run one MIA attack, no character ranking and no
# robustness attacks (relearning, int8, paraphrase: a third to a half of each audit's time), each
# tested in tests/audits (all four robustness cases end to end in test_verdict.py's
# test_every_verdict_carries_its_evidence) and in the workflow's person_run: CI time.
KERNEL_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "FORGET_NB_QUICK": "1"}


def _run(name: str, env: dict[str, str], tmp_path: Path, monkeypatch) -> str:
    """Execute a notebook with ``env`` (and one kernel thread); the text of its outputs."""
    for k, v in (KERNEL_ENV | env).items():
        monkeypatch.setenv(k, v)  # the kernel inherits them; restored after the test
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=900, startup_timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_walkthrough_notebook_runs_and_shows_no_identifier(corpus_dir, tiny_model_dir, corpus,
                                                           tmp_path, monkeypatch):
    text = _run("01_deletion_request_walkthrough.ipynb", {
        "FORGET_NB_DATA": str(corpus_dir), "FORGET_NB_MODEL": str(tiny_model_dir)},
        tmp_path, monkeypatch)
    assert "result: completed" in text and "certificate verifies" in text
    assert "identifiers unreadable" in text
    ident = corpus.subject(corpus.subject_ids("train")[0])["identifiers"]
    assert not [k for k in ("name", "email", "phone") if ident[k] in text]


def _identifiers(corpus) -> list[str]:
    return [v for s in corpus.subjects for k, v in s["identifiers"].items()
            if k in ("name", "email", "phone", "national_id")]


def test_audit_report_notebook_shows_fail_pass_and_inconclusive(
        corpus_dir, tiny_model_dir, retrained_model_dir, trained_subject, corpus, tmp_path,
        monkeypatch):
    text = _run("02_reading_an_audit_report.ipynb", {
        "FORGET_NB_DATA": str(corpus_dir), "FORGET_NB_MODEL": str(tiny_model_dir),
        "FORGET_NB_RETRAINED": str(retrained_model_dir), "FORGET_NB_SUBJECT": trained_subject,
    }, tmp_path, monkeypatch)
    assert "verdicts: fail / pass / inconclusive" in text
    assert not [v for v in _identifiers(corpus) if v in text]


def test_choosing_a_method_notebook_reads_the_comparison(comparison_json, corpus, tmp_path,
                                                        monkeypatch):
    text = _run("03_choosing_a_method.ipynb", {"FORGET_NB_COMPARE": str(comparison_json),
                                               "FORGET_NB_FIGURES": str(tmp_path)}, tmp_path,
                monkeypatch)
    assert "figure saved" in text and (tmp_path / "method_comparison.png").is_file()
    for method in ("retrain", "npo"):
        assert method in text
    assert not [v for v in _identifiers(corpus) if v in text]
