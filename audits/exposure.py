"""Exposure (Secret Sharer, Carlini et al. 2019) of each of the subject's identifiers.

For an identifier, ``N`` alternatives of the same format are drawn (:class:`FakeMaker`); each
candidate's log-likelihood as the continuation of every prefix the identifier follows in the
subject's records is averaged over those prefixes; the rank of the true value among the
``N + 1`` candidates gives exposure in bits and a p-value. Under the null hypothesis (the model
never saw the value) the true value is exchangeable with the alternatives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from audits import metrics as M
from audits.extraction import Prompt
from audits.mia import ids_stats
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


@dataclass
class ExposureResult:
    identifiers: list[IdentifierExposure] = field(default_factory=list)
    alternatives: int = 0
    alpha: float = 0.05
    bonferroni: bool = True
    seed: int = 0

    @property
    def threshold(self) -> float:
        """The p-value below which an identifier counts as exposed."""
        m = max(1, len(self.identifiers))
        return self.alpha / m if self.bonferroni else self.alpha

    @property
    def min_p(self) -> float | None:
        return min((i.p_value for i in self.identifiers), default=None)

    @property
    def exposed(self) -> int:
        return sum(i.p_value < self.threshold for i in self.identifiers)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def continuation_logliks(model, tokenizer, pairs: Sequence[tuple[str, str]], *,
                         batch_size: int = 128) -> np.ndarray:
    """``log p(continuation | prefix)`` of each ``(prefix, continuation)``, summed over tokens.

    One batched forward pass over every ``prefix + continuation``; the continuation's tokens
    are those after the longest common prefix with the prefix's own tokenization.
    """
    pre_ids = {p: tokenizer(p)["input_ids"] for p in {p for p, _ in pairs}}
    ids = [tokenizer(p + c)["input_ids"] for p, c in pairs]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    stats = ids_stats(model, ids, pad_id=pad, batch_size=batch_size, moments=False)
    out = np.empty(len(pairs))  # (C,)
    for j, ((p, _), x, s) in enumerate(zip(pairs, ids, stats, strict=True)):
        start = max(1, _common_prefix(pre_ids[p], x))  # logprobs[t - 1] scores token t
        out[j] = float(np.sum(s.logprobs[start - 1:]))
    return out


def run_exposure(model, tokenizer, prompts: Sequence[Prompt], *, alternatives: int = 199,
                 alpha: float = 0.05, bonferroni: bool = True, seed: int = 0,
                 batch_size: int = 128) -> ExposureResult:
    """Rank each distinct identifier (kind, value) of ``prompts`` among ``alternatives`` fakes."""
    groups: dict[tuple[str, str], list[Prompt]] = {}
    for p in prompts:
        groups.setdefault((p.kind, p.target.strip()), []).append(p)
    maker = FakeMaker(seed)
    res = ExposureResult(alternatives=alternatives, alpha=alpha, bonferroni=bonferroni,
                         seed=seed)
    for (kind, value), ps in groups.items():
        alts: list[str] = []
        seen = {value}
        for _ in range(alternatives * 20):
            if len(alts) == alternatives:
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
            float(scores[1:].max()),
        ))
    return res
