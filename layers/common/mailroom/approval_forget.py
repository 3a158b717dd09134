"""Forgetting a user's approvals, on revoke or on linking another address.

Every request still waiting for a press, or approved but not yet tried, ends without a
send and its card says why; then every record of the user is erased, so nothing of
their conversations stays in the table. A press that comes later finds no record and is
only told that the request is no longer waiting. A send already under way (`sending`)
is not pretended undone: its record is erased, so no redelivery can try it again, and
its card says to look in Sent mail.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from mailroom.agent.approval_card import decided_card
from mailroom.approval_record import ApprovalRecord, ApprovalStore, State, StateConflict
from mailroom.observability import logger
from mailroom.ports import Chat

# Why an approved request was not sent, by what the user did (the card's wording).
_NOT_SENT = {
    "revoked": "you disconnected Gmail",
    "relinked": "Gmail is now linked to another address",
}


class ApprovalForgetter:
    def __init__(self, store: ApprovalStore, chat: Chat, clock: Callable[[], float] = time.time):
        self._store = store
        self._chat = chat
        self._clock = clock

    def cancel_and_erase(self, team_id: str, user_id: str, reason: str) -> int:
        cancelled = 0
        for record in self._store.of_owner(team_id, user_id):
            ended = self._end(record, reason)
            if ended is not None:
                cancelled += 1
                self._show(ended)
            self._store.erase(record.action_id)
        return cancelled

    def _end(self, record: ApprovalRecord, reason: str) -> ApprovalRecord | None:
        now = self._clock()
        try:
            if record.state == State.PENDING:
                return self._store.move(
                    record.action_id, State.CANCELLED, now=now, from_states=frozenset({State.PENDING}), reason=reason
                )
            if record.state == State.APPROVED:
                return self._store.move(
                    record.action_id,
                    State.FAILED,
                    now=now,
                    from_states=frozenset({State.APPROVED}),
                    reason=_NOT_SENT.get(reason, reason),
                )
            if record.state == State.SENDING:
                # Under way, outcome unknown: its record goes now, so nothing can check it
                # later; the card says so instead of promising to (no write: it is erased).
                # Read again first: the owner index may lag a send that was just settled.
                now_record = self._store.get(record.action_id)
                if now_record is not None and now_record.state == State.SENDING:
                    return dataclasses.replace(now_record, reason=reason)
        except StateConflict:
            pass  # a press decided it meanwhile; the record is erased all the same
        return None

    def _show(self, record: ApprovalRecord) -> None:
        if not record.card_ts:
            return
        text, blocks = decided_card(record, None)
        try:
            self._chat.update(record.channel_id, record.card_ts, text, blocks=blocks)
        except Exception as exc:  # the card is a courtesy; forgetting must go on
            logger.warning("could not update a cancelled card", extra={"error": type(exc).__name__})
