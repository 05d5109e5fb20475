"""Relearning on other data (issue 18): fine-tuning on a sample of the model's other training
data brings back an identifier that unlearning only suppressed, and the same attack on the
retrained control decides whether that counts: data that teaches the control too does not
fail the audited model."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from audits import AuditConfig
from audits.calibration import robustness_checks
from audits.records import as_records
from audits.robustness import own_copy, relearn, run_robustness
from audits.run import _extraction_exposure, _prompts
from tests.audits.conftest import one_thread

CFG = AuditConfig(samples=2, relearn_steps=0, quantize=False, paraphrase=False)
KINDS = ("phone", "national_id")


def relearn_other(pair, members, texts):
    """The relearn_other case only, with the audit's own extraction and exposure."""
    recs = as_records(members)
    ext, exp = _prompts(recs, CFG.extraction_kinds), _prompts(recs, KINDS)
    with one_thread():
        return run_robustness(
            pair[0], pair[1], ext + [p for p in exp if p not in ext], recs, [],
            lambda m, t, ps: _extraction_exposure(
                m, t, ([p for p in ps if p.kind in CFG.extraction_kinds],
                       [p for p in ps if p.kind in KINDS]), CFG, 199, sides=1),
            relearn_steps=0, quantize=False, paraphrase=False, seed=CFG.seed,
            other_texts=texts, relearn_other_steps=CFG.relearn_other_steps,
            relearn_other_lr=CFG.relearn_other_lr)


def judged(cases, control_cases=None):
    (check,) = robustness_checks(SimpleNamespace(robustness=cases), CFG,
                                 None if control_cases is None
                                 else SimpleNamespace(robustness=control_cases))
    assert check.name == "robustness:relearn_other"
    return check


@pytest.fixture(scope="module")
def leaky_texts(audit_inputs):
    """Other data in which the subject's identifiers appear too (a copy of their records left
    elsewhere in the corpus): fine-tuning on it teaches any model the values."""
    leaked = [r["text"] for r in audit_inputs["members"]
              if any(s["kind"] in KINDS for s in r["spans"])]
    return audit_inputs["retain"][:60] + leaked * 3


def test_relearning_that_teaches_the_control_too_does_not_fail(
        retrained_pair, audit_inputs, leaky_texts):
    # A model that never saw the subject, other than the control: the control after 3 steps
    # of fine-tuning on the retain sample.
    with one_thread():
        other = relearn(*retrained_pair, audit_inputs["retain"], steps=3, seed=1)
    audited = relearn_other((other, retrained_pair[1]), audit_inputs["members"], leaky_texts)
    control = relearn_other(retrained_pair, audit_inputs["members"], leaky_texts)
    assert [c.name for c in audited] == ["relearn_other"]
    assert audited[0].detail["steps"] == 50 and audited[0].detail["lr"] == 1e-3
    # the attack does teach the values, to the control as well ...
    taught = control[0].exposure.exposed + control[0].extraction.hits
    assert taught >= 1, control[0].exposure
    assert judged(audited).passed is False  # ... so against the assumed band it would fail,
    check = judged(audited, control)  # but not against the same attack on the control
    assert check.passed is True, check.evidence
    assert check.evidence["control"].startswith("same transformation")


def test_a_suppressed_identifier_comes_back_after_fine_tuning_on_other_data(
        tiny_pair, retrained_pair, audit_inputs):
    """Issue 18's finding at tiny scale: light gradient ascent hides the national id (chance
    rank among its look-alikes); 50 steps on *other people's* records bring it back to the
    top, while the same steps leave the retrained control at chance. Measured: rank 158 of
    200 after the ascent, 1 of 200 (z 4.9) after relearning; the control 108 -> 87."""
    import torch

    from audits.extraction import prompt_ids

    model, tok = tiny_pair
    prompts = _prompts(as_records(audit_inputs["members"]), KINDS)
    pairs = [prompt_ids(tok, p) for p in prompts]
    m = own_copy(model)
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    with one_thread(), torch.enable_grad():
        for _ in range(20):
            for pre, tgt in pairs:
                ids = torch.tensor([pre + tgt])
                labels = ids.clone()
                labels[0, : len(pre)] = -100
                (-m(input_ids=ids, labels=labels).loss).backward()
            opt.step()
            opt.zero_grad()
    m.eval()
    with one_thread():
        before = _extraction_exposure(m, tok, ([], prompts), CFG, 199, sides=1)[1]
    hidden = next(i for i in before.identifiers if i.kind == "national_id")
    assert hidden.p_value > before.threshold  # suppressed: no longer singled out
    retain = audit_inputs["retain"]
    after = relearn_other((m, tok), audit_inputs["members"], retain)
    control = relearn_other(retrained_pair, audit_inputs["members"], retain)
    back = next(i for i in after[0].exposure.identifiers if i.kind == "national_id")
    assert back.rank < hidden.rank and back.p_value <= after[0].exposure.threshold, back
    ctl = next(i for i in control[0].exposure.identifiers if i.kind == "national_id")
    assert ctl.p_value > control[0].exposure.threshold
    check = judged(after, control)
    assert check.passed is False and check.evidence["exposed"] >= 1
