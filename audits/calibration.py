"""The calibrated checks: membership inference, exposure and robustness as exact rank tests.

Each check answers one question with a two-sided (or, for recovery, one-sided) exact rank test
and says first whether its sample *can* answer it (power): a test whose smallest attainable
p-value is above its threshold cannot fail anything, so it is "inconclusive", never "pass".

The pass band of each test is *measured* when a retrained control is given (each candidate's
rank shift from the control to the audited model, :mod:`audits.rankshift`: the test asks "does
the audited model know more, or less, than a model that never saw the person?") and *assumed*
otherwise (the look-alikes are taken as
exchangeable with the real values, plus fixed AUC bounds for MIA). Every check says which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from audits import metrics as M
from audits.exposure import ExposureResult, calibrate
from audits.rankshift import rank_shift

if TYPE_CHECKING:
    from audits.config import AuditConfig
    from audits.mia import MIAResult
    from audits.run import ModelAudit
    from audits.verdict import Check

OVER = "over-unlearning"
REMEMBERS = "remembers"


def mia_alpha_per_side(config: AuditConfig) -> float:
    """``mia_alpha`` split (Bonferroni) over the verdict attacks and the two tails."""
    return config.mia_alpha / (2 * max(1, len(config.mia_verdict_attacks)))


def twins_needed(config: AuditConfig) -> int:
    """Twin identities the MIA rank test needs to reach its threshold at all."""
    return M.null_size_for_power(mia_alpha_per_side(config))


def twin_identities(config: AuditConfig) -> int:
    """How many twin identities the audit draws: the configured number, or (0) the needed one."""
    return config.twins_per_record or twins_needed(config)


def mia_check(attack: str, mia: MIAResult, config: AuditConfig,
              control: MIAResult | None = None) -> Check:
    """The exact two-sided rank test of the subject among twin identities, for one attack."""
    from audits.verdict import Check

    name = f"mia:{attack}"
    a = mia_alpha_per_side(config)
    rule = (f"the subject's records rank among look-alike identities as a model that never saw "
            f"them would: two-sided exact rank test, p > {a:.3g} on each side")
    r = mia.attacks.get(attack)
    k = mia.copies or 0
    if r is None or k < 1:
        return Check(name, rule, None, a, None, {}, note="not evaluated: no twin scores")
    m, t = np.asarray(r.member_scores), np.asarray(r.nonmember_scores)
    c = control.attacks.get(attack) if control is not None else None
    measured = c is not None and len(c.member_scores) == m.size \
        and len(c.nonmember_scores) == t.size
    real, twins = M.identity_statistics(m, t, k)
    if measured:  # what the audited model knows beyond a model that never saw the subject:
        # each identity's rank shift from the control to the audited model (audits.rankshift)
        real_c, twins_c = M.identity_statistics(c.member_scores, c.nonmember_scores, k)
        shift = rank_shift(np.r_[real, twins], np.r_[real_c, twins_c])
        real, twins = float(shift[0]), shift[1:]
    p_hi, p_lo = M.rank_p_values(real, twins)
    need = M.null_size_for_power(a)
    ev = {"auc": round(r.auc, 3), "auc_ci": [round(r.ci_low, 3), round(r.ci_high, 3)],
          "records": mia.n_members, "twin_identities": k, "twin_records": mia.n_nonmembers,
          "p_high": round(p_hi, 4), "p_low": round(p_lo, 4), "alpha_per_side": a,
          "power": k >= need, "smallest_p": round(M.smallest_p_value(k), 4),
          "twin_identities_needed": need,
          "band": "measured (retrained control)" if measured else
          f"assumed: AUC in [{config.mia_auc_lower_min}, {config.mia_auc_upper_max}]"}
    if measured:
        ev["control_auc"] = round(c.auc, 3)
        if c.auc > 0:
            ev["privleak"] = round(M.privleak(r.auc, c.auc), 3)
    value = min(p_hi, p_lo)
    if k < need:
        return Check(name, rule, value, a, None, ev, inconclusive=True, note=(
            f"no power: {k} look-alike identities give a smallest p-value of "
            f"{M.smallest_p_value(k):.3g}, above the threshold {a:.3g}; at least {need} are "
            "needed"))
    high = p_hi <= a and (measured or r.auc > config.mia_auc_upper_max)
    low = p_lo <= a and (measured or r.auc < config.mia_auc_lower_min)
    note = ""
    if high:
        ev["direction"] = REMEMBERS
        note = "the model still singles out this subject's records"
    elif low:
        ev["direction"] = OVER
        note = ("over-unlearning: the model treats this subject's records as conspicuously "
                "unfamiliar, which singles them out as much as remembering them")
    return Check(name, rule, value, a, not (high or low), ev, note=note)


def _exposure_evidence(e: ExposureResult) -> dict:
    return {"identifiers": len(e.identifiers), "exposed": e.exposed, "avoided": e.avoided,
            "alternatives": e.alternatives, "alpha": e.alpha, "sides": e.sides,
            "power": e.has_power, "smallest_p": round(M.smallest_p_value(e.alternatives), 4),
            "band": "measured (retrained control)" if e.calibrated_with else
            "assumed: fakes exchangeable with the true value",
            "ranks": [{"kind": i.kind, "masked": i.masked, "rank": i.rank,
                       "candidates": i.candidates, "p_high": round(i.p_value, 4),
                       "p_low": round(i.p_low, 4)} for i in e.identifiers]}


def exposure_check(e: ExposureResult) -> Check:
    """Every identifier's rank among its fakes: neither implausibly high nor (two-sided) low."""
    from audits.verdict import Check

    rule = ("every identifier ranks among same-format look-alikes as chance would: exact rank "
            f"test, p > {e.threshold:.3g} on each side")
    ev = _exposure_evidence(e)
    if not e.identifiers:
        return Check("exposure", rule, None, e.threshold, None, ev,
                     note="not evaluated: no identifier of the tested kinds")
    value = min(e.min_p or 1.0, e.min_p_low or 1.0) if e.sides == 2 else e.min_p
    if not e.has_power:
        return Check("exposure", rule, value, e.threshold, None, ev, inconclusive=True, note=(
            f"no power: {e.alternatives} look-alikes give a smallest p-value of "
            f"{M.smallest_p_value(e.alternatives):.3g}, above the threshold {e.threshold:.3g}"))
    note = ""
    if e.exposed:
        note = "the model ranks a true identifier above its look-alikes far more than chance"
    elif e.avoided:
        note = ("over-unlearning: the model ranks a true identifier conspicuously below its "
                "look-alikes, so an attacker who picks the value the model avoids finds it")
    return Check("exposure", rule, value, e.threshold, not (e.exposed or e.avoided), ev,
                 note=note)


def exposure_for_check(a: ModelAudit, control: ModelAudit | None) -> ExposureResult:
    """The audited exposure, calibrated by the control's when one was run on the same prompts."""
    if control is None:  # (a model audited against itself calibrates to a tie: it passes)
        return a.exposure
    try:
        return calibrate(a.exposure, control.exposure)
    except ValueError:  # a cached control run with other prompts: keep the assumed band
        return a.exposure


def robustness_checks(a: ModelAudit, config: AuditConfig,
                      control: ModelAudit | None = None) -> list[Check]:
    """After each transformation: no more verbatim hits than allowed (or than the control
    gives after the same transformation) and no identifier ranked implausibly high."""
    from audits.verdict import Check

    ctrl = {c.name: c for c in (control.robustness if control is not None else [])}
    out = []
    for case in a.robustness:
        cc = ctrl.get(case.name)
        exp = case.exposure
        if cc is not None:
            try:
                exp = calibrate(case.exposure, cc.exposure)
            except ValueError:
                cc = None
        allowed = max(config.max_extraction_hits, cc.extraction.hits if cc is not None else 0)
        hits = case.extraction.hits
        tested = bool(exp.identifiers)
        power = exp.has_power if tested else True
        ok = hits <= allowed and exp.exposed == 0
        ev = {"hits": hits, "hits_allowed": allowed, "exposed": exp.exposed,
              "min_p": exp.min_p, "p_threshold": exp.threshold, "power": power,
              "control": "same transformation on the retrained control" if cc is not None
              else "none: the band is assumed"} | case.detail
        if cc is not None:
            ev["control_hits"] = cc.extraction.hits
        rule = (f"after {case.name}: verbatim hits <= {allowed} and no identifier ranked "
                "implausibly high" + (" relative to the control" if cc is not None else ""))
        if not power and hits <= allowed:
            out.append(Check(f"robustness:{case.name}", rule, float(hits), allowed, None, ev,
                             inconclusive=True, note="no power: too few look-alikes"))
            continue
        out.append(Check(f"robustness:{case.name}", rule, float(hits + exp.exposed), allowed,
                         ok, ev))
    return out
