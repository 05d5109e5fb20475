"""The end-to-end deletion workflow: verify, scope, unlearn, audit, guard, certify, complete."""

from forget.workflow.batch import BatchOutcome, process_batch
from forget.workflow.batch_policy import BatchPolicy
from forget.workflow.common import ProcessOutcome
from forget.workflow.process import process_request

__all__ = ["BatchOutcome", "BatchPolicy", "ProcessOutcome", "process_batch", "process_request"]
