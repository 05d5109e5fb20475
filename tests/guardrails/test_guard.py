"""The guard: tables per entity and obfuscation kind, explanations, policy, false positives."""

from __future__ import annotations

import pytest

from guardrails import FORGOTTEN, Action, Guard, Policy, PolicyError
from guardrails.guard import merge_spans
from guardrails.obfuscate import OBFUSCATIONS


@pytest.mark.parametrize("kind", sorted(OBFUSCATIONS))
def test_forgotten_identifiers_are_redacted_under_every_obfuscation(guard, people, kind) -> None:
    for person in people[:4]:
        value = getattr(person, kind)
        for obfuscate in OBFUSCATIONS[kind]:
            shown = obfuscate(value)
            out = guard.redact(f"Sure! It is {shown}. Anything else?")
            assert "<FORGOTTEN_SUBJECT>" in out, (kind, obfuscate.__name__)
            rest = out.replace("<FORGOTTEN_SUBJECT>", " ")
            assert not any(w in rest for w in person.name.split()), obfuscate.__name__


@pytest.mark.parametrize("entity, text", [
    ("EMAIL_ADDRESS", "reach me at ann.lee@example.org"),
    ("EMAIL_ADDRESS", "reach me at a n n . l e e @ e x a m p l e . o r g"),
    ("EMAIL_ADDRESS", "reach me: ann.lee (at) example [dot] org"),
    ("EMAIL_ADDRESS", "reach me: ann dot lee at example dot org"),
    ("EMAIL_ADDRESS", "reach me: ANN.LEE@EXAMPLE.ORG"),
    ("EMAIL_ADDRESS", "reach me: аnn.lее@ехаmple.org"),  # Cyrillic look-alikes
    ("EMAIL_ADDRESS", "reach me: ａｎｎ＠ｅｘａｍｐｌｅ．ｏｒｇ"),  # fullwidth
    ("PHONE_NUMBER", "call (415) 555-2671 tonight"),
    ("CREDIT_CARD", "card 4111-1111-1111-1111"),
    ("US_SSN", "ssn 536-22-8726"),
])
def test_generic_pii_positive(entity: str, text: str) -> None:
    g = Guard()
    findings = [f for f in g.analyze(text) if f.action is Action.REDACT]
    assert entity in {f.entity for f in findings}
    assert "ann" not in g.redact(text).lower().replace("anything", "")


@pytest.mark.parametrize("text", [
    "The meeting is at noon in the main hall.",
    "Look at example.com for the docs.",  # a bare "at" before a domain is not an email
    "We met at the cafe and talked about dot products.",
    "Version 3.2 was released on 2021-04-01.",
    "It costs 12.50 dollars at most.",
    "The team of 25 people at the office voted.",
])
def test_generic_pii_negative(text: str) -> None:
    assert Guard().redact(text) == text


def test_explanations_name_recognizer_score_and_normalisation(guard, people) -> None:
    person = people[0]
    text = f"Contact {person.name.upper()} or {person.email.replace('@', ' (at) ')}"
    findings = guard.analyze(text)
    index_hits = [f for f in findings if f.entity == FORGOTTEN]
    assert index_hits
    for f in index_hits:
        assert f.explanation.recognizer == "ForgottenIndex" and f.score == 1.0
        assert f.explanation.normalisation
        assert person.name.lower() not in f.explanation.detail.lower()
    assert {"casefold", "spacing"} <= set(index_hits[0].explanation.normalisation)
    assert "at_dot" in index_hits[-1].explanation.normalisation


def test_policy_block_redact_allow(index, people) -> None:
    text = f"{people[1].name} paid with 4111 1111 1111 1111 on 2020-01-01."
    strict = Guard(index, policy=Policy.strict())
    result = strict.check(text)
    assert result.blocked and result.text == strict.policy.block_message
    allow = Guard(index, policy=Policy(actions={FORGOTTEN: Action.ALLOW}))
    out = allow.redact(text)
    assert people[1].name in out and "4111" not in out
    custom = Guard(index, policy=Policy(placeholder="[{entity}]", default=Action.ALLOW,
                                        actions={FORGOTTEN: "redact"}))
    assert custom.redact(text).startswith("[FORGOTTEN_SUBJECT] paid with 4111")


def test_policy_validation() -> None:
    with pytest.raises(PolicyError):
        Policy(actions={"PHONE_NUMBER": "shred"})
    with pytest.raises(PolicyError):
        Policy(min_score=2.0)


def test_merge_keeps_forgotten_subject_over_other_kinds(guard, people) -> None:
    text = f"mail {people[2].email}"
    merged = merge_spans([f for f in guard.analyze(text) if f.action is Action.REDACT])
    assert len(merged) == 1 and merged[0].entity == FORGOTTEN


# Stated bound: fewer than 1% of texts about people who are not in the index may trigger a
# forgotten-subject match (a shared full name or "F. Last" would be a true ambiguity).
FP_BOUND = 0.01


def test_false_positive_rate_on_other_people(index_guard, others) -> None:
    texts = [f"{p.name} ({p.email}, {p.phone}, id {p.id}) asked {q.name.split()[0]} about it."
             for p, q in zip(others, others[1:] + others[:1], strict=True)]
    hits = sum(any(f.entity == FORGOTTEN for f in index_guard.analyze(t)) for t in texts)
    assert hits / len(texts) < FP_BOUND


def test_no_forgotten_match_without_index() -> None:
    assert all(f.entity != FORGOTTEN for f in Guard(use_presidio=False).analyze("John Smith"))


def test_builtin_and_presidio_redaction_agree(index, people) -> None:
    text = f"{people[4].name} wrote from {people[4].email.upper()}; call {people[4].phone}."
    with_presidio = Guard(index)
    findings = [f for f in with_presidio.analyze(text) if f.action is Action.REDACT]
    builtin = Guard(index, use_presidio=False)
    assert builtin._redact(text, findings) == with_presidio._redact(text, findings)
