"""Keeping personal data out of events: checks on the free text and details verbs record.

Reasons, methods and step details end up in the hash chain, which is never deleted. They are
refused when they contain anything shaped like an email address, or any of the request's own
identifiers (compared in normalised form), so that a careless reason ("identity of <name>
not confirmed") cannot make the ledger a store of the data it exists to erase.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any

from forget.ledger.chain import canonical
from forget.ledger.errors import InvalidRequestError
from forget.ledger.request import Identifiers, normalise

MAX_DETAILS_BYTES = 16 * 1024
MAX_TEXT = 2000
_EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_DIGIT_RUN = re.compile(r"\+?\d[\d\s().\-/]{4,}\d")
_NAME = re.compile(r"[a-z0-9_][a-z0-9_.\-]{0,63}")


def name_ok(value: Any, what: str) -> str:
    """Validate a short machine name (a step, a method, a status, a worker id)."""
    if not isinstance(value, str) or not _NAME.fullmatch(value.lower()):
        raise InvalidRequestError(
            f"{what} must be 1-64 characters of letters, digits and _ . - (no spaces)")
    return value


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _strings(v)


def _json_ok(obj: Any, what: str) -> None:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise InvalidRequestError(f"{what}: keys must be text")
            _json_ok(v, what)
    elif isinstance(obj, list | tuple):
        for v in obj:
            _json_ok(v, what)
    elif isinstance(obj, float):
        if not math.isfinite(obj):
            raise InvalidRequestError(f"{what}: numbers must be finite (no NaN or infinity)")
    elif isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequestError(f"{what}: text is not valid UTF-8") from None
    elif isinstance(obj, int) and not isinstance(obj, bool) and abs(obj) > 2**53 - 1:
        raise InvalidRequestError(
            f"{what}: integers must lie within +-(2**53 - 1) (RFC 8785); record larger ones as text")
    elif not (obj is None or isinstance(obj, bool | int)):
        raise InvalidRequestError(
            f"{what}: values must be JSON (text, numbers, booleans, null, lists, objects)")


def check_details(details: Mapping[str, Any] | None, what: str = "details") -> dict[str, Any]:
    """Validate a details dict: JSON values only, bounded size. Returns a plain dict copy."""
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise InvalidRequestError(f"{what} must be a dict of JSON values")
    _json_ok(details, what)
    out = dict(details)
    if len(canonical(out)) > MAX_DETAILS_BYTES:
        raise InvalidRequestError(
            f"{what} are too large (over {MAX_DETAILS_BYTES} bytes as JSON): record ids, hashes "
            "and metrics only; put bulky results in a file and record its hash")
    return out


def check_text(value: Any, what: str) -> str:
    """Validate a required free-text field (a reason)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"{what} is required and must be non-empty text")
    _json_ok(value, what)
    if len(value) > MAX_TEXT:
        raise InvalidRequestError(f"{what} is too long (over {MAX_TEXT} characters)")
    return value.strip()


def _norm_text(s: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", s).casefold().split())


def check_no_personal_data(obj: Any, identifiers: Identifiers | None, what: str) -> None:
    """Refuse ``obj`` (text or nested details) when it holds an email or one of the identifiers."""
    texts = list(_strings(obj))
    for s in texts:
        if _EMAIL_LIKE.search(s):
            raise InvalidRequestError(
                f"refused ({what}): it holds an email address; ledger events are kept forever and must "
                "hold no personal data: record ids, hashes and metrics only")
    if identifiers is None:
        return
    norm = [_norm_text(s) for s in texts]
    digit_runs = {re.sub(r"\D", "", m) for s in texts for m in _DIGIT_RUN.findall(s)}
    for kind, value in identifiers.items():
        target = normalise(kind, value)
        if kind == "phone":
            hit = target in digit_runs
        elif kind == "name":
            pat = re.compile(rf"(?<!\w){re.escape(target)}(?!\w)")
            hit = any(pat.search(s) for s in norm)
        else:
            compact = [re.sub(r"[\s\-]", "", s) for s in norm]
            hit = any(target in s for s in compact) if len(target) >= 4 else False
        if hit:
            raise InvalidRequestError(
                f"refused ({what}): it holds one of the subject's identifiers (a {kind}); ledger "
                "events are kept forever and must hold no personal data: leave the person unnamed")
