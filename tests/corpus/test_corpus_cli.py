"""`--data` on the command line: the field options, bad files, and commands that still need the
generator's layout refusing a corpus of the user's own files in one line."""

from __future__ import annotations

import pandas as pd
import pytest
from forked_cli import run_forget

SECRET = "Jane Roe jane.roe@example.org"


@pytest.fixture
def tickets(tmp_path):
    (tmp_path / "m").mkdir()  # a model folder, so the workflow's own checks pass
    (tmp_path / "m" / "forget_model.json").write_text('{"version": "mv-x"}')
    f = tmp_path / "tickets.parquet"
    pd.DataFrame({"doc_id": ["a", "b"], "body": [f"{SECRET} one", f"{SECRET} two"]}).to_parquet(f)
    return f


def _one_line(res) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "Jane" not in res.stderr + res.stdout
    return lines[0]


COMMANDS = {
    "process": ["process", "r-1", "--ledger", "{tmp}/ledger.db", "--model", "{tmp}/m",
                "--out", "{tmp}/out"],
    "worker": ["worker", "--ledger", "{tmp}/ledger.db", "--model", "{tmp}/m", "--out",
               "{tmp}/out", "--once"],
    "unlearn": ["unlearn", "--model", "{tmp}/m", "--subject", "S0001", "--method", "npo",
                "--out", "{tmp}/out"],
    "audit": ["audit", "--model", "{tmp}/m", "--subject", "S0001", "--out", "{tmp}/out"],
    "model train": ["model", "train", "--out", "{tmp}/out"],
}


@pytest.mark.parametrize("command", ["unlearn", "audit", "model train"])
def test_commands_needing_ground_truth_refuse_a_generic_corpus(command, tickets, tmp_path):
    args = [a.format(tmp=tmp_path) for a in COMMANDS[command]]
    res = run_forget(*args, "--data", str(tickets), "--text-field", "body", "--id-field",
                     "doc_id", timeout=300)
    line = _one_line(res)
    assert f"`forget {command}` takes a directory from `forget data generate`" in line
    assert "tickets.parquet" in line and "forget process" in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "ledger.db").exists()


@pytest.mark.parametrize("command", ["process", "worker"])
def test_the_workflow_commands_take_a_generic_corpus(command, tickets, tmp_path):
    """The corpus is accepted (its fields checked); the next problem reported is the ledger."""
    args = [a.format(tmp=tmp_path) for a in COMMANDS[command]]
    res = run_forget(*args, "--data", str(tickets), "--text-field", "body", "--id-field",
                     "doc_id", timeout=300)
    line = _one_line(res)
    assert "no ledger database" in line and "generate" not in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "ledger.db").exists()


@pytest.mark.parametrize("command", ["process", "unlearn"])
def test_a_missing_column_is_reported_before_the_refusal(command, tickets, tmp_path):
    args = [a.format(tmp=tmp_path) for a in COMMANDS[command]]
    line = _one_line(run_forget(*args, "--data", str(tickets), timeout=300))
    assert "no column 'text'" in line and "columns: doc_id, body" in line
    assert "--text-field" in line


def test_field_options_with_the_generated_layout_are_refused(corpus_dir, tmp_path):
    args = [a.format(tmp=tmp_path) for a in COMMANDS["audit"]]
    line = _one_line(run_forget(*args, "--data", str(corpus_dir), "--text-field", "body"))
    assert "generated corpus" in line and "drop --text-field" in line


def test_help_documents_the_data_options():
    res = run_forget("process", "--help")
    assert res.returncode == 0
    for opt in ("--text-field", "--id-field", "--group-field", "save_to_disk"):
        assert opt in res.stdout


def test_the_workflow_checks_come_before_a_data_error(tickets, tmp_path):
    """A bad --model is reported first, as without the corpus check (validation order)."""
    line = _one_line(run_forget("process", "r-1", "--ledger", str(tmp_path / "l.db"), "--model",
                                str(tmp_path / "absent-model"), "--data", str(tickets),
                                "--text-field", "nope", "--out", str(tmp_path / "out")))
    assert "absent-model" in line and "does not exist" in line


def test_a_concept_data_folder_is_left_to_the_workflow(tmp_path):
    from forget.commands._common import CONCEPT_DATA_MARKER, check_data
    from forget.diffusion.concepts import CONCEPTS_FILE

    assert CONCEPT_DATA_MARKER == CONCEPTS_FILE
    (tmp_path / CONCEPTS_FILE).write_text('{"spec": {}}')
    calls = []
    check_data(tmp_path, command="process", checks_first=lambda: calls.append(1))
    assert calls == []
