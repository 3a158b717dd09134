"""The approval state machine: the moves there are, and that the store enforces them."""

from __future__ import annotations

import time

import pytest

from mailroom.approval_record import SENDABLE, TERMINAL, TRANSITIONS, State, can_move


def test_every_state_is_either_terminal_or_has_moves():
    assert set(TRANSITIONS) | TERMINAL == set(State)
    assert {State.SENT, State.FAILED, State.CANCELLED, State.EXPIRED, State.SUPERSEDED} == TERMINAL


@pytest.mark.parametrize("end", sorted(TERMINAL))
def test_a_decision_is_final(end):
    assert not any(can_move(end, target) for target in State)


def test_only_an_approved_request_can_start_sending_and_only_sending_can_end_sent():
    assert {s for s in State if can_move(s, State.SENDING)} == SENDABLE
    assert {s for s in State if can_move(s, State.SENT)} == {State.SENDING}
    assert not can_move(State.PENDING, State.SENDING)
    assert not can_move(State.APPROVED, State.CANCELLED)  # once approved, Cancel is too late


def test_the_dynamodb_store_refuses_moves_the_machine_does_not_have():
    from mailroom.adapters.approval_table import DynamoApprovalStore

    store = DynamoApprovalStore("unused", client=object())
    with pytest.raises(AssertionError):
        store.move("a", State.SENT, now=time.time(), from_states=frozenset({State.PENDING}))
