"""The requests part of `forget demo`: two erasure requests through the whole workflow."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from rich.table import Table

from forget.commands._common import console


def pick_secret(corpus, model, tokenizer) -> tuple[dict, dict]:
    """A train code file whose secret the model reproduces verbatim (the leak to erase)."""
    from audits.extraction import greedy_hits, identifier_prompts

    rows = [r for r in corpus.code if r["split"] == "train" and r["spans"]
            and r["spans"][0]["kind"] != "email"]
    rows.sort(key=lambda r: -int(r["repeats"]))
    for r in rows:
        if all(greedy_hits(model, tokenizer, identifier_prompts(r["record_id"], r["text"],
                                                                r["spans"]))):
            return r, r["spans"][0]
    return rows[0], rows[0]["spans"][0]


def measures(report_path: Path) -> dict:
    """The figures a reader wants from one audit report (audited model and original control)."""
    r = json.loads(report_path.read_text())
    out = {"verdict": r["verdict"]}
    for role in ("original", "audited"):
        m = r["models"].get(role)
        if not m:
            continue
        auc = m.get("mia", {}).get("attacks", {}).get("loss", {}).get("auc")
        out[role] = {
            "extracted": m.get("extraction", {}).get("hits"),
            "probes": len(m.get("extraction", {}).get("probes", []) or []),
            "mia_auc": auc, "exposure_min_p": m.get("exposure", {}).get("min_p"),
            "retain_ppl": m.get("utility", {}).get("retain_perplexity"),
        }
    return out


KINDS = ("phone", "email", "national_id", "api_key", "password", "secret_key", "token",
         "ip_address")


def serving_check(led, model: Path, rows: dict[str, list[dict]], results) -> dict:
    """Greedy extraction of every completed request's identifiers from the model serving now
    (the line's head in the ledger) and from the original: counts only, no identifier."""
    from audits.extraction import greedy_hits, identifier_prompts
    from forget.models import load_model, read_card
    from forget.workflow.lines import line_of

    head = led.model_head(line_of(read_card(model)))
    serving = Path(head.path) if head is not None else model
    nets = {"original": load_model(model), "serving": load_model(serving)}
    out = {"version": read_card(serving)["version"], "requests": {}}
    for res in results:
        if res.status != "completed":
            continue
        prompts = [p for r in rows[res.request_id] for p in identifier_prompts(
            r["record_id"], r["text"], r["spans"], KINDS)]
        hits = {k: int(sum(greedy_hits(net, tok, prompts))) for k, (net, tok) in nets.items()}
        out["requests"][res.request_id] = {"probes": len(prompts)} | hits
    return out


def run_requests(out: Path, data: Path, model: Path) -> dict:
    """Submit a person request and a code-secret request, process both, verify the ledger."""
    from forget.corpus import load_corpus
    from forget.ledger import DeletionRequest, Ledger
    from forget.models import load_model, read_card
    from forget.workflow import process_request

    run = out / "run"
    shutil.rmtree(run, ignore_errors=True)  # each demo run starts a fresh ledger
    run.mkdir(parents=True)
    corpus = load_corpus(data)
    net, tok = load_model(model)
    person_id = corpus.subject_ids("train")[0]
    person = corpus.subject(person_id)["identifiers"]
    code_row, span = pick_secret(corpus, net, tok)
    secret = code_row["text"][span["start"]:span["end"]]
    del net
    led = Ledger(run / "ledger.db")
    requests = [
        DeletionRequest(request_id="demo-person", name=person["name"], emails=(person["email"],),
                        phones=(person["phone"],),
                        other_ids=(("national_id", person["national_id"]),), ground="a",
                        channel="web form"),
        DeletionRequest(request_id="demo-secret", other_ids=((span["kind"], secret),),
                        ground="d", channel="security report"),
    ]
    del person, secret
    results = []
    for req in requests:
        led.submit(req)
        led.verify_identity(req.request_id, method="demo")
        console.rule(f"request {req.request_id}")
        # The demo model is sharded: auto deletes each request exactly with shard_retrain
        # (the shards that held the records retrain from their checkpoint; one attempt). On
        # a model trained in one piece auto would try npo / code_eraser, then retrain.
        res = process_request(led, req.request_id, model=model, data=data, out=run,
                              registry=out / "registry",
                              max_attempts=1 if req.request_id == "demo-person" else 2,
                              progress=lambda s, m: console.print(f"[cyan]{s:>9}[/] {m}",
                                                                  highlight=False))
        results.append(res)
    # Does the model serving now still hold anyone erased in this run? (each request started
    # from the model the previous one left serving, so none should come back)
    rows = {"demo-person": [r for r in corpus.records_of(person_id) if r["split"] == "train"],
            "demo-secret": [code_row]}
    serving = serving_check(led, model, rows, results)
    check = led.verify()
    led.checkpoint(out=run / "checkpoint.json")
    from forget.certificate import public_key_document  # what a verifier pins

    (run / "ledger-public-key.json").write_text(json.dumps(public_key_document(led), indent=2)
                                                + "\n")
    card = read_card(model)
    return {"results": results, "ledger_ok": check.ok, "ledger_events": check.size,
            "train_wall_s": card.get("train_wall_s"), "train_steps": card.get("train_steps"),
            "run": run, "serving": serving}


def summary_table(summary: dict) -> Table:
    """One column per request, one row per measure (before -> after); fits 80 columns."""
    train_s, train_steps = summary.get("train_wall_s"), summary.get("train_steps")
    t = Table(title="erasure requests: what the audit shows (original -> after)")
    t.add_column("measure")
    cols = []
    for res in summary["results"]:
        t.add_column(res.request_id, justify="right")
        m = measures(Path(res.report).with_suffix(".json")) if res.report else {}
        o, a = m.get("original", {}), m.get("audited", {})

        def pair(key: str, fmt: str, o=o, a=a) -> str:
            if o.get(key) is None or a.get(key) is None:
                return ""
            return f"{format(o[key], fmt)} -> {format(a[key], fmt)}"

        wall = sum(x.get("wall_s") or 0 for x in res.attempts)
        steps = sum(x.get("steps") or 0 for x in res.attempts)
        cols.append([
            " -> ".join(x["method"] for x in res.attempts),
            m.get("verdict", res.status),
            f"{o.get('extracted', '')} -> {a.get('extracted', '')} of {a.get('probes', '')}",
            pair("mia_auc", ".2f"), pair("exposure_min_p", ".3f"), pair("retain_ppl", ".2f"),
            f"{wall:.0f} s" + (f" ({wall / train_s:.0%} of training)" if train_s else ""),
            f"{steps}" + (f" ({steps / train_steps:.0%} of training's {train_steps})"
                          if train_steps else ""),
        ])
    names = ("method(s)", "audit verdict", "identifiers extracted", "MIA AUC (loss attack)",
             "exposure: smallest p", "retain perplexity", "unlearning time",
             "gradient steps")
    for i, name in enumerate(names):
        t.add_row(name, *(c[i] for c in cols))
    return t


def print_summary(summary: dict, t0: float) -> dict:
    console.print(summary_table(summary))
    for res in summary["results"]:
        rec, prec = res.scope.get("recall"), res.scope.get("precision")
        scoring = (f"scoping recall {rec:.0%}, precision {prec:.0%}" if rec is not None
                   else "scoping not scored (no ground truth)")
        console.print(f"{res.request_id}: {res.status}; {scoring}; report {res.report}; "
                      f"certificate {res.certificate}", highlight=False)
    sv = summary.get("serving")
    if sv is not None:
        reqs = sv["requests"]
        held = {rid: r["serving"] for rid, r in reqs.items() if r["serving"]}
        line = (f"model serving now ({sv['version']}): "
                f"{sum(r['serving'] for r in reqs.values())} of "
                f"{sum(r['probes'] for r in reqs.values())} identifiers of the "
                f"{len(reqs)} completed request(s) extracted by greedy decoding (original model: "
                f"{sum(r['original'] for r in reqs.values())})")
        console.print(("[red]" + line + "; STILL HELD: " + ", ".join(held) + "[/]") if held
                      else "[green]" + line + "[/]", highlight=False)
    console.print(("[green]ledger verifies[/]" if summary["ledger_ok"] else
                   "[red]LEDGER DOES NOT VERIFY[/]") + f" ({summary['ledger_events']} events; "
                  f"signed checkpoint in {summary['run'] / 'checkpoint.json'})")
    console.print("verify a certificate as a third party would: forget certificate verify "
                  f"CERTIFICATE --public-key {summary['run'] / 'ledger-public-key.json'}",
                  highlight=False)
    return {"requests": [r.__dict__ for r in summary["results"]],
            "ledger_ok": summary["ledger_ok"], "ledger_events": summary["ledger_events"],
            "train_wall_s": summary["train_wall_s"], "train_steps": summary.get("train_steps"),
            "serving": summary.get("serving"),
            "wall_s": round(time.perf_counter() - t0, 1)}
