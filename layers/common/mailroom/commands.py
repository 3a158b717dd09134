"""The message the ingress queues and the worker runs: one user request, parsed."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

CommandName = Literal["hello", "auth", "status", "revoke", "chat"]

# Words that alone make a command; anything else is a request for the agent.
_COMMAND_WORDS: dict[str, CommandName] = {
    "hello": "hello",
    "hi": "hello",
    "help": "hello",
    "auth": "auth",
    "status": "status",
    "revoke": "revoke",
}


class Command(BaseModel):
    """One Slack message or button press, as the worker needs it."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["message", "action"]
    # For messages a command name; for actions the Block Kit action_id.
    name: str
    text: str = ""
    team_id: str
    user_id: str
    channel_id: str
    channel_type: str = "im"
    message_ts: str | None = None
    # The thread the user wrote in; None for a top-level message in a DM.
    thread_ts: str | None = None
    # Slack's event_id for messages, a key derived from the press for actions. The
    # idempotency key, the log correlation id and the reference a user is shown.
    event_id: str
    action_value: str | None = None
    response_url: str | None = None
    # An Edit press: the modal the ingress opened for it; the modal's submitted fields.
    trigger_id: str | None = None
    view_id: str | None = None
    form: dict[str, str] | None = None
    # Where this deployment is reachable (for OAuth redirects), taken from the request.
    public_base_url: str | None = None
    retry_num: int = 0

    @property
    def conversation_id(self) -> str:
        """team:channel[:thread]: the FIFO group and the agent's memory thread."""
        base = f"{self.team_id}:{self.channel_id}"
        return f"{base}:{self.thread_ts}" if self.thread_ts else base

    @property
    def is_direct_message(self) -> bool:
        return self.channel_type == "im"


_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


def strip_mentions(text: str) -> str:
    return " ".join(_MENTION.sub(" ", text).split())


def parse_command_text(text: str) -> tuple[CommandName, str]:
    """Map what the user wrote to (command, text for the agent)."""
    words = text.strip().split(maxsplit=1)
    if not words:
        return "hello", ""
    first = words[0].lower().rstrip("!.?,:")
    rest = words[1] if len(words) > 1 else ""
    if first == "chat":
        return "chat", rest
    if first in _COMMAND_WORDS and not rest:
        return _COMMAND_WORDS[first], ""
    return "chat", text.strip()
