"""A streaming filter that never emits part of a protected identifier before it can decide.

Text arrives in chunks (tokens from a model). The filter keeps the undecided tail back and
releases the rest, redacted. What is held back after each chunk:

* **Forgotten subjects** (the index), measured in *normalised* characters. Let ``L`` be the
  length of the longest compact form in the index (:attr:`ForgottenIndex.max_len`). The filter
  holds the suffix that begins at the earliest atom from which the shortest possible compact
  reading of the rest of the text is at most ``L`` (:meth:`ForgottenIndex.pending_from`). Any
  earlier atom is decided: every window starting there either already ended inside the text,
  so the index saw it whole, or is longer than every stored form. So the held text never
  contains more than ``L`` letters and digits beyond the "at"/"dot" words it may contain,
  e.g. at most 27 for "john.smith@example.com".
  In normalised characters the bound is ``L*(5 + 2*GAP) + GAP`` (each contributing atom is at
  least one compact character and at most twice as long as it contributes, "at"; at most one
  "dot" word read as nothing between two of them; gaps of at most ``GAP`` = 8 separators). In
  original characters add the invisible characters and the whitespace runs (each counted once
  when normalised) that fall inside: padding an identifier with them makes the filter hold
  more, never release earlier, so obfuscation cannot make it leak.
* **Other personal data** (Presidio's patterns, obfuscated emails): the last ``pii_holdback``
  original characters (default 64), since their patterns have no index to bound them. An
  entity longer than that may be cut (its first characters emitted); set it larger if you
  need long IBANs intact, or to 0 to protect only indexed identifiers.

A finding that touches the end of what has arrived is undecided (the next chunk may extend it)
and is held whole; a finding is never split by the release point. ``flush`` decides the rest.
If the policy blocks a finding, the filter emits the block message once and then nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from guardrails.guard import Finding, Guard
from guardrails.normalize import normalize
from guardrails.policy import Action


class StreamFilter:
    """Incremental filter: ``push`` chunks, get back the text that is safe to show."""

    def __init__(self, guard: Guard, *, pii_holdback: int = 64, context: int = 64) -> None:
        """Args:
            guard: the guard whose detectors and policy are applied.
            pii_holdback: original characters held back for non-index findings.
            context: already-released characters kept (in memory) as left context, so that
                atoms and patterns see the same neighbourhood as in the whole text.
        """
        self.guard = guard
        self.pii_holdback = max(0, pii_holdback)
        self.context = max(1, context)
        self._ctx = ""
        self._pending = ""
        self._released = 0  # original characters decided so far
        self._findings: list[Finding] = []
        self.blocked = False

    @property
    def held(self) -> str:
        """The text held back right now (not yet shown)."""
        return self._pending

    @property
    def released(self) -> int:
        """How many original characters have been decided (shown redacted or as they are)."""
        return self._released

    @property
    def findings(self) -> list[Finding]:
        """Findings so far, with offsets into the whole stream."""
        return list(self._findings)

    def push(self, chunk: str) -> str:
        """Add a chunk; return the newly decided text (possibly empty), filtered."""
        if self.blocked:
            return ""
        self._pending += chunk
        if len(self._pending) <= self.pii_holdback:
            return ""  # nothing can be released yet: skip the analysis
        return self._release(final=False)

    def flush(self) -> str:
        """End of stream: decide and return everything still held."""
        if self.blocked or not self._pending:
            return ""
        return self._release(final=True)

    def _release(self, *, final: bool) -> str:
        text = self._ctx + self._pending
        off, n = len(self._ctx), len(text)
        norm = normalize(text)
        findings = [f for f in self.guard.analyze_normalized(norm) if f.end > off]
        cut = n
        if not final:
            cut = n - self.pii_holdback
            if self.guard.index is not None:
                cut = min(cut, self.guard.index.pending_from(norm))
            for f in findings:
                if f.end >= n:  # touches the end: the next chunk may extend it
                    cut = min(cut, f.start)
            cut = max(cut, off)
            moved = True
            while moved:  # never split a finding
                moved = False
                for f in findings:
                    if max(f.start, off) < cut < f.end:
                        cut, moved = max(f.start, off), True
        if cut <= off:
            return ""
        done = [replace(f, start=max(f.start, off) - off, end=f.end - off)
                for f in findings if max(f.start, off) < cut]
        base = self._released
        self._findings.extend(replace(f, start=f.start + base, end=f.end + base) for f in done)
        self._released += cut - off
        self._ctx = text[:cut][-self.context:]
        self._pending = text[cut:]
        if any(f.action is Action.BLOCK for f in done):
            self.blocked = True
            self._pending = ""
            return self.guard.policy.block_message
        return self.guard.apply(text[off:cut], done).text


def filter_stream(chunks: Iterable[str], guard: Guard, *, pii_holdback: int = 64
                  ) -> Iterator[str]:
    """Filter an iterator of text chunks; yields non-empty safe pieces, flushing at the end."""
    f = StreamFilter(guard, pii_holdback=pii_holdback)
    for chunk in chunks:
        out = f.push(chunk)
        if out:
            yield out
    out = f.flush()
    if out:
        yield out
