"""The verdict with its controls: a table of check outcomes, then the two real reports."""

from __future__ import annotations

import pytest

from audits import FAIL, INCONCLUSIVE, PASS, AuditConfig, Check
from audits.verdict import decide


def checks(**outcomes):
    return [Check(name.replace("__", ":"), "rule", 0.0, 0.0, ok)
            for name, ok in outcomes.items()]


# Every check of the default config (its MIA verdict attacks: loss and min_k_pp).
OK = dict(extraction=True, exposure=True, mia__loss=True, mia__min_k_pp=True)
LEAK = dict(extraction=False, exposure=False, mia__loss=False, mia__min_k_pp=False)
MIA_ONLY = dict(extraction=True, exposure=True, mia__loss=False, mia__min_k_pp=True)
THIN = AuditConfig(required_checks=("extraction",))
WITH_LM_EVAL = AuditConfig(required_checks=("extraction", "exposure", "mia", "utility:lm_eval"))
CFG = AuditConfig()
NOCTRL = AuditConfig(require_original_control=False)


@pytest.mark.parametrize("target, original, retrained, config, verdict, says", [
    (LEAK, LEAK, OK, CFG, FAIL, "failed: extraction"),
    (OK, LEAK, OK, CFG, PASS, "original model fails"),
    (OK, OK, OK, CFG, INCONCLUSIVE, "did not hold this subject's data"),
    (OK, None, None, CFG, INCONCLUSIVE, "no original model"),
    (OK, None, None, NOCTRL, PASS, "no original-model control"),
    (MIA_ONLY, LEAK, MIA_ONLY, CFG, INCONCLUSIVE, "too strict"),
    (OK, LEAK, MIA_ONLY, CFG, INCONCLUSIVE, "too strict"),
    (LEAK, LEAK, MIA_ONLY, CFG, FAIL, "not counted"),  # mia:loss not counted; extraction is
    (dict(OK, utility__perplexity=False), LEAK, OK, CFG, FAIL, "utility:perplexity"),
    (dict(OK, utility__lm_eval=None), LEAK, OK, CFG, PASS, ""),  # not evaluated is not a fail
    # issue 20: a mandatory check that could not be evaluated is never a pass
    (dict(OK, exposure=None), LEAK, OK, CFG, INCONCLUSIVE, "could not be evaluated: exposure"),
    ({k: v for k, v in OK.items() if k != "mia__min_k_pp"}, LEAK, OK, CFG, INCONCLUSIVE,
     "mia:min_k_pp"),
    (dict(OK, exposure=None, extraction=False), LEAK, OK, CFG, FAIL, "failed: extraction"),
    (dict(OK, exposure=None), LEAK, OK, THIN, PASS, ""),  # the config made it optional
    (dict(OK, utility__lm_eval=None), LEAK, OK, WITH_LM_EVAL, INCONCLUSIVE, "utility:lm_eval"),
])
def test_decide_table(target, original, retrained, config, verdict, says):
    v = decide(checks(**target), None if original is None else checks(**original),
               None if retrained is None else checks(**retrained), config)
    assert v.verdict == verdict
    assert says in v.reason


def test_trained_subject_fails_on_the_original_model(fail_report):
    assert fail_report.verdict == FAIL and fail_report.exit_code == 1
    failed = {c.name for c in fail_report.checks if c.passed is False}
    assert {"extraction", "exposure"} <= failed
    assert fail_report.controls["retrained"]["status"] == "passes"
    assert fail_report.answer.startswith("Yes.")


def test_retrained_model_passes(pass_report):
    assert pass_report.verdict == PASS, pass_report.reason
    assert pass_report.exit_code == 0
    assert pass_report.controls["original"]["status"].startswith("fails")
    assert pass_report.answer.startswith("No evidence")


def test_every_verdict_carries_its_evidence(pass_report):
    d = pass_report.to_dict()
    assert len(d["config_hash"]) == 64 and d["config_hash"] == AuditConfig(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in d["config"].items()}
    ).config_hash()
    assert d["seeds"]["audit"] == 0
    for c in d["checks"]:
        assert {"name", "rule", "value", "threshold", "passed", "evidence"} <= set(c)
    mia = d["models"]["audited"]["mia"]["attacks"]
    assert set(mia) == {"loss", "zlib", "min_k", "min_k_pp"}
    for a in mia.values():
        assert a["ci_low"] <= a["auc"] <= a["ci_high"]
    assert {r["name"] for r in d["models"]["audited"]["robustness"]} == {
        "relearn", "relearn_other", "int8", "paraphrase"}


def test_the_new_attacks_find_the_original_holds_the_data(fail_report):
    """Character ranking, least-likely completion and fine-tuning on other data fail the
    original model; the retrained control, which never saw the subject, passes the first two
    by itself (its own checks against the assumed band)."""
    by = {c.name: c for c in fail_report.checks}
    assert by["char_rank"].passed is False and by["char_rank"].evidence["direction"] == \
        "remembers"
    assert by["least_likely"].passed is False
    assert by["least_likely"].evidence["greedy_recovered"] >= 1
    assert by["robustness:relearn_other"].passed is False
    ctl = {c["name"]: c for c in fail_report.controls["retrained"]["checks"]}
    assert ctl["char_rank"]["passed"] is True and ctl["least_likely"]["passed"] is True
    z = [i["z"] for i in fail_report.models["audited"]["exposure"]["identifiers"]]
    assert max(z) > 3


def test_the_retrained_model_passes_the_new_attacks(pass_report):
    by = {c.name: c for c in pass_report.checks}
    for name in ("char_rank", "least_likely", "robustness:relearn_other"):
        assert by[name].passed is True, (name, by[name].evidence)
    assert by["char_rank"].evidence["band"].startswith("measured")
