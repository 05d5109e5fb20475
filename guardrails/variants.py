"""Compact forms of one identifier: the strings whose keyed hashes the index stores.

Pure functions. Each returns the set of compact forms (see :func:`guardrails.normalize.compact`)
under which an identifier may appear in text: a name as "First Last", "Last, First",
"F. Last", "First M. Last" (case is already folded, so all caps is covered); an email with
"@" and with "at"/"dot" spelled out; a phone number as digits with and without country code
and extension; an id as its letters and digits, and as its digits alone when there are enough.
"""

from __future__ import annotations

import re

from guardrails.errors import InvalidIdentifierError
from guardrails.normalize import ATOM_RE, compact, fold

# Shorter forms match too much ordinary text to be safe (e.g. a bare "lee" or "1234").
MIN_FORM_LENGTH = 4
MIN_DIGITS = 7
_HONORIFICS = frozenset(
    "mr mrs ms miss mx dr prof sir dame madam rev jr sr ii iii iv md phd dds dvm esq".split()
)
_EXTENSION = re.compile(r"(?:\bx|\bext\b|\bextension\b|#)")


def _keep(forms: set[str], minimum: int = MIN_FORM_LENGTH) -> set[str]:
    return {f for f in forms if len(f) >= minimum}


def _require(forms: set[str], kind: str) -> set[str]:
    if not forms:
        raise InvalidIdentifierError(
            f"the {kind} given is too short to match safely (a compact form needs at least "
            f"{MIN_FORM_LENGTH} letters or digits, a phone number {MIN_DIGITS} digits); "
            "give the full value"
        )
    return forms


def name_forms(name: str) -> set[str]:
    """Compact forms of a person's name (honorifics such as "Dr." and "MD" dropped)."""
    words = [w for w in ATOM_RE.findall(fold(name)) if w != "@"]
    core = [w for w in words if w not in _HONORIFICS] or words
    forms = {"".join(words), "".join(core)}
    if len(core) >= 2:
        first, middle, last = core[0], core[1:-1], core[-1]
        forms |= {
            first + last,  # First Last
            last + first,  # Last, First
            last + first + "".join(middle),  # Last, First Middle
            first + "".join(m[0] for m in middle) + last,  # First M. Last
        }
        if len(last) >= 3:
            forms.add(first[0] + last)  # F. Last
    return _require(_keep(forms), "name")


def email_forms(email: str) -> set[str]:
    """Compact forms of an email address: "@" kept, and "at"/"dot" spelled into one word."""
    norm = fold(email).strip()
    local, at, domain = norm.rpartition("@")
    if not at or not local or not domain:
        return _require(_keep({compact(email)}, MIN_FORM_LENGTH + 1), "email")
    c_local, c_domain = compact(local), compact(domain)
    spelled = "dot".join(map(compact, local.split("."))) + "at" + "dot".join(
        map(compact, domain.split("."))
    )
    return _require(_keep({f"{c_local}@{c_domain}", spelled}, MIN_FORM_LENGTH + 1), "email")


def phone_forms(phone: str, *, region: str = "US") -> set[str]:
    """Digit forms of a phone number: all digits, without extension, national, international."""
    import phonenumbers  # a Presidio dependency; imported here to keep import time low

    norm = fold(phone)
    main = _EXTENSION.split(norm, maxsplit=1)[0]
    digits = re.sub(r"\D", "", main)
    forms = {digits, re.sub(r"\D", "", norm)}
    for prefix in ("00", "011"):
        if digits.startswith(prefix):
            forms.add(digits[len(prefix):])
    try:
        parsed = phonenumbers.parse(main, region)
        national = phonenumbers.national_significant_number(parsed)
        forms |= {national, f"{parsed.country_code}{national}"}
    except phonenumbers.NumberParseException:
        pass
    return _require(_keep(forms, MIN_DIGITS), "phone number")


def id_forms(identifier: str) -> set[str]:
    """Compact forms of an id (account, customer or national number)."""
    c = compact(identifier)
    digits = re.sub(r"\D", "", c)
    forms = {c}
    if len(digits) >= MIN_DIGITS - 1:
        forms.add(digits)
    return _require(_keep(forms), "id")


FORMS = {"name": name_forms, "email": email_forms, "phone": phone_forms, "id": id_forms}
