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
    ids = [tokenizer(t)["input_ids"] for t in texts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return ids_stats(model, ids, pad_id=pad, batch_size=batch_size, moments=moments)


@torch.no_grad()
def ids_stats(model, ids: Sequence[list[int]], *, pad_id: int = 0, batch_size: int = 32,
              moments: bool = True) -> list[TokenStats]:
    """:func:`token_stats` on token id lists (each starting with ``<s>``)."""
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
        # Only real next-token positions: (N, V) with N = sum of (len - 1) over the batch.
        valid = mask[:, 1:].bool().to(device)  # (B, T-1)
        logits = logits[:, :-1][valid].float()  # (N, V)
        targets = batch[:, 1:].to(device)[valid]  # (N,)
        logp = torch.log_softmax(logits, -1)  # (N, V)
        tok = logp.gather(-1, targets[:, None]).squeeze(-1)  # (N,)
        counts = [len(ids[i]) - 1 for i in idx]
        parts_mu = parts_sigma = [None] * len(idx)
        if moments:
            # E_p[log p] and E_p[(log p)^2] from one (N, V) temporary, reused in place.
            t = logp.exp().mul_(logp)  # (N, V): p log p
            mu = t.sum(-1)  # (N,)
            m2 = t.mul_(logp).sum(-1)  # (N,): sum p (log p)^2
            sigma = (m2 - mu.square()).clamp_min(0).sqrt()  # (N,)
            parts_mu = [x.double().numpy() for x in mu.cpu().split(counts)]
            parts_sigma = [x.double().numpy() for x in sigma.cpu().split(counts)]
        for i, tl, m_, s_ in zip(idx, tok.cpu().split(counts), parts_mu, parts_sigma,
                                 strict=True):
            out[i] = TokenStats(tl.double().numpy(), m_, s_)
    return out  # type: ignore[return-value]


def scores_from_stats(texts: Sequence[str], stats: Sequence[TokenStats], *, k: float = 0.2,
                      reference: Sequence[TokenStats] | None = None) -> dict[str, list[float]]:
    """Every attack's score per text (higher = more likely a member)."""
    out: dict[str, list[float]] = {"loss": [], "zlib": [], "min_k": [], "min_k_pp": []}
    for text, s in zip(texts, stats, strict=True):
        out["loss"].append(M.loss_score(s.logprobs))
        out["zlib"].append(M.zlib_score(s.logprobs, text))
        out["min_k"].append(M.min_k_score(s.logprobs, k))
        out["min_k_pp"].append(M.min_k_pp_score(s.logprobs, s.mu, s.sigma, k))
    if reference is not None:
        out["reference"] = [M.reference_score(s.logprobs, r.logprobs)
                            for s, r in zip(stats, reference, strict=True)]
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
