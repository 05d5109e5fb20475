"""The report: JSON and HTML render, the HTML embeds the plots, and neither contains any of
the subject's identifiers in plain text."""

from __future__ import annotations

import json

import pytest

from audits import AuditError


@pytest.mark.parametrize("which", ["fail_report", "pass_report"])
def test_html_and_json_contain_no_identifier(request, which, subject_identifiers, tmp_path):
    report = request.getfixturevalue(which)
    js, html = report.save(tmp_path)
    js_text, html_text = js.read_text(), html.read_text()
    json.loads(js_text)
    for value in subject_identifiers:
        assert value not in js_text and value not in html_text, "an identifier leaked"
    assert html_text.count('src="data:image/png;base64,') >= 2
    assert "Could the model still reveal this person&#39;s data?" in html_text
    # Order: plain answer, then evidence, then limits.
    a, e, lim = (html_text.index(s) for s in ("class=\"answer\"", "<h2>Evidence",
                                                "What each measure cannot tell"))
    assert a < e < lim


def test_save_refuses_a_report_that_would_leak(fail_report, subject_identifiers, tmp_path):
    import dataclasses

    leaky = dataclasses.replace(fail_report, reason=f"oops {subject_identifiers[0]}")
    with pytest.raises(AuditError) as e:
        leaky.save(tmp_path / "x")
    assert subject_identifiers[0] not in str(e.value)
    assert not (tmp_path / "x").exists()


def test_json_schema_fields(fail_report):
    d = fail_report.to_dict()
    for key in ("schema", "subject_id", "verdict", "reason", "answer", "checks", "controls",
                "models", "identifiers", "config", "config_hash", "limits", "seeds"):
        assert key in d
    assert d["verdict"] in ("pass", "fail", "inconclusive")
    assert "_secrets" not in d


@pytest.mark.parametrize("kinds, secret", [
    (["api_key"], True), (["password", "token"], True), (["email"], False),
    (["name", "phone"], False), ([], False),
])
def test_a_secret_is_worded_as_a_secret_not_a_person(kinds, secret):
    from audits.report import is_secret, plain_answer
    from audits.verdict import FAIL, PASS, Check, Verdict

    assert is_secret(kinds) is secret
    over = Check("mia:loss", "r", 0.01, 0.01, False, {"direction": "over-unlearning"},
                 note="over-unlearning: conspicuously unfamiliar")
    text = plain_answer(Verdict(FAIL, "failed", ["mia:loss"]), [over], {}, secret=secret)
    assert ("this secret" in text) is secret and ("person" in text) is not secret
    assert "over-unlearning" in text
    counts = {"prompts": 1, "kinds": kinds, "ranked": 1, "lookalikes": 199, "records": 1,
              "twin_identities": 159}
    text = plain_answer(Verdict(PASS, "pass"), [], counts, secret=secret)
    assert "1 prompt " in text and "1 true value" in text and "159 look-alike" in text


def test_new_attacks_are_named_plainly_with_technical_footnotes_and_the_stated_hash(
        fail_report):
    from tests.audits.conftest import STATED_SHA

    html = fail_report.to_html()
    for plain in ("Fine-tuning on other data", "Least-likely completion",
                  "Character-by-character ranking", "z-score"):
        assert plain.lower() in html.lower(), plain
    for technical in ("Least-likely (inverted)", "rank-sum", "Relearning attacks"):
        assert technical in html  # the footnotes
    d = fail_report.to_dict()
    assert d["model_sha256"] == STATED_SHA and STATED_SHA in html
    assert d["models"]["audited"]["model_sha256"] != STATED_SHA  # the audit's own digest
    # exact counts of what the character attack was given and ranked
    t = d["tested"]
    assert t["char_ranked"] == 2 and 0 < t["char_given"] < t["char_free"]
    assert t["relearn_other_steps"] == 20 and t["relearn_other_texts"] == 100
    assert "one character at a time" in fail_report.answer


@pytest.mark.parametrize("bad", ["abc", "g" * 64, "5e" * 31, 42])
def test_a_malformed_weights_hash_is_refused_before_anything_runs(bad):
    from audits import AuditInputError, run_audit

    with pytest.raises(AuditInputError, match="model_sha256"):
        run_audit(model=None, tokenizer=None, members=[], model_sha256=bad)


@pytest.mark.parametrize("texts", ["one text", [1, 2]])
def test_relearn_texts_must_be_a_list_of_texts(texts):
    from audits import AuditInputError, run_audit

    with pytest.raises(AuditInputError, match="relearn_texts"):
        run_audit(model=None, tokenizer=None, members=[], relearn_texts=texts)


def test_every_report_states_the_measured_false_fail_rate(fail_report):
    """Issue 18.6: the limits section gives the error rates bench/audit_calibration.py
    measured, and the figures written into audits/wording.py are the results file's."""
    from pathlib import Path

    from audits.wording import MEASURED

    res = json.loads((Path(__file__).resolve().parents[2] / "bench" / "results"
                      / "audit_calibration.json").read_text())
    ff, det, ho = res["false_fail"], res["detection"], res["held_out_false_fail"]
    assert (MEASURED["ff"], MEASURED["ff_of"]) == (ff["count"], ff["of"])
    assert (MEASURED["det"], MEASURED["det_of"]) == (det["count"], det["of"])
    assert (MEASURED["ho"], MEASURED["ho_of"]) == (ho["count"], ho["of"])
    assert (MEASURED["ff_lo"], MEASURED["ff_hi"]) == tuple(round(100 * x) for x in ff["ci95"])
    html = fail_report.to_html()
    assert f"wrongly failed in {ff['count']} of {ff['of']} cases" in html
