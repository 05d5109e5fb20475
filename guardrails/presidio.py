"""Presidio analyzer and anonymizer that run offline.

No spaCy model is available offline, so the analyzer uses Presidio's ``NoOpNlpEngine`` and the
predefined *pattern* recognizers (email, phone, credit card, IBAN, IP, SSN, ...); it has no
PERSON recognizer: names of forgotten subjects are found by the index, not by NER.
``EmailRecognizer`` and ``UrlRecognizer`` call tldextract, which by default downloads the public
suffix list; :func:`offline_tldextract` points it at the snapshot bundled with tldextract.
Nothing here runs at import time; engines are built once per process and cached.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from presidio_analyzer import AnalyzerEngine
    from presidio_anonymizer import AnonymizerEngine


def offline_tldextract() -> None:
    """Make tldextract use its bundled suffix list and never touch the network."""
    import tldextract

    extractor = tldextract.tldextract.TLD_EXTRACTOR
    if getattr(extractor, "suffix_list_urls", None) != ():
        tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(
            suffix_list_urls=(), cache_dir=None
        )


@lru_cache(maxsize=4)
def build_analyzer(language: str = "en", countries: tuple[str, ...] | None = None
                   ) -> AnalyzerEngine:
    """An offline ``AnalyzerEngine`` (NoOp NLP engine + predefined pattern recognizers).

    Args:
        language: the one language the engine supports.
        countries: limit country-specific recognizers (ISO codes, e.g. ``("us", "uk")``);
            ``None`` loads them all.
    """
    offline_tldextract()
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine

    nlp = NoOpNlpEngine(models=[{"lang_code": language, "model_name": "none"}])
    registry = RecognizerRegistry(supported_languages=[language])
    registry.load_predefined_recognizers(
        languages=[language], nlp_engine=nlp,
        countries=list(countries) if countries is not None else None,
    )
    return AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=[language])


@lru_cache(maxsize=1)
def build_anonymizer() -> AnonymizerEngine:
    """A Presidio ``AnonymizerEngine`` (it needs no model and no network)."""
    from presidio_anonymizer import AnonymizerEngine

    return AnonymizerEngine()
