"""The message the ingress queues and the worker runs: one user request, parsed."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self

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


class InvalidCommand(ValueError):
    """A queued message that is not a Command (pydantic's ValidationError is a ValueError too)."""


@dataclass(frozen=True, kw_only=True)
class Command:
    """One Slack message or button press, as the worker needs it.

    A plain dataclass, not a pydantic model: the ingress builds one per request and its
    cold start is measured; importing pydantic alone costs a third of a bare handler's.
    It keeps the pydantic method names its callers use (model_dump_json,
    model_validate_json, model_dump, model_validate, model_copy).
    """

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
    # An Edit press's trigger (the worker opens the modal with it); a submitted modal's
    # view id and fields.
    trigger_id: str | None = None
    view_id: str | None = None
    form: dict[str, str] | None = None
    # Where this deployment is reachable (for OAuth redirects), taken from the request.
    public_base_url: str | None = None
    retry_num: int = 0

    def model_dump(self, mode: str = "json") -> dict[str, Any]:
        return dataclasses.asdict(self)

    def model_dump_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    def model_copy(self, update: Mapping[str, Any] | None = None) -> Self:
        return type(self).model_validate({**dataclasses.asdict(self), **(update or {})})

    @classmethod
    def model_validate_json(cls, text: str | bytes) -> Self:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidCommand("not JSON") from exc
        return cls.model_validate(data)

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """Check every field's type (unknown keys are ignored, as pydantic does)."""
        if isinstance(data, cls):
            return data
        if not isinstance(data, Mapping):
            raise InvalidCommand("not an object")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                if f.default is dataclasses.MISSING:
                    raise InvalidCommand(f"{f.name} is missing")
                continue
            values[f.name] = data[f.name]
        return cls(**values)

    def __post_init__(self) -> None:
        # Checked however it is made (parsed from Slack or read from the queue), as a
        # pydantic model would be: a field of the wrong type is never queued or run.
        for f in dataclasses.fields(self):
            if not _has_type(getattr(self, f.name), str(f.type)):
                raise InvalidCommand(f"{f.name} has the wrong type")
        if self.kind not in ("message", "action"):
            raise InvalidCommand("kind is neither message nor action")

    @property
    def conversation_id(self) -> str:
        """team:channel[:thread]: the FIFO group and the agent's memory thread."""
        base = f"{self.team_id}:{self.channel_id}"
        return f"{base}:{self.thread_ts}" if self.thread_ts else base

    @property
    def is_direct_message(self) -> bool:
        return self.channel_type == "im"


# The JSON types of the annotations a Command's fields use ("str | None", "int", ...).
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "None": (type(None),),
    "dict": (dict,),
    "list": (list,),
}


def _has_type(value: Any, annotation: str) -> bool:
    """Whether a JSON value fits a field's annotation; Literal[...] is checked as a
    string, and an annotation this does not know accepts anything."""
    accepted: list[type] = []
    for option in (part.strip() for part in annotation.split("|")):
        base = "str" if option.startswith("Literal[") else option.partition("[")[0]
        if base not in _JSON_TYPES:
            return True
        accepted.extend(_JSON_TYPES[base])
    if isinstance(value, bool) and bool not in accepted:
        return False  # JSON true is not a number here
    return isinstance(value, tuple(accepted))


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
