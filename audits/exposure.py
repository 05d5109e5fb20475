"""Exposure (Secret Sharer, Carlini et al. 2019) of each of the subject's identifiers.

For an identifier, ``N`` alternatives of the same format are drawn (:class:`FakeMaker`); each
candidate's log-likelihood as the continuation of every prefix the identifier follows in the
subject's records is averaged over those prefixes; the rank of the true value among the
``N + 1`` candidates gives exposure in bits and a p-value. Under the null hypothesis (the model
never saw the value) the true value is exchangeable with the alternatives.

Two-sided: a true value ranked conspicuously *low* (the model avoids it; ``p_low``) is as
telling as one ranked high (``p_value``): an attacker picks the candidate the model avoids.

Calibrated (:func:`calibrate`): with a retrained control, every candidate's score is the
audited model's log-likelihood *minus the control's*. Whatever makes some values likelier to any
model trained on this kind of data (formats, other people's emails, common street names) is in
both terms and cancels; only what the audited model knows beyond the control remains. The true
value is then exchangeable with the fakes under "the audited model never saw it" even when the
fakes are not drawn exactly like real values, which lets emails, addresses and dates of birth be
tested. Without a control that exchangeability is assumed (digit strings only, by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from audits import metrics as M
from audits.extraction import Prompt
from audits.mia import ids_stats
from audits.prefixed import shared_prefix_logliks
from audits.records import mask
from audits.twins import FakeMaker


@dataclass
class IdentifierExposure:
    """One identifier's rank among its alternatives (evidence: scores and the candidates count)."""

    kind: str
    masked: str
    occurrences: int
    candidates: int
    rank: int
    exposure_bits: float
    p_value: float
    true_loglik: float
    alternatives_loglik_mean: float
    alternatives_loglik_max: float
    p_low: float = 1.0  # P(a fake ranks at least this LOW): small = the model avoids the value
    # Every candidate's score, true value first (for calibration; left out of reports).
    scores: list[float] = field(default_factory=list, repr=False)
    # The true value's score against the look-alikes' distribution: (true - mean) / std.
    # Far above 0: singled out as likely; far below: avoided (the issue-18 key: z = -6.5).
    z: float = 0.0


@dataclass
class ExposureResult:
    identifiers: list[IdentifierExposure] = field(default_factory=list)
    alternatives: int = 0
    alpha: float = 0.05
    bonferroni: bool = True
    seed: int = 0
    sides: int = 2  # 2: both tails fail; 1: only a high rank fails (robustness: recovery)
    calibrated_with: str | None = None  # "retrained": scores are audited minus control

    @property
    def threshold(self) -> float:
        """The p-value at or below which an identifier counts as exposed (or avoided)."""
        m = max(1, len(self.identifiers)) * self.sides
        return self.alpha / m if self.bonferroni else self.alpha / self.sides

    @property
    def fewest_alternatives(self) -> int:
        """The fewest look-alikes any identifier was ranked against (a format with fewer
        distinct values than asked for gives fewer), or the number asked for."""
        return min((i.candidates - 1 for i in self.identifiers), default=self.alternatives)

    @property
    def has_power(self) -> bool:
        """Whether every identifier's look-alikes can give a p-value at or below the threshold."""
        return M.smallest_p_value(max(1, self.fewest_alternatives)) <= self.threshold + 1e-12

    @property
    def min_p(self) -> float | None:
        return min((i.p_value for i in self.identifiers), default=None)

    @property
    def min_p_low(self) -> float | None:
        return min((i.p_low for i in self.identifiers), default=None)

    @property
    def exposed(self) -> int:
        """Identifiers ranked implausibly high: the model singles out the true value."""
        return sum(i.p_value <= self.threshold for i in self.identifiers)

    @property
    def avoided(self) -> int:
        """Identifiers ranked implausibly low (two-sided only): the model avoids the true value."""
        return sum(i.p_low <= self.threshold for i in self.identifiers) if self.sides == 2 else 0


def alternatives_for_power(configured: int, identifiers: int, *, alpha: float, sides: int,
                           bonferroni: bool = True) -> int:
    """``configured``, raised to the fewest fakes with which the test can reach its threshold."""
    per_test = alpha / (max(1, identifiers) * sides if bonferroni else sides)
    return max(configured, M.null_size_for_power(per_test))


def _identifier(e: IdentifierExposure, scores: np.ndarray) -> IdentifierExposure:
    """``e`` re-ranked on ``scores`` (true value first)."""
    n = len(scores)
    p_hi, p_lo = M.rank_p_values(scores[0], scores[1:])
    rank = M.rank_of_true(scores[0], scores[1:])
    return IdentifierExposure(e.kind, e.masked, e.occurrences, n, rank,
                              M.exposure_bits(rank, n), p_hi, e.true_loglik,
                              e.alternatives_loglik_mean, e.alternatives_loglik_max, p_lo,
                              [float(x) for x in scores], M.z_score(scores[0], scores[1:]))


def calibrate(audited: ExposureResult, control: ExposureResult) -> ExposureResult:
    """``audited`` re-ranked on (audited - control) log-likelihoods of the same candidates.

    Both results must come from the same prompts, seed and number of alternatives (the audit
    runs them so); identifiers are matched in order and checked by kind, mask and size.
    """
    out = ExposureResult(alternatives=audited.alternatives, alpha=audited.alpha,
                         bonferroni=audited.bonferroni, seed=audited.seed, sides=audited.sides,
                         calibrated_with="retrained")
    if len(audited.identifiers) != len(control.identifiers):
        raise ValueError("calibration needs the same identifiers in both exposure results")
    for a, c in zip(audited.identifiers, control.identifiers, strict=True):
        if (a.kind, a.masked, len(a.scores)) != (c.kind, c.masked, len(c.scores)):
            raise ValueError("calibration needs the same candidates in both exposure results")
        out.identifiers.append(_identifier(a, np.asarray(a.scores) - np.asarray(c.scores)))
    return out


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def token_ids(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """``tokenizer(text)["input_ids"]`` of each text: a Hugging Face tokenizer encodes the
    whole list in one call (the same ids: no padding, no truncation; its per-call overhead was
    a tenth of an audit's time), any other callable one text at a time."""
    from transformers import PreTrainedTokenizerBase

    if isinstance(tokenizer, PreTrainedTokenizerBase) and len(texts):
        return [list(x) for x in tokenizer(list(texts))["input_ids"]]
    return [tokenizer(t)["input_ids"] for t in texts]


def continuation_logliks(model, tokenizer, pairs: Sequence[tuple[str, str]], *,
                         batch_size: int = 128) -> np.ndarray:
    """``log p(continuation | prefix)`` of each ``(prefix, continuation)``, summed over tokens.

    The continuation's tokens are those after the longest common prefix with the prefix's own
    tokenization. Pairs with the same prefix are scored with the prefix computed once per batch
    (:mod:`audits.prefixed`); the rest in batched whole-sequence passes.
    """
    prefixes = sorted({p for p, _ in pairs})
    pre_ids = dict(zip(prefixes, token_ids(tokenizer, prefixes), strict=True))
    ids = token_ids(tokenizer, [p + c for p, c in pairs])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    # logprobs[t - 1] scores token t: the continuation starts after the shared tokens
    starts = [max(1, _common_prefix(pre_ids[p], x)) for (p, _), x in zip(pairs, ids, strict=True)]
    out = np.empty(len(pairs))  # (C,)
    by_prefix: dict[str, list[int]] = {}
    for j, (p, _) in enumerate(pairs):
        by_prefix.setdefault(p, []).append(j)
    whole: list[int] = []
    for js in by_prefix.values():
        got = shared_prefix_logliks(model, [ids[j] for j in js], [starts[j] for j in js],
                                    pad_id=pad, batch_size=batch_size)
        if got is None:
            whole.extend(js)
        else:
            out[js] = got
    if whole:
        stats = ids_stats(model, [ids[j] for j in whole], pad_id=pad, batch_size=batch_size,
                          moments=False)
        for j, s in zip(whole, stats, strict=True):
            out[j] = float(np.sum(s.logprobs[starts[j] - 1:]))
    return out


def run_exposure(model, tokenizer, prompts: Sequence[Prompt], *, alternatives: int = 199,
                 alpha: float = 0.05, bonferroni: bool = True, seed: int = 0,
                 batch_size: int = 128, sides: int = 2,
                 alternatives_by_kind: Mapping[str, int] | None = None) -> ExposureResult:
    """Rank each distinct identifier (kind, value) of ``prompts`` among ``alternatives`` fakes
    (``alternatives_by_kind[kind]`` for the kinds it names, e.g. 999 for secrets: the true
    key among 1,000 candidates), fewer only where the format has fewer distinct values."""
    groups: dict[tuple[str, str], list[Prompt]] = {}
    for p in prompts:
        groups.setdefault((p.kind, p.target.strip()), []).append(p)
    maker = FakeMaker(seed)
    res = ExposureResult(alternatives=alternatives, alpha=alpha, bonferroni=bonferroni,
                         seed=seed, sides=sides)
    for (kind, value), ps in groups.items():
        want = max(alternatives, (alternatives_by_kind or {}).get(kind, 0))
        alts: list[str] = []
        seen = {value}
        for _ in range(want * 20):
            if len(alts) == want:
                break
            a = maker(kind, value)
            if a not in seen:
                seen.add(a)
                alts.append(a)
        # (C,) mean over the identifier's prefixes of log p(candidate | prefix); true first.
        cands = [value] + alts
        pairs = [(p.prefix, p.target[: len(p.target) - len(p.target.lstrip())] + cand)
                 for p in ps for cand in cands]
        scores = continuation_logliks(model, tokenizer, pairs, batch_size=batch_size)
        scores = scores.reshape(len(ps), len(cands)).mean(0)  # (P, C) -> (C,)
        rank = M.rank_of_true(scores[0], scores[1:])
        n = len(alts) + 1
        res.identifiers.append(IdentifierExposure(
            kind, mask(value, kind), len(ps), n, rank, M.exposure_bits(rank, n),
            M.exposure_p_value(rank, n), float(scores[0]), float(scores[1:].mean()),
            float(scores[1:].max()), M.rank_p_values(scores[0], scores[1:])[1],
            [float(x) for x in scores], M.z_score(scores[0], scores[1:]),
        ))
    return res
