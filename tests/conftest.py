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
}.items():
    os.environ[_k] = _v

import pytest  # noqa: E402

# The test corpus: small enough that the tiny model trains in seconds, large enough that held-out
# subjects give a non-member population.
TEST_SUBJECTS = 12
TEST_CODE_FILES = 24


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    from forget.corpus import GenerateConfig, generate

    out = tmp_path_factory.mktemp("corpus")
    generate(out, GenerateConfig(subjects=TEST_SUBJECTS, seed=7, code_files=TEST_CODE_FILES))
    return out


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

    out = tmp_path_factory.mktemp("models") / "tiny"
    train_model(corpus_dir, out, size="tiny", registry=registry_dir, progress=False)
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

    out = tmp_path_factory.mktemp("models") / "retrained"
    train_model(corpus_dir, out, size="tiny", exclude_subjects=[trained_subject],
                registry=registry_dir, progress=False)
    return out


@pytest.fixture(scope="session")
def comparison_json(corpus_dir, tiny_model_dir, retrained_model_dir, trained_subject,
                    tmp_path_factory) -> Path:
    """A method comparison at the smallest scale on the tiny model (bench/compare.py's code):
    one subject, three methods, a batch, one code secret, two sequential requests."""
    import json

    import torch

    from forget.evaluation import CompareConfig, run_comparison

    cfg = CompareConfig(methods=("retrain", "gradient_ascent", "npo"), subject_ids=(trained_subject,),
                        worst_case=False, batch=True, sequential=2, sequential_methods=("npo",),
                        code_files=1, code_methods=("code_eraser",),
                        audit={"bootstrap": 200, "samples": 2, "relearn_steps": 3})
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
