"""The request ledger: a tamper-evident queue of erasure requests with no plaintext personal data.

See ``forget/ledger/README.md`` for where keys live, the states, deadlines and verification.
"""

from forget.ledger.chain import Checkpoint, canonical, chain_hash
from forget.ledger.errors import (
    DeadlineError,
    HeadMovedError,
    IdempotencyConflictError,
    IllegalTransitionError,
    InvalidRequestError,
    KeyMaterialError,
    LeaseError,
    LedgerIntegrityError,
    LedgerNotFoundError,
    ModelLineError,
    RequestNotFoundError,
    ShreddedError,
)
from forget.ledger.ledger import Ledger
from forget.ledger.lines import HeadMove, ModelHead
from forget.ledger.records import Event, RequestRecord, StepRecord, VerifyReport
from forget.ledger.request import GROUNDS, DeletionRequest, Identifiers
from forget.ledger.states import State

__all__ = [
    "GROUNDS", "Checkpoint", "DeadlineError", "DeletionRequest", "Event", "HeadMove",
    "HeadMovedError", "IdempotencyConflictError", "Identifiers", "IllegalTransitionError", "InvalidRequestError",
    "KeyMaterialError", "LeaseError", "Ledger", "LedgerIntegrityError", "LedgerNotFoundError",
    "ModelHead", "ModelLineError", "RequestNotFoundError", "RequestRecord", "ShreddedError", "State", "StepRecord",
    "VerifyReport", "canonical", "chain_hash",
]
