"""The per-person attack (``AuditConfig.strong``): U-LiRA against shadow models.

``audits`` never trains a model: the caller gives shadow models trained WITH the subject's
records (IN) and WITHOUT them (OUT), as a :class:`ShadowSet`, or, better, a
:class:`ShadowProvider` that estimates its cost first and trains only when asked, so an audit
with the attack off, or over its budget (``AuditConfig.strong_budget_s``), costs nothing.
``forget`` builds such a provider for the suite's own models (``forget.workflow.shadows``).

Every model (audited, original, shadows) is scored on the subject's records with one forward
pass each; the statistics are in :mod:`audits.ulira`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from audits import ulira as U
from audits.config import AuditConfig
from audits.errors import AuditInputError

ModelPair = tuple[Any, Any]  # (model, tokenizer)
SCORE = ("logit-scaled confidence log(p / (1 - p)), p = exp(mean token log-probability of "
         "the record)")


@dataclass
class ShadowSet:
    """Shadow models of the audited model's training: with and without the subject.

    Attributes:
        inside: ``(model, tokenizer)`` pairs trained on data that includes the subject's records.
        outside: pairs trained the same way on the same data without them.
        seeds: the training seeds, IN ones then OUT ones (evidence for the report).
        description: how they were trained, in one line (no personal data).
    """

    inside: list[ModelPair]
    outside: list[ModelPair]
    seeds: list[int] = field(default_factory=list)
    description: str = ""


@runtime_checkable
class ShadowProvider(Protocol):
    """Trains ``k`` IN and ``k`` OUT shadows on demand; estimates the cost first."""

    def estimate_seconds(self, k: int) -> float:
        """Seconds to train ``k`` IN and ``k`` OUT shadows (before any is trained)."""
        ...

    def __call__(self, k: int) -> ShadowSet:
        ...


@dataclass
class NoShadows:
    """The caller cannot train shadows for this model; ``reason`` goes into the report."""

    reason: str


@dataclass
class StrongResult:
    """What the per-person attack did; ``ran`` False with ``reason`` when it did not run."""

    ran: bool
    reason: str = ""
    score: str = SCORE
    shadows_in: int = 0
    shadows_out: int = 0
    seeds: list[int] = field(default_factory=list)
    description: str = ""
    estimated_s: float | None = None
    budget_s: float = 0.0
    seconds: float = 0.0
    audited: U.PersonTest | None = None
    original: U.PersonTest | None = None  # the same test on the original model (power shown)
    calibration: U.Calibration | None = None


def record_scores(model, tokenizer, texts: Sequence[str], *, batch_size: int = 32
                  ) -> np.ndarray:
    """``(records,)`` LiRA scores of ``texts`` under ``model`` (:func:`ulira.logit_confidence`
    of each record's mean token log-probability)."""
    from audits.mia import token_stats

    stats = token_stats(model, tokenizer, list(texts), batch_size=batch_size, moments=False)
    return U.logit_confidence([float(s.logprobs.mean()) if s.logprobs.size else 0.0
                               for s in stats])


def not_run(reason: str, c: AuditConfig, estimated: float | None = None) -> StrongResult:
    return StrongResult(False, reason, estimated_s=estimated, budget_s=c.strong_budget_s)


def run_strong(*, model, tokenizer, texts: Sequence[str],
               shadows: ShadowSet | ShadowProvider | NoShadows | None, config: AuditConfig,
               original: ModelPair | None = None) -> StrongResult:
    """The per-person attack on the audited model (and the original, when given)."""
    c = config
    if not c.strong:
        return not_run("off: it runs with AuditConfig(strong=True) (`forget audit --strong`)", c)
    if shadows is None:
        return not_run("no shadow models were given (run_audit(shadows=...)); `forget audit "
                       "--strong` trains them for the suite's own models", c)
    if isinstance(shadows, NoShadows):
        return not_run(f"no shadow models could be trained: {shadows.reason}", c)
    t0 = time.perf_counter()
    k, est = c.strong_shadows, None
    if not isinstance(shadows, ShadowSet):
        if not isinstance(shadows, ShadowProvider):
            raise AuditInputError("shadows: expected a ShadowSet or a provider with "
                                  "estimate_seconds(k) and __call__(k) -> ShadowSet")
        est = float(shadows.estimate_seconds(k))
        if est > c.strong_budget_s:
            return not_run(f"over budget: training {k} shadow models with the subject and {k} "
                           f"without would take about {est:,.0f} s, more than "
                           f"strong_budget_s = {c.strong_budget_s:,.0f} s", c, est)
        shadows = shadows(k)
    if len(shadows.inside) < U.MIN_SHADOWS or len(shadows.outside) < U.MIN_SHADOWS:
        raise AuditInputError(f"shadows: {len(shadows.inside)} IN and {len(shadows.outside)} "
                              f"OUT models; the per-person attack needs at least "
                              f"{U.MIN_SHADOWS} of each")

    def score(pair: ModelPair) -> np.ndarray:
        return record_scores(pair[0], pair[1], texts, batch_size=c.batch_size)

    a = np.stack([score(p) for p in shadows.inside])  # (k_in, records)
    b = np.stack([score(p) for p in shadows.outside])  # (k_out, records)
    fit = U.fit_gaussians(a, b)
    kw = dict(alpha=c.strong_alpha, min_power=c.strong_min_power)
    return StrongResult(
        True, shadows_in=len(shadows.inside), shadows_out=len(shadows.outside),
        seeds=list(shadows.seeds), description=shadows.description, estimated_s=est,
        budget_s=c.strong_budget_s, audited=U.person_test(score((model, tokenizer)), fit, **kw),
        original=U.person_test(score(original), fit, **kw) if original is not None else None,
        calibration=U.calibrate(a, b, **kw), seconds=time.perf_counter() - t0)


def per_person_check(r: StrongResult):
    """The ``per_person`` check of a run attack, two-sided: fail when a record scores as only
    models trained on it do, or (over-unlearning) further from them than any model trained
    without it would; inconclusive when the test could not have found a trained model."""
    from audits.verdict import Check

    t = r.audited
    if not r.ran or t is None:
        return None
    rule = (f"every record of the subject scores as a model trained without them would, on "
            f"either side: per-record p > {t.alpha:g} / (2 sides x {t.records} records) "
            f"(U-LiRA, {r.shadows_in} shadow models with the subject, {r.shadows_out} without)")
    ev = {"records": t.records, "flagged": t.flagged, "min_p": float(f"{t.min_p:.3g}"),
          "flagged_low": t.flagged_low, "min_p_low": float(f"{t.min_low_p:.3g}"),
          "log_lr_total": round(t.log_lr_total, 2), "power": round(t.power, 3),
          "records_flagged_at_1pct_fpr": t.flagged_at["0.01"],
          "records_flagged_at_0.1pct_fpr": t.flagged_at["0.001"],
          "shadows_in": r.shadows_in, "shadows_out": r.shadows_out,
          "global_variance": t.global_variance}
    if t.decision == U.ABSENT:
        ev["direction"] = "over-unlearning"
        return Check("per_person", rule, t.min_low_p, t.threshold, False, ev, note=(
            f"over-unlearning: {t.flagged_low} of {t.records} records score further from the "
            "models trained on them than any model trained without them would (a conspicuous "
            "absence)"))
    if t.decision == U.UNDECIDED:
        return Check("per_person", rule, t.min_p, t.threshold, None, ev, inconclusive=True,
                     note=f"no power: a model trained on the subject would be flagged with "
                          f"probability {t.power:.2f} (< {t.min_power:g}); more shadows or "
                          "records are needed")
    o = r.original
    if o is not None:
        ev["original_decision"], ev["original_flagged"] = o.decision, o.flagged
    if t.decision == U.OUT and o is not None and o.decision != U.IN:
        # Power measured, not only modelled: the same test must find the subject in the
        # model that was trained on them before its silence on the audited model counts.
        return Check("per_person", rule, t.min_p, t.threshold, None, ev, inconclusive=True,
                     note="no power: the same test does not find the subject in the original "
                          "model either (its records score as an OUT model's there too)")
    note = "" if t.decision == U.OUT else (
        f"{t.flagged} of {t.records} records score as only models trained on them do")
    return Check("per_person", rule, t.min_p, t.threshold, t.decision == U.OUT, ev, note=note)
