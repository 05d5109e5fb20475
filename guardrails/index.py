"""The forgotten-subject index: keyed hashes of identifier forms, never the identifiers.

``add`` folds each identifier into its compact forms (:mod:`guardrails.variants`) and keeps
only ``HMAC-SHA256(key, form)`` truncated to 128 bits. ``find`` folds the text the same way,
enumerates candidate windows of consecutive atoms (:func:`guardrails.normalize.atoms`) whose
compact length is one the index holds and whose first characters pass a keyed pre-filter,
hashes each and looks it up. Whoever holds the file but
not the key learns only how many forms there are and their lengths; with the key an attacker
can test guesses, so the key is kept apart from the file (``--key-file`` or an environment
variable in the command line).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from guardrails.errors import (
    IndexFormatError,
    IndexKeyError,
    IndexNotFoundError,
    InvalidIdentifierError,
)
from guardrails.normalize import Normalized, atoms, normalize, steps_used
from guardrails.variants import FORMS

FORMAT = "forget-suite.guard-index"
VERSION = 1
MIN_KEY_BYTES = 16
# Largest run of separators (normalised characters, spaces already collapsed) allowed between
# two atoms of one identifier: " [dot] " is 7. A longer run ends any identifier.
GAP = 8
_DOMAIN = b"forget-suite/guard-index/v1\x00"
# Line boundaries as ``str.splitlines`` sees them: a match may run across one (a name broken
# over two lines), but its redaction is cut there so the break survives (guardrails.guard).
LINE_BREAK = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_PREFIX_DOMAIN = b"forget-suite/guard-index/prefix\x00"
# Pre-filter: a 16-bit keyed tag (BLAKE2s under a key derived from the index key) of the first
# 6 characters of each form (of the whole form when shorter). A window of 6+ characters whose first 6 have no
# stored tag is dropped before its full HMAC is computed (fewer than 1 in 100 pass with a few
# hundred forms), which keeps lookups cheap. 65,536 tags over ~2 billion possible prefixes:
# even with the key, a tag says little about a prefix; without it, nothing.
PREFIX_CHARS = 6
TAG_BITS = 16
# Second level: a 16-bit keyed tag (another derived key) of the first 12 characters of each
# form of 12 or more. A window that passed the first level is dropped once its first 12
# characters have no stored tag: with many subjects, windows that merely share a first name's
# first 6 characters with one of them stop there instead of running to the longest form.
# Exact (every stored form's own tags are stored); an index file without it skips the level.
_PREFIX2_DOMAIN = b"forget-suite/guard-index/prefix12\x00"
PREFIX2_CHARS = 12
_KEY_CHECK = b"forget-suite/guard-index/key-check"
_REF = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True)
class Identifiers:
    """A subject's identifiers, in plaintext, as given to :meth:`ForgottenIndex.add`."""

    names: Sequence[str] = ()
    emails: Sequence[str] = ()
    phones: Sequence[str] = ()
    ids: Sequence[str] = ()

    @classmethod
    def from_mapping(cls, m: Mapping[str, str | Sequence[str]]) -> Identifiers:
        """Build from ``{"name": ..., "email": [...], "phone": ..., "id": ...}`` (either form)."""
        def many(*keys: str) -> tuple[str, ...]:
            out: list[str] = []
            for k in keys:
                v = m.get(k)
                if v:
                    out.extend([v] if isinstance(v, str) else list(v))
            return tuple(out)

        unknown = set(m) - {"name", "names", "email", "emails", "phone", "phones", "id", "ids"}
        if unknown:
            raise InvalidIdentifierError(
                f"unknown identifier kinds {sorted(unknown)}; use name, email, phone, id"
            )
        return cls(many("name", "names"), many("email", "emails"), many("phone", "phones"),
                   many("id", "ids"))

    def by_kind(self) -> Iterable[tuple[str, str]]:
        """``(kind, value)`` pairs."""
        for kind, values in (("name", self.names), ("email", self.emails),
                             ("phone", self.phones), ("id", self.ids)):
            for v in values:
                yield kind, v


@dataclass(frozen=True)
class IndexMatch:
    """One match of the index in a text.

    Attributes:
        start: start offset in the original text.
        end: end offset in the original text.
        kind: which kind of identifier matched (name, email, phone, id).
        ref: the opaque reference of the subject it belongs to.
        normalisation: the normalisation steps that were needed to see the match.
    """

    start: int
    end: int
    kind: str
    ref: str
    normalisation: tuple[str, ...] = field(default=())


class ForgottenIndex:
    """Keyed hashes of the normalised forms of forgotten subjects' identifiers."""

    def __init__(self, key: bytes) -> None:
        """Create an empty index under ``key`` (at least 16 bytes; keep it secret)."""
        if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_BYTES:
            raise IndexKeyError(
                f"the index key must be at least {MIN_KEY_BYTES} bytes; "
                "make one with ForgottenIndex.generate_key()"
            )
        self._hmac = hmac.new(bytes(key), _DOMAIN, hashlib.sha256)
        self._prefix_key = hmac.new(bytes(key), _PREFIX_DOMAIN, hashlib.sha256).digest()
        self._prefix2_key = hmac.new(bytes(key), _PREFIX2_DOMAIN, hashlib.sha256).digest()
        self._tags: set[int] = set()
        self._tags2: set[int] | None = set()  # None: read from a file without the level
        self._check = hmac.new(bytes(key), _KEY_CHECK, hashlib.sha256).hexdigest()[:16]
        self._entries: dict[bytes, set[tuple[str, str]]] = {}
        self._lengths: set[int] = set()
        self._refs: set[str] = set()
        self._generation = 0  # bumped by add: a FindMemo of an older generation is cleared

    @staticmethod
    def generate_key() -> bytes:
        """A fresh random 32-byte key."""
        return secrets.token_bytes(32)

    def _digest(self, form: str) -> bytes:
        h = self._hmac.copy()
        h.update(form.encode("utf-8"))
        return h.digest()[:16]

    def _tag(self, prefix: str, key: bytes | None = None) -> int:
        d = hashlib.blake2s(prefix.encode("utf-8"), key=key or self._prefix_key,
                            digest_size=4).digest()
        return int.from_bytes(d, "big") >> (32 - TAG_BITS)

    @property
    def max_len(self) -> int:
        """Length of the longest stored compact form (0 when empty)."""
        return max(self._lengths, default=0)

    @property
    def refs(self) -> frozenset[str]:
        """The subjects' opaque references."""
        return frozenset(self._refs)

    def __len__(self) -> int:
        """Number of stored (form, subject) entries."""
        return sum(len(v) for v in self._entries.values())

    def add(self, identifiers: Identifiers | Mapping[str, str | Sequence[str]], *,
            ref: str | None = None) -> str:
        """Add a subject's identifiers; returns the subject's opaque reference.

        Args:
            identifiers: names, emails, phone numbers and ids, in plaintext (not kept).
            ref: an opaque reference (e.g. a ledger request id, never personal data); a
                random one is made when omitted.
        """
        if not isinstance(identifiers, Identifiers):
            identifiers = Identifiers.from_mapping(identifiers)
        ref = ref or secrets.token_hex(8)
        if not _REF.match(ref):
            raise InvalidIdentifierError(
                "a subject ref must be 1-64 characters of letters, digits and _.:- "
                "(use an opaque id such as the ledger request id)"
            )
        pairs = list(identifiers.by_kind())
        if not pairs:
            raise InvalidIdentifierError("no identifiers given; give a name, email, phone or id")
        forms = [(kind, form) for kind, value in pairs for form in FORMS[kind](value)]
        for kind, form in forms:
            self._entries.setdefault(self._digest(form), set()).add((kind, ref))
            self._lengths.add(len(form))
            self._tags.add(self._tag(form[:PREFIX_CHARS]))  # short forms: the whole form
            if len(form) >= PREFIX2_CHARS and self._tags2 is not None:
                self._tags2.add(self._tag(form[:PREFIX2_CHARS], self._prefix2_key))
        self._refs.add(ref)
        self._generation += 1
        return ref

    def contains(self, form: str) -> bool:
        """Whether a compact form is stored (for tests and tooling)."""
        return self._digest(form) in self._entries

    def find(self, text: str) -> list[IndexMatch]:
        """Spans of ``text`` (original offsets) where an indexed identifier appears."""
        return self.find_normalized(normalize(text))

    def find_normalized(self, norm: Normalized, *, memo: FindMemo | None = None
                        ) -> list[IndexMatch]:
        """Like :meth:`find` on an already normalised text.

        ``memo`` (from :meth:`new_memo`) keeps the pre-filter's verdicts and the look-ups
        across calls, for one index scanning many texts (a corpus pass); the same matches.
        """
        if not self._entries:
            return []
        if memo is not None and memo.generation != self._generation:
            memo.clear(self._generation)
        ats = atoms(norm.text)
        a_start = [a.start for a in ats]
        a_end = [a.end for a in ats]
        reads = [a.readings for a in ats]
        n = len(ats)
        lengths, max_len, entries = self._lengths, self.max_len, self._entries
        # tag_of: prefix -> passes the pre-filter; hits: form -> its entries (this call only,
        # or the memo's)
        tags = self._tags
        tag_of: dict[str, bool] = memo.tags if memo is not None else {}
        hit_of: dict[str, set[tuple[str, str]] | None] | None = (
            memo.hits if memo is not None else None)
        spans: dict[tuple[int, int], set[tuple[str, str]]] = {}
        for i in range(n):
            first = reads[i][-1]
            if first in ("", "@") or not self._may_start(first, tags, tag_of):
                continue
            # states: (compact string so far, whether the last atom read as empty)
            states = [(first, False)]
            j = i
            while True:
                for s, empty in states:
                    if (not empty and len(s) in lengths
                            and (len(s) >= PREFIX_CHARS or self._may_start(s, tags, tag_of, True))):
                        if hit_of is None:
                            hit = entries.get(self._digest(s))
                        elif s in hit_of:
                            hit = hit_of[s]
                        else:
                            hit = hit_of[s] = entries.get(self._digest(s))
                        if hit:
                            spans.setdefault((a_start[i], a_end[j]), set()).update(hit)
                j += 1
                if j == n or a_start[j] - a_end[j - 1] > GAP:
                    break
                rj = reads[j]
                if len(rj) == 1 and len(states) == 1:  # the common case: one reading
                    s = states[0][0] + rj[0]
                    if len(s) > max_len or not self._may_start(s, tags, tag_of):
                        break
                    states = [(s, False)]
                    continue
                nxt = set()
                for s, empty in states:
                    for r in rj:
                        if not r:
                            if not empty:  # at most one "dot" read as nothing in a row
                                nxt.add((s, True))
                        elif len(s) + len(r) <= max_len and self._may_start(s + r, tags, tag_of):
                            nxt.add((s + r, False))
                if not nxt:
                    break
                states = list(nxt)
        if memo is not None:
            memo.trim()
        return _maximal(norm, spans)

    def new_memo(self, limit: int = 1_000_000) -> FindMemo:
        """A :class:`FindMemo` for :meth:`find_normalized` calls on this index."""
        return FindMemo(self._generation, limit)

    def _may_start(self, s: str, tags: set[int], cache: dict[str, bool],
                   whole: bool = False) -> bool:
        """Pre-filter: can a stored form begin with ``s`` (decided once ``s`` has 6 characters)?

        With ``whole``, whether ``s`` (shorter than 6) may itself be a stored form.
        """
        if len(s) < PREFIX_CHARS and not whole:
            return True
        p = s[:PREFIX_CHARS]
        ok = cache.get(p)
        if ok is None:
            ok = cache[p] = self._tag(p) in tags
        if ok and len(s) >= PREFIX2_CHARS and self._tags2 is not None:
            p = s[:PREFIX2_CHARS]  # the second level (keys of 12 never clash with 6 or less)
            ok = cache.get(p)
            if ok is None:
                ok = cache[p] = self._tag(p, self._prefix2_key) in self._tags2
        return ok

    def pending_from(self, norm: Normalized) -> int:
        """Original offset from which ``norm``'s text could still begin an identifier.

        Text before it is decided: every window starting there either ended before the end
        of the text (so :meth:`find` sees it whole) or is already longer than any stored
        form. This is the streaming hold-back; see :mod:`guardrails.stream` for the bound.
        """
        n = len(norm.original)
        ats = atoms(norm.text)
        max_len = self.max_len
        if not ats or not max_len or len(norm.text) - ats[-1].end > GAP:
            return n
        hold = n
        inf = max_len + 1
        best_nonempty, best_empty = 0, 0  # minimal compact length from atom i+1 to the end
        for i in range(len(ats) - 1, -1, -1):
            a = ats[i]
            if i < len(ats) - 1 and ats[i + 1].start - a.end > GAP:
                break
            rest = min(best_nonempty, best_empty)
            shortest = min((len(r) for r in a.readings if r), default=inf)
            new_nonempty = shortest + rest
            new_empty = best_nonempty if "" in a.readings else inf
            best_nonempty, best_empty = new_nonempty, new_empty
            if min(best_nonempty, best_empty) > max_len:
                break
            if a.can_start and len(a.readings[-1]) + rest <= max_len:
                hold = norm.starts[a.start]
        return hold

    # ---- persistence -------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The index as a JSON-able dict: hashes, kinds, refs, lengths; no plaintext."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "hash": "HMAC-SHA256, first 128 bits, hex",
            "key_check": self._check,
            "lengths": sorted(self._lengths),
            "prefix_tags": sorted(self._tags),
            **({"prefix_tags_12": sorted(self._tags2)} if self._tags2 is not None else {}),
            "refs": sorted(self._refs),
            "entries": {d.hex(): sorted(map(list, v)) for d, v in sorted(self._entries.items())},
        }

    def save(self, path: Path | str) -> Path:
        """Write the index to ``path`` atomically (JSON, no plaintext identifier)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: Path | str, key: bytes) -> ForgottenIndex:
        """Read an index written by :meth:`save`; the key must be the one it was built with."""
        path = Path(path)
        if not path.is_file():
            raise IndexNotFoundError(
                f"no index file at {path}; create one with `forget guard add-subject --index {path}`"
            )
        try:
            data = json.loads(path.read_text())
            ok = data.get("format") == FORMAT
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            raise IndexFormatError(f"{path} is not a guardrails index file")
        if data.get("version") != VERSION:
            raise IndexFormatError(
                f"{path} has index version {data.get('version')}; this version reads {VERSION}"
            )
        return cls.from_dict(data, key, where=str(path))

    @classmethod
    def from_dict(cls, data: Mapping, key: bytes, *, where: str = "the index") -> ForgottenIndex:
        """Rebuild an index from :meth:`to_dict` and the key it was built with (e.g. in a
        worker process that receives the digests and the key, never the identifiers)."""
        index = cls(key)
        if data["key_check"] != index._check:
            raise IndexKeyError(
                f"the key does not match the one {where} was built with; pass the original key"
            )
        index._lengths = set(data["lengths"])
        index._tags = set(data["prefix_tags"])
        index._tags2 = set(data["prefix_tags_12"]) if "prefix_tags_12" in data else None
        index._refs = set(data["refs"])
        index._entries = {bytes.fromhex(d): {(k, r) for k, r in v}
                          for d, v in data["entries"].items()}
        return index


class FindMemo:
    """Pre-filter verdicts and look-ups of one index kept across ``find_normalized`` calls.

    It holds windows of the texts scanned (plaintext of the corpus, in this process's
    memory only), so it is meant for a corpus pass, not for a guard over model outputs.
    Each dict is emptied when it passes ``limit`` entries (bounded memory).
    """

    def __init__(self, generation: int, limit: int) -> None:
        self.generation = generation
        self.limit = limit
        self.tags: dict[str, bool] = {}
        self.hits: dict[str, set[tuple[str, str]] | None] = {}

    def clear(self, generation: int) -> None:
        self.generation = generation
        self.tags.clear()
        self.hits.clear()

    def trim(self) -> None:
        if len(self.tags) > self.limit:
            self.tags.clear()
        if len(self.hits) > self.limit:
            self.hits.clear()


def _maximal(norm: Normalized, spans: dict[tuple[int, int], set[tuple[str, str]]]
             ) -> list[IndexMatch]:
    """Drop spans contained in a longer one; map the rest to original offsets."""
    out: list[IndexMatch] = []
    end = -1
    for (s, e), hits in sorted(spans.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
        if e <= end:
            continue
        end = e
        start, stop = norm.span(s, e)
        steps = steps_used(norm.original[start:stop])
        for kind, ref in sorted(hits):
            out.append(IndexMatch(start, stop, kind, ref, steps))
    return out
