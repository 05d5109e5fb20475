"""The guard: offline PII detection, the forgotten-subject index, and a policy.

Three detectors run on one text: Presidio's pattern recognizers on the original text, an
obfuscated-email recognizer and the forgotten-subject index on its normalised form (see
:mod:`guardrails.normalize`; the text is normalised once and shared). Every finding carries
its explanation: the recognizer, the score, the normalisation steps needed to see it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from guardrails.index import LINE_BREAK, ForgottenIndex
from guardrails.normalize import Normalized, normalize, steps_used
from guardrails.policy import FORGOTTEN, Action, Policy

if TYPE_CHECKING:  # pragma: no cover
    from presidio_analyzer import AnalyzerEngine

# Obfuscated emails, matched on normalised text (spaces collapsed, case folded, homoglyphs
# folded): "j o h n @ e x a m p l e . c o m", "john (at) example [dot] com",
# "john at example dot com", "jоhn@exаmple.com" with Cyrillic letters.
_C = r"[a-z0-9]"
_SPACED = rf"{_C}(?: {_C}){{2,}}"
_LOCAL = r"[a-z0-9](?:[a-z0-9_%+-]|\.(?=[a-z0-9]))*"
_LABEL = rf"(?:{_SPACED}|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)"
_AT = r"(?P<at> ?@ ?| ?[(\[{<] ?at ?[)\]}>] ?| at )"
_DOT = r"(?: ?\. ?| ?[(\[{<] ?dot ?[)\]}>] ?| dot )"
_TLD = r"(?:[a-z](?: [a-z])+|[a-z]{2,24})"
_SEGMENT = rf"(?:{_SPACED}|{_LOCAL})"
_OBF_EMAIL = re.compile(
    rf"(?<![a-z0-9@._%+-]){_SEGMENT}(?:{_DOT}{_SEGMENT})*{_AT}(?:{_LABEL}{_DOT})+{_TLD}"
    r"(?![a-z0-9])"
)
_OBF_HINT = re.compile(r"@|\bat\b")
_PLAIN_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
OBFUSCATED_EMAIL = "ObfuscatedEmailRecognizer"
INDEX_RECOGNIZER = "ForgottenIndex"


@dataclass(frozen=True)
class Explanation:
    """Why a span was found.

    Attributes:
        recognizer: the recognizer's name (Presidio's, ``ObfuscatedEmailRecognizer`` or
            ``ForgottenIndex``).
        score: its confidence in [0, 1].
        normalisation: the normalisation steps needed to see the span (empty when the
            recognizer matched the original text).
        detail: one line in words; never contains the matched text.
    """

    recognizer: str
    score: float
    normalisation: tuple[str, ...]
    detail: str


@dataclass(frozen=True)
class Finding:
    """A span of the original text that holds personal data, and what the policy does."""

    entity: str
    start: int
    end: int
    score: float
    action: Action
    explanation: Explanation


@dataclass(frozen=True)
class GuardResult:
    """The safe text and the findings behind it."""

    text: str
    findings: tuple[Finding, ...]
    blocked: bool


class Guard:
    """Finds personal data and forgotten subjects in text and applies a policy."""

    def __init__(self, index: ForgottenIndex | None = None, *, policy: Policy | None = None,
                 analyzer: AnalyzerEngine | None = None, use_presidio: bool = True,
                 language: str = "en") -> None:
        """Args:
            index: the forgotten-subject index (none: generic PII only).
            policy: per-entity actions (default :class:`Policy`: redact all but dates, URLs).
            analyzer: a Presidio analyzer; default: the cached offline one.
            use_presidio: run Presidio's recognizers (off: index and obfuscated emails only).
            language: language passed to Presidio.
        """
        self.index = index
        self.policy = policy or Policy()
        self.language = language
        self.use_presidio = use_presidio
        self._analyzer = analyzer

    @property
    def analyzer(self) -> AnalyzerEngine:
        """The Presidio analyzer (built on first use, offline)."""
        if self._analyzer is None:
            from guardrails.presidio import build_analyzer

            self._analyzer = build_analyzer(self.language)
        return self._analyzer

    def analyze(self, text: str) -> list[Finding]:
        """Every finding scoring at least ``policy.min_score``, sorted by position."""
        return self.analyze_normalized(normalize(text))

    def analyze_normalized(self, norm: Normalized) -> list[Finding]:
        """Like :meth:`analyze` on an already normalised text."""
        text = norm.original
        out: list[Finding] = []
        if self.index is not None:
            for m in self.index.find_normalized(norm):
                out.append(self._finding(FORGOTTEN, m.start, m.end, 1.0, INDEX_RECOGNIZER,
                                         m.normalisation,
                                         f"keyed hash of a {m.kind} form of subject {m.ref}"))
        if _OBF_HINT.search(norm.text):
            out.extend(self._obfuscated_emails(norm))
        if self.use_presidio and text.strip():
            for r in self.analyzer.analyze(text=text, language=self.language,
                                           score_threshold=self.policy.min_score):
                name = (r.recognition_metadata or {}).get("recognizer_name", "presidio")
                out.append(self._finding(r.entity_type, r.start, r.end, float(r.score), name,
                                         (), "Presidio pattern recognizer on the original text"))
        out = [part for f in out if f.score >= self.policy.min_score
               for part in _within_lines(text, f)]
        return sorted(out, key=lambda f: (f.start, -f.end, f.entity))

    def _finding(self, entity: str, start: int, end: int, score: float, recognizer: str,
                 steps: tuple[str, ...], detail: str) -> Finding:
        return Finding(entity, start, end, score, self.policy.action_for(entity),
                       Explanation(recognizer, score, steps, detail))

    def _obfuscated_emails(self, norm: Normalized) -> list[Finding]:
        out = []
        pos = 0
        while m := _OBF_EMAIL.search(norm.text, pos):
            # "look at example.com" reads like an email with a bare "at": too weak alone,
            # and the real address may start after that "at" ("me at a n n @ x . org").
            weak = m.group("at") == " at " and " dot " not in m.group()
            pos = m.end("at") if weak else m.end()
            start, end = norm.span(m.start(), m.end())
            original = norm.original[start:end]
            if _PLAIN_EMAIL.fullmatch(original):
                continue  # an ordinary email: Presidio's EmailRecognizer reports it
            score = 0.35 if weak else 0.85
            out.append(self._finding("EMAIL_ADDRESS", start, end, score, OBFUSCATED_EMAIL,
                                     steps_used(original),
                                     "email written with spaces, at/dot words or look-alikes"))
        return out

    def apply(self, text: str, findings: list[Finding]) -> GuardResult:
        """Apply the policy's actions to ``findings`` of ``text``."""
        findings = tuple(findings)
        if any(f.action is Action.BLOCK for f in findings):
            return GuardResult(self.policy.block_message, findings, True)
        return GuardResult(self._redact(text, [f for f in findings if f.action is Action.REDACT]),
                           findings, False)

    def check(self, text: str) -> GuardResult:
        """Analyze ``text`` and apply the policy."""
        return self.apply(text, self.analyze(text))

    def redact(self, text: str) -> str:
        """The safe text: spans redacted, or the block message when the policy blocks."""
        return self.check(text).text

    def _redact(self, text: str, findings: list[Finding]) -> str:
        if not findings:
            return text
        if not self.use_presidio:  # importing Presidio costs seconds (it imports transformers)
            return replace_spans(text, merge_spans(findings, text), self.policy.placeholder)
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

        from guardrails.presidio import build_anonymizer

        merged = merge_spans(findings, text)
        results = [RecognizerResult(f.entity, f.start, f.end, f.score) for f in merged]
        operators = {f.entity: OperatorConfig(
            "replace", {"new_value": self.policy.placeholder.format(entity=f.entity)})
            for f in merged}
        return build_anonymizer().anonymize(text, results, operators).text


def _within_lines(text: str, f: Finding) -> list[Finding]:
    """``f`` cut at line breaks: one finding per line it touches, the breaks left out, so a
    redaction never removes a line break (a line-oriented filter keeps its line count)."""
    if not LINE_BREAK.search(text, f.start, f.end):
        return [f]
    parts, pos = [], f.start
    for m in LINE_BREAK.finditer(text, f.start, f.end):
        if m.start() > pos and text[pos:m.start()].strip():
            parts.append(replace(f, start=pos, end=m.start()))
        pos = m.end()
    if f.end > pos and text[pos:f.end].strip():
        parts.append(replace(f, start=pos, end=f.end))
    return parts


def replace_spans(text: str, spans: list[Finding], placeholder: str) -> str:
    """Replace non-overlapping, sorted spans with ``placeholder.format(entity=...)``."""
    out, pos = [], 0
    for f in spans:
        out += [text[pos:f.start], placeholder.format(entity=f.entity)]
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


def merge_spans(findings: list[Finding], text: str | None = None) -> list[Finding]:
    """Non-overlapping spans to redact.

    Forgotten-subject matches are replaced each on its own: overlapping ones are not united
    (two adjacent names read as one reversed name across the text between them, "Ann Lee --
    Ann Lee", would otherwise swallow that text), see :func:`_each_on_its_own`. Other
    findings are united with what they overlap; the union keeps the most specific entity (a
    forgotten-subject match wins over any other kind, then the higher score).
    """
    forgotten = [_trim(f, text) for f in findings if f.entity == FORGOTTEN]
    forgotten = _each_on_its_own([f for f in forgotten if f.start < f.end], text)
    return _unite(forgotten + [f for f in findings if f.entity != FORGOTTEN])


def _trim(f: Finding, text: str | None) -> Finding:
    """A match without its leading and trailing separators (they are no part of an identifier;
    a match read as "-- Ann" must not win over the "Ann Lee" that starts inside it)."""
    if text is None:
        return f
    start, end = f.start, f.end
    while start < end and _separator(text[start]):
        start += 1
    while end > start and _separator(text[end - 1]):
        end -= 1
    return replace(f, start=start, end=end)


def _separator(ch: str) -> bool:
    """Whitespace or punctuation (never a letter, digit or combining mark of an identifier)."""
    return ch.isspace() or unicodedata.category(ch)[0] in "PZ"


def _rank(f: Finding) -> tuple[bool, float]:
    return (f.entity == FORGOTTEN, f.score)


def _unite(findings: list[Finding]) -> list[Finding]:
    out: list[Finding] = []
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        if out and f.start < out[-1].end:
            last = out[-1]
            best = max(last, f, key=_rank)
            out[-1] = replace(best, start=last.start, end=max(last.end, f.end))
        else:
            out.append(f)
    return out


def _each_on_its_own(matches: list[Finding], text: str | None) -> list[Finding]:
    """The leftmost, longest match is kept, then the next that does not overlap it, and so on.

    What a dropped match covers beyond the kept ones is still redacted when it holds a letter
    or a digit (never when it is only separators; without ``text``, always), so no part of an
    identifier is shown.
    """
    kept: list[Finding] = []
    dropped: list[Finding] = []
    for f in sorted(matches, key=lambda f: (f.start, -f.end, -f.score)):
        (dropped if kept and f.start < kept[-1].end else kept).append(f)
    rest: list[Finding] = []
    for f in dropped:
        pos = f.start
        for k in kept:
            if k.end <= pos or k.start >= f.end:
                continue
            if k.start > pos:
                rest.append(replace(f, start=pos, end=k.start))
            pos = max(pos, k.end)
        if pos < f.end:
            rest.append(replace(f, start=pos, end=f.end))
    rest = [f for f in rest if text is None or any(c.isalnum() for c in text[f.start:f.end])]
    return kept + _unite(rest)
