"""Session fixtures: a small corpus and a tiny model, built once per test session.

The environment is made offline and every cache is moved into a temporary directory before
any Hugging Face library is imported.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_CACHE = Path(tempfile.mkdtemp(prefix="forget-test-cache-"))
for _k, _v in {
    "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
    "HF_HOME": str(_CACHE / "hf"), "MPLCONFIGDIR": str(_CACHE / "mpl"),
    "XDG_CACHE_HOME": str(_CACHE / "xdg"), "TOKENIZERS_PARALLELISM": "false",
    "FORGET_REGISTRY": str(_CACHE / "registry"), "WANDB_DISABLED": "true",
    "FORGET_KEY_HOME": str(_CACHE / "keys"),  # default key directories, never the user's
}.items():
    os.environ[_k] = _v
if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test` runs three workers on two cores
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

# Under pytest-xdist (`make test` runs `-n 3`), tests are handed out in units, one unit to one
# worker. A unit is a test module, except where modules share an expensive session fixture:
# those modules travel together so the fixture is built once. The units that take longest go
# first, so that neither worker is left with a long unit at the end.
SHARED_UNITS = {
    "tests/diffusion/": "diffusion world",           # tiny_world, red_erasure
    "tests/evaluation/test_compare.py": "comparison",  # comparison_json
    # only notebook 03 reads the comparison; 01 and 02 are a unit of their own
    "tests/notebooks/test_notebooks.py::test_choosing_a_method": "comparison",
    "tests/audits/test_verdict.py": "audit reports",  # fail_report, pass_report
    "tests/audits/test_report.py": "audit reports",
    "tests/models/test_finetune.py": "ticket fine-tune",  # tuned, tuned_without (package)
    "tests/models/test_rewind.py": "ticket fine-tune",
}
# Longest first: seconds each unit's tests took (setup + call, one worker's share of 2 cores)
# in a full `.ci/run` with PostgreSQL (`--durations`), after the cuts in the README's CI section.
UNIT_SECONDS = {"tests/workflow/test_workflow.py": 255, "comparison": 205,
                "tests/audits/test_calibration_models.py": 200, "diffusion world": 190,
                "tests/workflow/test_many_workers.py": 165, "tests/workflow/test_own_data.py": 165,
                "tests/workflow/test_model_line.py": 150, "tests/workflow/test_sharded.py": 150,
                "audit reports": 105, "tests/workflow/test_resume.py": 100,
                "tests/audits/test_control_cache.py": 95,
                "tests/methods/test_architectures.py": 70, "tests/workflow/test_batch.py": 65,
                "tests/notebooks/test_notebooks.py": 65,
                "tests/methods/test_unlearn_methods.py": 55,
                "tests/methods/test_frontier_methods.py": 35, "ticket fine-tune": 30,
                "tests/workflow/test_certified_workflow.py": 28,
                "tests/audits/test_audit_cli.py": 28, "tests/models/test_distributed.py": 26}
LONG_UNITS_FIRST = tuple(sorted(UNIT_SECONDS, key=UNIT_SECONDS.__getitem__, reverse=True))


def work_unit(nodeid: str) -> str:
    """The unit of work a test belongs to (see SHARED_UNITS)."""
    for prefix, unit in SHARED_UNITS.items():
        if nodeid.startswith(prefix):
            return unit
    return nodeid.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`-n N` (xdist's default ``--dist load``) schedules by work_unit; other modes as asked."""
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

        def _assign_work_unit(self, node) -> None:
            for unit in LONG_UNITS_FIRST:
                if unit in self.workqueue:
                    self.workqueue.move_to_end(unit, last=False)
                    break
            super()._assign_work_unit(node)

    return SharedFixtureScheduling(config, log)

# The test corpus: small enough that the tiny model trains in seconds, large enough that held-out
# subjects give a non-member population.
TEST_SUBJECTS = 12
TEST_CODE_FILES = 24


def built_once(tmp_path_factory, name: str, build) -> Path:
    """``build(path)`` run once per test run, whatever the number of xdist workers: the
    workers share the parent of their temporary roots, and the first to take the lock builds
    (the corpus and the tiny models are deterministic, so every worker would build the same
    bytes); the others wait for it and read the result. Nothing writes into it afterwards."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = root / f"built-once-{name}"
    with FileLock(str(out) + ".lock"):
        if not (root / f"built-once-{name}.done").is_file():
            if out.exists():  # a build killed half-way in an earlier run of this root
                import shutil

                shutil.rmtree(out)
            build(out)
            (root / f"built-once-{name}.done").touch()
    return out


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    from forget.corpus import GenerateConfig, generate

    return built_once(tmp_path_factory, "corpus", lambda out: generate(
        out, GenerateConfig(subjects=TEST_SUBJECTS, seed=7, code_files=TEST_CODE_FILES)))


@pytest.fixture(scope="session")
def corpus(corpus_dir):
    from forget.corpus import load_corpus

    return load_corpus(corpus_dir)


@pytest.fixture(scope="session")
def registry_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("registry")


@pytest.fixture(scope="session")
def tiny_model_dir(corpus_dir, registry_dir, tmp_path_factory) -> Path:
    """The tiny model trained on the test corpus (saved, registered, memorization measured)."""
    from forget.models.build import train_model
    from forget.models.registry import ModelRegistry

    out = built_once(tmp_path_factory, "tiny", lambda out: train_model(
        corpus_dir, out, size="tiny", registry=registry_dir, progress=False))
    ModelRegistry(registry_dir).register(out)  # this worker's registry (once: idempotent)
    return out


@pytest.fixture(scope="session")
def trained_subject(corpus, tiny_model_dir) -> str:
    """A trained subject whose phone, email or id the tiny model reproduces verbatim."""
    from audits.extraction import greedy_hits, identifier_prompts
    from forget.models import load_model

    model, tok = load_model(tiny_model_dir)
    for sid in corpus.subject_ids("train"):
        prompts = [p for r in corpus.records_of(sid) if r["record_id"].startswith("S")
                   for p in identifier_prompts(r["record_id"], r["text"], r["spans"],
                                               ("phone", "email", "national_id"))]
        if any(greedy_hits(model, tok, prompts)):
            return sid
    pytest.fail("the tiny model memorized no trained subject; the fixture corpus is too large")


@pytest.fixture(scope="session")
def retrained_model_dir(corpus_dir, registry_dir, trained_subject, tmp_path_factory) -> Path:
    """The gold standard: the tiny model retrained from scratch without ``trained_subject``."""
    from forget.models.build import train_model
    from forget.models.registry import ModelRegistry

    out = built_once(tmp_path_factory, "retrained", lambda out: train_model(
        corpus_dir, out, size="tiny", exclude_subjects=[trained_subject],
        registry=registry_dir, progress=False))
    ModelRegistry(registry_dir).register(out)
    return out


@pytest.fixture(scope="session")
def comparison_json(corpus_dir, tiny_model_dir, retrained_model_dir, trained_subject,
                    tmp_path_factory) -> Path:
    """A method comparison at the smallest scale on the tiny model (bench/compare.py's code):
    one subject, retraining and one approximate method (npo), one code secret, two
    sequential requests (no batch: with one subject it would repeat the subject's rows). The
    lm-eval utility tasks are left out for CI time (tests/audits/test_utility.py runs them)."""
    import json

    import torch

    from forget.evaluation import CompareConfig, run_comparison

    cfg = CompareConfig(methods=("retrain", "npo"), subject_ids=(trained_subject,),
                        worst_case=False, batch=False, sequential=2, sequential_methods=("npo",),
                        code_files=1, code_methods=("code_eraser",), lm_eval=False,
                        audit={"bootstrap": 200, "samples": 2, "relearn_steps": 3,
                               "mia_verdict_attacks": ("loss",), "char_rank_kinds": ()})
    work = tmp_path_factory.mktemp("comparison")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = run_comparison(corpus_dir, tiny_model_dir, work / "work", config=cfg,
                             retrained=retrained_model_dir, say=lambda m: None)
    finally:
        torch.set_num_threads(n)
    path = work / "compare.json"
    path.write_text(json.dumps(out, default=str))
    return path


PG_ENV = "FORGET_TEST_POSTGRES_URL"


@pytest.fixture
def pg_url():
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards.

    Skips when ``FORGET_TEST_POSTGRES_URL`` is unset; when it is set and the server does not
    answer, the test errors (``.ci/run`` always sets it: PostgreSQL coverage is not optional).
    """
    import uuid

    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL server to test against "
                    "(CI's .ci/run sets it to the local server on 127.0.0.1:5432)")
    from sqlalchemy import create_engine

    schema = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as c:
        c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as c:
            c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
