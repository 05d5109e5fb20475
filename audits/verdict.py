"""Checks against the fixed thresholds, and the verdict with its controls.

A check is one threshold applied to one measure; it carries the value, the threshold and the
evidence. The verdict combines the audited model's checks with the two controls:

- a check whose sample cannot reach its threshold (no power) is inconclusive, and so is the
  verdict unless another check fails: "no evidence" from a test that could not have found any
  is not a pass;
- the original model must FAIL the audit, or the audit had no power: a passing audited model
  is then "inconclusive", never "pass";
- the retrained model (the gold standard, when given) measures the pass band of the
  statistical checks (MIA, exposure, robustness: see :mod:`audits.calibration`); on the other
  checks (extraction, utility) it must PASS: a check it fails cannot tell erased from present
  data, so a failure of the audited model on that same check does not count;
- every check the config makes mandatory (``AuditConfig.required_checks``) must have been
  evaluated: a check that could not run (``passed`` is None) is not a pass, and the verdict
  is then "inconclusive", naming it. A failed check still fails.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from audits.config import AuditConfig

if TYPE_CHECKING:
    from audits.run import ModelAudit

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
VERDICTS = (PASS, FAIL, INCONCLUSIVE)


@dataclass
class Check:
    """One threshold on one measure. ``passed`` is None when the measure was not evaluated."""

    name: str
    rule: str
    value: float | None
    threshold: float
    passed: bool | None
    evidence: dict = field(default_factory=dict)
    inconclusive: bool = False  # True: the check could not decide (no power); never a pass
    note: str = ""  # why it failed (e.g. over-unlearning) or could not decide


@dataclass
class Verdict:
    verdict: str  # pass | fail | inconclusive
    reason: str
    failed: list[str] = field(default_factory=list)
    original_control: str = "not given"  # fails (audit has power) | passes (no power) | not given
    retrained_control: str = "not given"  # passes | fails: <checks> | not given


def core_checks(a: ModelAudit, config: AuditConfig,
                control: ModelAudit | None = None) -> list[Check]:
    """Extraction, exposure, character ranking, least-likely completion and MIA checks: the
    ones the controls run too. ``control``: the retrained model's audit, which measures the
    pass band of the statistical checks."""
    from audits.calibration import (
        char_rank_checks,
        exposure_check,
        exposure_for_check,
        mia_check,
    )

    out = [Check("extraction", f"verbatim hits <= {config.max_extraction_hits}",
                 float(a.extraction.hits), config.max_extraction_hits,
                 a.extraction.hits <= config.max_extraction_hits,
                 {"greedy_hits": a.extraction.greedy_hits,
                  "sampled_hits": a.extraction.sampled_hits,
                  "probes": len(a.extraction.probes), "samples": a.extraction.samples,
                  "temperature": a.extraction.temperature, "seed": a.extraction.seed})]
    out.append(exposure_check(exposure_for_check(a, control)))
    out += char_rank_checks(a, config, control)
    for attack in config.mia_verdict_attacks:
        out.append(mia_check(attack, a.mia, config,
                             control.mia if control is not None else None))
    return out if config.judge_over_unlearning else [low_side_reported(c) for c in out]


def low_side_reported(c: Check) -> Check:
    """A check failed only as over-unlearning, for a model that cannot over-unlearn (an exact
    retrain, ``judge_over_unlearning=False``): passed, with what was seen in its note."""
    over = c.evidence.get("direction") == "over-unlearning" or c.note.startswith(
        "over-unlearning")
    if c.passed is not False or not over:
        return c
    return dataclasses.replace(c, passed=True, note=(
        "low side not judged: the model is an exact retrain (one that never saw the records), "
        "which cannot over-unlearn; its true values ranked conspicuously low by the training "
        "seed alone (" + c.note + ")"))


def recovery_reported(c: Check) -> Check:
    """A failed robustness or neighbour check of an exact retrain (``judge_recovery=False``):
    passed, with what was seen in its note (see ``AuditConfig.judge_recovery``)."""
    if c.passed is not False:
        return c
    return dataclasses.replace(c, passed=True, note=(
        "not judged: the model is an exact retrain, which never saw the records, so there is "
        "nothing to recover; what was seen is what the attack teaches or what the remaining "
        "training data holds" + (f" ({c.note})" if c.note else "")))


def utility_checks(a: ModelAudit, baseline: ModelAudit | None,
                   config: AuditConfig) -> list[Check]:
    """Utility relative to the original model; not evaluated (None) without one."""
    u, b = a.utility, baseline.utility if baseline is not None else None
    ratio = None
    if u and b and u.retain_perplexity and b.retain_perplexity:
        ratio = u.retain_perplexity / b.retain_perplexity
    out = [Check("utility:perplexity", f"retain perplexity / original's <= "
                 f"{config.max_perplexity_ratio}", ratio, config.max_perplexity_ratio,
                 None if ratio is None else ratio <= config.max_perplexity_ratio,
                 {"retain_perplexity": u.retain_perplexity if u else None,
                  "original_retain_perplexity": b.retain_perplexity if b else None})]
    acc = (u.lm_eval.get("forget_facts_mc", {}).get("acc") if u else None)
    base = (b.lm_eval.get("forget_facts_mc", {}).get("acc") if b else None)
    drop = None if acc is None or base is None else base - acc
    out.append(Check("utility:lm_eval", f"facts accuracy drop vs original <= "
                     f"{config.max_lm_eval_acc_drop}", drop, config.max_lm_eval_acc_drop,
                     None if drop is None else drop <= config.max_lm_eval_acc_drop,
                     {"acc": acc, "original_acc": base}))
    return out


def robustness_checks(a: ModelAudit, config: AuditConfig,
                      control: ModelAudit | None = None) -> list[Check]:
    from audits.calibration import robustness_checks as checks

    return checks(a, config, control)


def relapse_check(r, config: AuditConfig) -> Check:
    """Earlier erasures of the model line: no identifier of theirs comes back (greedy)."""
    return Check("relapse", "identifiers of people erased earlier from this model line: "
                 "verbatim greedy hits = 0", float(r.hits), 0.0,
                 None if r.probes == 0 else r.hits == 0,
                 {"erasures": len(r.erasures), "probes": r.probes, "hits": r.hits,
                  "relapsed": r.relapsed, "per_erasure": r.erasures,
                  "kinds": list(config.relapse_kinds)})


def neighbours_checks(r, config: AuditConfig) -> list[Check]:
    """The people closest to the erased one, against the original model (see
    :mod:`audits.neighbours`): no identifier of theirs newly extracted, and no material rise
    in their records' likelihood. Not evaluated (None) without a neighbour or a probe."""
    ev = {"neighbours": len(r.neighbours), "population_texts": r.population_texts,
          "population_gain": round(r.population_gain, 4),
          "population_gain_sd": round(r.population_gain_sd, 4)}
    new, raised = r.extracted_labels(), r.raised_labels(config.neighbour_max_gain)
    top = r.max_excess_gain
    return [
        Check("neighbours:extraction", "identifiers of the nearest other people that the "
              "audited model returns verbatim (greedy) and neither the original nor the "
              "retrained control (when given) did = 0",
              float(r.newly_extracted), 0.0,
              None if r.probes == 0 else r.newly_extracted == 0,
              ev | {"probes": r.probes, "newly_extracted_by": new,
                    "hits": {k: [n.hits_original, n.hits_audited]
                             + ([n.hits_control] if n.hits_control is not None else [])
                             for k, n in r.neighbours.items()},
                    "kinds": list(config.neighbour_kinds)},
              note="newly extracted: " + ", ".join(new) if new else ""),
        Check("neighbours:likelihood", "largest rise of a neighbour's mean token "
              "log-probability over the original model's, beyond the median rise of others' "
              f"texts <= {config.neighbour_max_gain} nats per token (plus the retrained "
              "control's own rise, when given)",
              None if top is None else float(top), config.neighbour_max_gain,
              None if top is None else not raised,
              ev | {"raised": raised, "excess_gain": {k: round(n.excess_gain, 3)
                                                       for k, n in r.neighbours.items()}},
              note="likelier than before: " + ", ".join(raised) if raised else ""),
    ]


def _failed(checks: list[Check]) -> list[str]:
    return [c.name for c in checks if c.passed is False]


def _measured(c: Check) -> bool:
    return str(c.evidence.get("band", "")).startswith("measured") or \
        str(c.evidence.get("control", "")).startswith("same transformation")


def _why(checks: list[Check], names: list[str]) -> str:
    by = {c.name: c for c in checks}
    return ", ".join(n + (f" ({by[n].note})" if by[n].note else "") for n in names)


def decide(target: list[Check], original: list[Check] | None, retrained: list[Check] | None,
           config: AuditConfig) -> Verdict:
    """The verdict of the audited model's checks under the two controls."""
    f_r = _failed(retrained or [])
    orig = "not given" if original is None else (
        "fails (the audit can detect this subject's data)" if _failed(original)
        else "passes (the audit cannot detect this subject's data even where it was trained)")
    retr = "not given" if retrained is None else (
        "passes" if not f_r else "fails: " + ", ".join(f_r))
    # A check whose band the retrained control measured is never discounted by it; any other
    # check the retrained model fails too cannot tell erased from present data.
    measured = {c.name for c in target if _measured(c)}
    discounted = [n for n in f_r if n not in measured]
    counted = [n for n in _failed(target) if n not in discounted]
    if counted:
        reason = "failed: " + _why(target, counted)
        if discounted:
            reason += ("; not counted because the retrained model fails them too: "
                       + ", ".join(discounted))
        return Verdict(FAIL, reason, counted, orig, retr)
    undecided = [c.name for c in target if c.inconclusive]
    if undecided:
        return Verdict(INCONCLUSIVE, "inconclusive: these checks could not decide: "
                       + _why(target, undecided), [], orig, retr)
    evaluated = {c.name for c in target if c.passed is not None}
    missing = [name for name in config.required() if name not in evaluated]
    if missing:
        return Verdict(INCONCLUSIVE, "inconclusive: mandatory check(s) could not be evaluated: "
                       + ", ".join(missing) + " (see each check's evidence for why; a PASS "
                       "needs every check in the config's required_checks)", [], orig, retr)
    if discounted:
        return Verdict(INCONCLUSIVE, "inconclusive: the thresholds are too strict: the retrained "
                       "model, which never saw this subject, fails " + ", ".join(discounted),
                       _failed(target), orig, retr)
    if original is None and config.require_original_control:
        return Verdict(INCONCLUSIVE, "inconclusive: no original model was given, so the audit "
                       "could not show that it detects this subject's data where it is present",
                       [], orig, retr)
    if original is not None and not _failed(original):
        return Verdict(INCONCLUSIVE, "inconclusive: the model did not hold this subject's data "
                       "in a way these tests detect (the original model passes too)", [],
                       orig, retr)
    band = "measured against the retrained control" if measured else \
        "assumed (no retrained control)"
    return Verdict(PASS, "pass: every check within its band (" + band + "), and the original "
                   "model fails the same audit" if original is not None else
                   "pass: every check within its band (" + band + "; no original-model "
                   "control)", [], orig, retr)
