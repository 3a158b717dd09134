"""What one run of the agent graph needs and its checkpoint must not keep."""

from __future__ import annotations

from dataclasses import dataclass

from mailroom.ports import Mailbox


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
    # The Slack event the turn answers: a retry of the turn makes the same drafts.
    turn_id: str = ""
