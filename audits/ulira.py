"""U-LiRA statistics: per-record likelihood-ratio tests against shadow models (pure functions).

Carlini et al. (LiRA, 2022) fit, for each record, a Gaussian to its score under shadow models
trained WITH the record (IN) and one under shadow models trained WITHOUT it (OUT); the
likelihood ratio of the target model's score under the two tells membership per record. Hayes
et al. ("Inexact unlearning needs more careful evaluations", SaTML 2025, U-LiRA) apply it to
unlearning: the shadows are trained with and without the forget set, and an unlearned model
should look like an OUT model for every record.

Here a record's score is the logit-scaled confidence of the model in the whole record (see
:func:`logit_confidence`); arrays are ``(shadows, records)``. The decision is made per person:

- per record, two one-sided p-values under the OUT fit (predictive: the OUT mean is itself
  estimated from ``k_out`` shadows): one in the direction in which IN models score, one in
  the other;
- the person "looks IN" (the data is still there) when a record's IN-side p-value is at most
  ``alpha / (2 records)`` (Bonferroni over the records and the two sides: valid whatever the
  dependence between one model's records);
- the person is "conspicuously absent" (over-unlearning) when, instead, a record's other-side
  p-value is at most that level: it scores further from the IN models than models that never
  saw it do, which gives the person away as surely (MUSE's PrivLeak is two-sided for that
  reason);
- otherwise the person "looks OUT" only if the test had power: the probability, under the IN
  fit, that an IN model would have been flagged is at least ``min_power``; else undecided.

Calibration (:func:`calibrate`) holds each shadow out in turn as a pseudo-target and measures
the test on it: the rates are counted, so a rate the number of held-out instances cannot
resolve (1% needs 100 OUT instances, 0.1% needs 1,000) is ``None`` with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from audits.errors import AuditInputError

# Carlini et al. use one variance per side for all records below 64 shadows: a per-record
# variance from a handful of models is too noisy to trust in the tails.
GLOBAL_VARIANCE_BELOW = 64
MIN_SD = 1e-6  # floor on a fitted standard deviation (identical shadows would give 0)
FPR_LEVELS = (0.01, 0.001)
MIN_SHADOWS = 2  # per side: a variance needs two
MAX_CONFIDENCE_LOGPROB = -1e-9  # mean log-prob cap: log(p / (1 - p)) is infinite at p = 1


class ShadowStatsError(AuditInputError):
    """Shadow scores of the wrong shape, too few shadows, or a level out of range."""


def logit_confidence(mean_logprob: np.ndarray | Sequence[float] | float) -> np.ndarray:
    """LiRA's score: ``log(p / (1 - p))`` with ``p = exp(mean token log-probability)``.

    ``p`` is the per-token geometric-mean probability of the record (0 < p <= 1). The logit
    spreads out the values near 1 that memorised records reach, where the log-probability
    itself saturates, so the scores are closer to Gaussian (Carlini et al. 2022, sec. 4.2).
    Monotone increasing in ``mean_logprob``.
    """
    lp = np.minimum(np.asarray(mean_logprob, dtype=np.float64), MAX_CONFIDENCE_LOGPROB)
    return lp - np.log(-np.expm1(lp))  # log p - log(1 - p)


@dataclass(frozen=True)
class GaussianFit:
    """Per-record Gaussians of the scores of IN and OUT shadows. Arrays are ``(records,)``."""

    mu_in: np.ndarray
    mu_out: np.ndarray
    sd_in: np.ndarray
    sd_out: np.ndarray
    k_in: int
    k_out: int
    global_variance: bool  # one variance per side for every record (few shadows)

    @property
    def records(self) -> int:
        return int(self.mu_in.shape[0])

    @property
    def direction(self) -> np.ndarray:
        """+1 where IN models score higher than OUT ones (the usual case), else -1."""
        return np.where(self.mu_in >= self.mu_out, 1.0, -1.0)

    def df_out(self) -> int:
        """Degrees of freedom of the OUT standard deviation."""
        return (self.k_out - 1) * (self.records if self.global_variance else 1)


def _as_2d(scores, name: str) -> np.ndarray:
    a = np.asarray(scores, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] == 0:
        raise ShadowStatsError(f"{name}: expected (shadows, records) scores, got shape {a.shape}")
    if a.shape[0] < MIN_SHADOWS:
        raise ShadowStatsError(f"{name}: {a.shape[0]} shadow(s); a Gaussian fit needs at least "
                               f"{MIN_SHADOWS} per side")
    if not np.isfinite(a).all():
        raise ShadowStatsError(f"{name}: scores must be finite")
    return a


def fit_gaussians(in_scores, out_scores, *, global_variance: bool | None = None) -> GaussianFit:
    """Fit IN and OUT Gaussians per record.

    Args:
        in_scores, out_scores: ``(k_in, records)`` and ``(k_out, records)`` shadow scores.
        global_variance: one variance per side for all records; ``None``: when either side has
            fewer than :data:`GLOBAL_VARIANCE_BELOW` shadows.
    """
    a, b = _as_2d(in_scores, "in_scores"), _as_2d(out_scores, "out_scores")
    if a.shape[1] != b.shape[1]:
        raise ShadowStatsError(f"in_scores has {a.shape[1]} records, out_scores {b.shape[1]}")
    glob = min(a.shape[0], b.shape[0]) < GLOBAL_VARIANCE_BELOW if global_variance is None \
        else global_variance

    def sd(x: np.ndarray) -> np.ndarray:
        var = x.var(axis=0, ddof=1)  # (records,)
        if glob:
            var = np.full_like(var, var.mean())
        return np.maximum(np.sqrt(var), MIN_SD)

    return GaussianFit(a.mean(0), b.mean(0), sd(a), sd(b), a.shape[0], b.shape[0], bool(glob))


def _logpdf(x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mu) / sd) ** 2 - np.log(sd) - 0.5 * math.log(2 * math.pi)


def log_lr(scores, fit: GaussianFit) -> np.ndarray:
    """Per-record ``log N(x; IN) - log N(x; OUT)`` of one model's ``(records,)`` scores:
    above 0, the record looks trained on."""
    x = np.asarray(scores, dtype=np.float64)
    return _logpdf(x, fit.mu_in, fit.sd_in) - _logpdf(x, fit.mu_out, fit.sd_out)


def out_p_values(scores, fit: GaussianFit) -> np.ndarray:
    """Per record, the one-sided p-value of the score under the OUT fit, in the direction of
    the IN mean: small = an OUT model rarely scores this IN-like.

    Predictive: the OUT mean is estimated from ``k_out`` shadows, so the scale is
    ``sd_out * sqrt(1 + 1/k_out)`` and the tail a Student t with :meth:`GaussianFit.df_out`
    degrees of freedom.
    """
    from scipy.stats import t as student

    x = np.asarray(scores, dtype=np.float64)
    scale = fit.sd_out * math.sqrt(1 + 1 / fit.k_out)
    z = fit.direction * (x - fit.mu_out) / scale
    return np.clip(student.sf(z, fit.df_out()), 0.0, 1.0)


def out_low_p_values(scores, fit: GaussianFit) -> np.ndarray:
    """Per record, the one-sided p-value on the other side of the OUT fit (away from the IN
    mean): small = an OUT model rarely scores this far from the IN models (over-unlearning).
    Same predictive Student t as :func:`out_p_values`."""
    from scipy.stats import t as student

    x = np.asarray(scores, dtype=np.float64)
    scale = fit.sd_out * math.sqrt(1 + 1 / fit.k_out)
    z = fit.direction * (x - fit.mu_out) / scale
    return np.clip(student.cdf(z, fit.df_out()), 0.0, 1.0)


def detection_power(fit: GaussianFit, level: float) -> float:
    """The probability that a model drawn from the IN fit has at least one record with an OUT
    p-value <= ``level`` (lower bound: the best single record's, valid under any dependence
    between records)."""
    from scipy.stats import norm
    from scipy.stats import t as student

    crit = student.isf(level, fit.df_out()) * fit.sd_out * math.sqrt(1 + 1 / fit.k_out)
    # flagged when direction * (X - mu_out) >= crit, X ~ N(mu_in, sd_in^2 (1 + 1/k_in))
    shift = fit.direction * (fit.mu_in - fit.mu_out)
    p = norm.sf((crit - shift) / (fit.sd_in * math.sqrt(1 + 1 / fit.k_in)))
    return float(np.max(p))


IN, OUT, UNDECIDED, ABSENT = "in", "out", "undecided", "absent"


@dataclass
class PersonTest:
    """The per-person U-LiRA test of one model.

    Attributes:
        decision: ``in`` (some record scores as only models trained on it do: the data is
            still there), ``absent`` (no record looks IN, but some record scores further from
            the IN models than any OUT model would: over-unlearning, a conspicuous absence),
            ``out`` (every record looks like an OUT model's, and the test had power),
            ``undecided`` (no record flagged, but the test could not have found one).
        log_lr: per-record log likelihood ratio (IN over OUT); ``log_lr_total`` their sum,
            the person's evidence if the records were independent (reported, not tested).
        p_values: per-record one-sided p-values under the OUT fit, toward IN.
        low_p_values: the same on the other side (away from IN); ``min_low_p`` the smallest,
            ``flagged_low`` how many are at most ``threshold``.
        threshold: ``alpha / (2 records)``, the per-record level of each side (Bonferroni).
        flagged_at: records whose p-value is at most each per-record false-positive rate
            (``"0.01"``, ``"0.001"``): for a model trained on them, that fraction of records
            is the test's true-positive rate at that false-positive rate.
        power: :func:`detection_power` at ``threshold``.
    """

    decision: str
    records: int
    log_lr: list[float]
    log_lr_total: float
    p_values: list[float]
    min_p: float
    alpha: float
    threshold: float
    flagged: int
    flagged_at: dict[str, int]
    power: float
    min_power: float
    global_variance: bool
    shadows_in: int
    shadows_out: int
    low_p_values: list[float] = field(default_factory=list)
    min_low_p: float = 1.0
    flagged_low: int = 0


def person_test(scores, fit: GaussianFit, *, alpha: float, min_power: float = 0.8
                ) -> PersonTest:
    """Does the model whose per-record ``scores`` these are look like an OUT model?"""
    if not 0 < alpha < 1:
        raise ShadowStatsError(f"alpha={alpha}: must lie in (0, 1)")
    x = np.asarray(scores, dtype=np.float64)
    if x.shape != (fit.records,):
        raise ShadowStatsError(f"scores: expected {fit.records} records, got shape {x.shape}")
    p, low = out_p_values(x, fit), out_low_p_values(x, fit)
    lr = log_lr(x, fit)
    thr = alpha / (2 * fit.records)
    flagged, flagged_low = int((p <= thr).sum()), int((low <= thr).sum())
    power = detection_power(fit, thr)
    decision = IN if flagged else ABSENT if flagged_low else (
        OUT if power >= min_power else UNDECIDED)
    return PersonTest(decision, fit.records, [float(v) for v in lr], float(lr.sum()),
                      [float(v) for v in p], float(p.min()), alpha, thr, flagged,
                      {f"{f:g}": int((p <= f).sum()) for f in FPR_LEVELS}, power, min_power,
                      fit.global_variance, fit.k_in, fit.k_out,
                      [float(v) for v in low], float(low.min()), flagged_low)


@dataclass
class Calibration:
    """The test measured on the shadows themselves, each held out in turn as the target.

    Attributes:
        tpr_at: per-record true-positive rate (IN instances flagged) at each per-record
            false-positive rate, from the held-out (shadow, record) instances; ``None`` when
            the OUT instances cannot resolve that rate (``reasons`` says why).
        instances_in, instances_out: held-out (shadow, record) pairs of each side.
        auc: per-record AUC of the p-values (IN vs OUT instances).
        person_detected, person_false: held-out IN shadows the person test called ``in``,
            held-out OUT shadows it called ``in`` or ``absent`` (false alarms: a model that
            never saw the person failed), of ``shadows_in`` / ``shadows_out``.
    """

    shadows_in: int
    shadows_out: int
    instances_in: int = 0
    instances_out: int = 0
    tpr_at: dict[str, float | None] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    auc: float | None = None
    person_detected: int = 0
    person_false: int = 0
    available: bool = True


def resolvable(instances: int, fpr: float) -> bool:
    """Whether ``instances`` negatives can measure a false-positive rate of ``fpr`` (one false
    positive among them is at most that rate: ``instances >= 1 / fpr``)."""
    return instances >= math.ceil(1 / fpr - 1e-9)


def calibrate(in_scores, out_scores, *, alpha: float, min_power: float = 0.8,
              global_variance: bool | None = None) -> Calibration:
    """Hold each shadow out as a pseudo-target, refit on the rest, and count how the test does.

    Needs 3 shadows per side (the fit without one keeps 2); with fewer the result says so.
    """
    from audits.metrics import auc, tpr_at_fpr

    a = np.asarray(in_scores, dtype=np.float64)
    b = np.asarray(out_scores, dtype=np.float64)
    cal = Calibration(int(a.shape[0]), int(b.shape[0]))
    if min(a.shape[0], b.shape[0]) < MIN_SHADOWS + 1:
        cal.available = False
        cal.reasons = {f"{f:g}": f"calibration needs at least {MIN_SHADOWS + 1} shadows per "
                       f"side (one held out, {MIN_SHADOWS} to fit); have {a.shape[0]} IN, "
                       f"{b.shape[0]} OUT" for f in FPR_LEVELS}
        cal.tpr_at = {f"{f:g}": None for f in FPR_LEVELS}
        return cal
    pos: list[float] = []
    neg: list[float] = []
    for side, arr in (("in", a), ("out", b)):
        for i in range(arr.shape[0]):
            rest = np.delete(arr, i, axis=0)
            fit = fit_gaussians(rest if side == "in" else a, b if side == "in" else rest,
                                global_variance=global_variance)
            res = person_test(arr[i], fit, alpha=alpha, min_power=min_power)
            (pos if side == "in" else neg).extend(res.p_values)
            if side == "in" and res.decision == IN:
                cal.person_detected += 1
            elif side == "out" and res.decision in (IN, ABSENT):
                cal.person_false += 1
    cal.instances_in, cal.instances_out = len(pos), len(neg)
    # score = -log p: higher = more IN-like (the per-record test's statistic)
    s_pos = -np.log(np.maximum(pos, 1e-300))
    s_neg = -np.log(np.maximum(neg, 1e-300))
    cal.auc = auc(s_pos, s_neg)
    for f in FPR_LEVELS:
        key = f"{f:g}"
        if resolvable(len(neg), f):
            cal.tpr_at[key] = tpr_at_fpr(s_pos, s_neg, f)
        else:
            cal.tpr_at[key] = None
            cal.reasons[key] = (f"{f:.1%} false positives cannot be measured on {len(neg)} "
                                f"held-out OUT (shadow, record) instances; it needs "
                                f"{math.ceil(1 / f)} (more OUT shadows or records)")
    return cal
