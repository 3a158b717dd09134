"""Sending needs the user's Approve: the pending send, its Slack message, the decision.

A send tool stops the graph (LangGraph `interrupt`) with a `PendingSend`: the exact
message that would go out. The worker posts it with Approve and Cancel buttons whose
value is the pending action's id; a press resumes the graph with a `Decision`.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Literal

from mailroom.replies import Blocks

APPROVE = "approve_send"
CANCEL = "cancel_send"

DecisionName = Literal["approve", "cancel", "expired", "superseded"]
_PREVIEW_CHARS = 1500


@dataclass(frozen=True)
class PendingSend:
    action_id: str
    kind: Literal["send_email", "send_draft"]
    # The Slack user who asked; only they may approve.
    owner: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    subject: str
    body: str
    draft_id: str | None
    created_at: float
    expires_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingSend:
        fields = dict(data)
        for name in ("to", "cc", "bcc"):
            fields[name] = tuple(fields.get(name) or ())
        return cls(**fields)


def action_id_for(conversation_id: str, tool_call_id: str) -> str:
    """Stable across the tool's re-execution on resume, and unguessable from outside."""
    return "send-" + hashlib.sha256(f"{conversation_id}\n{tool_call_id}".encode()).hexdigest()[:32]


def _mrkdwn_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fields(pending: PendingSend) -> list[dict[str, Any]]:
    rows = [("To", pending.to), ("Cc", pending.cc), ("Bcc", pending.bcc)]
    fields = [
        {"type": "mrkdwn", "text": f"*{name}:*\n{_mrkdwn_escape(', '.join(values))}"} for name, values in rows if values
    ]
    fields.append({"type": "mrkdwn", "text": f"*Subject:*\n{_mrkdwn_escape(pending.subject) or '(none)'}"})
    return fields


def _preview(body: str) -> str:
    text = body if len(body) <= _PREVIEW_CHARS else body[:_PREVIEW_CHARS] + "…"
    quoted = "\n".join("> " + line if line else ">" for line in _mrkdwn_escape(text).splitlines())
    return quoted or "> (empty body)"


def approval_request(pending: PendingSend, hours: float) -> tuple[str, Blocks]:
    what = "this draft" if pending.kind == "send_draft" else "this email"
    blocks: Blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Send {what}?* Nothing goes out until you approve."}},
        {"type": "section", "fields": _fields(pending)},
        {"type": "section", "text": {"type": "mrkdwn", "text": _preview(pending.body)}},
        {
            "type": "actions",
            "block_id": "approval",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE,
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Approve and send"},
                    "value": pending.action_id,
                },
                {
                    "type": "button",
                    "action_id": CANCEL,
                    "style": "danger",
                    "text": {"type": "plain_text", "text": "Cancel"},
                    "value": pending.action_id,
                },
            ],
        },
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"Only <@{pending.owner}> can approve. Expires in {hours:g} hours."}
            ],
        },
    ]
    return f"Send {what} to {', '.join(pending.to)}? Subject: {pending.subject}", blocks


def decided(pending: PendingSend, outcome: str) -> tuple[str, Blocks]:
    """The approval message once decided: the same summary, the buttons replaced by the outcome."""
    blocks: Blocks = [
        {"type": "section", "fields": _fields(pending)},
        {"type": "section", "text": {"type": "mrkdwn", "text": _preview(pending.body)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": outcome}]},
    ]
    return outcome, blocks
