"""The state machine: every pair of states, legal or not; errors name both states."""

from __future__ import annotations

import itertools

import pytest

from forget.ledger import IllegalTransitionError, State
from forget.ledger.states import FORWARD, TRANSITIONS, allowed, check_transition

S = State
LEGAL_FORWARD = {
    (S.RECEIVED, S.IDENTITY_VERIFIED), (S.IDENTITY_VERIFIED, S.SCOPED), (S.SCOPED, S.UNLEARNING),
    (S.UNLEARNING, S.AUDITING), (S.UNLEARNING, S.UNLEARNING), (S.AUDITING, S.COMPLETED), (S.AUDITING, S.UNLEARNING),
    (S.RECEIVED, S.REJECTED), (S.IDENTITY_VERIFIED, S.REJECTED), (S.SCOPED, S.REJECTED),
    (S.RECEIVED, S.EXTENDED), (S.IDENTITY_VERIFIED, S.EXTENDED), (S.SCOPED, S.EXTENDED),
    (S.RECEIVED, S.FAILED), (S.IDENTITY_VERIFIED, S.FAILED), (S.SCOPED, S.FAILED),
    (S.UNLEARNING, S.FAILED), (S.AUDITING, S.FAILED),
}


@pytest.mark.parametrize("current, target",
                         list(itertools.product([s for s in S if s in TRANSITIONS], S)))
def test_every_pair_on_the_forward_path(current: State, target: State) -> None:
    if (current, target) in LEGAL_FORWARD:
        stage = check_transition(current, target, stage=current)
        assert stage == (target if target in FORWARD else current)
    else:
        with pytest.raises(IllegalTransitionError) as e:
            check_transition(current, target, stage=current)
        assert f"'{current}'" in str(e.value) and f"'{target}'" in str(e.value)
        assert e.value.current == current and e.value.target == target


@pytest.mark.parametrize("stage", [S.RECEIVED, S.IDENTITY_VERIFIED, S.SCOPED])
def test_extended_resumes_its_stage(stage: State) -> None:
    assert allowed(S.EXTENDED, stage=stage) == TRANSITIONS[stage] - {S.EXTENDED}
    with pytest.raises(IllegalTransitionError):
        check_transition(S.EXTENDED, S.EXTENDED, stage=stage)


@pytest.mark.parametrize("stage, retry", [
    (S.RECEIVED, {S.IDENTITY_VERIFIED}), (S.IDENTITY_VERIFIED, {S.SCOPED}),
    (S.SCOPED, {S.UNLEARNING}), (S.UNLEARNING, {S.UNLEARNING}),
    (S.AUDITING, {S.UNLEARNING, S.AUDITING}),
])
def test_failed_retries_only_when_retryable(stage: State, retry: set[State]) -> None:
    # failed -> failed: a retry that fails again is recorded as a new failure (issue 20)
    assert allowed(S.FAILED, stage=stage, retryable=True) == retry | {S.REJECTED, S.FAILED}
    for target in S:
        if target in retry:
            with pytest.raises(IllegalTransitionError, match="not retryable"):
                check_transition(S.FAILED, target, stage=stage, retryable=False)


@pytest.mark.parametrize("terminal", [S.COMPLETED, S.REJECTED])
def test_terminal_states_go_nowhere(terminal: State) -> None:
    for target in S:
        with pytest.raises(IllegalTransitionError, match="final"):
            check_transition(terminal, target, stage=S.COMPLETED if terminal == S.COMPLETED
                             else S.RECEIVED)
