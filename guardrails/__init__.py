"""Output guardrails: offline PII detection, a forgotten-subject index, streaming filters.

Stands alone (never imports ``forget`` or ``audits``). Typical use::

    from guardrails import ForgottenIndex, Guard, filter_stream

    index = ForgottenIndex(key)                    # key: >= 16 secret bytes
    index.add({"name": "...", "email": "...", "phone": "...", "id": "..."}, ref="req-42")
    index.save("forgotten.idx")                    # keyed hashes only, no plaintext
    guard = Guard(ForgottenIndex.load("forgotten.idx", key))
    safe = guard.redact(model_output)              # or guard.check(...) for findings
    for piece in filter_stream(chunks, guard): ...

The generation wrappers (``GuardedGenerator``, ``guard_streamer``, ``IdentifierBlocker``)
import transformers, so they are loaded on first access.
"""

from __future__ import annotations

from typing import Any

from guardrails.errors import (
    GuardrailError,
    IndexFormatError,
    IndexKeyError,
    IndexNotFoundError,
    InvalidIdentifierError,
    PolicyError,
    UnsupportedStreamerError,
)
from guardrails.guard import Explanation, Finding, Guard, GuardResult
from guardrails.index import ForgottenIndex, Identifiers, IndexMatch
from guardrails.normalize import Normalized, compact, fold, normalize
from guardrails.policy import FORGOTTEN, Action, Policy
from guardrails.presidio import build_analyzer, build_anonymizer, offline_tldextract
from guardrails.stream import StreamFilter, filter_stream

_LAZY = {"GuardedGenerator", "GuardedGeneration", "IdentifierBlocker", "guard_streamer"}

__all__ = [
    "FORGOTTEN", "Action", "Explanation", "Finding", "ForgottenIndex", "Guard",
    "GuardResult", "GuardedGeneration", "GuardedGenerator", "GuardrailError", "Identifiers",
    "IdentifierBlocker", "IndexFormatError", "IndexKeyError", "IndexMatch",
    "IndexNotFoundError", "InvalidIdentifierError", "Normalized", "Policy", "PolicyError",
    "StreamFilter", "UnsupportedStreamerError", "build_analyzer", "build_anonymizer",
    "compact", "filter_stream", "fold", "guard_streamer", "normalize", "offline_tldextract",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from guardrails import generation

        return getattr(generation, name)
    raise AttributeError(f"module 'guardrails' has no attribute {name!r}")
