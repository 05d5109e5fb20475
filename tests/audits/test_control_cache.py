"""``run_audit(cache=...)``: a control model's measures are computed once and reused."""

from __future__ import annotations

import contextlib

import pytest


@contextlib.contextmanager
def one_thread_ctx():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.fixture
def roles(monkeypatch) -> list[str]:
    """The role of each model ``run_audit`` measures, in order (a spy on ``audit_model``)."""
    import audits.run as R

    seen: list[str] = []
    real = R.audit_model

    def spy(role, *args, **kwargs):
        seen.append(role)
        return real(role, *args, **kwargs)

    monkeypatch.setattr(R, "audit_model", spy)
    return seen


def test_controls_are_audited_once_per_cache(tiny_pair, retrained_pair, audit_inputs, roles):
    from audits import AuditConfig, run_audit

    cfg = AuditConfig(samples=0, bootstrap=50, relearn_steps=1, quantize=False, paraphrase=False)
    cache: dict = {}
    with one_thread_ctx():
        first = run_audit(model=retrained_pair[0], tokenizer=retrained_pair[1],
                          original=tiny_pair, config=cfg, cache=cache, **audit_inputs)
        second = run_audit(model=retrained_pair[0], tokenizer=retrained_pair[1],
                           original=tiny_pair, config=cfg, cache=cache, **audit_inputs)
        assert roles == ["audited", "original", "audited"]
        assert first.models["original"] == second.models["original"]
        assert first.verdict == second.verdict
        # Another config changes the measures: the cached control must not be reused.
        run_audit(model=retrained_pair[0], tokenizer=retrained_pair[1], original=tiny_pair,
                  config=AuditConfig(samples=0, bootstrap=50, relearn_steps=1, quantize=False,
                                     paraphrase=False, seed=1), cache=cache, **audit_inputs)
    assert roles[3:] == ["audited", "original"]
    # A verdict-only setting (how an exact retrain is judged) measures nothing new: reused.
    import dataclasses

    with one_thread_ctx():
        run_audit(model=retrained_pair[0], tokenizer=retrained_pair[1], original=tiny_pair,
                  config=dataclasses.replace(cfg, judge_over_unlearning=False), cache=cache,
                  **audit_inputs)
    assert roles[5:] == ["audited"]
    # A retrained control widens what exposure ranks (kinds whose fakes need calibrating): the
    # original measured without one must be measured again, not reused with fewer identifiers.
    with one_thread_ctx():
        calibrated = run_audit(model=retrained_pair[0], tokenizer=retrained_pair[1],
                               original=tiny_pair, retrained=retrained_pair, config=cfg,
                               cache=cache, **audit_inputs)
    assert roles[6:] == ["audited", "original"]
    kinds = {e["kind"] for e in calibrated.models["original"]["exposure"]["identifiers"]}
    assert kinds > set(cfg.exposure_kinds)


def test_a_control_equal_to_the_audited_model_is_taken_from_it(tiny_pair, retrained_pair,
                                                               audit_inputs, roles):
    """An exact retrain audited against the same recipe's retrain: the control has the audited
    model's weights bit for bit, so its measures are the audited model's (measured once), and
    they are what measuring the control gives."""
    import copy

    from audits import AuditConfig, run_audit

    cfg = AuditConfig(samples=0, bootstrap=50, relearn_steps=1, quantize=False, paraphrase=False)
    twin = copy.deepcopy(retrained_pair[0])
    with one_thread_ctx():
        measured = run_audit(model=tiny_pair[0], tokenizer=tiny_pair[1], retrained=retrained_pair,
                             config=cfg, **audit_inputs)
        taken = run_audit(model=twin, tokenizer=retrained_pair[1], retrained=retrained_pair,
                          config=cfg, **audit_inputs)
    assert roles == ["audited", "retrained", "audited"]

    def without_time(d: dict) -> dict:
        return {k: v for k, v in d.items() if k != "seconds"}

    assert without_time(taken.models["retrained"]) == without_time(measured.models["retrained"])
    assert taken.models["retrained"]["role"] == "retrained"
