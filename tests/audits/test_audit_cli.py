"""`forget audit`: exit codes 0 pass / 1 fail / 3 inconclusive / 2 bad input, and its files."""

from __future__ import annotations

import json

import pytest

from forget.cli import main

# Robustness and lm-eval are covered by the API tests; the CLI tests check the wiring.
CLI_CONFIG = {"samples": 2, "bootstrap": 200, "relearn_steps": 0, "quantize": False,
              "paraphrase": False, "relearn_other_steps": 0,
              "strong_budget_s": 1}  # --strong: the tiny model's 2 x 3 shadows cost more


@pytest.fixture(scope="module")
def cfg_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("cfg") / "audit.json"
    p.write_text(json.dumps(CLI_CONFIG))
    return p


def run(argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code


def test_unknown_subject_is_one_line_and_exit_2(corpus_dir, tiny_model_dir, tmp_path, capsys):
    code = run(["audit", "--model", str(tiny_model_dir), "--data", str(corpus_dir),
                "--subject", "S9999", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "S9999" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2  # one line, maybe soft-wrapped


def test_bad_config_is_exit_2(corpus_dir, tiny_model_dir, trained_subject, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"mia_auc_uper_max": 0.5}')
    code = run(["audit", "--model", str(tiny_model_dir), "--data", str(corpus_dir),
                "--subject", trained_subject, "--out", str(tmp_path), "--config", str(bad)])
    assert code == 2 and "unknown audit config key" in capsys.readouterr().err


@pytest.mark.parametrize("model, original, expected", [
    ("tiny", "tiny", 1),          # the original model itself: FAIL
    ("retrained", None, 3),       # passes, but no control shows the audit had power
    ("retrained", "tiny", 0),     # passes, and the original fails: PASS
])
def test_exit_codes(model, original, expected, corpus_dir, tiny_model_dir, retrained_model_dir,
                    trained_subject, subject_identifiers, cfg_file, tmp_path):
    from tests.audits.conftest import one_thread

    dirs = {"tiny": tiny_model_dir, "retrained": retrained_model_dir}
    argv = ["audit", "--model", str(dirs[model]), "--data", str(corpus_dir), "--subject",
            trained_subject, "--out", str(tmp_path / "out"), "--config", str(cfg_file),
            "--no-lm-eval"]
    if original:
        argv += ["--original", str(dirs[original])]
    strong = model == original == "tiny"
    if strong:  # the per-person attack is asked for, but over its budget: the report says so
        argv += ["--strong", "--shadows", "3"]
    with one_thread():
        assert run(argv) == expected
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    if strong:
        assert report["config"]["strong"] and report["config"]["strong_shadows"] == 3
        assert report["strong"]["reason"].startswith("over budget")
        assert report["strong"]["estimated_s"] > 1
    assert report["verdict"] == {0: "pass", 1: "fail", 3: "inconclusive"}[expected]
    html = (tmp_path / "out" / "report.html").read_text()
    assert not any(v in html for v in subject_identifiers)
