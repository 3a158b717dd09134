"""A Gmail draft's raw bytes: stamp them for an exactly-once send, and show what they hold.

Stamping sets a Message-ID and an X-Mailroom-Action header derived from the pending
action and leaves every other byte as it was (the body, HTML, Bcc, attachments), so
what `drafts.send` sends is the user's own draft plus those two headers.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from mailroom.mail.compose import deterministic_message_id

_STAMPED = (b"message-id", b"x-mailroom-action")
_HEADER_NAME = re.compile(rb"^([!-9;-~]+):")


def raw_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def stamp(raw: bytes, action_id: str) -> bytes:
    """`raw` with its Message-ID and X-Mailroom-Action replaced by ones for `action_id`."""
    newline = b"\r\n" if b"\r\n" in raw.split(b"\n", 1)[0] + b"\n" else b"\n"
    head, separator, body = _split_head(raw)
    kept: list[bytes] = []
    dropping = False
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):  # a folded continuation belongs to the header above
            if not dropping:
                kept.append(line)
            continue
        match = _HEADER_NAME.match(line)
        dropping = bool(match and match.group(1).lower() in _STAMPED)
        if not dropping:
            kept.append(line)
    stamped = [
        b"Message-ID: " + deterministic_message_id(action_id).encode() + newline,
        b"X-Mailroom-Action: " + action_id.encode() + newline,
    ]
    return b"".join(stamped + kept) + separator + body


def _split_head(raw: bytes) -> tuple[bytes, bytes, bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = raw.find(separator)
        if index >= 0:
            # Keep the head's own last line break with the head.
            cut = index + len(separator) // 2
            return raw[:cut], raw[cut : index + len(separator)], raw[index + len(separator) :]
    return raw, b"", b""


@dataclass(frozen=True)
class DraftView:
    """What a person sees of a draft, for the approval card (never stored in the record)."""

    from_: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    subject: str
    body: str
    has_html: bool
    attachments: tuple[tuple[str, int], ...]  # (file name, bytes)
    in_reply_to: str
    message_id: str


def view(raw: bytes) -> DraftView:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)

    def addresses(name: str) -> tuple[str, ...]:
        header = message.get(name)
        return tuple(str(a) for a in header.addresses) if header is not None else ()

    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    body = ""
    if plain is not None:
        body = str(plain.get_content())
    elif html is not None:
        from mailroom.mail.decode import html_to_text

        body = html_to_text(str(html.get_content()))
    attachments = []
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else 0
        attachments.append((part.get_filename() or "(unnamed)", size))
    return DraftView(
        from_=str(message.get("From", "")),
        to=addresses("To"),
        cc=addresses("Cc"),
        bcc=addresses("Bcc"),
        subject=str(message.get("Subject", "")),
        body=body.replace("\r\n", "\n"),
        has_html=html is not None,
        attachments=tuple(attachments),
        in_reply_to=str(message.get("In-Reply-To", "")),
        message_id=str(message.get("Message-ID", "")),
    )
