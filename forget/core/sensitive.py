"""Find sensitive spans in code: detect-secrets plugins plus Presidio pattern recognizers.

detect-secrets supplies the secret detectors (keyword assignments, cloud/API key formats,
high-entropy strings) and, through its ``RegexBasedDetector`` base, the one extra plugin we
add: an assignment detector built with its own ``build_assignment_regex`` for key/token/
password variables in files whose extension detect-secrets does not know (``.env``, JSON).
Presidio's pattern recognizers add PII that is not a secret in detect-secrets' sense (e-mail
and IP addresses, card numbers, IBANs). Both run fully offline. Results are character spans
``{kind, start, end}``; the values are never logged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from detect_secrets.plugins.base import RegexBasedDetector

PRESIDIO_ENTITIES = ("EMAIL_ADDRESS", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE")


class AssignedSecretDetector(RegexBasedDetector):
    """``<...>(key|token|secret|password)<sep><value>`` with an 8+ character value."""

    secret_type = "Assigned secret"
    denylist = (
        RegexBasedDetector.build_assignment_regex(
            prefix_regex=r"[A-Za-z0-9_]*",
            secret_keyword_regex=r"(?:api_?key|secret(?:_?key)?|token|passw(?:or)?d|pwd)",
            # a value, not code: ``os.environ["..."]`` or ``get(...)`` are references
            secret_regex=r"((?![\w.]*[\[(])[^\s\"'$<>{}\[\]()]{8,})",
        ),
    )


@lru_cache(maxsize=1)
def _plugins() -> tuple[Any, ...]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    return (*(cls() for cls in get_mapping_from_secret_type_to_class().values()),
            AssignedSecretDetector())


@lru_cache(maxsize=1)
def _recognizers() -> tuple[Any, ...]:
    import tldextract
    import tldextract.tldextract as tt
    from presidio_analyzer import PatternRecognizer
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
    )

    tt.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())  # never fetch the TLD list
    # Presidio's e-mail pattern without its TLD validation, which rejects reserved TLDs
    # (.test, .example) that real configuration files do use.
    email = PatternRecognizer(supported_entity="EMAIL_ADDRESS", patterns=EmailRecognizer.PATTERNS,
                              name="EmailPattern")
    return (email, IpRecognizer(), CreditCardRecognizer(), IbanRecognizer())


def secret_spans(text: str, path: str | None = None) -> list[dict]:
    """Spans found by the detect-secrets plugins, line by line (``path`` picks the syntax)."""
    from detect_secrets.util.code_snippet import get_code_snippet

    filename = path or "snippet.txt"
    lines = text.splitlines(keepends=True)
    bare = [ln.rstrip("\r\n") for ln in lines]
    out: list[dict] = []
    pos = 0
    for no, line in enumerate(bare, 1):
        context = get_code_snippet(bare, no)
        for plugin in _plugins():
            for found in plugin.analyze_line(filename=filename, line=line, line_number=no,
                                             context=context):
                value = found.secret_value or ""
                for m in re.finditer(re.escape(value), line) if value else ():
                    out.append({"kind": "secret", "start": pos + m.start(), "end": pos + m.end(),
                                "detector": found.type})
        pos += len(lines[no - 1])
    return out


def pii_spans(text: str, entities: Iterable[str] = PRESIDIO_ENTITIES) -> list[dict]:
    """Spans found by Presidio's pattern recognizers (no NLP model needed)."""
    wanted = list(entities)
    out = []
    for rec in _recognizers():
        ents = [e for e in rec.supported_entities if e in wanted]
        if not ents:
            continue
        for r in rec.analyze(text, ents, None) or []:
            out.append({"kind": r.entity_type.lower(), "start": r.start, "end": r.end,
                        "detector": rec.name})
    return out


def merge_spans(spans: Iterable[dict]) -> list[dict]:
    """Sort and merge overlapping spans (the first span's kind is kept)."""
    merged: list[dict] = []
    for sp in sorted(spans, key=lambda s: (s["start"], -s["end"])):
        if merged and sp["start"] < merged[-1]["end"]:
            merged[-1]["end"] = max(merged[-1]["end"], sp["end"])
        else:
            merged.append({"kind": sp["kind"], "start": sp["start"], "end": sp["end"]})
    return merged


def find_sensitive_spans(text: str, path: str | None = None) -> list[dict]:
    """Secrets and PII in ``text``: the union of both detectors, merged."""
    return merge_spans(secret_spans(text, path) + pii_spans(text))
