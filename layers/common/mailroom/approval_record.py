"""The approval record: the single truth of one requested send, and its state machine.

    pending ──approve──▶ approved ──begin_attempt──▶ sending ──▶ sent
       │                    │                          │  ▲ (begin_attempt again after a
       │                    └──▶ failed | expired      │  │  transient error: redelivery)
       └──▶ cancelled | expired | superseded           └──▶ failed

Every move is a conditional write on the current state (and, where it matters, on the
expiry, the message hash and the attempt budget), so two workers, a redelivery or a
stale press can never both win. A terminal state is final. The record holds ids,
hashes, states and timestamps only: never mail content (that stays in Gmail and in the
encrypted checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class State(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"


# The only moves there are; anything else is refused by the store's condition.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.APPROVED, State.CANCELLED, State.EXPIRED, State.SUPERSEDED}),
    State.APPROVED: frozenset({State.SENDING, State.FAILED, State.EXPIRED}),
    State.SENDING: frozenset({State.SENDING, State.SENT, State.FAILED}),
}
TERMINAL = frozenset(set(State) - set(TRANSITIONS))
# Where a send may start or be settled (after a lost answer) from.
SENDABLE = frozenset({State.APPROVED, State.SENDING})
# An approval is good for this long: longer than every redelivery of the press can take
# (MaxReceiveCount x the queue's 720 s visibility timeout, 48 min at the most), shorter
# than a DLQ redrive hours later. Past it nothing is attempted: a send never goes out
# long after the press that asked for it.
SEND_WINDOW_SECONDS = 3600


# The reason of a request ended because the Approve press on it failed before it was
# recorded (its owner was told; ApprovalDesk.abandon).
PRESS_FAILED = "press_failed"


def can_move(current: State, target: State) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


@dataclass(frozen=True)
class ApprovalRecord:
    action_id: str
    kind: str  # "send_email" | "send_draft"
    team_id: str
    user_id: str  # the owner: only they may press
    conversation_id: str  # the LangGraph thread the request waits in
    channel_id: str
    gmail_address: str  # the linked address it would be sent from
    message_hash: str  # of the exact message (for a draft, of its stamped raw bytes)
    state: State
    created_at: float
    expires_at: float
    draft_id: str | None = None
    card_ts: str | None = None
    decided_by: str | None = None  # the event id of the press that decided it
    attempts: int = 0
    gmail_id: str | None = None
    reason: str | None = None  # why it failed, or was superseded ("edited", "draft_changed", "moved_on")
    replaced_by: str | None = None
    updated_at: float = 0.0
    # Set when approved: no attempt may begin after it (SEND_WINDOW_SECONDS).
    send_by: float | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def expired_at(self, now: float) -> bool:
        return now >= self.expires_at

    def past_send_window(self, now: float) -> bool:
        return self.send_by is not None and now >= self.send_by

    def owned_by(self, team_id: str, user_id: str) -> bool:
        return (self.team_id, self.user_id) == (team_id, user_id)


class StateConflict(Exception):
    """A conditional write lost: the record is not in a state the move starts from
    (or expired, or the hash or attempt budget did not match). Carries what is there now."""

    def __init__(self, current: ApprovalRecord | None):
        super().__init__(f"approval is {current.state if current else 'missing'}")
        self.current = current


class ApprovalStore(Protocol):
    """Where approval records live; every method is one conditional write or one read."""

    def create(self, record: ApprovalRecord) -> ApprovalRecord:
        """Store a new pending record; if one exists under that id, return it unchanged."""
        ...

    def get(self, action_id: str) -> ApprovalRecord | None: ...

    def move(
        self,
        action_id: str,
        to: State,
        *,
        now: float,
        from_states: frozenset[State],
        unexpired: bool = False,
        past_expiry: bool = False,
        decided_by: str | None = None,
        gmail_id: str | None = None,
        reason: str | None = None,
        replaced_by: str | None = None,
    ) -> ApprovalRecord:
        """Move to `to` if the state is one of `from_states` (and, with `unexpired`, before
        the expiry; with `past_expiry`, after it); StateConflict otherwise."""
        ...

    def begin_attempt(self, action_id: str, *, now: float, message_hash: str, max_attempts: int) -> ApprovalRecord:
        """approved|sending -> sending with attempts + 1, only for this hash, before the
        expiry and the send window's end, and while attempts < max_attempts;
        StateConflict otherwise."""
        ...

    def stop_attempts(self, action_id: str, *, max_attempts: int, reason: str) -> ApprovalRecord:
        """sending -> sending with the attempt budget used up and why: from then on an
        attempt only looks the message up in Gmail, never sends; StateConflict otherwise."""
        ...

    def set_card(self, action_id: str, card_ts: str) -> None:
        """Remember where the card is (only while the record is pending)."""
        ...

    def of_owner(self, team_id: str, user_id: str) -> list[ApprovalRecord]:
        """Every record of this user, whatever its state."""
        ...

    def pending_expired(self, now: float, limit: int) -> list[str]:
        """Ids of (up to `limit`) records still pending past their expiry, oldest first;
        read from an index that may lag, so a move on them can still lose."""
        ...

    def erase(self, action_id: str) -> None:
        """Delete the record: only when its user is forgotten (revoke, relink)."""
        ...
