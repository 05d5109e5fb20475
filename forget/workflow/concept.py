"""Concept requests: a request whose identifiers hold one of kind ``concept`` (e.g. a person's
likeness or an artist's style, in the tiny world a colour or a shape) against a diffusion
pipeline. Same ledger, same steps and records as a person's request:

verify -> scope (the concept's prompts in the pipeline's data) -> unlearn (``text_encoder``
by default; stronger retries; no retraining fallback: a pipeline is not retrained here) ->
audit (:func:`audits.concept.concept_audit`, the original as control) -> guard (recorded as
not applicable: the outputs are images) -> certify -> complete (the concept is
crypto-shredded with the request's key like any identifier).

``model`` is the pipeline directory and ``data`` the concept data folder
(:func:`forget.diffusion.concepts.build_tiny` writes both).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from forget.errors import InvalidInputError
from forget.ledger.request import CONCEPT_KIND
from forget.workflow import steps as S
from forget.workflow.common import ProcessOutcome

SHOTS = 8  # few-shot images of the concept given to the method and the circumvention probe


def concept_value(identifiers) -> str | None:
    """The concept a request names (its ``concept`` identifier), or None."""
    values = [v for k, v in identifiers.other_ids if k == CONCEPT_KIND]
    return values[0] if values else None


def _scope(ctx: S.Context, spec, concept: str | None, data: Path) -> dict:
    from forget.diffusion.concepts import CONCEPTS_FILE
    from forget.ledger import State
    from forget.models import read_card

    path = ctx.work / "scope.json"
    if path.is_file() and ctx.done("scope"):
        return json.loads(path.read_text())
    ctx.record("scope", "started")
    caps = spec.captions()
    ids = [f"cap-{i:04d}" for i, c in enumerate(caps) if concept and concept in c.split()]
    summary = {"records": len(ids), "record_ids": ids, "kind": "concept",
               "matched_kinds": {CONCEPT_KIND: 1} if ids else {}}
    S.write_json_atomic(path, summary)
    safe = {"records": len(ids), "kind": "concept",
            "record_ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()}
    data_id = hashlib.sha256((data / CONCEPTS_FILE).read_bytes()).hexdigest()[:16]
    rec = ctx.ledger.get(ctx.request_id)
    if ids and rec.state != State.SCOPED and S._stage_index(rec) < S._stage_index_of(State.SCOPED):
        ctx.ledger.scope(ctx.request_id, models=[read_card(ctx.model_dir)["version"]],
                         datasets=[f"concepts-{data_id}"], details=safe, worker_id=ctx.worker_id)
    ctx.record("scope", "done", safe)
    ctx.say("scope", f"{len(ids)} prompts name the concept")
    return summary


def _unlearn(ctx: S.Context, attempt: S.Attempt, pipe, fset, rset) -> None:
    from forget.core import get_method
    from forget.diffusion.io import save_pipeline
    from forget.models import ModelRegistry, read_card
    from forget.models.registry import new_card

    if S.unlearn_begin(ctx, attempt):
        return
    if not (attempt.model_dir / "forget_model.json").is_file():
        ctx.say("unlearn", f"attempt {attempt.n}: {attempt.method}")
        impl = get_method(attempt.method)
        if getattr(impl, "modality", "text") != "diffusion":
            raise InvalidInputError(f"method {attempt.method!r} unlearns language models; a "
                                    "concept request needs a diffusion method (text_encoder)")
        cfg = S.attempt_config(impl, attempt)
        result = impl.run(model=pipe, tokenizer=pipe.tokenizer, forget=fset, retain=rset,
                          config=cfg)
        parent = read_card(ctx.model_dir)
        card = new_card(
            kind="unlearned", parent=parent["version"], method=attempt.method,
            size=parent.get("size"), line=parent.get("line") or parent["version"],
            erasures=list(parent.get("erasures", []))
            + [{"request_id": ctx.request_id, "record_ids": []}], modality="diffusion", config=result.config, config_hash=result.config_hash,
            guarantee=result.guarantee, formal_guarantee=None, unlearned_record_ids=[],
            unlearn_steps=result.steps, unlearn_wall_s=round(result.wall_time_s, 2),
            stopped_by=result.stopped_by)
        save_pipeline(result.model, attempt.model_dir, card=card, overwrite=True)
        ModelRegistry(ctx.registry).register(attempt.model_dir)
    S.unlearn_done(ctx, attempt)


def _audit(ctx: S.Context, attempt: S.Attempt, pipe, spec, clf, fset, cfg) -> str:
    from audits.concept import concept_audit
    from forget.diffusion.concepts import retain_concepts
    from forget.diffusion.io import load_pipeline
    from forget.ledger import State

    key = f"audit-{attempt.n}"
    report = attempt.report
    if not (ctx.done(key) and report.is_file()):
        ctx.record(key, "started")
        if not report.is_file():
            ctx.say("audit", f"attempt {attempt.n}: concept audit with the original as control")
            word = fset.concept
            rep = concept_audit(
                original=pipe, erased=load_pipeline(attempt.model_dir), scorer=clf.scorer(word),
                concept=word, concept_prompts=fset.prompts, unrelated_prompts=fset.unrelated,
                retain={w: (clf.scorer(w), ps) for w, ps in retain_concepts(spec, word).items()},
                concept_images=fset.images,
                ti_prompts=[p.replace(word, "{}") for p in fset.image_prompts or []],
                config=cfg)
            tmp = Path(tempfile.mkdtemp(prefix=".audit.", dir=attempt.dir))
            rep.save(tmp)
            shutil.rmtree(report.parent, ignore_errors=True)
            tmp.rename(report.parent)
    data = json.loads(report.read_text())
    verdict = data["verdict"]
    details = {"attempt": attempt.n, "verdict": verdict, "report_sha256": S.sha256_file(report),
               "checks": [{"passed": c["passed"], "required": c["required"], "value": c["value"]}
                          for c in data["checks"]]}
    if ctx.ledger.get(ctx.request_id).state == State.UNLEARNING:
        ctx.ledger.record_audit(ctx.request_id, passed=verdict == "pass", details=details,
                                worker_id=ctx.worker_id)
    if not ctx.done(key):
        ctx.record(key, "done", {k: details[k] for k in ("attempt", "verdict", "report_sha256")})
    return verdict


def _guard(ctx: S.Context) -> None:
    if ctx.done("guard"):
        return
    ctx.record("guard", "done", {"applies": False, "why": "image outputs: the text guard does "
                                 "not apply; the audit's circumvention probe is the evidence"})


def process_concept(ctx: S.Context, res: ProcessOutcome, concept_text: str, *, data: Path,
                    method: str, audit_config, max_attempts: int, method_config: dict | None,
                    t0: float, head_base) -> ProcessOutcome:
    """Run the concept workflow from scope on (``verify`` is done by the caller), from the
    pipeline line's head (``ctx.base``), redone from the new head if it moves meanwhile."""
    from audits.concept import ConceptAuditConfig
    from forget.diffusion.classifier import ConceptClassifier
    from forget.diffusion.concepts import concept_of, concept_sets, read_world
    from forget.workflow.finish import complete_on_head

    if audit_config is not None and not isinstance(audit_config, ConceptAuditConfig):
        raise InvalidInputError("a concept request is audited with an audits.concept."
                                "ConceptAuditConfig, not a language-model AuditConfig")
    spec = read_world(data)
    concept = concept_of(spec, concept_text)
    res.scope = _scope(ctx, spec, concept, Path(data))
    if concept is None or not res.scope["records"]:
        reason = "no prompt of this pipeline's data names the concept: nothing to erase"
        ctx.fail(res, reason)
        return res
    clf = ConceptClassifier.load(Path(data) / "classifier")
    fset, rset = concept_sets(spec, concept, shots=SHOTS)
    name = "text_encoder" if method == "auto" else method
    plan = [(name, {})] + [(name, {"_scale_steps": 2 ** k}) for k in range(1, max_attempts)]
    cfg = audit_config or ConceptAuditConfig()

    def one_round() -> S.Attempt | None:
        from forget.diffusion.io import load_pipeline

        pipe = load_pipeline(ctx.model_dir)  # the line's head
        res.model_before = ctx.base.as_before()
        for n, (m, overrides) in enumerate(plan, S.round_offset(ctx) + 1):
            attempt = S.Attempt(n, m, dict(method_config or {}) | overrides,
                                ctx.work / f"attempt-{n}")
            _unlearn(ctx, attempt, pipe, fset, rset)
            verdict = _audit(ctx, attempt, pipe, spec, clf, fset, cfg)
            res.attempts.append(attempt.summary(verdict))
            if verdict == "pass":
                return attempt
            ctx.say("audit", f"attempt {n} ({m}) did not pass the concept audit ({verdict})")
        reason = (f"no attempt passed the concept audit ({len(plan)} tried); the request is "
                  "not completed; see the audit reports")
        ctx.fail(res, reason)
        return None

    return complete_on_head(ctx, res, t0, one_round, guard=_guard, head_base=head_base)
