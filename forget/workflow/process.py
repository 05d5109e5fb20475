"""``process_request``: verify -> scope -> unlearn -> audit -> guard -> certify -> complete.

Every step is recorded in the ledger before it runs and when it is done, writes its outputs
atomically under ``out/<request id>/``, and is skipped on a later run when the ledger says it is
done and its outputs are there. A run killed at any point therefore resumes where it stopped and
ends in the same state as an uninterrupted one. The original model is only read. A request is
never completed on a failed audit: the ledger itself refuses that transition. Every input
(method, configs, model, data) is checked first (:mod:`forget.workflow.validate`), before the
first ledger event or file of a run.

Layout of ``out``::

    <request id>/scope.json                   record ids and counts (no identifier)
    <request id>/attempt-N/model/             the unlearned model (a registered version);
                                              a request redone on a newer head continues N
    <request id>/attempt-N/audit/report.*     the audit report (identifiers masked)
    <request id>/certificate.json             the signed deletion certificate
    guard/index.json                          the forgotten-subject index (its key is kept
                                              apart: forget.keys.guard_key_path)
    serving.json                              model line -> its head, as the ledger has it

Every request starts from the head of its model line (``model`` names the line by any of its
versions), never from the original: see :mod:`forget.workflow.lines`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forget.errors import InvalidInputError
from forget.workflow import steps as S
from forget.workflow.common import ProcessOutcome, request_dir
from forget.workflow.validate import check_request

if TYPE_CHECKING:
    from forget.core.method import MethodConfig


def plan_attempts(method: str, forget: Any, *, max_attempts: int, allow_retrain: bool,
                  head: bool = False, sharded: bool = False,
                  frontier: Any = None) -> list[tuple[str, dict]]:
    """The methods (with config overrides) tried in order until an audit passes.

    ``auto`` on a person's records in a model trained in one piece reads the measured
    frontier (``frontier``: a ``bench/frontier.py`` JSON or its rows; default: the one
    shipped, :mod:`forget.evaluation.frontier`): the cheapest method and setting that passed
    the calibrated audit for at least 80% of subjects is tried once, then retraining. When no
    row reaches 80% (the shipped measurement: none does), ``auto`` keeps its cheap attempt
    (``npo``, a few percent of retraining's steps, stronger once) before retraining.

    ``head``: the model is a certified head over a frozen LM; only ``noisy_gd`` deletes from
    it, once (its step count comes from the theorem; retraining the LM would not touch the
    head). ``sharded``: the model was fine-tuned sharded; ``auto`` deletes exactly with
    ``shard_retrain``, once (it is exact: a retry would give the same bytes).
    ``dp_retrain`` is tried once (its guarantee is fixed by epsilon), then retraining.
    """
    from forget.workflow.sets import is_code_request

    if method == "auto":
        method = ("noisy_gd" if head else "shard_retrain" if sharded
                  else "code_eraser" if is_code_request(forget) else "npo")
        if method == "npo":
            from forget.evaluation.frontier import auto_frontier_choice

            choice = auto_frontier_choice(frontier)
            if choice is not None:
                return ([(choice["method"], dict(choice["overrides"]))]
                        + ([("retrain", {})] if allow_retrain else []))
    if method == "shard_retrain":
        return [(method, {})]
    if head and method != "noisy_gd":
        raise InvalidInputError(
            f"the model holds a certified head; method {method!r} would drop it and leave the "
            "records in the head: use method noisy_gd (or auto)")
    plan: list[tuple[str, dict]] = [(method, {})]
    if method == "noisy_gd":
        return plan
    if method == "dp_retrain":
        return plan + ([("retrain", {})] if allow_retrain else [])
    if method != "retrain":
        for k in range(1, max_attempts):  # stronger: twice the steps each time
            plan.append((method, {"_scale_steps": 2 ** k}))
        if allow_retrain:
            plan.append(("retrain", {}))
    return plan


def process_request(ledger: Any, request_id: str, *, model: Path | str, data: Path | str,
                    out: Path | str, method: str | MethodConfig = "auto", audit_config: Any = None,
                    worker_id: str | None = None, max_attempts: int = 2,
                    allow_retrain: bool = True, retrained: Path | str | None = None,
                    registry: Path | str | None = None, use_presidio: bool = True,
                    lm_eval: bool = False, method_config: dict | None = None,
                    from_version: str | None = None, progress: Any = None,
                    text_field: str = "text", id_field: str | None = None,
                    group_field: str | None = None, index: Path | str | None = None,
                    auto_control: bool = True, strong: bool = False,
                    shadows: int | None = None,
                    frontier: Path | str | None = None) -> ProcessOutcome:
    """Process one erasure request end to end (resuming whatever a previous run left).

    Args:
        ledger: the :class:`forget.ledger.Ledger` holding the request.
        request_id: the request to process.
        model: a model directory naming the model line (usually its first version; never
            modified). The request unlearns from the line's head, the version serving now,
            so earlier erasures stay erased; completing it moves the head forward.
        data: the training data: a ``forget data generate`` directory (ground truth known), or
            the organisation's own files (``.parquet``/``.jsonl``/``.json``/``.csv``/``.txt``,
            a folder of them, a ``datasets.save_to_disk`` folder) read with ``text_field``
            (and ``id_field``, ``group_field``): scoping then finds the spans the methods
            forget and the audit tests (see :mod:`forget.workflow.data`).
        out: output folder (models, reports, certificates, guard index, serving.json).
        method: a registered method name, a method's config object (e.g.
            ``NPOConfig(max_steps=100)``: that method with those fields), or ``auto`` (code
            secrets -> code_eraser, people ->
            npo; stronger retries; a sharded model -> shard_retrain, exact, once; then retraining when ``allow_retrain``; a model directory
            holding a certified head -> noisy_gd, whose audit re-checks the certificate; a
            request naming a ``concept`` -> text_encoder on the diffusion pipeline in
            ``model``, see :mod:`forget.workflow.concept`).
        audit_config: an :class:`audits.AuditConfig` (default: the workflow's).
        worker_id: the worker holding the request's lease, if any.
        max_attempts: attempts of the chosen method before the fallback.
        retrained: a model retrained without the subject, used as the audit's second control.
        lm_eval: run the lm-eval utility tasks in the audit.
        method_config: fields overriding the chosen method's config defaults (e.g.
            ``{"max_steps": 100}``), for every attempt of that method.
        from_version: unlearn from this version of the line instead of its head; refused
            (:class:`forget.ledger.ModelLineError`, naming them) when erasures were made since.
        progress: a callable ``(step, message)`` told what happens (the CLI prints it).
        text_field, id_field, group_field: the columns of the user's own files (see
            :func:`forget.corpus.open_corpus`); ignored for a generated directory.
        index: a keyed-hash index of the data (``forget corpus index``): scoping looks the
            request up in it instead of scanning every record.
        auto_control: without ``retrained``, on a model line with a recorded fine-tuning
            recipe, fine-tune a control without the request's records (another seed) so the
            audit measures its pass band (:mod:`forget.workflow.control`).
        strong: also run the audit's per-person attack (U-LiRA): shadow models of the line's
            training with and without the request's records (:mod:`forget.workflow.shadows`),
            trained once per round and only within the audit config's ``strong_budget_s``
            (otherwise the report says it was not run, and why).
        shadows: shadow models per side for ``strong`` (default: the config's
            ``strong_shadows``).
        frontier: a cost / pass-rate frontier measured on your model (the JSON
            ``bench/frontier.py`` writes) for ``auto`` to choose from (see
            :func:`plan_attempts`; default: the one shipped, measured on the tiny model).
    """
    import forget.methods  # noqa: F401  (registers every method)
    from forget.core.method import resolve_method
    from forget.workflow.finish import complete_on_head, early_outcome
    from forget.workflow.lines import resolve_base

    t0 = time.perf_counter()
    say = progress or (lambda step, msg: None)
    out, model = Path(out), Path(model)
    method, chosen = resolve_method(method)  # a config object: its method and its fields
    method_config = chosen | dict(method_config or {}) if chosen else method_config
    check_request(ledger, request_id, model=model, data=data, method=method,  # before any write
                  method_config=method_config, audit_config=audit_config, retrained=retrained)
    if frontier is not None and method == "auto":  # a bad frontier file: before any write
        from forget.evaluation.frontier import auto_frontier_choice

        auto_frontier_choice(frontier)
    fields = {"text_field": text_field, "id_field": id_field, "group_field": group_field}
    corpus = _open_corpus(data, fields, lm_eval=lm_eval)  # a bad file or field: before writes
    _check_recipe(model, corpus, method=method, registry=registry)
    work = request_dir(out, request_id)
    work.mkdir(parents=True, exist_ok=True)
    ctx = S.Context(ledger=ledger, request_id=request_id, worker_id=worker_id, work=work,
                    out=out, model_dir=model, registry=registry, say=say)
    rec = ledger.get(request_id)
    res = ProcessOutcome(request_id, "", rec.state.value)
    early = early_outcome(ctx, res, rec, t0, rejected="there is nothing to do")
    if early is not None:
        return early

    def head_base() -> Any:
        return resolve_base(ledger, model, registry=registry)

    # the line's head (or an explicitly chosen version), checked before anything is written
    ctx.start_from(resolve_base(ledger, model, from_version=from_version, registry=registry))
    ctx.steps = ledger.steps(request_id)
    if not ctx.done("verify"):
        ledger.record_step(request_id, "verify", "done", {"identity": "verified"},
                           worker_id=worker_id)
    if ctx.base.erasures:
        say("line", f"starting from the model line's head {ctx.base.version} "
            f"({len(ctx.base.erasures)} earlier erasure(s) kept erased)")

    from forget.workflow.concept import concept_value, process_concept

    concept = concept_value(ledger.identifiers(request_id))
    if concept is not None:  # a concept to erase from a diffusion pipeline (model = its dir)
        return process_concept(ctx, res, concept, data=Path(data), method=method,
                               audit_config=audit_config, max_attempts=max_attempts,
                               method_config=method_config, t0=t0, head_base=head_base)

    from forget.workflow.data import work_data as _work_data

    work_data = _work_data(corpus, index_dir=index,
                           trained_ids=ctx.base.card.get("training_record_ids") or ())
    scope = S.scope_step(ctx, work_data, use_presidio=use_presidio)
    res.scope = scope
    if not scope["record_ids"]:
        reason = "no training record mentions the subject: nothing to unlearn in this model"
        ctx.fail(res, reason)
        return res

    def one_round() -> S.Attempt | None:
        return _text_round(ctx, res, work_data, scope, method=method, audit_config=audit_config,
                           max_attempts=max_attempts, allow_retrain=allow_retrain,
                           retrained=retrained, lm_eval=lm_eval, method_config=method_config,
                           auto_control=auto_control, strong=strong, shadows=shadows,
                           frontier=frontier)

    return complete_on_head(ctx, res, t0, one_round, guard=S.guard_step, head_base=head_base)


def _open_corpus(data: Path | str, fields: dict, *, lm_eval: bool) -> Any:
    """The request's training data opened (``None`` for a diffusion concept folder), checked
    before anything is written: a bad file or column raises its one-line error here."""
    from forget.corpus import open_corpus
    from forget.diffusion.concepts import CONCEPTS_FILE
    from forget.errors import UnsupportedCorpusError

    if (Path(data) / CONCEPTS_FILE).is_file():
        return None
    corpus = open_corpus(data, **fields)
    if lm_eval and not hasattr(corpus, "subjects"):
        raise UnsupportedCorpusError(
            "lm_eval utility tasks are built from a generated corpus's facts; run without "
            "lm_eval on your own data (perplexity on others' records is still measured)")
    return corpus


def _check_recipe(model: Path, corpus: Any, *, method: str,
                  registry: Path | str | None) -> None:
    """Refused before anything is written: ``retrain`` asked for a model without a recorded
    recipe, or data that cannot stand for the data the model was fine-tuned on."""
    from forget.errors import InvalidInputError, RetrainUnavailableError
    from forget.models.recipe import data_mismatch, recipe_of, retrain_unavailable_reason

    if corpus is None:  # a diffusion concept folder
        return
    if method == "shard_retrain":
        from forget.methods.shard_retrain import sharded_source
        from forget.models.recipe import check_base

        if sharded_source(model, registry) is None:
            raise RetrainUnavailableError(
                f"shard_retrain needs a sharded model: {model} has no shard checkpoints (train "
                "it with `forget model finetune --shards S`) or use method retrain")
        check_base(recipe_of(model, registry=registry) or {})
    if method == "retrain":
        why = retrain_unavailable_reason(model, registry=registry)
        if why:
            raise RetrainUnavailableError(f"exact retraining is unavailable for {model}: {why}")
    recipe = recipe_of(model, registry=registry)
    why = data_mismatch(recipe, corpus) if recipe else None
    if why:
        raise InvalidInputError(why)


def _text_round(ctx: S.Context, res: ProcessOutcome, data: Any, scope: dict, *, method: str,
                audit_config: Any, max_attempts: int, allow_retrain: bool, retrained: Any,
                lm_eval: bool, method_config: dict | None,
                auto_control: bool = True, strong: bool = False,
                shadows: int | None = None, frontier: Any = None) -> S.Attempt | None:
    """Unlearn from ``ctx.base`` and audit, attempt after attempt, until one passes.

    Returns the passing attempt, or None after failing the request in the ledger.
    """
    from forget.methods._certified_head import has_head
    from forget.methods.shard_retrain import sharded_source
    from forget.models import load_model
    from forget.models.recipe import retrain_unavailable_reason

    base = ctx.base
    # erasures by other requests (a batch whose audit of this request failed left its own
    # entry on the head: the request is redone here, not taken as done)
    others = [e for e in base.erasures if e.get("request_id") != ctx.request_id]
    earlier = [e["request_id"] for e in others
               if set(e.get("record_ids", ())) & set(scope["record_ids"])]
    if set(scope["record_ids"]) <= {i for e in others for i in e.get("record_ids", ())}:
        reason = (f"every record found for this request was already erased from this model line "
                  f"by {', '.join(earlier)}: nothing is left to unlearn (see that certificate)")
        ctx.fail(res, reason)
        return None
    forget, retain = data.sets(scope, already_erased=base.erased_record_ids)
    original = load_model(ctx.model_dir)  # the head: it still holds this subject
    res.model_before = base.as_before()
    controls = {"original": original}
    if retrained:
        controls["retrained"] = load_model(retrained)
    elif auto_control:  # a recorded recipe: a control that never saw the records, measured
        from forget.workflow.control import recipe_control

        control = recipe_control(ctx, forget, retain)
        if control is not None:
            controls["retrained"] = (control, original[1])
    cfg = audit_config or S.default_audit_config(forget)
    if strong:  # the per-person attack: shadows trained once for every attempt of the round
        from forget.workflow.shadows import strong_config, workflow_provider

        cfg = strong_config(cfg, shadows)
        controls["shadows"] = workflow_provider(ctx, data.corpus, forget)
    no_retrain = (retrain_unavailable_reason(ctx.model_dir, registry=ctx.registry)
                  if allow_retrain else None)
    if no_retrain:
        ctx.say("plan", f"exact retraining is unavailable for this model: {no_retrain}")
    plan = plan_attempts(method, forget, max_attempts=max_attempts,
                         allow_retrain=allow_retrain and not no_retrain,
                         head=has_head(ctx.model_dir),
                         sharded=sharded_source(ctx.model_dir, ctx.registry) is not None,
                         frontier=frontier)
    first = S.round_offset(ctx) + 1
    for n, (name, overrides) in enumerate(plan, first):
        cfg_base = dict(method_config or {}) if name == plan[0][0] else {}
        attempt = S.Attempt(n, name, cfg_base | overrides, ctx.work / f"attempt-{n}")
        S.unlearn_step(ctx, attempt, original, forget, retain)
        verdict = S.audit_step(ctx, attempt, data, forget, controls,
                               S.audit_config_for(name, cfg), lm_eval=lm_eval)
        res.attempts.append(attempt.summary(verdict))
        if verdict == "pass":
            return attempt
        ctx.say("audit", f"attempt {n} ({name}) did not pass the audit ({verdict})")
    reason = (f"no attempt passed the audit ({len(plan)} tried); the request is not "
              "completed; see the audit reports"
              + (f"; exact retraining is unavailable: {no_retrain}" if no_retrain else ""))
    ctx.fail(res, reason)
    return None
