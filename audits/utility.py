"""Utility: what the model still knows about everyone else.

Perplexity on retain and held-out texts (one forward pass per text), and lm-eval run offline
through its own Python API on the task YAMLs in ``data/lm_eval/``: a multiple-choice task on
facts of subjects who were not forgotten and a perplexity task. The task data are written per
audit (the audited subject left out) by :func:`write_lm_eval_data`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audits import metrics as M
from audits.errors import AuditInputError, LmEvalError
from audits.mia import token_stats

DEFAULT_TASK_DIR = Path(__file__).resolve().parents[1] / "data" / "lm_eval"
TASKS = ("forget_facts_mc", "forget_ppl")
_QUESTIONS = (("employer", "{name} works at"), ("city", "{name} has lived in"))


@dataclass
class UtilityResult:
    retain_perplexity: float | None
    holdout_perplexity: float | None
    retain_tokens: int
    holdout_tokens: int
    lm_eval: dict[str, dict[str, float]] = field(default_factory=dict)  # task -> metric -> value


def perplexity_of(model, tokenizer, texts: Sequence[str], *, batch_size: int = 32) -> tuple[
        float | None, int]:
    """Token-weighted perplexity over ``texts`` and the number of scored tokens."""
    if not texts:
        return None, 0
    stats = token_stats(model, tokenizer, texts, batch_size=batch_size, moments=False)
    nll = -sum(float(np.sum(s.logprobs)) for s in stats)
    n = sum(len(s.logprobs) for s in stats)
    return M.perplexity(nll, n), n


def write_lm_eval_data(subjects: Iterable[Mapping], people: Iterable[Mapping],
                       out_dir: Path | str, *, exclude: Iterable[str] = (), seed: int = 0,
                       choices: int = 4) -> dict[str, Path]:
    """Write ``facts_mc.jsonl`` and ``ppl.jsonl`` for the train-split subjects not excluded.

    ``subjects`` rows: ``{subject_id, split, identifiers: {name, employer, city, ...}}``;
    ``people`` rows: ``{subject_id, split, text}``. Each question's wrong choices are the same
    fact of other kept subjects; the order of choices is shuffled with ``seed``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    excluded = set(exclude)
    kept = [s for s in subjects if s.get("split") == "train" and s["subject_id"] not in excluded]
    rng = random.Random(seed)
    rows = []
    for kind, template in _QUESTIONS:
        pool = sorted({s["identifiers"][kind] for s in kept if kind in s["identifiers"]})
        for s in kept:
            ident = s["identifiers"]
            if kind not in ident or "name" not in ident or len(pool) < choices:
                continue
            wrong = rng.sample([v for v in pool if v != ident[kind]], choices - 1)
            opts = [" " + v for v in wrong + [ident[kind]]]
            rng.shuffle(opts)
            rows.append({"question": template.format(name=ident["name"]), "choices": opts,
                         "answer": opts.index(" " + ident[kind])})
    texts = [{"text": r["text"]} for r in people
             if r.get("split") == "train" and r.get("subject_id") not in excluded]
    paths = {"facts_mc": out / "facts_mc.jsonl", "ppl": out / "ppl.jsonl"}
    for name, data in (("facts_mc", rows), ("ppl", texts)):
        paths[name].write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in data))
    return paths


def prepare_tasks(data_dir: Path | str, out_dir: Path | str, *,
                  task_dir: Path | str | None = None) -> Path:
    """Copy the task YAMLs into ``out_dir`` with ``data_files`` pointing at ``data_dir``."""
    import yaml

    src = Path(task_dir) if task_dir else DEFAULT_TASK_DIR
    data_dir, out = Path(data_dir).resolve(), Path(out_dir)
    yamls = sorted(src.glob("*.yaml"))
    if not yamls:
        raise LmEvalError(f"no lm-eval task YAMLs in {src}; pass task_dir= the data/lm_eval "
                          "directory of the suite")
    out.mkdir(parents=True, exist_ok=True)
    for y in yamls:
        cfg = yaml.safe_load(y.read_text())
        files = cfg.get("dataset_kwargs", {}).get("data_files", {})
        for split, rel in files.items():
            local = data_dir / Path(rel).name
            if not local.is_file():
                raise LmEvalError(f"{y.name} needs {local.name} in {data_dir}; write it with "
                                  "audits.utility.write_lm_eval_data")
            files[split] = str(local)
        (out / y.name).write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


def run_lm_eval(model, tokenizer, tasks_dir: Path | str, *, tasks: Sequence[str] = TASKS,
                batch_size: int = 16, seed: int = 0) -> dict[str, dict[str, float]]:
    """Run lm-eval's ``simple_evaluate`` on an in-memory model over the tasks in ``tasks_dir``."""
    try:
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError as e:  # pragma: no cover - lm-eval is a dependency
        raise LmEvalError(f"lm-eval is not installed ({e}); pip install 'lm-eval[hf]'") from None
    device = str(next(model.parameters()).device)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)
    tm = TaskManager(include_path=str(tasks_dir), include_defaults=False)
    try:
        res = simple_evaluate(model=lm, tasks=list(tasks), task_manager=tm, log_samples=False,
                              bootstrap_iters=0, random_seed=seed, numpy_random_seed=seed,
                              torch_random_seed=seed, fewshot_random_seed=seed)
    except Exception as e:  # lm-eval raises many types; one clear error for the caller
        raise LmEvalError(f"lm-eval failed on tasks {list(tasks)}: {type(e).__name__}") from e
    out: dict[str, dict[str, float]] = {}
    for task, metrics in (res or {}).get("results", {}).items():
        out[task] = {k.split(",")[0]: float(v) for k, v in metrics.items()
                     if isinstance(v, int | float) and "stderr" not in k}
    return out


def run_utility(model, tokenizer, *, retain: Sequence[str], holdout: Sequence[str],
                lm_eval_dir: Path | str | None = None, batch_size: int = 32,
                seed: int = 0) -> UtilityResult:
    """Perplexities, and lm-eval results when ``lm_eval_dir`` (from :func:`prepare_tasks`)."""
    if lm_eval_dir is not None and not Path(lm_eval_dir).is_dir():
        raise AuditInputError(f"lm-eval task directory {lm_eval_dir} does not exist")
    rp, rn = perplexity_of(model, tokenizer, retain, batch_size=batch_size)
    hp, hn = perplexity_of(model, tokenizer, holdout, batch_size=batch_size)
    res = UtilityResult(rp, hp, rn, hn)
    if lm_eval_dir is not None:
        res.lm_eval = run_lm_eval(model, tokenizer, lm_eval_dir, seed=seed)
    return res


