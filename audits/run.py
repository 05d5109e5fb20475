"""``run_audit``: plain inputs in, an :class:`AuditReport` out.

The audited model gets every measure; the original and retrained models (the controls) get the
core measures (MIA, extraction, exposure) and perplexity, so the verdict can say whether the
audit had power; the retrained control also gets the robustness transformations, and its
scores set the pass band of every statistical check (:mod:`audits.calibration`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from audits.calibration import twin_identities
from audits.charrank import CharRankResult, run_char_rank
from audits.config import AuditConfig
from audits.errors import AuditInputError
from audits.exposure import ExposureResult, alternatives_for_power, run_exposure
from audits.extraction import ExtractionResult, Prompt, identifier_prompts, run_extraction
from audits.mia import MIAResult, run_mia
from audits.neighbours import NeighboursResult, run_neighbours
from audits.records import Record, as_records, identifiers, mask
from audits.relapse import RelapseResult, run_relapse
from audits.robustness import RobustnessCase, run_robustness
from audits.strong import NoShadows, ShadowProvider, ShadowSet, per_person_check, run_strong
from audits.twins import make_twins
from audits.utility import UtilityResult, run_utility
from audits.verdict import (
    core_checks,
    decide,
    low_side_reported,
    neighbours_checks,
    recovery_reported,
    relapse_check,
    robustness_checks,
    utility_checks,
)

ModelPair = tuple[Any, Any]  # (model, tokenizer)


@dataclass
class ModelAudit:
    """Every measure of one model (the audited one or a control)."""

    role: str  # audited | original | retrained
    model_sha256: str
    mia: MIAResult
    extraction: ExtractionResult
    exposure: ExposureResult
    mia_holdout: MIAResult | None = None
    utility: UtilityResult | None = None
    robustness: list[RobustnessCase] = field(default_factory=list)
    seconds: float = 0.0
    relapse: RelapseResult | None = None
    char_rank: CharRankResult | None = None  # character ranking + least-likely completion
    neighbours: NeighboursResult | None = None  # the nearest other people, vs the original


def model_sha256(model) -> str:
    """sha256 over parameters and buffers (names, dtypes, shapes, bytes), in name order."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        if t.numel() and not t.is_quantized:
            h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


_state_sha256 = model_sha256  # run_audit's ``model_sha256`` argument shadows the function


def _prompts(records: Sequence[Record], kinds: Sequence[str]) -> list[Prompt]:
    return [p for r in records for p in identifier_prompts(
        r.record_id, r.text, [{"kind": s.kind, "start": s.start, "end": s.end} for s in r.spans],
        kinds)]


@dataclass
class _Plan:
    members: list[Record]
    twins: list[Record]
    nonmembers: list[Record]
    ext_prompts: list[Prompt]
    exp_prompts: list[Prompt]
    copies: int = 1  # twin identities
    exposure_kinds: tuple[str, ...] = ()
    alternatives: int = 199  # exposure look-alikes per identifier (raised for power)
    char_prompts: list[Prompt] = field(default_factory=list)
    relearn_texts: Sequence[str] = ()  # other training data for the relearn_other attack


def _extraction_exposure(model, tok, plan_prompts: tuple[list[Prompt], list[Prompt]],
                         c: AuditConfig, alternatives: int, *,
                         sides: int = 2) -> tuple[ExtractionResult, ExposureResult]:
    ext = run_extraction(model, tok, plan_prompts[0], samples=c.samples,
                         temperature=c.temperature, el_ns=c.el_ns, seed=c.seed,
                         batch_size=c.batch_size)
    # One-sided (robustness) at the two-sided test's per-tail level: alpha / 2 over one side.
    alpha = c.exposure_rank_alpha() if sides == 2 else c.exposure_rank_alpha() / 2
    exp = run_exposure(model, tok, plan_prompts[1], alternatives=alternatives,
                       alpha=alpha, bonferroni=c.exposure_bonferroni, seed=c.seed,
                       batch_size=4 * c.batch_size, sides=sides,  # short texts: larger batches
                       alternatives_by_kind=c.exposure_alternatives_by_kind())
    return ext, exp


# AuditConfig fields that only change how measures are judged, never what is measured.
VERDICT_ONLY = ("judge_over_unlearning", "judge_recovery")


def _inputs_key(recs, nonmembers, retain, holdout, lm_eval_dir, c: AuditConfig,
                reference, relearn_texts: Sequence[str] = (), exposure_kinds: Sequence[str] = (),
                alternatives: int = 0) -> str:
    """A digest of everything besides the model that a control's measures depend on (the
    verdict-only settings, e.g. ``judge_over_unlearning``, change no measure: left out).
    ``exposure_kinds`` and ``alternatives`` are the plan's: they depend on whether the run
    has a retrained control, not on the config alone."""
    measured = dataclasses.replace(c, **{k: getattr(AuditConfig(), k) for k in VERDICT_ONLY})
    h = hashlib.sha256(measured.config_hash().encode())
    h.update(repr((tuple(exposure_kinds), alternatives)).encode())
    for r in (*recs, *nonmembers):
        h.update(f"{r.record_id}|{r.text}|{[(s.kind, s.start, s.end) for s in r.spans]}".encode())
    for t in (*retain, "\x00", *holdout, "\x01", *relearn_texts):
        h.update(t.encode() + b"\x00")
    h.update(str(lm_eval_dir).encode())
    h.update(model_sha256(reference[0]).encode() if reference is not None else b"-")
    return h.hexdigest()


def _neighbours_key(groups: Mapping[str, Sequence[Record | Mapping]], retain: Sequence[str],
                    c: AuditConfig) -> str:
    """A digest of the neighbour inputs (the original model's measures depend only on them)."""
    h = hashlib.sha256(repr((c.neighbour_kinds, c.batch_size)).encode())
    for label, recs in sorted(groups.items()):
        h.update(str(label).encode() + b"\x00")
        for r in as_records(recs):
            h.update(f"{r.record_id}|{r.text}|{[(s.kind, s.start, s.end) for s in r.spans]}"
                     .encode())
    for t in retain:
        h.update(t.encode() + b"\x00")
    return h.hexdigest()


def audit_model(role: str, pair: ModelPair, plan: _Plan, c: AuditConfig, *,
                reference: ModelPair | None = None, retain: Sequence[str] = (),
                holdout: Sequence[str] = (), lm_eval_dir: Path | str | None = None,
                robustness: bool = False) -> ModelAudit:
    """Run the measures on one model."""
    t0 = time.perf_counter()
    model, tok = pair
    mia = run_mia(model, tok, [r.text for r in plan.members], [t.text for t in plan.twins],
                  population="twins", reference=reference, k=c.min_k, bootstrap=c.bootstrap,
                  level=c.ci_level, seed=c.seed, batch_size=c.batch_size, copies=plan.copies)
    mia_h = None
    if plan.nonmembers:
        mia_h = run_mia(model, tok, [r.text for r in plan.members],
                        [r.text for r in plan.nonmembers], population="holdout",
                        reference=reference, k=c.min_k, bootstrap=c.bootstrap,
                        level=c.ci_level, seed=c.seed, batch_size=c.batch_size)
    ext, exp = _extraction_exposure(model, tok, (plan.ext_prompts, plan.exp_prompts), c,
                                    plan.alternatives)
    chars = run_char_rank(model, tok, plan.char_prompts, given_fraction=c.char_rank_given,
                          alpha=c.char_rank_alpha, batch_size=4 * c.batch_size) \
        if plan.char_prompts and c.char_rank_on else None
    util = run_utility(model, tok, retain=retain, holdout=holdout, lm_eval_dir=lm_eval_dir,
                       batch_size=c.batch_size, seed=c.seed)
    rob: list[RobustnessCase] = []
    if robustness:
        prompts = plan.ext_prompts + [p for p in plan.exp_prompts if p not in plan.ext_prompts]
        rob = run_robustness(
            model, tok, prompts, plan.members, plan.twins,
            lambda m, t, ps: _extraction_exposure(
                m, t, ([p for p in ps if p.kind in c.extraction_kinds],
                       [p for p in ps if p.kind in plan.exposure_kinds]), c,
                plan.alternatives, sides=1),  # robustness asks only "did it come back?"
            relearn_steps=c.relearn_steps, relearn_lr=c.relearn_lr, quantize=c.quantize,
            paraphrase=c.paraphrase, seed=c.seed, other_texts=plan.relearn_texts,
            relearn_other_steps=c.relearn_other_steps, relearn_other_lr=c.relearn_other_lr)
    return ModelAudit(role, model_sha256(model), mia, ext, exp, mia_h, util, rob,
                      time.perf_counter() - t0, char_rank=chars)


def run_audit(
    *, model, tokenizer, members: Sequence[Record | Mapping],
    nonmembers: Sequence[Record | Mapping] = (), retain: Sequence[str] = (),
    holdout: Sequence[str] = (), reference: ModelPair | None = None,
    original: ModelPair | None = None, retrained: ModelPair | None = None,
    config: AuditConfig | None = None, subject_id: str = "subject",
    lm_eval_dir: Path | str | None = None, cache: dict | None = None,
    relapse: Mapping[str, Sequence[Record | Mapping]] | None = None,
    relearn_texts: Sequence[str] | None = None, model_sha256: str | None = None,
    neighbours: Mapping[str, Sequence[Record | Mapping]] | None = None,
    shadows: ShadowSet | ShadowProvider | NoShadows | None = None,
):
    """Audit ``model`` for the subject whose records (with identifier spans) are ``members``.

    Args:
        model, tokenizer: the model under audit (any HF causal LM) and its tokenizer.
        members: the subject's records ``{record_id, text, spans: [{kind, start, end}]}``.
        nonmembers: records of people the model never saw (held-out subjects), an MIA
            population besides the twins; optional.
        retain, holdout: texts for perplexity (others' training texts; never-seen texts).
        reference: ``(model, tokenizer)`` of a reference model for the ratio attack.
        original, retrained: ``(model, tokenizer)`` controls: before unlearning; retrained
            without the subject.
        config: thresholds fixed in advance (default :class:`AuditConfig`).
        subject_id: a pseudonymous id for the report (never a name).
        lm_eval_dir: task directory from :func:`audits.utility.prepare_tasks`, or None.
        cache: a dict kept by the caller across calls; the controls' measures are stored in it
            and reused when the same control model (by weight hash) is audited again with the
            same records, texts and config (benchmarks audit many models against one control).
        relapse: records (with identifier spans) of people erased earlier from the same model
            line, by erasure label (e.g. request id): the audited model must give none of
            their identifiers back by greedy decoding (the ``relapse`` check).
        relearn_texts: a sample of the model's other training data (not the subject's: for a
            code secret, other code files; the ``retain`` sample will do for people) that the
            ``relearn_other`` attack fine-tunes the audited model and the retrained control on
            (``config.relearn_other_steps`` steps). Without it that attack does not run.
        model_sha256: the sha256 of the audited model's weights as the caller's records state
            it (e.g. the deletion certificate's), shown in the report so the two can be
            compared; 64 hexadecimal characters. The report also gives the audit's own hash of
            the in-memory parameters (``models.audited.model_sha256``), which is a different
            digest of the same weights.
        neighbours: records (with identifier spans) of the people nearest to the subject (who
            share records with them, or whose records read alike), by pseudonymous label
            (e.g. ``neighbour-1``; never a name): the audited model must not have made them
            more exposed than the ``original`` model left them (the ``neighbours:extraction``
            and ``neighbours:likelihood`` checks, :mod:`audits.neighbours`; the ``retain``
            texts are the comparison population; what the ``retrained`` control does too is not
            counted). Needs ``original``; without it the neighbours are not measured (and the
            audit is inconclusive: ``require_original_control``).
        shadows: for the per-person attack (``config.strong``): shadow models trained with and
            without the subject's records (:class:`~audits.strong.ShadowSet`), or a provider
            that estimates its cost and trains them only when the attack runs within
            ``config.strong_budget_s`` (:class:`~audits.strong.ShadowProvider`), or
            :class:`~audits.strong.NoShadows` saying why none can be trained.

    Returns:
        The :class:`~audits.report.AuditReport` with verdict, checks, controls and evidence.
    """
    from audits.report import build_report

    c = config or AuditConfig()
    t0 = time.perf_counter()
    declared = _declared_sha(model_sha256)
    if isinstance(relearn_texts, str):
        raise AuditInputError("relearn_texts: expected a list of texts, got one string; pass "
                              "[text, ...]")
    relearn_texts = list(relearn_texts or ())
    if any(not isinstance(t, str) for t in relearn_texts):
        raise AuditInputError("relearn_texts: expected a sequence of strings (other training "
                              "texts), got another type; pass e.g. a list of texts")
    recs = as_records(members)
    if not recs:
        raise AuditInputError("no member records: pass the subject's records as members=")
    if not any(r.spans for r in recs):
        raise AuditInputError("the member records have no identifier spans to audit")
    copies = twin_identities(c)
    # With a retrained control the exposure ranks are calibrated by it (audited minus control
    # log-likelihoods), so kinds whose fakes are not exchangeable with real values can be tested
    # too (a control adds kinds; it never drops one the config asks for, e.g. secrets).
    kinds = tuple(dict.fromkeys(c.exposure_kinds + c.exposure_kinds_with_control)) \
        if retrained is not None else c.exposure_kinds
    exp_prompts = _prompts(recs, kinds)
    n_ids = len({(p.kind, p.target.strip()) for p in exp_prompts})
    plan = _Plan(recs, make_twins(recs, copies=copies, seed=c.seed), as_records(nonmembers),
                 _prompts(recs, c.extraction_kinds), exp_prompts, copies, tuple(kinds),
                 alternatives_for_power(c.exposure_alternatives, n_ids,
                                        alpha=c.exposure_rank_alpha(), sides=2,
                                        bonferroni=c.exposure_bonferroni),
                 _prompts(recs, c.char_rank_kinds), relearn_texts)
    target = audit_model("audited", (model, tokenizer), plan, c, reference=reference,
                         retain=retain, holdout=holdout, lm_eval_dir=lm_eval_dir,
                         robustness=True)
    if relapse:
        target.relapse = run_relapse(model, tokenizer, relapse, kinds=c.relapse_kinds,
                                     batch_size=c.batch_size)
    if neighbours and original is not None:
        nkey = ("neighbours", _state_sha256(original[0]), _neighbours_key(
            neighbours, retain, c)) if cache is not None else None
        target.neighbours = run_neighbours(
            model, tokenizer, original, neighbours, kinds=c.neighbour_kinds,
            population=retain, batch_size=c.batch_size, control=retrained,
            original_cache=cache.setdefault(nkey, {}) if nkey is not None else None)
    audits = {"audited": target}
    key = _inputs_key(recs, plan.nonmembers, retain, holdout, lm_eval_dir, c, reference,
                      relearn_texts, plan.exposure_kinds, plan.alternatives)

    def control(role: str, pair: ModelPair, lm_dir) -> ModelAudit:
        if pair[0] is model:
            return target
        sha = _state_sha256(pair[0])
        if sha == target.model_sha256:
            # The control's weights are the audited model's, bit for bit (an exact retrain
            # checked against the same recipe's retrain): the measures are the same functions
            # of the same weights and plan, so they are taken, not computed a second time
            # (utility again only where the control's lm-eval tasks differ).
            util = target.utility if lm_dir == lm_eval_dir else run_utility(
                pair[0], pair[1], retain=retain, holdout=holdout, lm_eval_dir=lm_dir,
                batch_size=c.batch_size, seed=c.seed)
            return dataclasses.replace(
                target, role=role, utility=util, relapse=None, neighbours=None,
                robustness=target.robustness if role == "retrained" else [])
        k = (role, sha, key) if cache is not None else None
        if k is not None and k in cache:
            return cache[k]
        # The retrained control gets the robustness transformations too: recovery is judged
        # against what the same attack gets out of a model that never saw the person.
        result = audit_model(role, pair, plan, c, reference=reference, retain=retain,
                             holdout=holdout, lm_eval_dir=lm_dir,
                             robustness=role == "retrained")
        if k is not None:
            cache[k] = result
        return result

    if original is not None:
        audits["original"] = control("original", original, lm_eval_dir)
    if retrained is not None:
        audits["retrained"] = control("retrained", retrained, None)
    base, gold = audits.get("original"), audits.get("retrained")
    strong = run_strong(model=model, tokenizer=tokenizer, texts=[r.text for r in recs],
                        shadows=shadows, config=c, original=original)
    per_person = per_person_check(strong)
    if per_person is not None and not c.judge_over_unlearning:
        per_person = low_side_reported(per_person)
    recovery = robustness_checks(target, c, gold) + \
        (neighbours_checks(target.neighbours, c) if target.neighbours is not None else [])
    if not c.judge_recovery:
        recovery = [recovery_reported(r) for r in recovery]
    checks = core_checks(target, c, gold) + utility_checks(target, base, c) + recovery + \
        ([relapse_check(target.relapse, c)] if target.relapse is not None else []) + \
        ([per_person] if per_person is not None else [])
    orig_checks = core_checks(base, c, gold) if base is not None else None
    # The retrained control's own checks, against the assumed band: whether the look-alikes
    # are a fair reference for this subject (shown in the report; they do not set the verdict
    # of measured checks).
    retr_checks = core_checks(gold, c) if gold is not None else None
    verdict = decide(checks, orig_checks, retr_checks, c)
    masked = [{"kind": k, "masked": mask(v, k)} for k, v in identifiers(recs)]
    return build_report(
        subject_id=subject_id, verdict=verdict, checks=checks,
        control_checks={k: v for k, v in (("original", orig_checks),
                                          ("retrained", retr_checks)) if v is not None},
        audits=audits, config=c, identifiers=masked, seconds=time.perf_counter() - t0,
        secrets=identifiers(recs), model_sha256=declared, strong=strong,
    )


def _declared_sha(value: str | None) -> str | None:
    """The caller's weights hash, checked for form (64 hex digits) and lower-cased."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise AuditInputError("model_sha256: expected the 64 hexadecimal digits of a sha256 "
                              "(the audited model's weights hash, as in its certificate)")
    return value.lower()
