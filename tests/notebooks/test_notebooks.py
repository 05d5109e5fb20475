"""The legal reviewers' notebooks run top to bottom (nbclient) on the tiny model."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_walkthrough_notebook_runs_and_shows_no_identifier(corpus_dir, tiny_model_dir, corpus,
                                                           tmp_path):
    nb = nbformat.read(NOTEBOOKS / "01_deletion_request_walkthrough.ipynb", as_version=4)
    os.environ["FORGET_NB_DATA"] = str(corpus_dir)
    os.environ["FORGET_NB_MODEL"] = str(tiny_model_dir)
    try:
        NotebookClient(nb, timeout=900, startup_timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        del os.environ["FORGET_NB_DATA"], os.environ["FORGET_NB_MODEL"]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "result: completed" in text and "certificate verifies" in text
    assert "identifiers unreadable" in text
    ident = corpus.subject(corpus.subject_ids("train")[0])["identifiers"]
    assert not [k for k in ("name", "email", "phone") if ident[k] in text]
