"""The parts of a comparison run (see :mod:`forget.evaluation.compare`)."""

from __future__ import annotations

import statistics
import time
from typing import Any

from forget.workflow.sets import CODE_KINDS


def _given_retrain(b, path, subjects: list[str]):
    """A retrained model passed in: checked to exclude exactly the subjects' records."""
    from forget.core.method import EXACT, UnlearnResult
    from forget.errors import InvalidInputError
    from forget.models import load_model, read_card

    card = read_card(path)
    trained = set(card.get("training_record_ids") or ())
    ids = {r["record_id"] for s in subjects for r in b.corpus.records_of(s)
           if r["split"] == "train"}
    if not trained or trained & ids:
        raise InvalidInputError(
            f"the retrained model at {path} was trained on records of the comparison's "
            "subjects (or its card lists no training records); retrain it without them")
    net, _ = load_model(path)
    return UnlearnResult(model=net, method="retrain", steps=0, tokens_processed=0,
                         wall_time_s=float(card.get("train_wall_s") or 0.0), config={},
                         config_hash="", guarantee=EXACT)


def train_full(b, subjects: list[str], methods: list[str], retrained=None) -> None:
    """Train the full-training methods once without every subject; keep the retrained model
    as the audits' control (trained even when ``retrain`` is not compared)."""
    from forget.core import get_method
    from forget.workflow.sets import sets_for_records

    ids = [r["record_id"] for s in subjects for r in b.corpus.records_of(s)
           if r["split"] == "train"]
    fset, rset = sets_for_records(b.corpus, ids, "batch")
    if retrained is not None:
        b.full["retrain"] = _given_retrain(b, retrained, subjects)
    for name in dict.fromkeys(["retrain", *methods]):
        if name in b.full:
            continue
        b.say(f"training {name} once without the {len(subjects)} subjects ...")
        b.full[name] = get_method(name).run(model=b.model, tokenizer=b.tok, forget=fset,
                                            retain=rset, config=None)
        b.say(f"  {name}: {b.full[name].wall_time_s:.0f} s")
    b.retrained = b.full["retrain"].model
    b.retrain_s = b.full["retrain"].wall_time_s
    if "retrain" not in methods:
        b.full.pop("retrain")


def per_subject(b, methods: list[str], subjects: list[str], group: str) -> list[dict]:
    from forget.core import subject_sets

    rows = []
    for sid in subjects:
        fset, rset = subject_sets(b.corpus, sid)
        for name in methods:
            rows.append(b.compare(name, fset, rset, subject_id=sid, group=group))
    return rows


def batch(b, methods: list[str], subjects: list[str]) -> list[dict]:
    """All subjects in one request per method; one audit over all their records."""
    from forget.workflow.sets import sets_for_records

    ids = [r["record_id"] for s in subjects for r in b.corpus.records_of(s)
           if r["split"] == "train"]
    fset, rset = sets_for_records(b.corpus, ids, "batch")
    return [b.compare(name, fset, rset, subject_id=f"batch of {len(subjects)}", group="batch")
            for name in methods]


def code(b, methods: list[str], n: int) -> list[dict]:
    """The ``n`` most-repeated leaked secrets the model reproduces, forgotten as one request;
    audited with the secrets' kinds (no retrained control: the retrained model forgot
    people, not code)."""
    from audits import AuditConfig
    from audits.extraction import greedy_hits, identifier_prompts
    from forget.core import code_sets

    if not methods or n <= 0:
        return []
    rows = sorted((r for r in b.corpus.code if r["split"] == "train" and r["spans"]
                   and r["spans"][0]["kind"] in CODE_KINDS),
                  key=lambda r: (-int(r["repeats"]), r["record_id"]))
    leaked = [r["record_id"] for r in rows if any(greedy_hits(
        b.model, b.tok, identifier_prompts(r["record_id"], r["text"], r["spans"])))][:n]
    if not leaked:
        b.say("no code secret is reproduced by the model: code part skipped")
        return []
    fset, rset = code_sets(b.corpus, leaked)
    cfg = AuditConfig(**b.cfg.audit, extraction_kinds=CODE_KINDS + ("email",),
                      exposure_kinds=CODE_KINDS)
    return [b.compare(name, fset, rset, subject_id=f"{len(leaked)} code secrets",
                      group="code", config=cfg, retrained=False) for name in methods]


def _extraction_rate(b, net, sid: str) -> float:
    from audits.extraction import greedy_hits
    from forget.core import subject_sets

    prompts = subject_sets(b.corpus, sid)[0].prompts()
    hits = greedy_hits(net, b.tok, prompts)
    return sum(hits) / max(1, len(hits))


def sequential(b, name: str, subjects: list[str]) -> list[dict]:
    """Requests one after another on one model line: after each, utility and every forgotten
    subject's extraction rate (do earlier subjects come back?)."""
    from audits.utility import perplexity_of
    from forget.core import get_method, subject_sets

    done: list[str] = []
    net = b.model
    keep = sorted({r["text"] for r in b.corpus.people if r["split"] == "train"
                   and r["subject_id"] not in subjects})[:200]
    steps = []
    base_ppl = perplexity_of(net, b.tok, keep)[0]
    for k, sid in enumerate(subjects, 1):
        fset, rset = subject_sets(b.corpus, sid, already_forgotten=done)
        t0 = time.perf_counter()
        before = _extraction_rate(b, net, sid)
        res = get_method(name).run(model=net, tokenizer=b.tok, forget=fset, retain=rset,
                                   config=None)
        net = res.model
        done.append(sid)
        rates = {s: _extraction_rate(b, net, s) for s in done}
        steps.append({"request": k, "subject": sid, "extraction_before": before,
                      "wall_s": res.wall_time_s, "retain_ppl": perplexity_of(net, b.tok, keep)[0],
                      "extraction_after": rates,
                      "earlier_max_extraction": max((rates[s] for s in done[:-1]), default=0.0)})
        b.say(f"{'sequential':>15} {name:<12} request {k}: retain ppl "
              f"{steps[-1]['retain_ppl']:.2f} (was {base_ppl:.2f}); earlier subjects' max "
              f"extraction {steps[-1]['earlier_max_extraction']:.0%} "
              f"({time.perf_counter() - t0:.0f} s)")
    return [{"retain_ppl_before": base_ppl}, *steps]


def _mean(vals: list[Any]) -> float | None:
    xs = [v for v in vals if isinstance(v, int | float)]
    return statistics.fmean(xs) if xs else None


def summarize(rows: list[dict], methods: list[str]) -> list[dict]:
    """Per method over the random subjects: pass rate and mean figures."""
    out = []
    for m in methods:
        rs = [r for r in rows if r["method"] == m and r["group"] == "random"]
        if not rs:
            continue
        rob = {k for r in rs for k in r["robustness_recovered"]}
        out.append({
            "method": m, "subjects": len(rs),
            "pass_rate": sum(r["verdict"] == "pass" for r in rs) / len(rs),
            "greedy_hits": _mean([r["greedy_hits"] for r in rs]),
            "sampled_hits": _mean([r["sampled_hits"] for r in rs]),
            "probes": _mean([r["probes"] for r in rs]),
            "exposed": _mean([r["exposed"] for r in rs]),
            "mia_auc": _mean([r["mia_auc"] for r in rs]),
            "privleak": _mean([r["privleak"] for r in rs]),
            "retain_ppl": _mean([r["retain_ppl"] for r in rs]),
            "facts_acc": _mean([r["lm_eval"].get("forget_facts_mc:acc") for r in rs]),
            "robustness_recovered": {k: _mean([r["robustness_recovered"].get(k) for r in rs])
                                     for k in sorted(rob)},
            "wall_s": _mean([r["wall_s"] for r in rs]),
            "share_of_retrain_time": _mean([r.get("share_of_retrain_time") for r in rs]),
        })
    return out
