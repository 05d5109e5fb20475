"""Right-to-be-forgotten for language models: the public Python API.

Everything below is importable from ``forget`` directly, e.g.
``from forget import Ledger, DeletionRequest, process_request, open_corpus, NPOConfig``.
The names are resolved on first use (PEP 562), so ``import forget`` stays fast and imports
neither torch nor transformers; it has no side effects.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # requests and the ledger
    "Ledger": "forget.ledger", "DeletionRequest": "forget.ledger",
    "Identifiers": "forget.ledger", "State": "forget.ledger",
    # the workflow and its result
    "process_request": "forget.workflow", "ProcessOutcome": "forget.workflow",
    "process_batch": "forget.workflow", "BatchPolicy": "forget.workflow",
    # corpora
    "open_corpus": "forget.corpus", "load_corpus": "forget.corpus",
    "Corpus": "forget.corpus", "TextCorpus": "forget.corpus", "TextRecord": "forget.corpus",
    "TrainingRecord": "forget.corpus", "GenerateConfig": "forget.corpus",
    "generate": "forget.corpus", "training_records": "forget.corpus",
    # models: the demo model, your own fine-tune (with its recipe), a model from elsewhere
    "train_model": "forget.models.build", "finetune": "forget.models.finetune",
    "FinetuneParams": "forget.models.finetune", "recipe_of": "forget.models.recipe",
    "import_model": "forget.models.adopt",
    # scoping your own corpus: a keyed-hash index, and the scope of a request
    "build_index": "forget.corpus.index", "CorpusIndex": "forget.corpus.index",
    "scope_text_records": "forget.workflow.scope_text",
    # methods: the interface, lookup, and every method's config class
    "Method": "forget.core.method", "MethodConfig": "forget.core.method",
    "UnlearnResult": "forget.core.method", "get_method": "forget.core.method",
    "resolve_method": "forget.core.method", "METHODS": "forget.core.method",
    "RetrainConfig": "forget.methods.retrain",
    "GradientAscentConfig": "forget.methods.gradient_ascent",
    "GradDiffConfig": "forget.methods.grad_diff", "NPOConfig": "forget.methods.npo",
    "SimNPOConfig": "forget.methods.simnpo", "IdkDPOConfig": "forget.methods.idk_dpo",
    "CodeEraserConfig": "forget.methods.code_eraser",
    "LoraForgetConfig": "forget.methods.lora_forget",
    "DPRetrainConfig": "forget.methods.dp_retrain", "NoisyGDConfig": "forget.methods.noisy_gd",
    "RomeConfig": "forget.methods.rome", "TextEncoderConfig": "forget.methods.text_encoder",
    # audits (usable alone as the ``audits`` package)
    "run_audit": "audits", "AuditConfig": "audits", "AuditReport": "audits",
    # certificates, errors, process settings
    "Certificate": "forget.certificate",
    "ForgetError": "forget.errors",
    "configure_output": "forget._quiet", "configure_offline": "forget._env",
}

__all__ = [  # the keys of _EXPORTS (a test checks)
    "AuditConfig", "AuditReport", "BatchPolicy", "Certificate", "CodeEraserConfig", "Corpus", "CorpusIndex",
    "DPRetrainConfig", "DeletionRequest", "FinetuneParams", "ForgetError", "GenerateConfig",
    "GradDiffConfig", "GradientAscentConfig", "Identifiers", "IdkDPOConfig", "Ledger",
    "LoraForgetConfig", "METHODS", "Method", "MethodConfig", "NPOConfig", "NoisyGDConfig",
    "ProcessOutcome", "RetrainConfig", "RomeConfig", "SimNPOConfig", "State", "TextCorpus",
    "TextEncoderConfig", "TextRecord", "TrainingRecord", "UnlearnResult", "build_index",
    "configure_offline", "configure_output", "finetune", "generate", "get_method", "import_model",
    "load_corpus", "open_corpus", "process_batch", "process_request", "recipe_of", "resolve_method", "run_audit",
    "scope_text_records", "train_model", "training_records",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'forget' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and IDEs see; nothing is imported at run time
    from audits import AuditConfig, AuditReport, run_audit
    from forget._env import configure_offline
    from forget._quiet import configure_output
    from forget.certificate import Certificate
    from forget.core.method import (
        METHODS,
        Method,
        MethodConfig,
        UnlearnResult,
        get_method,
        resolve_method,
    )
    from forget.corpus import (
        Corpus,
        GenerateConfig,
        TextCorpus,
        TextRecord,
        TrainingRecord,
        generate,
        load_corpus,
        open_corpus,
        training_records,
    )
    from forget.corpus.index import CorpusIndex, build_index
    from forget.errors import ForgetError
    from forget.ledger import DeletionRequest, Identifiers, Ledger, State
    from forget.methods.code_eraser import CodeEraserConfig
    from forget.methods.dp_retrain import DPRetrainConfig
    from forget.methods.grad_diff import GradDiffConfig
    from forget.methods.gradient_ascent import GradientAscentConfig
    from forget.methods.idk_dpo import IdkDPOConfig
    from forget.methods.lora_forget import LoraForgetConfig
    from forget.methods.noisy_gd import NoisyGDConfig
    from forget.methods.npo import NPOConfig
    from forget.methods.retrain import RetrainConfig
    from forget.methods.rome import RomeConfig
    from forget.methods.simnpo import SimNPOConfig
    from forget.methods.text_encoder import TextEncoderConfig
    from forget.models.adopt import import_model
    from forget.models.build import train_model
    from forget.models.finetune import FinetuneParams, finetune
    from forget.models.recipe import recipe_of
    from forget.workflow import BatchPolicy, ProcessOutcome, process_batch, process_request
    from forget.workflow.scope_text import scope_text_records
