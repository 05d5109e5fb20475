"""Benchmark: the cost / pass-rate frontier of unlearning a person from a model trained in one
piece (issue 23).

A corpus is generated (a seed other than the tests'), a model is trained on it, and the
subjects are chosen among the people the model gives back by greedy decoding: the ``--worst``
most memorised (most identifiers extracted, then the lowest loss on their identifier tokens)
and ``--random`` others drawn with ``--seed``. For each subject, the model is retrained
without them (the ``retrain`` method: the exact gold standard, the audit's retrained control
and the price every other method is measured against, in the same run and process). Then each
method at each strength setting unlearns the subject from the original, and the result is
audited the way ``forget process`` audits it: the calibrated two-sided audit with the original
and the retrained model as controls, the neighbours and the relearning-on-other-data attack
(``AuditConfig`` defaults, with the work per measure reduced as in
``bench/audit_calibration.py``, whose error rates were measured with those settings; ``--full-audit``
keeps the defaults). No lm-eval and no shadow models (the workflow's default neither).

Writes ``bench/results/frontier.json``: one row per method and setting (``method``,
``setting``, ``pass_rate``, ``share_of_retrain`` in steps, wall time and tokens, per-subject
verdicts and failing checks), the subjects, the command and sizes. Subject ids are the
generator's pseudonymous ids; no identifier is logged.

The original is trained with a checkpoint after every epoch, so ``rewind`` (R2D: back to the
checkpoint ``rewind_epochs`` before the end, the rest re-run on the retain set) is measured
from the same model; its steps are the re-run epochs', against retraining's 20.

    python bench/frontier.py [--corpus-subjects 16] [--random 4] [--worst 2] [--jobs 2]
                             [--methods undo targeted_undo npo grad_diff rewind] [--size tiny]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LIGHT = {"samples": 4, "bootstrap": 300, "relearn_steps": 5}  # as bench/audit_calibration.py
KINDS = ("phone", "email", "national_id")

# Strength settings per method: label -> config overrides (weakest first).
SETTINGS: dict[str, dict[str, dict]] = {
    "npo": {"default": {}},
    "grad_diff": {"default": {}},
    "undo": {
        "a0.3-d50": {"alpha": 0.3, "distil_steps": 50},
        "a0.6-d100": {"alpha": 0.6, "distil_steps": 100},
        "a0.8-d120-lr3e-3": {"alpha": 0.8, "distil_steps": 120, "distil_learning_rate": 3e-3},
        "a1.0-d150-lr3e-3-b16": {"alpha": 1.0, "distil_steps": 150,
                                 "distil_learning_rate": 3e-3, "batch_size": 16},
        "a1.0-d300": {"alpha": 1.0, "distil_steps": 300},
    },
    "targeted_undo": {
        "s0.3-a0.5-d40": {"noise_share": 0.3, "alpha": 0.5, "distil_steps": 40},
        "s0.5-a0.8-d80": {"noise_share": 0.5, "alpha": 0.8, "distil_steps": 80},
        "s0.5-a0.8-d80-lr3e-3": {"noise_share": 0.5, "alpha": 0.8, "distil_steps": 80,
                                 "distil_learning_rate": 3e-3},
        "s0.3-a1.0-d60-lr3e-3-b16": {"noise_share": 0.3, "alpha": 1.0, "distil_steps": 60,
                                     "distil_learning_rate": 3e-3, "batch_size": 16},
        "s0.5-a1.0-d100-lr3e-3-b16": {"noise_share": 0.5, "alpha": 1.0, "distil_steps": 100,
                                      "distil_learning_rate": 3e-3, "batch_size": 16},
    },
    # R2D: epochs re-run from a checkpoint, out of the original's 20 (the original is trained
    # with a checkpoint after every epoch)
    "rewind": {"e2": {"rewind_epochs": 2}, "e5": {"rewind_epochs": 5},
               "e10": {"rewind_epochs": 10}, "e15": {"rewind_epochs": 15},
               "e18": {"rewind_epochs": 18}},
}


# The organisation's own fine-tune (--byo): the demo's one-piece parameters, full fine-tune.
BYO_HP = {"epochs": 20, "learning_rate": 3e-3, "batch_size": 16, "max_length": 256,
          "lr_scheduler": "cosine"}


def own_model(work: Path, size: str, arch: str) -> None:
    """``work/original``: an ``arch`` base pretrained on other people, fine-tuned on
    ``work/data`` with a recorded recipe and a checkpoint after every epoch."""
    from forget.commands.demo import build_base
    from forget.models.finetune import FinetuneParams, finetune

    base = build_base(work, work / "data", registry=work / "reg", size=size, arch=arch)
    finetune(base, work / "data", work / "original", hp=FinetuneParams(**BYO_HP), seed=0,
             registry=work / "reg", progress=False, checkpoint_every=1)


def subject_prompts(corpus, sid: str) -> list:
    from audits.extraction import identifier_prompts

    return [p for r in corpus.records_of(sid) if r["record_id"].startswith("S")
            for p in identifier_prompts(r["record_id"], r["text"], r["spans"], KINDS)]


def choose_subjects(corpus, pair, n_random: int, n_worst: int, seed: int) -> dict[str, str]:
    """``{subject: "worst" | "random"}`` among the subjects the model gives back verbatim."""
    from audits.extraction import greedy_hits
    from forget.core.criteria import perplexity
    from forget.core.data import subject_sets

    scored = []
    for sid in corpus.subject_ids("train"):
        hits = sum(bool(h) for h in greedy_hits(*pair, subject_prompts(corpus, sid)))
        if hits:
            fset, _ = subject_sets(corpus, sid)
            span_ppl = perplexity(pair[0], pair[1], fset.examples, mask_key="span_mask")
            scored.append((-hits, span_ppl, sid))
    scored.sort()
    worst = [sid for _, _, sid in scored[:n_worst]]
    rest = sorted(sid for _, _, sid in scored[n_worst:])
    picked = random.Random(seed).sample(rest, min(n_random, len(rest)))
    return {sid: "worst" for sid in worst} | {sid: "random" for sid in sorted(picked)}


def run_subject(work: str, sid: str, methods: dict[str, dict[str, dict]], audit_cfg: dict,
                log: str) -> dict:
    """Retrain without ``sid``, then every method x setting with its audit (one process)."""
    from forget._env import configure_offline

    configure_offline()
    import torch

    from audits import AuditConfig, run_audit
    from audits.extraction import greedy_hits
    from forget.core import get_method, subject_sets
    from forget.corpus import load_corpus
    from forget.models import load_model
    from forget.workflow.data import GeneratedData

    torch.set_num_threads(1)
    w = Path(work)
    corpus = load_corpus(w / "data")
    original = load_model(w / "original")
    fset, rset = subject_sets(corpus, sid)
    data = GeneratedData(corpus)
    inputs = data.audit_inputs(fset, set())
    cfg = AuditConfig(**audit_cfg)
    near, _ = data.neighbours(fset, set(), cfg.neighbour_count) if cfg.neighbour_count else ({}, {})
    relearn = data.relearn_texts(fset, inputs, set())
    prompts = subject_prompts(corpus, sid)
    cache: dict = {}

    def say(msg: str) -> None:
        with open(log, "a") as fh:
            fh.write(f"{time.strftime('%H:%M:%S')} {sid} {msg}\n")

    def audit(model) -> dict:
        t0 = time.perf_counter()
        rep = run_audit(model=model, tokenizer=original[1], original=original,
                        retrained=retrained, config=cfg, subject_id=sid, cache=cache,
                        relearn_texts=relearn, neighbours=near, **inputs)
        failed = [c for c in rep.checks if c.passed is False]
        return {"verdict": rep.verdict, "audit_s": round(time.perf_counter() - t0, 1),
                "failed": [c.name for c in failed],
                "failed_detail": [{"name": c.name, "value": c.value, "threshold": c.threshold,
                                   "over_unlearning": "over-unlearning" in c.note}
                                  for c in failed],
                "inconclusive": [c.name for c in rep.checks if c.passed is None]}

    t0 = time.perf_counter()
    re = get_method("retrain").run(model=original[0], tokenizer=original[1], forget=fset,
                                   retain=rset)
    retrain = {"steps": re.steps, "wall_s": round(time.perf_counter() - t0, 2),
               "tokens": re.tokens_processed}
    retrained = (re.model, original[1])
    say(f"retrain {retrain}")
    out = {"subject": sid, "retrain": retrain, "controls": {}, "runs": []}
    out["controls"]["retrain"] = audit(re.model)
    out["controls"]["original"] = audit(original[0])
    say(f"controls {[(k, v['verdict']) for k, v in out['controls'].items()]}")
    for name, settings in methods.items():
        method = get_method(name)
        for label, overrides in settings.items():
            config = method.config_class(**overrides)
            t1 = time.perf_counter()
            res = method.run(model=original[0], tokenizer=original[1], forget=fset, retain=rset,
                             config=config)
            wall = time.perf_counter() - t1
            row = {"method": name, "setting": label, "overrides": overrides,
                   "steps": res.steps, "wall_s": round(wall, 2), "tokens": res.tokens_processed,
                   "extracted_after": sum(bool(h) for h in greedy_hits(res.model, original[1],
                                                                       prompts)),
                   "probes": len(prompts)} | audit(res.model)
            out["runs"].append(row)
            say(f"{name}/{label} {row['verdict']} steps={row['steps']} wall={row['wall_s']} "
                f"failed={row['failed']}")
    return out


def frontier_rows(per_subject: list[dict], kinds: dict[str, str]) -> list[dict]:
    """One row per method and setting: pass rate and the mean share of retraining's cost."""
    groups: dict[tuple[str, str], list[tuple[dict, dict]]] = {}
    for s in per_subject:
        for r in s["runs"]:
            groups.setdefault((r["method"], r["setting"]), []).append((s, r))
    rows = []
    for (method, setting), pairs in groups.items():
        share = {k: statistics.mean(r[k2] / s["retrain"][k2r] for s, r in pairs)
                 if all(r[k2] is not None for _, r in pairs) else None
                 for k, k2, k2r in (("steps", "steps", "steps"), ("wall", "wall_s", "wall_s"),
                                    ("tokens", "tokens", "tokens"))}
        verdicts = [r["verdict"] for _, r in pairs]
        rows.append({
            "method": method, "setting": setting, "overrides": pairs[0][1]["overrides"],
            "pass_rate": round(verdicts.count("pass") / len(verdicts), 4),
            "passed": verdicts.count("pass"), "of": len(verdicts),
            "worst_case_passed": sum(r["verdict"] == "pass" for s, r in pairs
                                     if kinds[s["subject"]] == "worst"),
            "share_of_retrain": {k: None if v is None else round(v, 4) for k, v in share.items()}
            | {"wall_min": round(min(r["wall_s"] / s["retrain"]["wall_s"] for s, r in pairs), 4)},
            "subjects": [{"subject": s["subject"], "kind": kinds[s["subject"]],
                          "verdict": r["verdict"], "failed": r["failed"],
                          "failed_detail": r.get("failed_detail", []),
                          "inconclusive": r["inconclusive"], "steps": r["steps"],
                          "wall_s": r["wall_s"], "extracted_after": r["extracted_after"]}
                         for s, r in pairs],
        })
    rows.sort(key=lambda r: (r["share_of_retrain"]["steps"], r["method"]))
    return rows


def merge(runs: list[dict]) -> dict:
    """Several runs on the same corpus, model settings and subjects as one result: rows of a
    later run replace an earlier run's with the same method and setting. Each row's cost
    shares stay relative to the retrains of the run that measured it."""
    base = runs[0]
    for other in runs[1:]:
        if not set(other["subjects"]) <= set(base["subjects"]) or any(
                other["config"][k] != base["config"][k]
                for k in ("corpus_seed", "corpus_subjects", "size", "audit")):
            raise SystemExit("--merge needs runs with the same corpus, size and audit, on the "
                             "first run's subjects or some of them")
    out = dict(base)
    rows: dict[tuple[str, str], dict] = {}
    for i, run in enumerate(runs):  # rows recomputed from each run's per-subject results
        for r in frontier_rows(run["per_subject"], run["subjects"]):
            rows[(r["method"], r["setting"])] = r | {"run": i}
    out["rows"] = sorted(rows.values(), key=lambda r: (r["share_of_retrain"]["steps"],
                                                       r["method"]))
    out["choice"] = None  # recomputed by the caller
    out["runs"] = [{"command": r["command"], "wall_s": r["wall_s"], "grid": r["config"]["grid"],
                    "retrain": r["retrain"], "controls": r["controls"],
                    "machine": r["machine"]} for r in runs]
    out["per_subject"] = [s for r in runs for s in r["per_subject"]]
    out["wall_s"] = round(sum(r["wall_s"] for r in runs), 1)
    out["command"] = " ; ".join(r["command"] for r in runs)
    return out


def rows_from_log(log: Path, kinds: dict[str, str], grid: dict) -> list[dict]:
    """Per-subject results rebuilt from a progress log (a run stopped before its end): every
    logged run counts, so a row's ``of`` is the number of subjects that reached it. Verdicts,
    steps, wall times and failing check names are in the log; the checks' values are not."""
    import ast
    import re

    retrain: dict[str, dict] = {}
    controls: dict[str, dict] = {}
    runs: dict[str, list[dict]] = {}
    for line in log.read_text().splitlines():
        _, sid, rest = line.split(" ", 2)
        if rest.startswith("retrain "):
            retrain[sid] = json.loads(rest[len("retrain "):].replace("'", '"'))
            continue
        if rest.startswith("controls "):
            controls[sid] = {k: {"verdict": v} for k, v in ast.literal_eval(rest[9:])}
            continue
        m = re.match(r"(\S+)/(\S+) (\w+) steps=(\d+) wall=([\d.]+) failed=(.*)$", rest)
        if m:
            runs.setdefault(sid, []).append({
                "method": m[1], "setting": m[2], "verdict": m[3], "steps": int(m[4]),
                "wall_s": float(m[5]), "failed": json.loads(m[6].replace("'", '"')),
                "inconclusive": [], "extracted_after": None, "tokens": None,
                "overrides": grid[m[1]][m[2]]})
    return [{"subject": sid, "retrain": retrain[sid], "controls": controls.get(sid, {}),
             "runs": rs}
            for sid, rs in runs.items() if sid in retrain]


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method in sorted({r["method"] for r in rows}):
        pts = sorted((r["share_of_retrain"]["steps"], r["pass_rate"], r["setting"])
                     for r in rows if r["method"] == method)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
    ax.axhline(0.8, ls="--", c="grey", lw=0.8)
    ax.axvline(0.25, ls=":", c="grey", lw=0.8)
    ax.set_xlabel("gradient steps, share of retraining (same run)")
    ax.set_ylabel("calibrated audit pass rate")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=8)
    ax.set_title("Cost / pass-rate frontier (target: top-left of the dashed lines)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus-seed", type=int, default=11, help="(the tests use 7)")
    ap.add_argument("--corpus-subjects", type=int, default=16)
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--random", type=int, default=4, help="random memorised subjects")
    ap.add_argument("--worst", type=int, default=2, help="most memorised subjects")
    ap.add_argument("--seed", type=int, default=0, help="draws the random subjects")
    ap.add_argument("--methods", nargs="*", default=list(SETTINGS))
    ap.add_argument("--settings", type=json.loads, default=None,
                    help='JSON {"method": {"label": {overrides}}} replacing the built-in grid')
    ap.add_argument("--byo", metavar="ARCH", default=None,
                    help="the original is an organisation's own model: an ARCH base (gpt2, "
                         "llama, ...) at --size pretrained on other people (as the demo's "
                         "base), fine-tuned on the corpus in one piece with a recorded recipe "
                         "and a checkpoint every epoch (`forget model finetune`); retrain "
                         "re-runs the recipe")
    ap.add_argument("--full-audit", action="store_true", help="AuditConfig defaults, not LIGHT")
    ap.add_argument("--jobs", type=int, default=2, help="subjects run at once (1 thread each)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "frontier.json")
    ap.add_argument("--log", type=Path, default=Path(tempfile.gettempdir()) / "frontier.log",
                    help="progress lines (subject id, method, verdict; no identifiers)")
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="merge these result files (same corpus and subjects) into --out")
    ap.add_argument("--from-log", type=Path, default=None,
                    help="rebuild a result from the progress log of a run stopped before its "
                         "end (with --settings and --kinds as that run had them)")
    ap.add_argument("--kinds", type=json.loads, default=None,
                    help='with --from-log: the run\'s subjects {"S0001": "worst", ...}')
    args = ap.parse_args()
    from forget._quiet import configure_output

    configure_output()  # the libraries' progress bars off: this script's own lines only
    if args.from_log:
        grid = args.settings or {m: SETTINGS[m] for m in args.methods}
        per_subject = rows_from_log(args.from_log, args.kinds, grid)
        done = {s["subject"]: args.kinds[s["subject"]] for s in per_subject}
        from forget.evaluation.frontier import frontier_choice

        rows = frontier_rows(per_subject, done)
        out = {"benchmark": "cost / pass-rate frontier (a run stopped before its end, rebuilt "
                            "from its progress log: each row over the subjects that reached it)",
               "target": "pass rate >= 0.8 at <= 0.25 of retraining's cost",
               "choice": frontier_choice(rows), "rows": rows, "subjects": done,
               "subjects_planned": args.kinds,
               "controls": {s["subject"]: {k: v["verdict"] for k, v in s["controls"].items()}
                            for s in per_subject},
               "retrain": {s["subject"]: s["retrain"] for s in per_subject},
               "per_subject": per_subject,
               "config": {"corpus_seed": args.corpus_seed, "corpus_subjects": args.corpus_subjects,
                          "size": args.size, "grid": grid, "jobs": args.jobs,
                          "audit": {} if args.full_audit else LIGHT},
               "command": "python " + " ".join(sys.argv), "wall_s": 0.0,
               "machine": f"{platform.machine()}, {platform.system()}, torch threads 1"}
        args.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
        return
    if args.merge:
        from forget.evaluation.frontier import frontier_choice

        out = merge([json.loads(p.read_text()) for p in args.merge])
        out["choice"] = frontier_choice(out["rows"])
        args.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
        plot(out["rows"], args.out.with_suffix(".png"))
        return

    from forget._env import configure_offline

    configure_offline()
    import torch

    from forget.corpus import GenerateConfig, generate, load_corpus
    from forget.models import load_model
    from forget.models.build import train_model

    torch.set_num_threads(1)
    grid = args.settings or {m: SETTINGS[m] for m in args.methods}
    audit_cfg = {} if args.full_audit else LIGHT
    t_start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="bench-frontier-"))
    log = str(args.log)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    args.log.write_text("")
    generate(work / "data", GenerateConfig(subjects=args.corpus_subjects, seed=args.corpus_seed,
                                           code_files=8))
    t0 = time.perf_counter()
    if args.byo:
        own_model(work, args.size, args.byo)
    else:
        train_model(work / "data", work / "original", size=args.size, registry=work / "reg",
                    progress=False, checkpoint_every=1)  # for rewind; the weights are the same
    train_s = time.perf_counter() - t0
    corpus = load_corpus(work / "data")
    kinds = choose_subjects(corpus, load_model(work / "original"), args.random, args.worst,
                            args.seed)
    print(f"subjects: {kinds}", flush=True)
    jobs = [(str(work), sid, grid, audit_cfg, log) for sid in kinds]
    if args.jobs > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(min(args.jobs, len(jobs))) as pool:
            per_subject = pool.starmap(run_subject, jobs)
    else:
        per_subject = [run_subject(*j) for j in jobs]
    rows = frontier_rows(per_subject, kinds)
    from forget.evaluation.frontier import frontier_choice

    out = {
        "benchmark": "cost / pass-rate frontier of unlearning on a model trained in one piece",
        "target": "pass rate >= 0.8 at <= 0.25 of retraining's cost",
        "choice": frontier_choice(rows),
        "rows": rows,
        "subjects": kinds,
        "controls": {s["subject"]: {k: v["verdict"] for k, v in s["controls"].items()}
                     for s in per_subject},
        "retrain": {s["subject"]: s["retrain"] for s in per_subject},
        "per_subject": per_subject,
        "config": {"corpus_seed": args.corpus_seed, "corpus_subjects": args.corpus_subjects,
                   "size": args.size, "random": args.random, "worst": args.worst,
                   "model": (f"{args.byo} base ({args.size}) fine-tuned in one piece: "
                             f"{json.dumps(BYO_HP)}") if args.byo else
                            f"llama ({args.size}) trained from scratch",
                   "seed": args.seed, "grid": grid,
                   "audit": audit_cfg or "AuditConfig defaults", "jobs": args.jobs},
        "command": "python " + " ".join(sys.argv),
        "original_train_s": round(train_s, 1),
        "wall_s": round(time.perf_counter() - t_start, 1),
        "machine": f"{platform.machine()}, {platform.system()}, torch threads 1, "
                   f"{args.jobs} job(s) on 2 shared cores",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
    plot(rows, args.out.with_suffix(".png"))
    for r in rows:
        print(json.dumps({k: r[k] for k in ("method", "setting", "pass_rate",
                                              "share_of_retrain")}), flush=True)


if __name__ == "__main__":
    main()
