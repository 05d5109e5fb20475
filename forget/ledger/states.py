"""The request state machine: pure data and one checking function.

Forward path::

    received -> identity_verified -> scoped -> unlearning -> auditing -> completed

Side states: ``rejected`` (terminal, with a reason), ``failed`` (with a retryable flag) and
``extended`` (the deadline was extended). A request in a side state remembers its *stage*, the
last forward state it reached, and resumes from there: an extended request continues as its
stage would; a retryable failure re-enters the step that failed (a failed audit may also go
back to unlearning). ``completed`` and ``rejected`` are terminal, as is a non-retryable failure.
"""

from __future__ import annotations

from enum import StrEnum

from forget.ledger.errors import IllegalTransitionError


class State(StrEnum):
    """States of a deletion request."""

    RECEIVED = "received"
    IDENTITY_VERIFIED = "identity_verified"
    SCOPED = "scoped"
    UNLEARNING = "unlearning"
    AUDITING = "auditing"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"
    EXTENDED = "extended"


FORWARD: tuple[State, ...] = (State.RECEIVED, State.IDENTITY_VERIFIED, State.SCOPED,
                              State.UNLEARNING, State.AUDITING, State.COMPLETED)
TERMINAL: frozenset[State] = frozenset({State.COMPLETED, State.REJECTED})
# Stages a worker may claim: identity is verified and the request is not finished.
CLAIMABLE_STAGES: frozenset[State] = frozenset({State.IDENTITY_VERIFIED, State.SCOPED,
                                                State.UNLEARNING, State.AUDITING})

TRANSITIONS: dict[State, frozenset[State]] = {
    State.RECEIVED: frozenset({State.IDENTITY_VERIFIED, State.REJECTED, State.EXTENDED, State.FAILED}),
    State.IDENTITY_VERIFIED: frozenset({State.SCOPED, State.REJECTED, State.EXTENDED, State.FAILED}),
    State.SCOPED: frozenset({State.UNLEARNING, State.REJECTED, State.EXTENDED, State.FAILED}),
    # unlearning -> unlearning: a new worker restarts an interrupted run (its lease expired)
    State.UNLEARNING: frozenset({State.UNLEARNING, State.AUDITING, State.FAILED}),
    # a failed audit sends the request back to unlearning (another method, more steps)
    State.AUDITING: frozenset({State.COMPLETED, State.UNLEARNING, State.FAILED}),
    State.COMPLETED: frozenset(),
    State.REJECTED: frozenset(),
}

# After a retryable failure at a stage, the states that retry it.
RETRY: dict[State, frozenset[State]] = {
    State.RECEIVED: frozenset({State.IDENTITY_VERIFIED}),
    State.IDENTITY_VERIFIED: frozenset({State.SCOPED}),
    State.SCOPED: frozenset({State.UNLEARNING}),
    State.UNLEARNING: frozenset({State.UNLEARNING}),
    State.AUDITING: frozenset({State.UNLEARNING, State.AUDITING}),
}


def allowed(current: State, *, stage: State, retryable: bool = False) -> frozenset[State]:
    """States reachable from ``current`` (``stage``: last forward state reached)."""
    if current == State.EXTENDED:
        return TRANSITIONS[stage] - {State.EXTENDED}
    if current == State.FAILED:
        if not retryable:
            return frozenset()
        # failed -> failed: a retry that fails again before moving on (recorded, with its
        # attempt number and backoff, by the worker)
        return RETRY.get(stage, frozenset()) | {State.REJECTED, State.FAILED}
    return TRANSITIONS[current]


def check_transition(current: State, target: State, *, stage: State,
                     retryable: bool = False) -> State:
    """Return the stage after moving ``current -> target``, or raise naming both states.

    Args:
        current: the request's state now.
        target: the state a verb wants.
        stage: the last forward state reached (equals ``current`` on the forward path).
        retryable: for ``failed``: whether the failure may be retried.
    """
    current, target, stage = State(current), State(target), State(stage)
    ok = allowed(current, stage=stage, retryable=retryable)
    if target not in ok:
        if not ok:
            why = ("it failed and the failure is not retryable" if current == State.FAILED
                   else f"'{current}' is final")
        else:
            why = "allowed from here: " + ", ".join(sorted(ok))
        raise IllegalTransitionError(
            f"cannot move a request from '{current}' to '{target}': {why}",
            current=current, target=target)
    return target if target in FORWARD else stage
