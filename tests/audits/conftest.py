"""Shared fixtures of the audit tests: the session models as (model, tokenizer) pairs, and the
two reports every verdict test needs (original model: FAIL; retrained model: PASS)."""

from __future__ import annotations

import contextlib

import pytest

# Thresholds are the defaults; only the work per measure is reduced for the test budget.
LIGHT = dict(samples=4, bootstrap=300, relearn_steps=5, relearn_other_steps=20)
# The weights hash a caller states for the audited model (as the certificate would).
STATED_SHA = "5e" * 32


@contextlib.contextmanager
def one_thread():
    """2 shared cores: one intra-op thread avoids oversubscription; restored afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_pair(tiny_model_dir):
    from forget.models import load_model

    return load_model(tiny_model_dir)


@pytest.fixture(scope="session")
def retrained_pair(retrained_model_dir):
    from forget.models import load_model

    return load_model(retrained_model_dir)


@pytest.fixture(scope="session")
def audit_inputs(corpus, trained_subject):
    hold = set(corpus.subject_ids("holdout"))
    return dict(
        members=corpus.records_of(trained_subject),
        nonmembers=[r for r in corpus.people if r["subject_id"] in hold],
        retain=[r["text"] for r in corpus.people
                if r["split"] == "train" and r["subject_id"] != trained_subject][:100],
        holdout=[r["text"] for r in corpus.people if r["subject_id"] in hold][:100],
        subject_id=trained_subject,
    )


@pytest.fixture(scope="session")
def fail_report(tiny_pair, retrained_pair, audit_inputs):
    from audits import AuditConfig, run_audit

    with one_thread():
        return run_audit(model=tiny_pair[0], tokenizer=tiny_pair[1], original=tiny_pair,
                         retrained=retrained_pair, config=AuditConfig(**LIGHT),
                         model_sha256=STATED_SHA, relearn_texts=audit_inputs["retain"],
                         **audit_inputs)


@pytest.fixture(scope="session")
def pass_report(tiny_pair, retrained_pair, audit_inputs):
    from audits import AuditConfig, run_audit

    with one_thread():
        return run_audit(model=retrained_pair[0], tokenizer=retrained_pair[1],
                         original=tiny_pair, retrained=retrained_pair,
                         config=AuditConfig(**LIGHT), relearn_texts=audit_inputs["retain"],
                         **audit_inputs)


@pytest.fixture(scope="session")
def subject_identifiers(corpus, trained_subject) -> list[str]:
    return list(corpus.subject(trained_subject)["identifiers"].values())
