"""Normalisation shared by the index (identifiers) and the guard (output text).

Everything here is a pure function. Text is folded one character at a time so that every
normalised character keeps the span of original characters it came from, which is how a match
found in normalised text is reported as a span of the ORIGINAL text.

Folding of one character (:func:`fold_char`):
  1. whitespace of any kind -> one space; runs of spaces are later collapsed to one;
  2. invisible characters dropped: format (Cf: zero-width space/joiner, soft hyphen, bidi
     marks, BOM), controls, combining marks (so accents and "z̲a̲l̲g̲o̲" decorations vanish),
     fillers such as U+3164;
  3. decimal digits of any script -> ASCII digits;
  4. NFKC (fullwidth, mathematical alphanumerics, ligatures, circled forms), then casefold
     (all caps and "ß" -> "ss"), then NFKD to drop the marks NFKC recomposed;
  5. homoglyphs -> Latin (Cyrillic а е о р с х у і ј ..., Greek ο α ν ρ ...).

Identifier structure (:func:`atoms`): the normalised text is split into *atoms*: runs of
letters, runs of digits, and "@". Spacing and punctuation between atoms are dropped when
atoms are joined, which collapses "j o h n", "J.-Smith", "212.555.0199" and "(212) 555 0199".
The words "at" and "dot" are read two ways: as "@" / nothing (email obfuscation, including
"(at)", "[dot]") and as the letters themselves (a name like "Dot Smith").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

# Lower-case homoglyphs (folding runs after casefold, so upper-case look-alikes are covered
# by their lower-case forms: Cyrillic "В" -> "в" -> "b").
_HOMOGLYPHS = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "һ": "h",
    "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ɡ": "g", "ո": "n", "ս": "u",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ζ": "z", "η": "n", "ι": "i", "κ": "k", "μ": "u", "ν": "v",
    "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ϲ": "c", "ϳ": "j",
    # Latin look-alikes outside ASCII
    "ı": "i", "ȷ": "j", "ł": "l", "ø": "o", "đ": "d", "ħ": "h",
})
_INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180e\u2800\u3164\uffa0")
_DROP_CATEGORIES = frozenset({"Cf", "Cc", "Cs", "Co", "Cn", "Mn", "Me", "Mc"})

AT_WORDS = frozenset({"at"})
DOT_WORDS = frozenset({"dot"})
_SPECIAL = {**{w: ("@", w) for w in AT_WORDS}, **{w: ("", w) for w in DOT_WORDS}}
ATOM_RE = re.compile(r"[^\W\d_]+|\d+|@")
# Steps reported in a finding's explanation, in the order they are applied.
STEPS = ("invisible", "digits", "nfkc", "casefold", "homoglyph", "spacing", "at_dot")


@lru_cache(maxsize=1 << 16)
def fold_char(ch: str) -> str:
    """Fold one character (see the module docstring); returns "" for invisible characters."""
    if ch.isspace():
        return " "
    if ch in _INVISIBLE or unicodedata.category(ch) in _DROP_CATEGORIES:
        return ""
    if unicodedata.category(ch) == "Nd":
        return str(unicodedata.decimal(ch))
    s = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", ch).casefold())
    out = []
    for c in s:
        if c.isspace():
            out.append(" ")
        elif c not in _INVISIBLE and unicodedata.category(c) not in _DROP_CATEGORIES:
            out.append(c)
    return "".join(out).translate(_HOMOGLYPHS)


@dataclass(frozen=True)
class Normalized:
    """A normalised text and, for each of its characters, the original span it came from.

    Attributes:
        original: the text as given.
        text: the normalised text.
        starts: original start offset of each normalised character.
        ends: original end offset of each normalised character.
    """

    original: str
    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def span(self, i: int, j: int) -> tuple[int, int]:
        """Original span of the normalised span ``[i, j)`` (``j > i``).

        The span runs on over combining marks that followed its last character (they were
        dropped from the normalised text but belong to that character).
        """
        end = self.ends[j - 1]
        while end < len(self.original) and unicodedata.category(self.original[end])[0] == "M":
            end += 1
        return self.starts[i], end


_WS_RUN = re.compile(r"\s+")
_ASCII_DROPPED = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")  # controls that are not spaces


def normalize(text: str) -> Normalized:
    """Fold every character, collapse runs of spaces, keep the offset map."""
    if text.isascii() and not _ASCII_DROPPED.search(text):
        return _normalize_ascii(text)
    return _normalize_any(text)


def _normalize_ascii(text: str) -> Normalized:
    """Fast path, same result as :func:`_normalize_any` for ASCII without controls."""
    low = text.lower()
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for m in _WS_RUN.finditer(low):
        a, b = m.span()
        if a > pos:
            out.append(low[pos:a])
            starts.extend(range(pos, a))
            ends.extend(range(pos + 1, a + 1))
        if starts:  # leading spaces are dropped
            out.append(" ")
            starts.append(a)
            ends.append(b)
        pos = b
    if pos < len(low):
        out.append(low[pos:])
        starts.extend(range(pos, len(low)))
        ends.extend(range(pos + 1, len(low) + 1))
    return Normalized(text, "".join(out), tuple(starts), tuple(ends))


def _normalize_any(text: str) -> Normalized:
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    last_space = True  # leading spaces are dropped
    for i, ch in enumerate(text):
        folded = fold_char(ch)
        if not folded:
            continue
        for c in folded:
            if c == " ":
                if last_space:
                    if out and out[-1] == " ":
                        ends[-1] = i + 1  # the collapsed space covers the whole run
                    continue
                last_space = True
            else:
                last_space = False
            out.append(c)
            starts.append(i)
            ends.append(i + 1)
    return Normalized(text, "".join(out), tuple(starts), tuple(ends))


def fold(text: str) -> str:
    """The normalised text alone (see :func:`normalize`)."""
    return normalize(text).text


class Atom(NamedTuple):
    """A unit of an identifier in normalised text.

    Attributes:
        start: start offset in the normalised text.
        end: end offset in the normalised text.
        readings: what the atom may contribute to a compact form ("at" -> "@" or "at").
    """

    start: int
    end: int
    readings: tuple[str, ...]

    @property
    def can_start(self) -> bool:
        """Whether a window may begin here (not on "@" nor on an empty reading)."""
        return self.readings[-1] not in ("", "@")


def atoms(norm_text: str) -> list[Atom]:
    """Split normalised text into atoms (letter runs, digit runs, "@")."""
    out = []
    for m in ATOM_RE.finditer(norm_text):
        w = m.group()
        readings = _SPECIAL.get(w) or (w,)
        out.append(Atom(m.start(), m.end(), readings))
    return out


def compact(text: str, *, keep_at: bool = False) -> str:
    """Identifier-side compact form: the atoms joined, "@" kept only if asked."""
    words = ATOM_RE.findall(fold(text))
    return "".join(w for w in words if keep_at or w != "@")


def steps_used(original: str) -> tuple[str, ...]:
    """Which normalisation steps changed ``original`` (a matched span), for explanations."""
    used = set()
    for ch in original:
        folded = fold_char(ch)
        if ch.isspace() or ch == folded:
            continue
        if not folded:
            used.add("invisible")
        elif unicodedata.category(ch) == "Nd" and not ch.isascii():
            used.add("digits")
        elif unicodedata.normalize("NFKC", ch) != ch:
            used.add("nfkc")
        elif ch.casefold().translate(_HOMOGLYPHS) != ch.casefold():
            used.add("homoglyph")
        elif ch.casefold() != ch:
            used.add("casefold")
        else:
            used.add("nfkc")
    words = ATOM_RE.findall(fold(original))
    if len(words) > 1:
        used.add("spacing")
    if any(w in AT_WORDS or w in DOT_WORDS for w in words):
        used.add("at_dot")
    return tuple(s for s in STEPS if s in used)
