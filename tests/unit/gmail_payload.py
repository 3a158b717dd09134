"""Gmail API message resources from `email` package messages, shaped the way Gmail returns them.

Gmail's `users.messages.get`:
- format=full: `payload` is a tree of parts. The root has partId "", its children "0", "1", ...,
  theirs "0.0", "0.1", ... Each part has mimeType, filename (decoded; "" when none), headers
  as sent (RFC 2047 encoded words intact, unfolded), and body {size, data} where data is the
  *transfer-decoded* content, base64url-encoded. Parts with a filename carry body.attachmentId
  instead of data. Multipart parts have body {size: 0}. A message/rfc822 part has one child:
  the attached message's root part, with the attached message's headers.
- format=raw: `raw` is the whole RFC 822 message, base64url-encoded.
Both carry id, threadId, labelIds, snippet (HTML-escaped), sizeEstimate, historyId, internalDate.
"""

from __future__ import annotations

import base64
import html
import re
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from typing import Any

DEFAULT_LABELS = ("INBOX", "UNREAD")


def b64url(data: bytes, *, padding: bool = False) -> str:
    encoded = base64.urlsafe_b64encode(data).decode("ascii")
    return encoded if padding else encoded.rstrip("=")


def _wire(msg: Message) -> Message:
    """The message as a receiver parses it, so raw header values are the encoded wire form."""
    return BytesParser(policy=policy.default).parsebytes(msg.as_bytes())


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value)


def _child_id(parent: str, index: int) -> str:
    return str(index) if parent == "" else f"{parent}.{index}"


def _part(part: Message, part_id: str, *, padding: bool, inline_attachments: bool) -> dict[str, Any]:
    filename = part.get_filename() or ""
    node: dict[str, Any] = {
        "partId": part_id,
        "mimeType": part.get_content_type(),
        "filename": filename,
        "headers": [{"name": name, "value": _unfold(str(value))} for name, value in part.raw_items()],
    }
    if part.is_multipart():
        children = part.get_payload()
        assert isinstance(children, list)
        node["parts"] = [
            _part(child, _child_id(part_id, i), padding=padding, inline_attachments=inline_attachments)
            for i, child in enumerate(children)
        ]
        if part.get_content_type() == "message/rfc822" and isinstance(children[0], Message):
            node["body"] = {"size": len(children[0].as_bytes())}
        else:
            node["body"] = {"size": 0}
        return node
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    if filename and not inline_attachments:
        node["body"] = {"attachmentId": f"ANGjdJ-att-{part_id or 'root'}", "size": len(data)}
    else:
        node["body"] = {"size": len(data), "data": b64url(data, padding=padding)}
    return node


def to_payload(msg: Message, *, padding: bool = False, inline_attachments: bool = False) -> dict[str, Any]:
    """The format=full `payload` tree for a message (bodies base64url, unpadded unless asked)."""
    return _part(_wire(msg), "", padding=padding, inline_attachments=inline_attachments)


def _envelope(msg: Message, message_id: str, thread_id: str, labels: tuple[str, ...], snippet: str | None) -> dict:
    if snippet is None:
        text = ""
        if isinstance(msg, EmailMessage):
            body = msg.get_body(preferencelist=("plain",))
            if body is not None:
                text = body.get_content()
        snippet = html.escape(" ".join(text.split())[:200])  # Gmail's snippets are HTML-escaped
    return {
        "id": message_id,
        "threadId": thread_id,
        "labelIds": list(labels),
        "snippet": snippet,
        "sizeEstimate": len(msg.as_bytes()),
        "historyId": "4242",
        "internalDate": "1704103200000",  # 2024-01-01T10:00:00Z
    }


def full_resource(
    msg: Message,
    *,
    message_id: str = "18c0ffee00000001",
    thread_id: str = "18c0ffee00000000",
    labels: tuple[str, ...] = DEFAULT_LABELS,
    snippet: str | None = None,
    padding: bool = False,
) -> dict[str, Any]:
    """A `users.messages.get(format=full)` resource for `msg`."""
    resource = _envelope(msg, message_id, thread_id, labels, snippet)
    resource["payload"] = to_payload(msg, padding=padding)
    return resource


def raw_resource(
    msg: Message,
    *,
    message_id: str = "18c0ffee00000001",
    thread_id: str = "18c0ffee00000000",
    labels: tuple[str, ...] = DEFAULT_LABELS,
    snippet: str | None = None,
) -> dict[str, Any]:
    """A `users.messages.get(format=raw)` resource for `msg`."""
    resource = _envelope(msg, message_id, thread_id, labels, snippet)
    resource["raw"] = b64url(msg.as_bytes(), padding=True)
    return resource


def metadata_resource(msg: Message, **kwargs: Any) -> dict[str, Any]:
    """A `users.messages.get(format=metadata)` resource: top-level headers, no body."""
    resource = full_resource(msg, **kwargs)
    payload = resource["payload"]
    resource["payload"] = {"partId": "", "mimeType": payload["mimeType"], "filename": "", "headers": payload["headers"]}
    return resource
