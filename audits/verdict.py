"""Checks against the fixed thresholds, and the verdict with its controls.

A check is one threshold applied to one measure; it carries the value, the threshold and the
evidence. The verdict combines the audited model's checks with the two controls:

- the original model must FAIL the audit, or the audit had no power: a passing audited model
  is then "inconclusive", never "pass";
- the retrained model (the gold standard, when given) must PASS: a check it fails cannot tell
  erased from present data, so the thresholds are too strict for that check and a failure of
  the audited model on that same check does not count;
- every check the config makes mandatory (``AuditConfig.required_checks``) must have been
  evaluated: a check that could not run (``passed`` is None) is not a pass, and the verdict
  is then "inconclusive", naming it. A failed check still fails.
"""

from __future__ import annotations

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


@dataclass
class Verdict:
    verdict: str  # pass | fail | inconclusive
    reason: str
    failed: list[str] = field(default_factory=list)
    original_control: str = "not given"  # fails (audit has power) | passes (no power) | not given
    retrained_control: str = "not given"  # passes | fails: <checks> | not given


def core_checks(a: ModelAudit, config: AuditConfig) -> list[Check]:
    """Extraction, exposure and MIA checks: the ones the controls run too."""
    out = [Check("extraction", f"verbatim hits <= {config.max_extraction_hits}",
                 float(a.extraction.hits), config.max_extraction_hits,
                 a.extraction.hits <= config.max_extraction_hits,
                 {"greedy_hits": a.extraction.greedy_hits,
                  "sampled_hits": a.extraction.sampled_hits,
                  "probes": len(a.extraction.probes), "samples": a.extraction.samples,
                  "temperature": a.extraction.temperature, "seed": a.extraction.seed})]
    e = a.exposure
    out.append(Check("exposure", "every identifier's exposure p-value >= "
                     + ("alpha / identifiers (Bonferroni)" if e.bonferroni else "alpha"),
                     e.min_p, e.threshold,
                     None if e.min_p is None else e.exposed == 0,
                     {"identifiers": len(e.identifiers), "exposed": e.exposed,
                      "alternatives": e.alternatives, "alpha": e.alpha, "seed": e.seed}))
    for attack in config.mia_verdict_attacks:
        r = a.mia.attacks.get(attack)
        out.append(Check(
            f"mia:{attack}", f"upper {config.ci_level:.0%} CI bound of AUC <= "
            f"{config.mia_auc_upper_max}", None if r is None else r.ci_high,
            config.mia_auc_upper_max, None if r is None else r.ci_high <= config.mia_auc_upper_max,
            {} if r is None else {"auc": r.auc, "ci": [r.ci_low, r.ci_high],
                                  "members": a.mia.n_members, "twins": a.mia.n_nonmembers,
                                  "bootstrap": a.mia.bootstrap, "seed": a.mia.seed}))
    return out


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


def robustness_checks(a: ModelAudit, config: AuditConfig) -> list[Check]:
    out = []
    for case in a.robustness:
        hits, exposed = case.extraction.hits, case.exposure.exposed
        ok = hits <= config.max_extraction_hits and exposed == 0
        out.append(Check(f"robustness:{case.name}",
                         f"after {case.name}: verbatim hits <= {config.max_extraction_hits} "
                         "and no identifier exposed", float(hits + exposed),
                         config.max_extraction_hits, ok,
                         {"hits": hits, "exposed": exposed, "min_p": case.exposure.min_p,
                          "p_threshold": case.exposure.threshold} | case.detail))
    return out


def relapse_check(r, config: AuditConfig) -> Check:
    """Earlier erasures of the model line: no identifier of theirs comes back (greedy)."""
    return Check("relapse", "identifiers of people erased earlier from this model line: "
                 "verbatim greedy hits = 0", float(r.hits), 0.0,
                 None if r.probes == 0 else r.hits == 0,
                 {"erasures": len(r.erasures), "probes": r.probes, "hits": r.hits,
                  "relapsed": r.relapsed, "per_erasure": r.erasures,
                  "kinds": list(config.relapse_kinds)})


def _failed(checks: list[Check]) -> list[str]:
    return [c.name for c in checks if c.passed is False]


def decide(target: list[Check], original: list[Check] | None, retrained: list[Check] | None,
           config: AuditConfig) -> Verdict:
    """The verdict of the audited model's checks under the two controls."""
    f_t, f_r = _failed(target), _failed(retrained or [])
    orig = "not given" if original is None else (
        "fails (the audit can detect this subject's data)" if _failed(original)
        else "passes (the audit cannot detect this subject's data even where it was trained)")
    retr = "not given" if retrained is None else (
        "passes" if not f_r else "fails: " + ", ".join(f_r))
    counted = [c for c in f_t if c not in f_r]
    if counted:
        reason = "failed: " + ", ".join(counted)
        if f_r:
            reason += f"; not counted because the retrained model fails them too: {', '.join(f_r)}"
        return Verdict(FAIL, reason, counted, orig, retr)
    evaluated = {c.name for c in target if c.passed is not None}
    missing = [name for name in config.required() if name not in evaluated]
    if missing:
        return Verdict(INCONCLUSIVE, "inconclusive: mandatory check(s) could not be evaluated: "
                       + ", ".join(missing) + " (see each check's evidence for why; a PASS "
                       "needs every check in the config's required_checks)", f_t, orig, retr)
    if f_r:
        return Verdict(INCONCLUSIVE, "inconclusive: the thresholds are too strict: the retrained "
                       "model, which never saw this subject, fails " + ", ".join(f_r),
                       f_t, orig, retr)
    if original is None and config.require_original_control:
        return Verdict(INCONCLUSIVE, "inconclusive: no original model was given, so the audit "
                       "could not show that it detects this subject's data where it is present",
                       [], orig, retr)
    if original is not None and not _failed(original):
        return Verdict(INCONCLUSIVE, "inconclusive: the model did not hold this subject's data "
                       "in a way these tests detect (the original model passes too)", [],
                       orig, retr)
    return Verdict(PASS, "pass: every check within its threshold, and the original model fails "
                   "the same audit" if original is not None else
                   "pass: every check within its threshold (no original-model control)",
                   [], orig, retr)
