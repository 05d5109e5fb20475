"""Twins: the subject's records with every identifier replaced by a fresh fake of its format.

A twin is a non-member that differs from a member only where the subject's data is, so
members vs twins isolates exactly what an erasure must remove, without a retrained model.
The same generators give the same-format alternatives of the exposure test. Known kinds follow
common real-world formats (NANP phone numbers, SSN-shaped ids, "Month D, YYYY" dates, Faker
names written as the original is, "Last, First" or "F. Last" or all caps, companies, cities
and street addresses; an email spelled with "at"/"dot" keeps those words and its provider);
any other kind keeps its shape character by character (a digit becomes a random digit, a
letter a random letter of the same case).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re
import string
from collections.abc import Iterable, Mapping

from audits.records import Record, Span, as_records

_PHONE = re.compile(r"\(\d{3}\) \d{3}-\d{4}")
_NATIONAL_ID = re.compile(r"\d{3}-\d{2}-\d{4}")
_USER = re.compile(r"[^a-z0-9._]")
_TRAILING_DIGITS = re.compile(r"\d+$")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
# A vendor prefix of a key or token ("sk_live_", "ghp_", "xoxb-"): letters and separators
# followed by at least 8 key characters. It names the issuer, not the secret: kept as is.
_VENDOR_PREFIX = re.compile(r"[A-Za-z]+(?:[_-][A-Za-z]+)*[_-](?=[A-Za-z0-9]{8,}$)")
_HEX_ALPHABETS = ("0123456789abcdef", "0123456789ABCDEF")
# Obfuscated emails ("jane dot roe at example dot org") and written-out names ("J. Roe").
_AT_WORD = re.compile(r"(?i)(?<![a-z0-9])at(?![a-z0-9])")
_DOT_WORD = re.compile(r"(?i)((?<![a-z0-9])dot(?![a-z0-9]))")
_INITIAL = re.compile(r"[A-Za-z]\.\s*\S")


def derived_seed(seed: int, purpose: str = "audits.twins") -> int:
    """A 64-bit seed from ``(purpose, seed)``: unrelated to any generator seeded with ``seed``."""
    return int.from_bytes(hashlib.sha256(f"{purpose}:{seed}".encode()).digest()[:8], "big")


class FakeMaker:
    """Seeded generator of fresh values with the format of a given value and kind."""

    def __init__(self, seed: int = 0) -> None:
        from faker import Faker  # imported here: loading its locale data takes a moment

        self.rng = random.Random(derived_seed(seed))
        self.fake = Faker("en_US")
        self.fake.seed_instance(derived_seed(seed, "audits.twins.faker"))

    def __call__(self, kind: str, original: str) -> str:
        """A fake of ``original``'s format, never equal to it (up to 100 tries)."""
        for _ in range(100):
            value = self._one(kind, original)
            if value != original:
                return value
        return value

    def _one(self, kind: str, original: str) -> str:
        r, f = self.rng, self.fake
        if kind == "phone" and _PHONE.fullmatch(original):
            # NANP: area code and exchange never start with 0 or 1.
            return f"({r.randint(201, 989)}) {r.randint(200, 999)}-{r.randint(0, 9999):04d}"
        if kind == "national_id" and _NATIONAL_ID.fullmatch(original):
            # SSN-shaped: no 000/9xx area, no 00 group, no 0000 serial.
            return f"{r.randint(100, 899)}-{r.randint(10, 99)}-{r.randint(1000, 9999)}"
        if kind == "email" and original.count("@") == 1:
            domain = original.split("@")[1]  # the provider is not the person; keep it
            # The letters of a fresh user name, then exactly as many digits as the real one
            # ends with (a Faker user name may end in digits itself: they are dropped).
            user = _TRAILING_DIGITS.sub("", _USER.sub("", f.user_name().lower())) or "user"
            digits = _TRAILING_DIGITS.search(original.split("@")[0])
            tail = "".join(r.choice(string.digits) for _ in digits.group()) if digits else ""
            return f"{user}{tail}@{domain}"
        if kind == "dob":
            try:
                dt.datetime.strptime(original, "%B %d, %Y")
                day = dt.date(1950, 1, 1) + dt.timedelta(days=r.randint(0, 365 * 50))
                return f"{day:%B} {day.day}, {day.year}"
            except ValueError:
                pass
        if kind == "email" and "@" not in original and (ats := list(_AT_WORD.finditer(original))):
            # "jane dot roe at example dot org", "jane.roe(at)example[dot]org": a fresh user
            # part of the same shape, the "at"/"dot" words and the provider kept.
            cut = ats[-1].start()
            parts = _DOT_WORD.split(original[:cut])
            return "".join(p if _DOT_WORD.fullmatch(p) else self.reshape(p)
                           for p in parts) + original[cut:]
        if kind == "name":
            return self._name(original)
        if kind == "address":
            return f.street_address()
        if kind == "city":
            return f.city()
        if kind == "employer":
            return f.company()
        if kind == "ip_address" and _IPV4.fullmatch(original):
            # The first octet is the network (10.x.x.x: private), not the host: kept.
            return (f"{original.split('.')[0]}.{r.randint(0, 255)}.{r.randint(0, 255)}."
                    f"{r.randint(1, 254)}")
        return self.reshape(original)

    def _name(self, original: str) -> str:
        """A Faker name written the way ``original`` is: "First Last" (as many words),
        "Last, First", "F. Last", all caps, or one letter at a time ("J a n e  R o e")."""
        words = original.split()
        spaced = len(words) > 3 and all(len(w) == 1 for w in words)
        n = 2 if spaced else max(2, len(words))
        first, lasts = self.fake.first_name(), [self.fake.last_name() for _ in range(n - 1)]
        value = " ".join([first] + lasts)
        if "," in original:
            value = f"{lasts[-1]}, {' '.join([first] + lasts[:-1])}"
        elif _INITIAL.match(original):
            value = f"{first[0]}. {lasts[-1]}"
        elif spaced:
            value = "  ".join(" ".join(w) for w in (first, lasts[-1]))
        return value.upper() if original.isupper() else value

    def reshape(self, original: str) -> str:
        """Same shape: each digit/lower/upper letter replaced by a random one of its class.

        A vendor prefix ("sk_live_", "ghp_") is kept: with a random prefix every fake would be
        a format no model has seen and the true key would rank first for any model trained on
        code, seen or not. A hexadecimal value (all its letters in a-f, at least 8 characters)
        stays hexadecimal: a fake drawing letters from a-z would be just as easy to tell apart.
        """
        m = _VENDOR_PREFIX.match(original)
        head = m.group() if m else ""
        body = original[len(head):]
        for alphabet in _HEX_ALPHABETS:
            if len(body) >= 8 and set(body) <= set(alphabet) and not body.isdigit():
                return head + "".join(self.rng.choice(alphabet) for _ in body)
        out = [head]
        for c in body:
            if c.isdigit():
                out.append(self.rng.choice(string.digits))
            elif c.islower():
                out.append(self.rng.choice(string.ascii_lowercase))
            elif c.isupper():
                out.append(self.rng.choice(string.ascii_uppercase))
            else:
                out.append(c)
        return "".join(out)


def replace_spans(record: Record, values: Mapping[tuple[str, str], str],
                  new_id: str) -> Record:
    """``record`` with each span's value replaced by ``values[(kind, value)]``; spans moved."""
    parts, spans, pos, last = [], [], 0, 0
    for s in record.spans:
        if s.start < last:  # overlapping spans: keep the first one
            continue
        new = values.get((s.kind, record.value(s)), record.value(s))
        parts.append(record.text[last: s.start])
        pos += s.start - last
        parts.append(new)
        spans.append(Span(s.kind, pos, pos + len(new)))
        pos += len(new)
        last = s.end
    parts.append(record.text[last:])
    return Record(new_id, "".join(parts), tuple(spans))


def make_twins(records: Iterable[Record | Mapping], *, copies: int = 4,
               seed: int = 0) -> list[Record]:
    """``copies`` twins of each record; one twin identity per copy across all records.

    Copy ``c`` replaces each distinct ``(kind, value)`` of the subject by the same fake in every
    record, so the twins read as ``copies`` consistent other people. Twin ids are
    ``"<record_id>~twin<c>"``.
    """
    recs = as_records(records)
    maker = FakeMaker(seed)
    out: list[Record] = []
    for c in range(copies):
        mapping: dict[tuple[str, str], str] = {}
        for r in recs:
            for s in r.spans:
                key = (s.kind, r.value(s))
                if key not in mapping:
                    mapping[key] = maker(*key)
        out += [replace_spans(r, mapping, f"{r.record_id}~twin{c}") for r in recs]
    return out
