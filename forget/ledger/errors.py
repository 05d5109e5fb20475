"""Errors raised by the request ledger.

Each also inherits the builtin it resembles. Messages say what is wrong and how to fix it;
they never contain a subject's identifiers, nor request ids (an id might have been chosen
carelessly by a requester), so they are safe to log and to show.
"""

from __future__ import annotations

from forget.errors import ForgetError, InvalidInputError


class InvalidRequestError(InvalidInputError):
    """A deletion request (or an argument of a ledger verb) is malformed; nothing was written."""


class IllegalTransitionError(ForgetError, ValueError):
    """A verb would move a request between two states the state machine does not connect."""

    def __init__(self, message: str, *, current: str = "", target: str = "") -> None:
        super().__init__(message)
        self.current = current
        self.target = target


class DeadlineError(ForgetError, ValueError):
    """An extension breaks the deadline rules (once, up to two months, with a reason, in time)."""


class IdempotencyConflictError(ForgetError, ValueError):
    """A request id was submitted again with different content."""


class RequestNotFoundError(ForgetError, KeyError):
    """No request with the given id exists in this ledger."""


class LeaseError(ForgetError, RuntimeError):
    """A worker acted on a request whose lease it does not hold."""


class ShreddedError(ForgetError, LookupError):
    """The identifiers of a request were crypto-shredded (its data key was destroyed)."""


class KeyMaterialError(ForgetError, RuntimeError):
    """The ledger secret or signing key is missing, unreadable or belongs to another ledger."""


class LedgerNotFoundError(ForgetError, FileNotFoundError):
    """The ledger database does not exist (and was not to be created)."""


class LedgerIntegrityError(ForgetError, RuntimeError):
    """The hash chain, a checkpoint or the request table failed verification.

    Attributes:
        position: 1-based position of the first event found broken (or the checkpoint size).
    """

    def __init__(self, message: str, *, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class HeadMovedError(ForgetError, RuntimeError):
    """A model line's head moved since a request started from it (another request completed).

    The request is not completed; it is redone on the new head (the workflow does this).
    """


class ModelLineError(ForgetError, ValueError):
    """A model line is unknown, or a version asked for is not on it, or using it would drop
    erasures made since."""
