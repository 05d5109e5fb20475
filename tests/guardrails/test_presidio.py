"""Presidio runs offline: no spaCy model, no network (tldextract included)."""

from __future__ import annotations

import socket

import pytest

from guardrails.presidio import build_analyzer, build_anonymizer, offline_tldextract


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_analyzer_is_offline_and_pattern_based(no_network: None) -> None:
    build_analyzer.cache_clear()
    analyzer = build_analyzer()
    names = {r.name for r in analyzer.registry.recognizers}
    assert "EmailRecognizer" in names and "PhoneRecognizer" in names
    assert not any("Spacy" in n for n in names)  # no NER model is needed
    results = analyzer.analyze("mail jane@example.co.uk", language="en")
    assert [r.entity_type for r in results if r.score >= 0.5][0] == "EMAIL_ADDRESS"


def test_offline_tldextract_is_idempotent() -> None:
    import tldextract

    offline_tldextract()
    first = tldextract.tldextract.TLD_EXTRACTOR
    offline_tldextract()
    assert tldextract.tldextract.TLD_EXTRACTOR is first
    assert first.suffix_list_urls == ()


@pytest.mark.parametrize("entity, text, value", [
    ("EMAIL_ADDRESS", "write to ann.lee@example.org now", "ann.lee@example.org"),
    ("CREDIT_CARD", "card 4111 1111 1111 1111 expires", "4111 1111 1111 1111"),
    ("IBAN_CODE", "iban GB82 WEST 1234 5698 7654 32 ok", "GB82 WEST 1234 5698 7654 32"),
    ("IP_ADDRESS", "from 192.168.12.7 today", "192.168.12.7"),
    ("US_SSN", "ssn 536-22-8726 on file", "536-22-8726"),
])
def test_pattern_recognizers_find(entity: str, text: str, value: str) -> None:
    found = {(r.entity_type, text[r.start:r.end]) for r in build_analyzer().analyze(text, "en")}
    assert (entity, value) in found


def test_anonymizer_is_available() -> None:
    from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

    out = build_anonymizer().anonymize(
        "hi Bob", [RecognizerResult("PERSON", 3, 6, 1.0)],
        {"PERSON": OperatorConfig("replace", {"new_value": "<P>"})})
    assert out.text == "hi <P>"
