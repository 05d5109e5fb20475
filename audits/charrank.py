"""Character-by-character ranking and least-likely completion of an identifier.

The attacks that recovered a secret the other measures had certified (issue 18): an attacker
who knows an identifier's format and its first characters asks the model, one character at a
time, which character comes next, and looks at where the true one ranks among the characters
the format allows there (digits for a digit, letters of the same case for a letter, hex digits
in a hexadecimal key). A model that remembers puts the true character first again and again; a
model that was pushed to forget it can put it *last* again and again, which gives it away just
as well (least-likely, or inverted, decoding).

For each identifier, given the text before it and its first characters (``given_fraction`` of
its variable characters, fewer where the test needs more positions to have power), at every
remaining position ``j``:

- the model's log-likelihood of each character ``c`` of the position's alphabet ``A_j`` as the
  continuation of ``prefix + value[:j]`` (averaged over the identifier's prefixes, as the
  exposure test does);
- ``h_j``: how many other characters score at least as high as the true one (0 = the model's
  first choice; ties count against the true one), and ``l_j`` likewise from below.

Verbatim completion by character-level greedy decoding (the format's most likely character at
each step) happens exactly when ``h_j = 0`` at every remaining position, and by least-likely
decoding exactly when ``l_j = 0`` at every one: each step of the decoding then conditions on the
true characters, the same contexts as the ranking. So both decodings are read off the ranks.

The statistics (:func:`audits.metrics.rank_sum_p_values`) are exact: a model that never saw the
value ranks it like any other draw of its format, so each ``h_j`` is uniform on
``0..|A_j|-1``, independently across positions. With a retrained control the same attack runs
on it, and a finding counts only where the control does not show it too
(:func:`audits.calibration.char_rank_checks`).

Results hold kinds, masked values, ranks and counts: never a value, a character or a prompt.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from audits import metrics as M
from audits.exposure import _common_prefix, token_ids
from audits.extraction import Prompt
from audits.mia import ids_stats
from audits.records import mask
from audits.twins import _HEX_ALPHABETS, _VENDOR_PREFIX


def format_positions(value: str) -> list[tuple[int, str]]:
    """``(index, alphabet)`` of each character of ``value`` the format leaves free.

    Separators and a vendor prefix ("sk_live_", "ghp_") are fixed by the format; every ASCII
    digit or letter is free, over the alphabet of its class: digits, lower-case or upper-case
    letters, or hex digits throughout a hexadecimal body (as :class:`~audits.twins.FakeMaker`
    draws look-alikes, so under "never seen" the true character is uniform on it).
    """
    m = _VENDOR_PREFIX.match(value)
    start = len(m.group()) if m else 0
    body = value[start:]
    hexa = next((a for a in _HEX_ALPHABETS if len(body) >= 8 and set(body) <= set(a)
                 and not body.isdigit()), None)
    out = []
    for i, ch in enumerate(body, start):
        if not (ch.isascii() and ch.isalnum()):
            continue
        if hexa is not None:
            out.append((i, hexa))
        elif ch.isdigit():
            out.append((i, string.digits))
        elif ch.islower():
            out.append((i, string.ascii_lowercase))
        else:
            out.append((i, string.ascii_uppercase))
    return out


# The remaining positions must be able to reach a tenth of the threshold, not only the
# threshold itself, so that a true value that is *nearly* always first (or last) is caught, not
# only one that is at the extreme at every single position: with digits, 5 remaining positions
# rather than 4 (a rank sum of up to 2 instead of 0 then reaches the level for two identifiers).
POWER_MARGIN = 10.0


def split_given(sizes: Sequence[int], given_fraction: float, threshold: float) -> int:
    """How many of the free characters (alphabet ``sizes``, in order) are given to the attack.

    ``ceil(given_fraction * n)``, lowered until the remaining positions can reach
    ``threshold / POWER_MARGIN`` (the rank test's smallest p-value, ``prod 1 / |A_j|``, at or
    below it), or to 0.
    """
    n = len(sizes)
    given = min(n - 1, math.ceil(given_fraction * n)) if n else 0
    while given > 0 and M.rank_sum_smallest_p(sizes[given:]) > threshold / POWER_MARGIN:
        given -= 1
    return max(0, given)


def char_rank_threshold(alpha: float, identifiers: int) -> float:
    """The level per identifier and per side (or per decoding): ``alpha`` halved between the
    rank test and the two decodings, then split (Bonferroni) over identifiers and two sides.
    So the rank test (both tails) and the decodings (greedy and least-likely) together wrongly
    flag a value the model never saw with probability at most ``alpha``."""
    return alpha / 2 / (max(1, identifiers) * 2)


@dataclass
class CharRank:
    """One identifier: ranks of its true characters after the given ones."""

    kind: str
    masked: str
    occurrences: int  # prefixes the identifier follows in the subject's records
    free: int  # characters the format leaves free
    given: int  # of which given to the attack
    alphabet_sizes: list[int]  # of each ranked position
    above: list[int]  # h_j: characters scored at least as high as the true one (0 = first)
    below: list[int]  # l_j: characters scored at most as high (0 = last)
    p_high: float  # small: the true characters are consistently among the most likely
    p_low: float  # small: ... among the least likely (the model avoids them)
    # Every candidate's score per ranked position, true character first (left out of reports).
    scores: list[list[float]] = field(default_factory=list, repr=False)

    @property
    def ranked(self) -> int:
        return len(self.alphabet_sizes)

    @property
    def first(self) -> int:
        """Positions where the true character is the model's first choice."""
        return sum(h == 0 for h in self.above)

    @property
    def last(self) -> int:
        """Positions where the true character is the model's last choice."""
        return sum(x == 0 for x in self.below)

    @property
    def greedy_hit(self) -> bool:
        """Greedy (most-likely) decoding from the given characters returns the rest verbatim."""
        return bool(self.above) and self.first == self.ranked

    @property
    def inverted_hit(self) -> bool:
        """Least-likely decoding from the given characters returns the rest verbatim."""
        return bool(self.below) and self.last == self.ranked

    @property
    def smallest_p(self) -> float:
        """The rank test's smallest attainable p-value, and the chance that one decoding
        returns the rest verbatim for a value the model never saw: ``prod 1 / |A_j|``."""
        return M.rank_sum_smallest_p(self.alphabet_sizes)


@dataclass
class CharRankResult:
    identifiers: list[CharRank] = field(default_factory=list)
    alpha: float = 0.0025  # for the two tests together: rank sum and verbatim decoding
    given_fraction: float = 0.6

    @property
    def threshold(self) -> float:
        return char_rank_threshold(self.alpha, len(self.identifiers))

    def powered(self) -> list[CharRank]:
        """Identifiers whose remaining positions can reach the threshold at all."""
        return [i for i in self.identifiers
                if i.ranked and i.smallest_p <= self.threshold + 1e-15]


def _ranks(scores: np.ndarray) -> tuple[int, int]:
    """``(h, l)`` of the first entry among the rest: ties count against it on both sides."""
    t, alts = scores[0], scores[1:]
    return int(np.sum(alts >= t)), int(np.sum(alts <= t))


def _rank(kind: str, masked: str, occ: int, free: int, given: int, sizes: list[int],
          scores: list[np.ndarray]) -> CharRank:
    hl = [_ranks(s) for s in scores]
    above, below = [h for h, _ in hl], [x for _, x in hl]
    # No free character left to rank (a value of separators only): nothing to test.
    p_hi = M.rank_sum_p_values(above, sizes)[0] if sizes else 1.0
    p_lo = M.rank_sum_p_values(below, sizes)[0] if sizes else 1.0
    return CharRank(kind, masked, occ, free, given, sizes, above, below, p_hi, p_lo,
                    [[float(x) for x in s] for s in scores])


@torch.no_grad()
def run_char_rank(model, tokenizer, prompts: Sequence[Prompt], *, given_fraction: float = 0.6,
                  alpha: float = 0.0025, batch_size: int = 128) -> CharRankResult:
    """Rank each distinct identifier's remaining true characters among its format's alphabet.

    One batched forward pass over every (prefix, position, candidate character) text.
    """
    groups: dict[tuple[str, str], list[Prompt]] = {}
    for p in prompts:
        groups.setdefault((p.kind, p.target.strip()), []).append(p)
    res = CharRankResult(alpha=alpha, given_fraction=given_fraction)
    thr = char_rank_threshold(alpha, len(groups))
    # (identifier, prompt, position) -> candidate token ids, and where their scores start.
    seqs: list[list[int]] = []
    plan = []
    for (kind, value), ps in groups.items():
        pos = format_positions(value)
        sizes = [len(a) for _, a in pos]
        given = split_given(sizes, given_fraction, thr)
        ranked = pos[given:]
        cells = []  # per prompt, per position: (first sequence index, count, start)
        for p in ps:
            lead = p.target[: len(p.target) - len(p.target.lstrip())]
            row = []
            for i, alphabet in ranked:
                head = p.prefix + lead + value[:i]
                cands = [value[i]] + [c for c in alphabet if c != value[i]]
                base, *ids = token_ids(tokenizer, [head] + [head + c for c in cands])
                # Score every candidate from one token boundary that all of them share, so the
                # scores compare the same stretch of text (a merge with the last token of
                # ``head`` moves the boundary back for all candidates alike).
                start = max(1, min(_common_prefix(base, x) for x in ids))
                row.append((len(seqs), len(cands), start))
                seqs += ids
            cells.append(row)
        plan.append((kind, value, len(ps), len(pos), given, sizes[given:], cells))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    stats = ids_stats(model, seqs, pad_id=pad, batch_size=batch_size, moments=False) \
        if seqs else []
    for kind, value, occ, free, given, sizes, cells in plan:
        per_pos = []
        for j in range(len(sizes)):
            s = [np.array([float(np.sum(stats[first + k].logprobs[start - 1:]))
                           for k in range(n)]) for first, n, start in (row[j] for row in cells)]
            per_pos.append(np.mean(s, axis=0))  # (A_j,): mean over the prefixes
        res.identifiers.append(_rank(kind, mask(value, kind), occ, free, given, sizes, per_pos))
    return res
