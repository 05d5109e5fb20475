"""The per-person attack inside ``run_audit`` (audits/strong.py): it runs on the shadows it is
given and enters the verdict; over its budget it trains nothing and the report says why."""

from __future__ import annotations

import pytest

from tests.audits.conftest import one_thread

# MIA (one attack) and exposure only: the rest of the audit is tested elsewhere.
FAST = dict(samples=1, bootstrap=100, relearn_steps=0, quantize=False, paraphrase=False,
            relearn_other_steps=0, mia_verdict_attacks=("loss",), char_rank_alpha=0.0,
            require_original_control=False)


def _small(audit_inputs) -> dict:
    """Two of the subject's records, no other texts: the cheapest audit that still runs."""
    return {"members": audit_inputs["members"][:2], "subject_id": audit_inputs["subject_id"]}


class OverBudget:
    """A provider whose training would take far too long; it must never be asked to train."""

    def estimate_seconds(self, k: int) -> float:
        return 1e6 * k

    def __call__(self, k: int):
        raise AssertionError("the audit trained shadows over its budget")


def _jittered(pair, seed: int):
    """A copy of ``pair``'s model with tiny weight noise: a stand-in for another seed."""
    import copy

    import torch

    m = copy.deepcopy(pair[0])
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 1e-3)
    return m.eval(), pair[1]


def test_over_budget_the_report_says_the_attack_was_not_run(tiny_pair, audit_inputs):
    from audits import AuditConfig, run_audit

    cfg = AuditConfig(**FAST, strong=True, strong_shadows=3, strong_budget_s=60)
    with one_thread():
        rep = run_audit(model=tiny_pair[0], tokenizer=tiny_pair[1], config=cfg,
                        shadows=OverBudget(), **_small(audit_inputs))
    assert rep.strong["ran"] is False and rep.strong["estimated_s"] == 3e6
    assert rep.strong["reason"].startswith("over budget")
    assert "per_person" not in {c.name for c in rep.checks}
    html = rep.to_html()
    assert "Per-person attack not run: over budget" in html and "strong_budget_s" in html
    assert rep.to_dict()["strong"]["budget_s"] == 60


def test_given_shadows_the_attack_runs_and_fails_the_original(tiny_pair, retrained_pair,
                                                              audit_inputs):
    from audits import AuditConfig, run_audit
    from audits.strong import ShadowSet

    shadows = ShadowSet([tiny_pair, _jittered(tiny_pair, 1)],
                        [retrained_pair, _jittered(retrained_pair, 2)], [0, 1, 0, 1], "test")
    with one_thread():
        rep = run_audit(model=tiny_pair[0], tokenizer=tiny_pair[1], original=tiny_pair,
                        config=AuditConfig(**FAST, strong=True), shadows=shadows,
                        **_small(audit_inputs))
    check = next(c for c in rep.checks if c.name == "per_person")
    assert check.passed is False and rep.verdict == "fail"
    assert "per_person" in rep.reason and "trained with and without" in rep.answer
    assert rep.strong["ran"] and rep.strong["audited"]["decision"] == "in"
    assert rep.strong["original"]["decision"] == "in"
    html = rep.to_html()
    assert "Comparison with models trained with and without the subject" in html
    assert "not measurable" in html  # 2 shadows per side: no calibration, said so


@pytest.mark.parametrize("data, message", [
    ({"strong_shadows": 1}, "strong_shadows"), ({"strong_budget_s": -1}, "strong_budget_s"),
    ({"strong_alpha": 0}, "strong_alpha"), ({"strong_min_power": 1.5}, "strong_min_power"),
])
def test_bad_strong_settings(data, message):
    from audits import AuditConfig, AuditConfigError

    with pytest.raises(AuditConfigError, match=message):
        AuditConfig.from_dict(data)


def _check_for(audited_shift: float, original_shift: float | None):
    """The per_person check of synthetic scores: records shifted from the OUT shadows' mean
    (IN shadows sit 8 above it)."""
    import numpy as np

    from audits import ulira as U
    from audits.strong import StrongResult, per_person_check

    rng = np.random.default_rng(5)
    base = rng.normal(0, 3, 8)
    a, b = base + 8 + rng.normal(0, 1, (4, 8)), base + rng.normal(0, 1, (4, 8))
    fit = U.fit_gaussians(a, b)

    def test(shift):
        return U.person_test(base + shift + rng.normal(0, 0.5, 8), fit, alpha=0.01)
    return per_person_check(StrongResult(
        True, shadows_in=4, shadows_out=4, audited=test(audited_shift),
        original=None if original_shift is None else test(original_shift)))


def test_per_person_is_two_sided_and_its_power_is_measured_on_the_original():
    gone = _check_for(0.0, 8.0)  # looks OUT, and the test finds the person in the original
    assert gone.passed is True and not gone.inconclusive
    assert gone.evidence["original_decision"] == "in"
    pushed = _check_for(-12.0, 8.0)  # far below every OUT model: a conspicuous absence
    assert pushed.passed is False and pushed.note.startswith("over-unlearning")
    assert pushed.evidence["direction"] == "over-unlearning" and pushed.evidence["flagged_low"]
    blind = _check_for(0.0, 0.0)  # the original looks OUT too: the attack proved nothing
    assert blind.passed is None and blind.inconclusive and "original" in blind.note
    kept = _check_for(8.0, 8.0)
    assert kept.passed is False and "only models trained on them" in kept.note
