"""Audits for erasure from language models: does a model still hold a person's data?

Stands alone: plain inputs (an HF causal LM, its tokenizer, records with identifier spans)
and plain results. ``run_audit`` runs everything and returns an :class:`AuditReport`.
"""

from __future__ import annotations

from audits.config import AuditConfig
from audits.errors import (
    AuditConfigError,
    AuditConfigNotFoundError,
    AuditError,
    AuditInputError,
    LmEvalError,
)
from audits.exposure import ExposureResult, IdentifierExposure, run_exposure
from audits.extraction import (
    ExtractionResult,
    ProbeResult,
    Prompt,
    greedy_hits,
    identifier_prompts,
    run_extraction,
)
from audits.mia import AttackResult, MIAResult, run_mia, score_texts, token_stats
from audits.records import Record, Span, as_records, mask
from audits.report import AuditReport
from audits.run import ModelAudit, run_audit
from audits.twins import FakeMaker, make_twins
from audits.utility import UtilityResult, prepare_tasks, run_lm_eval, write_lm_eval_data
from audits.verdict import FAIL, INCONCLUSIVE, PASS, VERDICTS, Check, Verdict

__all__ = [
    "FAIL", "INCONCLUSIVE", "PASS", "VERDICTS", "AttackResult", "AuditConfig",
    "AuditConfigError", "AuditConfigNotFoundError", "AuditError", "AuditInputError",
    "AuditReport", "Check", "ExposureResult", "ExtractionResult", "FakeMaker",
    "IdentifierExposure", "LmEvalError", "MIAResult", "ModelAudit", "ProbeResult", "Prompt",
    "Record", "Span", "UtilityResult", "Verdict", "as_records", "greedy_hits",
    "identifier_prompts", "make_twins", "mask", "prepare_tasks", "run_audit", "run_exposure",
    "run_extraction", "run_lm_eval", "run_mia", "score_texts", "token_stats",
    "write_lm_eval_data",
]
