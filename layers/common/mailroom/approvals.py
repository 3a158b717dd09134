"""What a send tool asks the user to approve: the exact message, its ids and its hash.

A send tool stops the graph (LangGraph `interrupt`) with a `PendingSend`, the exact
message that would go out (it lives in the checkpoint, never in the approval record,
which keeps only its hash). The worker shows it on a card whose buttons carry the
action id; a press is looked up by that id in the approval record
(`mailroom.approval_record`), which alone decides whether anything is sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mailroom.mail.compose import OutgoingMessage

APPROVE = "approve_send"
CANCEL = "cancel_send"
EDIT = "edit_send"
EDIT_SUBMIT = "edit_send_submit"  # the modal's callback_id (a view_submission)

Kind = Literal["send_email", "send_draft", "change_emails"]  # change_emails: a bulk label change


@dataclass(frozen=True)
class PendingSend:
    action_id: str
    kind: Kind
    owner: str
    from_: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    subject: str
    body: str
    message_hash: str
    expires_at: float
    # Threading: the message this replies to (its Message-ID) and Gmail thread.
    in_reply_to: str | None = None
    references: str | None = None
    thread_id: str | None = None
    # A draft: its id, whether it has an HTML part, its attachments (name, bytes).
    draft_id: str | None = None
    has_html: bool = False
    attachments: tuple[tuple[str, int], ...] = field(default_factory=tuple)
    # Why this card follows an earlier one ("edited", "draft_changed", "undo"), if it does.
    follows: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingSend:
        fields = dict(data)
        for name in ("to", "cc", "bcc"):
            fields[name] = tuple(fields.get(name) or ())
        fields["attachments"] = tuple(tuple(a) for a in fields.get("attachments") or ())
        return cls(**fields)

    def outgoing(self) -> OutgoingMessage:
        """The message `messages.send` sends (for send_email), exactly as shown."""
        from mailroom.mail.compose import deterministic_message_id

        return OutgoingMessage(
            to=self.to,
            cc=self.cc,
            bcc=self.bcc,
            subject=self.subject,
            body=self.body,
            in_reply_to=self.in_reply_to,
            references=self.references,
            thread_id=self.thread_id,
            message_id=deterministic_message_id(self.action_id),
            action_id=self.action_id,
        )


def action_id_for(conversation_id: str, task_path: str, tool_call_id: str) -> str:
    """Unique per request, stable across the tool's re-execution on resume.

    `task_path` is LangGraph's checkpoint namespace of the tools task ("tools:<task id>"):
    a task id is derived from its checkpoint, so it is new for every model answer yet the
    same when that task re-runs after a resume. The tool-call id alone is not enough:
    OpenAI-compatible servers may reuse ids like "call_0" in every answer."""
    seed = f"{conversation_id}\n{task_path}\n{tool_call_id}"
    return "send-" + hashlib.sha256(seed.encode()).hexdigest()[:32]


def next_action_id(action_id: str, version: int) -> str:
    """The id of the request that replaces `action_id` (after an edit or a changed draft)."""
    return f"{action_id.split('.', 1)[0]}.{version}" if version else action_id.split(".", 1)[0]


def message_hash(message: OutgoingMessage) -> str:
    """A hash of everything that decides what goes out of a composed message."""
    canonical = {
        "to": list(message.to),
        "cc": list(message.cc),
        "bcc": list(message.bcc),
        "subject": message.subject,
        "body": message.body,
        "in_reply_to": message.in_reply_to,
        "references": message.references,
        "thread_id": message.thread_id,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
