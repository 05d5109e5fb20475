"""The terms of the corpus index: pure functions over the guard's own normalisation.

A match of :meth:`guardrails.ForgottenIndex.find` is a window of consecutive *atoms* of the
normalised text (:func:`guardrails.normalize.atoms`: letter runs, digit runs, "@"; "at" also
read as "@", "dot" also as nothing), no gap between two atoms longer than
:data:`guardrails.index.GAP`, whose compact string (the atoms' readings joined) equals one of
the compact forms of an identifier (:data:`guardrails.variants.FORMS`). Because the window
always starts and ends on atom boundaries, every such window is one of the strings
:func:`text_terms` enumerates:

- ``w:<s>`` for every window whose compact string ``s`` is shorter than :data:`WINDOW`
  characters (and at least ``MIN_FORM_LENGTH``, the shortest form the guard ever stores);
- ``p:<s[:WINDOW]>`` for the first window from each starting atom (and each reading) whose
  compact string reaches :data:`WINDOW` characters: every longer window from that atom
  begins with the same ``WINDOW`` characters.

A form ``f`` has the single term :func:`form_term` (``w:f`` or ``p:f[:WINDOW]``), so a text in
which ``find`` sees ``f`` always has ``f``'s term: a look-up of the forms' terms returns a
superset of the records a full ``find`` scan returns (never fewer). The enumeration follows
``find``'s rules (a window starts on an atom whose last reading is neither empty nor "@"; at
most one "dot" read as nothing in a row) without its pruning by the forms' lengths and keyed
prefixes, which depend on the identifiers and are not known when the corpus is indexed.

Terms are never stored: :class:`TermHasher` turns each into a 64-bit keyed hash
(HMAC-SHA256 under the index key, first 8 bytes as a signed int64).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from guardrails.index import GAP
from guardrails.normalize import atoms, normalize
from guardrails.variants import FORMS, MIN_FORM_LENGTH

# Characters after which a window is indexed by its prefix alone. 12 holds a 10-11 digit
# phone number, an SSN-shaped id and most "first last" names exactly; a longer form (an email
# address) is looked up by its first 12 characters, which rarely begin another identifier.
WINDOW = 12
_DOMAIN = b"forget-suite/corpus-index/term/v1\x00"


def text_terms(text: str) -> set[str]:
    """Every term of ``text`` (plaintext; see the module docstring). Pure."""
    ats = atoms(normalize(text).text)
    reads = [a.readings for a in ats]
    n = len(ats)
    out: set[str] = set()
    for i in range(n):
        first = reads[i][-1]
        if first in ("", "@"):
            continue
        states = {(first, False)}  # (compact string so far, last atom read as nothing)
        j = i
        while True:
            alive = set()
            for s, empty in states:
                if len(s) >= WINDOW:
                    out.add("p:" + s[:WINDOW])
                else:
                    if not empty and len(s) >= MIN_FORM_LENGTH:
                        out.add("w:" + s)
                    alive.add((s, empty))
            j += 1
            if not alive or j == n or ats[j].start - ats[j - 1].end > GAP:
                break
            states = set()
            for s, empty in alive:
                for r in reads[j]:
                    if r:
                        states.add((s + r, False))
                    elif not empty:
                        states.add((s, True))
    return out


def form_term(form: str) -> str:
    """The one term under which a compact form of an identifier is looked up."""
    return "w:" + form if len(form) < WINDOW else "p:" + form[:WINDOW]


def identifier_terms(mapping: dict[str, list[str]]) -> set[str]:
    """The terms of every compact form of ``{kind: [values]}`` (the guard's own variants)."""
    return {form_term(f) for kind, values in mapping.items() for v in values
            for f in FORMS[kind](v)}


class TermHasher:
    """Keyed 64-bit hashes of terms: HMAC-SHA256(key, domain || term), first 8 bytes."""

    def __init__(self, key: bytes) -> None:
        self._mac = hmac.new(key, _DOMAIN, hashlib.sha256)

    def __call__(self, term: str) -> int:
        h = self._mac.copy()
        h.update(term.encode("utf-8"))
        return int.from_bytes(h.digest()[:8], "little", signed=True)  # an Arrow int64

    def many(self, terms: Iterable[str]) -> list[int]:
        """Hashes of ``terms``, in order."""
        return [self(t) for t in terms]
