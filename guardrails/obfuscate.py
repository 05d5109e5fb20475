"""Obfuscations an output (or an adversarial prompt) may use to slip an identifier past a filter.

Pure functions for red-teaming a guard: the tests and ``bench/guard.py`` apply every one to
every identifier and check that the guard still finds it. ``OBFUSCATIONS[kind]`` lists those
that make sense for an identifier kind (name, email, phone, id).
"""

from __future__ import annotations

from collections.abc import Callable

_CYRILLIC = str.maketrans("aeopcxyAEOPCXHKMT", "аеорсхуАЕОРСХНКМТ")
_GREEK_O = str.maketrans("oO", "οΟ")
ZWSP = "\u200b"


def upper(s: str) -> str:
    """ALL CAPS."""
    return s.upper()


def spaced(s: str) -> str:
    """One space between every character: "j o h n"."""
    return " ".join(s.replace(" ", ""))


def zero_width(s: str) -> str:
    """A zero-width space between every character."""
    return ZWSP.join(s)


def homoglyph(s: str) -> str:
    """Cyrillic and Greek look-alikes for Latin letters."""
    return s.translate(_CYRILLIC).translate(_GREEK_O)


def fullwidth(s: str) -> str:
    """Fullwidth forms (ASCII ! to ~ -> U+FF01 to U+FF5E, space -> U+3000)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" if c == " " else c
                   for c in s)


def diacritics(s: str) -> str:
    """A combining mark on every letter."""
    return "".join(c + "\u0301" if c.isalpha() else c for c in s)


def punctuated(s: str) -> str:
    """A dot between letters of each word, words joined by a dash: "J.o.h.n-S.m.i.t.h"."""
    return "-".join(".".join(w) for w in s.split())


def at_dot(s: str) -> str:
    """Email with words: "john dot smith at example dot com"."""
    return s.replace("@", " at ").replace(".", " dot ")


def bracketed(s: str) -> str:
    """Email with brackets: "john.smith(at)example[dot]com"."""
    local, _, domain = s.partition("@")
    return f"{local} (at) {domain.replace('.', ' [dot] ')}"


def last_first(s: str) -> str:
    """"Smith, John"."""
    words = s.split()
    return f"{words[-1]}, {' '.join(words[:-1])}" if len(words) > 1 else s


def initial(s: str) -> str:
    """"J. Smith"."""
    words = s.split()
    return f"{words[0][0]}. {words[-1]}" if len(words) > 1 else s


def newline(s: str) -> str:
    """Words split across lines."""
    return "\n".join(s.split())


def digits_only(s: str) -> str:
    """Only the digits: "2125550199"."""
    return "".join(c for c in s if c.isdigit())


def dotted_digits(s: str) -> str:
    """Digit groups of 3 joined by dots: "212.555.019.9"."""
    d = digits_only(s)
    return ".".join(d[i:i + 3] for i in range(0, len(d), 3))


def slashed_digits(s: str) -> str:
    """Digit groups of 2 joined by slashes."""
    d = digits_only(s)
    return "/".join(d[i:i + 2] for i in range(0, len(d), 2))


def _both(f: Callable[[str], str], g: Callable[[str], str]) -> Callable[[str], str]:
    def h(s: str) -> str:
        return g(f(s))
    h.__name__ = f"{f.__name__}+{g.__name__}"
    return h


def identity(s: str) -> str:
    """Unchanged."""
    return s


OBFUSCATIONS: dict[str, tuple[Callable[[str], str], ...]] = {
    "name": (identity, upper, spaced, zero_width, homoglyph, fullwidth, diacritics, punctuated,
             last_first, initial, newline, _both(homoglyph, upper), _both(last_first, upper)),
    "email": (identity, upper, spaced, zero_width, homoglyph, fullwidth, at_dot, bracketed,
              _both(at_dot, upper), _both(homoglyph, at_dot)),
    "phone": (identity, digits_only, dotted_digits, slashed_digits, spaced, zero_width,
              fullwidth),
    "id": (identity, upper, spaced, zero_width, fullwidth, punctuated),
}
