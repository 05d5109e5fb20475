"""Membership inference: LOSS, zlib, Min-K%, Min-K%++ and reference-model scores.

Every score of a text comes from ONE batched forward pass of the audited model
(:func:`token_stats`): the token log-probabilities and, per position, the mean and standard
deviation of ``log p`` over the vocabulary. The pure formulas live in :mod:`audits.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from audits import metrics as M

ROC_POINTS = 101  # ROC curves are stored at this many FPR grid points


@dataclass
class TokenStats:
    """Per-token statistics of one text; ``n`` = tokens after ``<s>``."""

    logprobs: np.ndarray  # (n,) log p(x_t | x_<t)
    mu: np.ndarray | None = None  # (n,) E_{z~p}[log p(z | x_<t)]
    sigma: np.ndarray | None = None  # (n,) std_{z~p}[log p(z | x_<t)]


def _batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])  # little padding per batch
    return [order[b: b + batch_size] for b in range(0, len(order), batch_size)]


def token_stats(model, tokenizer, texts: Sequence[str], *, batch_size: int = 32,
                moments: bool = True) -> list[TokenStats]:
    """One forward pass per batch; per text, token log-probs and (optionally) vocab moments."""
    from transformers import PreTrainedTokenizerBase

    # A Hugging Face tokenizer encodes the whole list in one call (the same ids as one text at
    # a time: no padding, no truncation); any other callable one text at a time.
    if isinstance(tokenizer, PreTrainedTokenizerBase) and len(texts):
        ids = list(tokenizer(list(texts))["input_ids"])
    else:
        ids = [tokenizer(t)["input_ids"] for t in texts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return ids_stats(model, ids, pad_id=pad, batch_size=batch_size, moments=moments)


@torch.no_grad()
def ids_stats(model, ids: Sequence[list[int]], *, pad_id: int = 0, batch_size: int = 32,
              moments: bool = True) -> list[TokenStats]:
    """:func:`token_stats` on token id lists (each starting with ``<s>``).

    Cost (bench/audit.py, profiled): besides the forward pass, the work is a few passes over
    the ``(B, T, V)`` logits. They run on the whole contiguous logits tensor (batches are sorted
    by length, so padding is a few percent) and only the ``(B, T)`` results are selected:
    selecting the valid rows of the logits first copied the largest tensor of the batch.
    """
    out: list[TokenStats | None] = [None] * len(ids)
    device = next(model.parameters()).device
    for idx in _batches([len(x) for x in ids], batch_size):
        width = max(len(ids[i]) for i in idx)
        batch = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            batch[row, : len(ids[i])] = torch.tensor(ids[i])
            mask[row, : len(ids[i])] = 1
        logits = model(input_ids=batch.to(device), attention_mask=mask.to(device)).logits
        logits = logits.float()  # (B, T, V); no copy when the model computes in float32
        # Real next-token positions: N = sum of (len - 1) over the batch, row-major.
        valid = mask[:, 1:].bool().to(device)  # (B, T-1)
        targets = batch[:, 1:].to(device)  # (B, T-1)
        logp = torch.log_softmax(logits, -1)  # (B, T, V)
        tok = logp[:, :-1].gather(-1, targets[..., None]).squeeze(-1)[valid]  # (N,)
        counts = [len(ids[i]) - 1 for i in idx]
        cuts = np.cumsum(counts)[:-1]
        parts_mu = parts_sigma = [None] * len(idx)
        if moments:
            # E_p[log p] and E_p[(log p)^2] from one (B, T, V) temporary, reused in place.
            t = logp.exp().mul_(logp)  # (B, T, V): p log p
            mu = t.sum(-1)  # (B, T)
            m2 = t.mul_(logp).sum(-1)  # (B, T): sum p (log p)^2
            sigma = (m2 - mu.square()).clamp_min(0).sqrt()  # (B, T)
            parts_mu = np.split(mu[:, :-1][valid].cpu().double().numpy(), cuts)
            parts_sigma = np.split(sigma[:, :-1][valid].cpu().double().numpy(), cuts)
        parts_tok = np.split(tok.cpu().double().numpy(), cuts)
        for i, tl, m_, s_ in zip(idx, parts_tok, parts_mu, parts_sigma, strict=True):
            out[i] = TokenStats(tl, m_, s_)
    return out  # type: ignore[return-value]


def _sums(rows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-row sums and lengths of ragged float64 rows, in one pass: ``(sums, lengths)``."""
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    flat = np.concatenate([np.asarray(r, dtype=np.float64) for r in rows]) if rows else \
        np.zeros(0)
    seg = np.repeat(np.arange(len(rows)), lengths)
    return np.bincount(seg, weights=flat, minlength=len(rows)), lengths.astype(np.float64)


def scores_from_stats(texts: Sequence[str], stats: Sequence[TokenStats], *, k: float = 0.2,
                      reference: Sequence[TokenStats] | None = None) -> dict[str, list[float]]:
    """Every attack's score per text (higher = more likely a member).

    The formulas of :mod:`audits.metrics` (``loss_score``, ``zlib_score``, ``min_k_score``,
    ``min_k_pp_score``, ``reference_score``), computed for all texts at once: per-text numpy
    calls on arrays of a few dozen tokens cost more than the arithmetic (profiled: about a
    third of the scoring overhead over a plain forward pass).
    """
    if len(texts) != len(stats) or (reference is not None and len(reference) != len(stats)):
        raise ValueError(f"{len(texts)} texts, {len(stats)} token statistics"
                         + ("" if reference is None else f", {len(reference)} reference ones")
                         + ": expected one per text")
    lp = [s.logprobs for s in stats]
    total, n = _sums(lp)
    lengths = n.astype(np.int64)
    cuts = np.cumsum(lengths)[:-1]
    pp = M.min_k_pp_token_scores(*(np.concatenate(x) if len(stats) else np.zeros(0) for x in (
        lp, [s.mu for s in stats], [s.sigma for s in stats]))).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):  # an empty text: NaN, as np.mean
        loss = total / n
        out: dict[str, list[float]] = {
            "loss": loss.tolist(),
            "zlib": (total / np.array([M.zlib_entropy(t) for t in texts], dtype=np.float64)
                     ).tolist(),
            "min_k": M.lowest_k_means(lp, k).tolist(),
            "min_k_pp": M.lowest_k_means(np.split(pp, cuts) if len(stats) else [], k).tolist(),
        }
        if reference is not None:
            r_total, r_n = _sums([r.logprobs for r in reference])
            out["reference"] = (loss - r_total / r_n).tolist()
    return out


def score_texts(model, tokenizer, texts: Sequence[str], *, k: float = 0.2,
                reference: tuple | None = None, batch_size: int = 32) -> dict[str, list[float]]:
    """All MIA scores of ``texts``; ``reference`` is an optional ``(model, tokenizer)``."""
    stats = token_stats(model, tokenizer, texts, batch_size=batch_size)
    ref = None
    if reference is not None:
        ref = token_stats(reference[0], reference[1], texts, batch_size=batch_size,
                          moments=False)
    return scores_from_stats(texts, stats, k=k, reference=ref)


@dataclass
class AttackResult:
    """One attack's separation of members from non-members, with its evidence."""

    attack: str
    auc: float
    ci_low: float
    ci_high: float
    tpr_at_1pct_fpr: float
    tpr_at_01pct_fpr: float
    roc_fpr: list[float]
    roc_tpr: list[float]
    member_scores: list[float]
    nonmember_scores: list[float]


@dataclass
class MIAResult:
    """Members vs one non-member population, every attack."""

    population: str  # "twins" or "holdout"
    n_members: int
    n_nonmembers: int
    attacks: dict[str, AttackResult] = field(default_factory=dict)
    seed: int = 0
    bootstrap: int = 1000
    ci_level: float = 0.95
    copies: int | None = None  # twins: how many twin identities (each copies every record)


def evaluate_attack(name: str, members: Sequence[float], nonmembers: Sequence[float], *,
                    bootstrap: int, level: float, seed: int,
                    groups: int | None = None) -> AttackResult:
    fpr, tpr = M.roc_curve(members, nonmembers)
    grid = np.linspace(0, 1, ROC_POINTS)
    # Step interpolation: the best TPR reachable at each FPR of the grid.
    tpr_grid = np.array([tpr[fpr <= g + 1e-12].max() for g in grid])
    lo, hi = M.bootstrap_auc_ci(members, nonmembers, n_boot=bootstrap, level=level, seed=seed,
                                nonmember_groups=groups)
    return AttackResult(
        name, M.auc(members, nonmembers), lo, hi,
        M.tpr_at_fpr(members, nonmembers, 0.01), M.tpr_at_fpr(members, nonmembers, 0.001),
        [round(float(x), 4) for x in grid], [round(float(x), 4) for x in tpr_grid],
        [float(x) for x in members], [float(x) for x in nonmembers],
    )


def run_mia(model, tokenizer, members: Sequence[str], nonmembers: Sequence[str], *,
            population: str, reference: tuple | None = None, k: float = 0.2,
            bootstrap: int = 1000, level: float = 0.95, seed: int = 0,
            batch_size: int = 32, copies: int | None = None) -> MIAResult:
    """Score members and non-members in one pass and evaluate every attack.

    ``copies``: the non-members are that many twin identities, each a copy of every member
    record (copy-major, as :func:`audits.twins.make_twins` returns them); the AUC's bootstrap
    then resamples identities, not records.
    """
    texts = list(members) + list(nonmembers)
    scores = score_texts(model, tokenizer, texts, k=k, reference=reference,
                         batch_size=batch_size)
    res = MIAResult(population, len(members), len(nonmembers), seed=seed, bootstrap=bootstrap,
                    ci_level=level, copies=copies)
    for name, vals in scores.items():
        res.attacks[name] = evaluate_attack(name, vals[: len(members)], vals[len(members):],
                                            bootstrap=bootstrap, level=level, seed=seed,
                                            groups=copies)
    return res
