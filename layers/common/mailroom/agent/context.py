"""What one run of the agent graph needs and its checkpoint must not keep."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mailroom.approval_record import ApprovalRecord, ApprovalStore
from mailroom.ports import Mailbox


def _nothing(record: ApprovalRecord) -> None:
    return None


@dataclass(frozen=True)
class AgentContext:
    email: str
    # time.monotonic() value after which no new model call starts.
    deadline: float
    # The user's Gmail, for the tools; the graph itself is shared by every user.
    mailbox: Mailbox | None = None
    # The Slack user who may approve a send, and the conversation (thread id).
    owner: str = ""
    conversation_id: str = ""
    approval_ttl_seconds: float = 24 * 3600
    # The approval records, and where the request's card is answered (see approvals).
    approvals: ApprovalStore | None = None
    team_id: str = ""
    channel_id: str = ""
    # Told when a tool ends a request nobody decided (the user moved on), to update its card.
    settled: Callable[[ApprovalRecord], None] = _nothing
    # The Slack event the turn answers: a retry of the turn makes the same drafts.
    turn_id: str = ""
