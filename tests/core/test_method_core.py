"""The method interface, the registry of methods, forget/retain sets and span masks."""

from __future__ import annotations

import pytest

import forget.methods  # noqa: F401  (registers every method)
from forget.core import METHODS, get_method, subject_sets
from forget.core.data import code_sets
from forget.core.method import Method, MethodConfig
from forget.core.trainer import span_token_mask
from forget.errors import InvalidInputError, UnknownMethodError, UnknownSubjectError

EXPECTED = {"retrain", "gradient_ascent", "grad_diff", "npo", "simnpo", "code_eraser",
            "lora_forget"}


def test_every_method_is_registered_once():
    assert EXPECTED <= set(METHODS.names())
    for name in METHODS.names():
        cls = METHODS.get(name)
        assert issubclass(cls, Method) and cls.name == name
        assert issubclass(cls.config_class, MethodConfig)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_round_trips(name):
    cls = METHODS.get(name).config_class
    cfg = cls(seed=3)
    again = cls.from_dict(cfg.to_dict())
    assert again == cfg and again.config_hash() == cfg.config_hash()
    assert cls(seed=4).config_hash() != cfg.config_hash()


def test_config_refuses_unknown_fields():
    cls = METHODS.get("npo").config_class
    with pytest.raises(InvalidInputError, match="no field"):
        cls.from_dict({"beta": 0.1, "betta": 1})


@pytest.mark.parametrize("typo,suggested", [("npo2", "npo"), ("gradient-ascent", "gradient_ascent"),
                                            ("code_erase", "code_eraser")])
def test_unknown_method_suggests_names(typo, suggested):
    with pytest.raises(UnknownMethodError) as e:
        get_method(typo)
    assert repr(suggested) in str(e.value) and "Registered:" in str(e.value)


def test_wrong_config_type_is_refused():
    with pytest.raises(InvalidInputError, match="takes a"):
        get_method("npo").check_config(METHODS.get("simnpo").config_class())


def test_subject_sets(corpus):
    sid = corpus.subject_ids("train")[0]
    fset, rset = subject_sets(corpus, sid)
    own = {r["record_id"] for r in corpus.records_of(sid)}
    assert {e.record_id for e in fset.examples} == own
    assert not own & {e.record_id for e in rset.examples}
    assert fset.prompts() and all(p.kind in fset.kinds for p in fset.prompts())
    assert fset.holdout and all(e.record_id.split("-")[0] in corpus.subject_ids("holdout")
                                for e in fset.holdout)


def test_unknown_subject_fails_clearly(corpus):
    with pytest.raises(UnknownSubjectError, match="S9999"):
        subject_sets(corpus, "S9999")


def test_holdout_subject_has_nothing_to_forget(corpus):
    with pytest.raises(InvalidInputError, match="never trained"):
        subject_sets(corpus, corpus.subject_ids("holdout")[0])


def test_code_sets(corpus):
    fset, rset = code_sets(corpus)
    assert fset.examples and all(e.spans for e in fset.examples)
    assert not {e.record_id for e in fset.examples} & {e.record_id for e in rset.examples}
    with pytest.raises(InvalidInputError):
        code_sets(corpus, ["C9999"])


@pytest.mark.parametrize("offsets,spans,mask", [
    ([(0, 3), (3, 6), (6, 9)], [{"start": 3, "end": 6}], [0, 1, 0]),
    ([(0, 3), (3, 6), (6, 9)], [{"start": 4, "end": 7}], [0, 1, 1]),  # partial overlap counts
    ([(0, 3), (3, 6)], [{"start": 3, "end": 3 + 0 + 1}], [0, 1]),
    ([(0, 0), (0, 3)], [{"start": 0, "end": 3}], [0, 1]),  # special token (0, 0) never
    ([(0, 3), (3, 6)], [], [0, 0]),
])
def test_span_token_mask(offsets, spans, mask):
    assert span_token_mask(offsets, spans) == mask


def test_already_forgotten_subjects_leave_the_retain_set(corpus):
    first, second = corpus.subject_ids("train")[:2]
    _, rset = subject_sets(corpus, second, already_forgotten=[first])
    gone = {r["record_id"] for r in corpus.records_of(first) + corpus.records_of(second)}
    assert not gone & {e.record_id for e in rset.examples}


def test_the_retrain_method_asks_for_the_high_side_only():
    """An exact retrain cannot over-unlearn: its audit judges only "still remembers"."""
    from audits import AuditConfig
    from forget.workflow.steps import audit_config_for

    assert audit_config_for("retrain", AuditConfig()).judge_over_unlearning is False
    assert audit_config_for("npo", AuditConfig()).judge_over_unlearning is True
    # ... and has nothing for an attack to recover (robustness and neighbours reported)
    assert audit_config_for("retrain", AuditConfig()).judge_recovery is False
    assert audit_config_for("npo", AuditConfig()).judge_recovery is True
