"""The mathematics of the audits, as pure functions on numbers and arrays.

Conventions: every membership score is oriented so that *higher means more likely a member*.
Log-probabilities are natural logs (nats) unless a name says bits.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Sequence

import numpy as np

# ---------------------------------------------------------------- membership-inference scores


def loss_score(token_logprobs: np.ndarray) -> float:
    """LOSS attack (Yeom et al. 2018): mean token log-probability (= minus the mean NLL)."""
    return float(np.mean(token_logprobs))


def zlib_score(token_logprobs: np.ndarray, text: str) -> float:
    """zlib attack (Carlini et al. 2021): total log-likelihood over the zlib entropy of the text.

    ``sum(log p) / len(zlib.compress(text))``: a text the model finds likelier than its
    compressibility explains scores higher.
    """
    return float(np.sum(token_logprobs)) / zlib_entropy(text)


def zlib_entropy(text: str) -> int:
    """Length in bytes of the zlib-compressed UTF-8 text (level 9, as Carlini et al.)."""
    return len(zlib.compress(text.encode("utf-8"), 9))


def _lowest_k_mean(values: np.ndarray, k: float) -> float:
    if not 0.0 < k <= 1.0:
        raise ValueError(f"k must lie in (0, 1], got {k}")
    n = max(1, int(len(values) * k))  # int(), as the Min-K% reference code; at least one token
    return float(np.mean(np.sort(values)[:n]))


def lowest_k_means(rows: Sequence[np.ndarray], k: float) -> np.ndarray:
    """:func:`_lowest_k_mean` of every row at once (rows of different lengths), shape ``(n,)``.

    Rows are padded with ``+inf`` to one ``(n, L)`` array, sorted, and the mean of the lowest
    ``max(1, int(len * k))`` values of each row is read off a cumulative sum. NaN for an empty
    row (as the mean of no values). The same numbers as the per-row function (sums in another
    order: within 1e-12 relative).
    """
    if not 0.0 < k <= 1.0:
        raise ValueError(f"k must lie in (0, 1], got {k}")
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    if lengths.size == 0:
        return np.zeros(0)
    grid = np.full((lengths.size, max(1, int(lengths.max()))), np.inf)
    grid[np.arange(grid.shape[1]) < lengths[:, None]] = np.concatenate(
        [np.asarray(r, dtype=np.float64) for r in rows]) if lengths.sum() else []
    grid.sort(axis=1)
    n = np.maximum(1, np.floor(lengths * k).astype(np.int64))  # int(len * k), at least one
    # The lowest n values of a row are its own (the +inf padding sorts after them).
    out = np.cumsum(grid, axis=1)[np.arange(lengths.size), n - 1] / n
    out[lengths == 0] = np.nan
    return out


def min_k_score(token_logprobs: np.ndarray, k: float = 0.2) -> float:
    """Min-K% Prob (Shi et al. 2024): mean of the lowest ``k`` fraction of token log-probs."""
    return _lowest_k_mean(np.asarray(token_logprobs, dtype=np.float64), k)


def min_k_pp_token_scores(token_logprobs: np.ndarray, mu: np.ndarray,
                          sigma: np.ndarray) -> np.ndarray:
    """Min-K%++ per-token scores (Zhang et al. 2024): ``(log p(x_t) - mu_t) / sigma_t``.

    ``mu_t`` and ``sigma_t`` are the mean and standard deviation of ``log p(z | x_<t)`` over
    the vocabulary ``z`` weighted by the model's own distribution at position ``t`` (the
    paper's definition). ``sigma`` is floored at 1e-6 so a one-hot position does not divide by 0.
    """
    return (np.asarray(token_logprobs) - np.asarray(mu)) / np.maximum(np.asarray(sigma), 1e-6)


def min_k_pp_score(token_logprobs: np.ndarray, mu: np.ndarray, sigma: np.ndarray,
                   k: float = 0.2) -> float:
    """Min-K%++: the mean of the lowest ``k`` fraction of the standardised token scores."""
    return _lowest_k_mean(min_k_pp_token_scores(token_logprobs, mu, sigma).astype(np.float64), k)


def vocab_moments(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of ``log p`` under ``p = softmax(logits)`` along the last axis (reference).

    The variance of ``log p`` equals the variance of the logits (they differ by a constant),
    which is how the batched version in :mod:`audits.mia` computes it.
    """
    logits = np.asarray(logits, dtype=np.float64)
    logz = np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1, keepdims=True)) \
        + logits.max(-1, keepdims=True)
    logp = logits - logz
    p = np.exp(logp)
    mu = np.sum(p * logp, -1)
    var = np.sum(p * (logp - mu[..., None]) ** 2, -1)
    return mu, np.sqrt(var)


def reference_score(target_logprobs: np.ndarray, reference_logprobs: np.ndarray) -> float:
    """Reference-model attack (Carlini et al. 2021): mean log p under the target minus under a
    reference model that never saw the data (a calibrated LOSS)."""
    return float(np.mean(target_logprobs) - np.mean(reference_logprobs))


# ---------------------------------------------------------------- ROC, AUC, bootstrap


def roc_curve(members: Sequence[float], nonmembers: Sequence[float]) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """ROC points (fpr, tpr) for "member if score >= threshold", thresholds from high to low.

    Starts at (0, 0) and ends at (1, 1); tied scores move both rates in one step.
    """
    m = np.asarray(members, dtype=np.float64)
    n = np.asarray(nonmembers, dtype=np.float64)
    if m.size == 0 or n.size == 0:
        raise ValueError("ROC needs at least one member and one non-member score")
    scores = np.concatenate([m, n])
    labels = np.concatenate([np.ones(m.size), np.zeros(n.size)])
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last = np.r_[np.diff(scores) != 0, True]  # the last index of each group of tied scores
    tp = np.cumsum(labels)[last]
    fp = np.cumsum(1 - labels)[last]
    return np.r_[0.0, fp / n.size], np.r_[0.0, tp / m.size]


def auc(members: Sequence[float], nonmembers: Sequence[float]) -> float:
    """Area under the ROC curve = P(member score > non-member score) + 0.5 P(tie)."""
    m = np.asarray(members, dtype=np.float64)
    n = np.asarray(nonmembers, dtype=np.float64)
    if m.size == 0 or n.size == 0:
        raise ValueError("AUC needs at least one member and one non-member score")
    # Mann-Whitney U through ranks with ties averaged: O((m + n) log(m + n)).
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([m, n]))
    u = ranks[: m.size].sum() - m.size * (m.size + 1) / 2
    return float(u / (m.size * n.size))


def aucs_of_draws(members: np.ndarray, nonmembers: np.ndarray, member_draws: np.ndarray,
                  nonmember_draws: np.ndarray) -> np.ndarray:
    """``auc(members[member_draws[i]], nonmembers[nonmember_draws[i]])`` for every draw ``i``.

    An AUC of resampled scores is a sum over pairs: each member index's count in the draw,
    times each non-member index's count, times 1 (higher), 1/2 (tied) or 0. So every draw's AUC
    is ``cm K cn / (|m| |n|)`` with one pair matrix ``K`` for all draws (ranking each draw
    anew took a tenth of an audit's time).
    """
    m = np.asarray(members, dtype=np.float64)
    n = np.asarray(nonmembers, dtype=np.float64)
    mi, ni = np.asarray(member_draws), np.asarray(nonmember_draws)
    if m.size == 0 or n.size == 0:
        raise ValueError("AUC needs at least one member and one non-member score")
    if mi.ndim != 2 or ni.ndim != 2 or mi.shape[0] != ni.shape[0]:
        raise ValueError("aucs_of_draws needs (B, m) and (B, n) index draws with the same B")
    pairs = (m[:, None] > n[None, :]) + 0.5 * (m[:, None] == n[None, :])  # (|m|, |n|)
    out = np.empty(mi.shape[0])
    rows = max(1, 4_000_000 // (m.size + n.size))  # tens of MB of counts per block
    for b in range(0, mi.shape[0], rows):
        cm, cn = _counts(mi[b: b + rows], m.size), _counts(ni[b: b + rows], n.size)
        out[b: b + rows] = ((cm @ pairs) * cn).sum(axis=1) / (mi.shape[1] * ni.shape[1])
    return out


def _counts(draws: np.ndarray, size: int) -> np.ndarray:
    """(B, size): how many times each index appears in each row of ``draws``."""
    rows = np.arange(draws.shape[0])[:, None] * size
    return np.bincount((rows + draws).ravel(), minlength=draws.shape[0] * size).reshape(
        draws.shape[0], size).astype(np.float64)


def tpr_at_fpr(members: Sequence[float], nonmembers: Sequence[float], fpr: float) -> float:
    """The highest true-positive rate over thresholds whose false-positive rate is <= ``fpr``."""
    f, t = roc_curve(members, nonmembers)
    ok = f <= fpr + 1e-12
    return float(t[ok].max()) if ok.any() else 0.0


def bootstrap_auc_ci(members: Sequence[float], nonmembers: Sequence[float], *,
                     n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                     nonmember_groups: int | None = None) -> tuple[float, float]:
    """Percentile bootstrap CI of the AUC, members and non-members resampled separately.

    ``nonmember_groups``: the non-members are that many equal, consecutive groups (twin
    identities, copy-major) and whole groups are resampled (a cluster bootstrap): records of one
    twin identity share its values, so resampling them one by one would pretend there are more
    independent look-alikes than there are and give far too narrow an interval.

    The interval is widened to contain the point estimate if resampling noise leaves it out
    (possible with very few scores), so ``lo <= auc <= hi`` always holds. It describes the
    effect size only; verdicts come from the exact rank tests below.
    """
    m = np.asarray(members, dtype=np.float64)
    n = np.asarray(nonmembers, dtype=np.float64)
    point = auc(m, n)
    rng = np.random.default_rng(seed)
    # (n_boot, |m|) and (n_boot, |n|) index draws; one rank-based AUC per draw.
    mi = rng.integers(0, m.size, size=(n_boot, m.size))
    if nonmember_groups and nonmember_groups > 1 and n.size % nonmember_groups == 0:
        size = n.size // nonmember_groups
        g = rng.integers(0, nonmember_groups, size=(n_boot, nonmember_groups))  # (B, G)
        ni = (g[:, :, None] * size + np.arange(size)).reshape(n_boot, -1)  # (B, G * size)
    else:
        ni = rng.integers(0, n.size, size=(n_boot, n.size))
    stats = aucs_of_draws(m, n, mi, ni)
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return float(min(lo, point)), float(max(hi, point))


# ---------------------------------------------------------------- extraction


def memorization_accuracy(predicted: Sequence[int], target: Sequence[int]) -> float:
    """MA (Tirumala et al. 2022): share of target tokens the model's argmax predicts, teacher-forced."""
    if len(target) == 0:
        raise ValueError("memorization accuracy needs at least one target token")
    return sum(int(p == t) for p, t in zip(predicted, target, strict=True)) / len(target)


def ngram_overlap(generated: Sequence[int], target: Sequence[int], n: int) -> float:
    """Share of the target's n-grams (as a multiset) that the generated sequence also has."""
    tg = Counter(tuple(target[i: i + n]) for i in range(len(target) - n + 1))
    if not tg:
        raise ValueError(f"the target has fewer than n={n} tokens")
    gg = Counter(tuple(generated[i: i + n]) for i in range(len(generated) - n + 1))
    return sum(min(c, gg[g]) for g, c in tg.items()) / sum(tg.values())


def extraction_likelihood(continuations: Sequence[Sequence[int]], target: Sequence[int],
                          n: int) -> float | None:
    """EL_n (Jang et al. 2023) over an identifier's tokens.

    ``continuations[t]`` is the greedy continuation after the prefix plus ``target[:t]``;
    ``EL_n = mean_t overlap_n(continuations[t], target[t:])`` over the cuts ``t`` that leave at
    least ``n`` target tokens. ``None`` when the identifier has fewer than ``n`` tokens.
    """
    cuts = [t for t in range(len(target)) if len(target) - t >= n]
    if not cuts:
        return None
    return sum(ngram_overlap(continuations[t], target[t:], n) for t in cuts) / len(cuts)


# ---------------------------------------------------------------- exposure (Secret Sharer)


def rank_of_true(true_score: float, alternative_scores: Sequence[float]) -> int:
    """1-based rank of the true candidate among true + alternatives by score (higher first).

    Ties count against the true candidate (it ranks below every alternative it ties with), so
    a model that cannot tell them apart never looks as if it had memorized.
    """
    return 1 + int(np.sum(np.asarray(alternative_scores) >= true_score))


def exposure_bits(rank: int, candidates: int) -> float:
    """Exposure (Carlini et al. 2019): ``log2(candidates) - log2(rank)``, in bits."""
    if not 1 <= rank <= candidates:
        raise ValueError(f"rank {rank} outside 1..{candidates}")
    return math.log2(candidates) - math.log2(rank)


def exposure_p_value(rank: int, candidates: int) -> float:
    """P(a candidate drawn like the true one ranks at least this high) = rank / candidates.

    Under the null hypothesis (the model never saw the true value, so it is exchangeable with
    the alternatives) this p-value is valid: P(p <= a) <= a.
    """
    if not 1 <= rank <= candidates:
        raise ValueError(f"rank {rank} outside 1..{candidates}")
    return rank / candidates


def perplexity(total_nll: float, tokens: int) -> float:
    """``exp(total NLL / tokens)``; tokens must be positive."""
    if tokens <= 0:
        raise ValueError("perplexity needs at least one token")
    return math.exp(total_nll / tokens)


# ---------------------------------------------------------------- exact rank tests and power
#
# Every statistical check of the audit is an exact rank (permutation) test: the real value's
# statistic is ranked among statistics of look-alikes that the model cannot have seen either
# (twin identities for membership, same-format fakes for exposure). Under the null hypothesis
# (the model never saw the real value, and the look-alikes are drawn like it) the real value is
# exchangeable with the look-alikes, so its rank is uniform and the p-values below are valid
# for any sample size: P(p <= a) <= a. No normal approximation, no bootstrap.


def rank_p_values(true_stat: float, null_stats: Sequence[float]) -> tuple[float, float]:
    """``(p_high, p_low)``: one-sided p-values of ``true_stat`` among ``null_stats``.

    ``p_high = (1 + #{null >= true}) / (n + 1)``: small when the real value is conspicuously
    *likely* (the model remembers it). ``p_low = (1 + #{null <= true}) / (n + 1)``: small when it
    is conspicuously *unlikely* (the model avoids it: over-unlearning, the Streisand effect).
    Ties count against significance on both sides.
    """
    null = np.asarray(null_stats, dtype=np.float64)
    if null.size == 0:
        raise ValueError("a rank test needs at least one look-alike statistic")
    n = null.size
    return (1 + int(np.sum(null >= true_stat))) / (n + 1), \
        (1 + int(np.sum(null <= true_stat))) / (n + 1)


def smallest_p_value(null_size: int) -> float:
    """The smallest p-value a rank test against ``null_size`` look-alikes can give."""
    if null_size < 1:
        raise ValueError("a rank test needs at least one look-alike")
    return 1.0 / (null_size + 1)


def null_size_for_power(alpha: float) -> int:
    """The fewest look-alikes with which a rank test can reach ``p <= alpha`` at all.

    ``1 / (n + 1) <= alpha``  <=>  ``n >= 1 / alpha - 1``. With fewer, even a model that
    remembers perfectly cannot be told from chance: the check has no power.
    """
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must lie in (0, 1], got {alpha}")
    return max(1, math.ceil(1.0 / alpha - 1.0 - 1e-9))


def identity_statistics(member_scores: Sequence[float], twin_scores: Sequence[float],
                        copies: int) -> tuple[float, np.ndarray]:
    """``(real, twins)``: the mean score of the subject's records and of each twin identity.

    Twins are ``copies`` identities, each a copy of *all* the subject's records in order
    (``twin_scores`` has shape ``(copies * n,)``, copy-major). Records of one identity share
    its name, employer, city..., so they are not independent: the identity, not the record, is
    the unit a rank test may treat as exchangeable.
    """
    m = np.asarray(member_scores, dtype=np.float64)
    t = np.asarray(twin_scores, dtype=np.float64)
    if m.size == 0 or copies < 1 or t.size != copies * m.size:
        raise ValueError(f"expected {copies} x {m.size} twin scores, got {t.size}")
    return float(m.mean()), t.reshape(copies, m.size).mean(1)


def privleak(auc_audited: float, auc_retrained: float) -> float:
    """PrivLeak (Shi et al., MUSE 2024): ``(AUC_unlearned - AUC_retrained) / AUC_retrained``.

    0 for a model indistinguishable from the retrained one; positive when it still tells the
    subject's records apart (under-unlearning), negative when it treats them as conspicuously
    unfamiliar (over-unlearning). Two-sided by design.
    """
    if auc_retrained <= 0:
        raise ValueError("PrivLeak is undefined when the retrained model's AUC is 0")
    return (auc_audited - auc_retrained) / auc_retrained


# ---------------------------------------------------------------- character ranks (exact)


def rank_sum_distribution(sizes: Sequence[int]) -> np.ndarray:
    """The exact distribution of ``S = sum_j U_j``, ``U_j`` uniform on ``0..sizes[j]-1``,
    independent: ``pmf[s] = P(S = s)`` for ``s = 0..sum(sizes) - len(sizes)``.

    The null of the character ranking: a model that never saw a value ranks its true
    character ``j`` uniformly among the ``sizes[j]`` characters its format allows there.
    """
    pmf = np.ones(1)
    for a in sizes:
        if a < 1:
            raise ValueError(f"an alphabet needs at least one character, got size {a}")
        pmf = np.convolve(pmf, np.full(a, 1.0 / a))
    return pmf


def rank_sum_p_values(ranks: Sequence[int], sizes: Sequence[int]) -> tuple[float, float]:
    """``(p_le, p_ge)``: ``P(S <= s)`` and ``P(S >= s)`` for ``s = sum(ranks)`` under the null.

    ``ranks[j]`` in ``0..sizes[j]-1``: how many characters score at least as high as the true
    one at position ``j`` (0: the model's first choice). ``p_le`` is small when the true
    characters are consistently among the most likely. Ranked from below instead (how many
    score at most as high), ``p_le`` is small when they are consistently the *least* likely.
    Exact (no approximation): ``P(p_le <= a) <= a`` under the null for every ``a``.
    """
    if len(ranks) != len(sizes) or not ranks:
        raise ValueError("need one rank per position, and at least one position")
    for r, a in zip(ranks, sizes, strict=True):
        if not 0 <= r < a:
            raise ValueError(f"rank {r} outside 0..{a - 1}")
    pmf = rank_sum_distribution(sizes)
    s = int(sum(ranks))
    return float(min(1.0, pmf[: s + 1].sum())), float(min(1.0, pmf[s:].sum()))


def rank_sum_smallest_p(sizes: Sequence[int]) -> float:
    """The smallest ``p_le`` the rank-sum test can give: ``prod 1 / sizes[j]`` (every true
    character first). Also the chance that one decoding returns a never-seen value verbatim."""
    return float(np.prod([1.0 / a for a in sizes])) if len(sizes) else 1.0


def z_score(true_score: float, alternative_scores: Sequence[float]) -> float:
    """``(true - mean) / std`` of the true candidate against the alternatives' distribution
    (sample std, ddof 1); 0 when the alternatives do not vary or are fewer than two."""
    a = np.asarray(alternative_scores, dtype=np.float64)
    if a.size < 2:
        return 0.0
    sd = float(a.std(ddof=1))
    return 0.0 if sd == 0 else float((true_score - a.mean()) / sd)
