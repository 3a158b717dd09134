"""Outgoing mail for Gmail's `messages.send` and `drafts.create`, built so that nothing the
agent (or an email it read) writes can add headers or recipients.

Every address, the subject and the threading ids are validated before any header is set:
CR, LF and the other characters Python treats as line breaks are refused (header
injection), addresses must be plain `local@domain` with an optional display name, and a
message has at most `MAX_RECIPIENTS` recipients. The MIME itself is written by
`email.message.EmailMessage`: RFC 2047 for non-ASCII names and subjects, a UTF-8
text/plain body in quoted-printable or base64.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailroom.mail.decode import ReadableMessage

__all__ = [
    "MAX_RECIPIENTS",
    "MAX_SUBJECT_CHARS",
    "InvalidMessage",
    "OutgoingMessage",
    "build_message",
    "deterministic_message_id",
    "gmail_message",
    "parse_addresses",
    "reply_subject",
    "to_raw",
]

MAX_RECIPIENTS = 100
MAX_SUBJECT_CHARS = 998  # RFC 5322's line limit; longer subjects are folded but still refused here
_MAX_REFERENCES = 20  # keep the first id and the newest ones, as RFC 5322 suggests for long threads

# 7bit: a non-ASCII body goes out quoted-printable or base64 (whichever is shorter), never raw 8bit.
_POLICY = policy.SMTP.clone(cte_type="7bit")


class InvalidMessage(ValueError):
    """The message cannot be sent as asked: the text says what to fix."""


@dataclass(frozen=True)
class OutgoingMessage:
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    subject: str
    body: str
    in_reply_to: str | None
    references: str | None
    thread_id: str | None
    message_id: str | None
    # The pending send this message is for; carried as X-Mailroom-Action so a sent copy
    # can be recognised even if its Message-ID was replaced on the way.
    action_id: str | None = None


# Everything str.splitlines() breaks on (the email package refuses those in headers), the
# other C0 controls and DEL. Tab is allowed.
_LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_FORBIDDEN_IN_HEADER = re.compile("[" + re.escape(_LINE_BREAKS) + r"\x00-\x08\x0e-\x1f\x7f]")
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_MESSAGE_ID = re.compile(r"^<[^<>\s@]+@[^<>\s@]+>$")
_ANGLE_ID = re.compile(r"<[^<>\s]+>")
_REPLY_PREFIX = re.compile(r"^\s*re\s*(?:\[\d+\])?\s*:", re.IGNORECASE)
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _check_header_text(value: str, what: str) -> None:
    if _FORBIDDEN_IN_HEADER.search(value):
        raise InvalidMessage(f"{what} must not contain line breaks or control characters")


def _normalise_addr_spec(addr: str, shown: str) -> str:
    if addr.count("@") != 1:
        raise InvalidMessage(f"not an email address: {shown!r}")
    local, domain = addr.split("@")
    if not local or not domain:
        raise InvalidMessage(f"email address without {'a local part' if not local else 'a domain'}: {shown!r}")
    if len(local) > 64 or not _LOCAL_PART.match(local):
        raise InvalidMessage(f"unsupported characters before the @ in {shown!r}")
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise InvalidMessage(f"not a valid domain in {shown!r}") from exc
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise InvalidMessage(f"not a valid domain in {shown!r}")
    normalised = f"{local}@{ascii_domain}"
    if len(normalised) > 254:
        raise InvalidMessage(f"email address too long: {shown!r}")
    return normalised


def _parse_one_field(value: str) -> list[tuple[str, str]]:
    _check_header_text(value, "an address")
    text = value.strip().strip(",;").strip()
    if not text:
        raise InvalidMessage("empty address")
    pairs = getaddresses([text])
    if any(not addr for _, addr in pairs) and ";" in text and ":" not in text:
        pairs = getaddresses([text.replace(";", ",")])  # "a@x.com; b@y.org", as Outlook writes it
    if not pairs or any(not addr for _, addr in pairs):
        raise InvalidMessage(f"not a list of email addresses: {value!r} (quote names with commas)")
    return pairs


def parse_addresses(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Validated, normalised, de-duplicated addresses ("Name <local@domain>" or "local@domain").

    None, "" and [] mean no addresses. Anything that is not an address (an empty entry, no @,
    no domain, line breaks anywhere) raises InvalidMessage, as do more than MAX_RECIPIENTS.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        if not value.strip(" \t,;"):
            _check_header_text(value, "an address")
            return ()
        fields = [value]
    elif isinstance(value, Sequence):
        fields = list(value)
        for item in fields:
            if not isinstance(item, str):
                raise InvalidMessage(f"addresses must be strings, not {type(item).__name__}")
    else:
        raise InvalidMessage(f"addresses must be a string or a list of strings, not {type(value).__name__}")

    result: list[str] = []
    seen: set[str] = set()
    for item in fields:
        for name, addr in _parse_one_field(item):
            if addr not in item:
                # The parser joined pieces ("a@exa mple.com" -> "a@example.com", obsolete syntax):
                # sending to an address nobody wrote is worse than asking again.
                raise InvalidMessage(f"not an email address: {item!r}")
            spec = _normalise_addr_spec(addr.strip(), addr)
            key = spec.lower()
            if key in seen:
                continue
            seen.add(key)
            display = " ".join(name.split())
            try:
                formatted = str(Address(display_name=display, addr_spec=spec))
            except (HeaderParseError, ValueError, IndexError) as exc:
                raise InvalidMessage(f"not an email address: {addr!r}") from exc
            result.append(formatted)
            if len(result) > MAX_RECIPIENTS:
                raise InvalidMessage(f"more than {MAX_RECIPIENTS} recipients")
    return tuple(result)


def _single_address(value: str, what: str) -> str:
    addresses = parse_addresses(value)
    if len(addresses) != 1:
        raise InvalidMessage(f"{what} must be exactly one address")
    return addresses[0]


def _addr_spec(formatted: str) -> str:
    return getaddresses([formatted])[0][1].lower()


def reply_subject(subject: str) -> str:
    """ "Re: " + subject, unless it already starts with Re: (in any case)."""
    subject = subject.strip()
    if _REPLY_PREFIX.match(subject):
        return subject
    return f"Re: {subject}" if subject else "Re:"


def _message_ids(text: str) -> list[str]:
    return _ANGLE_ID.findall(text or "")


def _one_message_id(text: str) -> str | None:
    ids = _message_ids(text)
    if ids:
        return ids[0]
    bare = (text or "").strip()
    if bare and "@" in bare and not re.search(r"[\s<>]", bare):
        return f"<{bare}>"  # some senders leave out the angle brackets
    return None


def _check_reference(message_id: str) -> str:
    """A Message-ID we answer to: other software's ids need not have an @, but never whitespace."""
    if not _ANGLE_ID.fullmatch(message_id) or _FORBIDDEN_IN_HEADER.search(message_id):
        raise InvalidMessage(f"not a Message-ID: {message_id!r}")
    return message_id


def _check_message_id(message_id: str) -> str:
    if not _MESSAGE_ID.match(message_id) or _FORBIDDEN_IN_HEADER.search(message_id):
        raise InvalidMessage(f"not a Message-ID (want <id@domain>): {message_id!r}")
    return message_id


def _reply_recipients(original: ReadableMessage, sender: str | None) -> tuple[str, ...]:
    def lenient(value: str) -> tuple[str, ...]:
        try:
            return parse_addresses(value)
        except InvalidMessage:
            return ()

    original_from = lenient(original.from_)
    if sender and original_from and _addr_spec(original_from[0]) == _addr_spec(sender):
        # Replying to one's own message means writing to its recipients again, as Gmail does.
        return lenient(original.to)
    return lenient(original.reply_to) or original_from


def build_message(
    *,
    sender: str | None,
    to: str | Sequence[str] | None,
    subject: str,
    body: str,
    cc: str | Sequence[str] | None = None,
    bcc: str | Sequence[str] | None = None,
    reply_to: ReadableMessage | None = None,
    message_id: str | None = None,
) -> OutgoingMessage:
    """A validated message; as a reply to `reply_to` it carries the threading headers and thread id.

    `sender` (the user's own address, optional) is checked and used to tell a reply to one's
    own message, which goes to that message's recipients rather than back to oneself.
    """
    sender_address = _single_address(sender, "the sender") if sender else None
    to_list = parse_addresses(to)
    cc_list = parse_addresses(cc)
    bcc_list = parse_addresses(bcc)
    if not isinstance(subject, str):
        raise InvalidMessage("the subject must be text")
    if not isinstance(body, str):
        raise InvalidMessage("the body must be text")
    _check_header_text(subject, "the subject")
    subject = subject.strip()

    in_reply_to: str | None = None
    references: str | None = None
    thread_id: str | None = None
    if reply_to is not None:
        subject = reply_subject(subject or reply_to.subject)
        _check_header_text(subject, "the subject")
        original_id = _one_message_id(reply_to.message_id)
        chain = _message_ids(reply_to.references)
        if original_id and original_id not in chain:
            chain.append(original_id)
        if len(chain) > _MAX_REFERENCES:
            chain = chain[:1] + chain[-(_MAX_REFERENCES - 1) :]
        in_reply_to = original_id
        references = " ".join(chain) or None
        thread_id = reply_to.thread_id or None
        if not to_list:
            to_list = _reply_recipients(reply_to, sender_address)

    if len(subject) > MAX_SUBJECT_CHARS:
        raise InvalidMessage(f"the subject is longer than {MAX_SUBJECT_CHARS} characters")
    if not (to_list or cc_list or bcc_list):
        raise InvalidMessage("the message needs at least one recipient")
    if len(to_list) + len(cc_list) + len(bcc_list) > MAX_RECIPIENTS:
        raise InvalidMessage(f"more than {MAX_RECIPIENTS} recipients")
    if message_id is not None:
        _check_message_id(message_id)

    body = _SURROGATE.sub("\ufffd", body.replace("\r\n", "\n").replace("\r", "\n"))
    return OutgoingMessage(
        to=to_list,
        cc=cc_list,
        bcc=bcc_list,
        subject=subject,
        body=body,
        in_reply_to=in_reply_to,
        references=references,
        thread_id=thread_id,
        message_id=message_id,
    )


def to_email_message(message: OutgoingMessage, sender: str | None = None) -> EmailMessage:
    """The message as an EmailMessage (policy SMTP), headers validated again on the way in."""
    msg = EmailMessage(policy=_POLICY)
    if sender:
        msg["From"] = _single_address(sender, "the sender")
    for header, addresses in (("To", message.to), ("Cc", message.cc), ("Bcc", message.bcc)):
        if addresses:
            msg[header] = ", ".join(parse_addresses(list(addresses)))
    _check_header_text(message.subject, "the subject")
    msg["Subject"] = message.subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    if message.message_id:
        msg["Message-ID"] = _check_message_id(message.message_id)
    if message.action_id:
        _check_header_text(message.action_id, "the action id")
        msg["X-Mailroom-Action"] = message.action_id
    if message.in_reply_to:
        msg["In-Reply-To"] = _check_reference(message.in_reply_to)
    if message.references:
        for reference in message.references.split():
            _check_reference(reference)
        msg["References"] = " ".join(message.references.split())
    msg.set_content(_SURROGATE.sub("\ufffd", message.body), charset="utf-8")
    return msg


def to_raw(message: OutgoingMessage, sender: str | None = None) -> str:
    """base64url of the RFC 822 bytes, for the `raw` field of messages.send / drafts.create.

    Gmail puts the sending account in From when `sender` is None, and sends to To, Cc and Bcc
    (dropping Bcc from what recipients see).
    """
    return base64.urlsafe_b64encode(to_email_message(message, sender).as_bytes()).decode("ascii")


def gmail_message(message: OutgoingMessage, sender: str | None = None) -> dict[str, str]:
    """The Gmail `Message` body: {"raw": ...} plus "threadId" for a reply.

    messages.send takes it as is; drafts.create takes {"message": gmail_message(...)}.
    """
    body = {"raw": to_raw(message, sender)}
    if message.thread_id:
        body["threadId"] = message.thread_id
    return body


def deterministic_message_id(seed: str, domain: str = "mailroom.local") -> str:
    """ "<hex@domain>" from a SHA-256 of `seed`: the same seed always gives the same Message-ID."""
    labels = domain.split(".")
    if not domain or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise InvalidMessage(f"not a domain for a Message-ID: {domain!r}")
    digest = hashlib.sha256(seed.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"<{digest}@{domain.lower()}>"
