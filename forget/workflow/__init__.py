"""The end-to-end deletion workflow: verify, scope, unlearn, audit, guard, certify, complete."""

from forget.workflow.common import ProcessOutcome
from forget.workflow.process import process_request

__all__ = ["ProcessOutcome", "process_request"]
