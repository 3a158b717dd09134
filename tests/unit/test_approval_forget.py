"""Revoke's card updates for sends under way, against a store whose owner index lags."""

from __future__ import annotations

import dataclasses
from typing import Any

from mailroom.approval_forget import ApprovalForgetter
from mailroom.approval_record import ApprovalRecord, State

SENDING = ApprovalRecord(
    action_id="send-1",
    kind="send_email",
    team_id="T",
    user_id="U0ADA",
    conversation_id="T:D1",
    channel_id="D1",
    gmail_address="ada@example.com",
    message_hash="h",
    state=State.SENDING,
    created_at=0.0,
    expires_at=9e9,
    card_ts="111.1",
    attempts=1,
)


class LaggingStore:
    """The owner index still shows `listed`; the table holds `current`."""

    def __init__(self, listed: ApprovalRecord, current: ApprovalRecord):
        self.listed, self.current = listed, current
        self.erased: list[str] = []

    def of_owner(self, team_id: str, user_id: str) -> list[ApprovalRecord]:
        return [self.listed]

    def get(self, action_id: str) -> ApprovalRecord | None:
        return self.current

    def erase(self, action_id: str) -> None:
        self.erased.append(action_id)


class Cards:
    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []

    def update(self, channel: str, ts: str, text: str, **kwargs: Any) -> None:
        self.updates.append({"ts": ts, "text": text, **kwargs})


def test_a_send_settled_after_the_index_was_read_keeps_its_true_card() -> None:
    sent = dataclasses.replace(SENDING, state=State.SENT, gmail_id="g-1")
    store, cards = LaggingStore(SENDING, sent), Cards()
    ApprovalForgetter(store, cards).cancel_and_erase("T", "U0ADA", "revoked")  # type: ignore[arg-type]
    assert cards.updates == [] and store.erased == ["send-1"]


def test_a_send_still_unconfirmed_says_to_look_in_sent_mail() -> None:
    store, cards = LaggingStore(SENDING, SENDING), Cards()
    ApprovalForgetter(store, cards).cancel_and_erase("T", "U0ADA", "revoked")  # type: ignore[arg-type]
    [card] = cards.updates
    assert "Sent mail" in card["text"] and "disconnected" in card["text"] and store.erased == ["send-1"]
