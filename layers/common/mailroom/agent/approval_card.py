"""The approval card in Slack: the whole message as it will go out, and later its outcome.

Mail text (addresses, subject, body, file names) is shown as `plain_text`, which Slack
never formats, so nothing an email or the model writes can fake a link, a mention or
the card's own wording. The body is split over as many sections as it needs within
Slack's limits (3,000 characters a section, 50 blocks a message); a message that does
not fit is refused before any card is posted, never shown in part.
"""

from __future__ import annotations

from typing import Any

from mailroom import approvals
from mailroom.approval_record import PRESS_FAILED, ApprovalRecord, State
from mailroom.approvals import PendingSend
from mailroom.slack.format import inert_links

Blocks = list[dict[str, Any]]

SECTION_CHARS = 3000  # Slack: a section's text
MAX_BLOCKS = 50  # Slack: blocks in one message


class TooLargeToShow(ValueError):
    """The message cannot be shown in full on one card."""


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": False}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _chunks(text: str, size: int = SECTION_CHARS) -> list[str]:
    """`text` in pieces of at most `size` characters, cut at a line break where one is near."""
    pieces: list[str] = []
    while len(text) > size:
        cut = text.rfind("\n", size // 2, size)
        cut = cut + 1 if cut > 0 else size
        pieces.append(text[:cut])
        text = text[cut:]
    if text:
        pieces.append(text)
    # Slack refuses an empty or whitespace-only plain_text section.
    return [p if p.strip() else p + "·" for p in pieces]


def _labelled(label: str, value: str) -> Blocks:
    """A bold label (ours) followed by the value (theirs) as plain text, over as many sections as needed."""
    blocks: Blocks = [{"type": "context", "elements": [_mrkdwn(f"*{label}*")]}]
    blocks += [{"type": "section", "text": _plain(piece)} for piece in _chunks(value or "(none)")]
    return blocks


def _summary(pending: PendingSend) -> Blocks:
    lines = [f"From: {pending.from_}"]
    for name, values in (("To", pending.to), ("Cc", pending.cc), ("Bcc", pending.bcc)):
        if values:
            lines.append(f"{name}: {', '.join(values)}")
    lines.append(f"Subject: {pending.subject or '(no subject)'}")
    if pending.in_reply_to:
        lines.append(f"In reply to: {pending.in_reply_to} (same Gmail thread)")
    if pending.attachments:
        files = ", ".join(f"{name} ({_size(size)})" for name, size in pending.attachments)
        lines.append(f"Attachments: {files}")
    if pending.has_html:
        lines.append("Also has an HTML version of the text below (sent as is).")
    blocks: Blocks = [{"type": "section", "text": _plain(piece)} for piece in _chunks("\n".join(lines))]
    blocks.append({"type": "divider"})
    blocks += [{"type": "section", "text": _plain(piece)} for piece in _chunks(pending.body or "(empty body)")]
    return blocks


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _size(size: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size = size / 1024  # type: ignore[assignment]
    return f"{size} bytes"


def request_card(pending: PendingSend, hours: float) -> tuple[str, Blocks]:
    """The card asking to approve `pending`; TooLargeToShow if it cannot be shown whole."""
    if pending.kind == "change_emails":
        return _change_card(pending, hours)
    what = "this draft" if pending.kind == "send_draft" else "this email"
    title = f"*Send {what}?* Nothing goes out until you approve."
    if pending.follows == "edited":
        title = f"*Send {what} as you edited it?* Nothing goes out until you approve."
    elif pending.follows == "draft_changed":
        title = f"*The draft changed in Gmail since it was shown. Send {what} as it is now?*"
    blocks: Blocks = [{"type": "section", "text": _mrkdwn(title)}, *_summary(pending)]
    blocks.append(
        {
            "type": "actions",
            "block_id": "approval",
            "elements": [
                _button(approvals.APPROVE, "Approve and send", pending.action_id, "primary"),
                _button(approvals.EDIT, "Edit", pending.action_id, None),
                _button(approvals.CANCEL, "Cancel", pending.action_id, "danger"),
            ],
        }
    )
    # The expiry sweep takes the buttons off within minutes of it (approval_sweep.py).
    note = f"Only <@{pending.owner}> can approve. Expires in {hours:g} hours; the buttons go then."
    blocks.append({"type": "context", "elements": [_mrkdwn(note)]})
    if len(blocks) > MAX_BLOCKS:
        raise TooLargeToShow(f"it needs {len(blocks)} Slack blocks to show in full; a card holds {MAX_BLOCKS}")
    # The message's `text` is what notifications show, parsed as mrkdwn: escaped, so a
    # subject cannot show there as a link or a mention.
    return f"Send {what}? Subject: {_escaped(pending.subject)}", blocks


def _change_card(pending: PendingSend, hours: float) -> tuple[str, Blocks]:
    """The card asking to approve a change to many messages (or a move to Trash): what, and on which."""
    # The subject names a label the model chose (an email may have asked for it): mrkdwn
    # would make a `<url|text>` or a bare URL in it a live link on the card.
    what = inert_links(pending.subject.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    # An undo is not itself undone (undo_last_change skips undos): the card does not offer it.
    after = "" if pending.follows == "undo" else "; it can be undone after"
    title = f"*{what}?* Nothing changes until you approve{after}."
    blocks: Blocks = [{"type": "section", "text": _mrkdwn(title)}]
    blocks += [{"type": "section", "text": _plain(piece)} for piece in _chunks(pending.body or "(no messages)")]
    buttons = [
        _button(approvals.APPROVE, "Approve", pending.action_id, "primary"),
        _button(approvals.CANCEL, "Cancel", pending.action_id, "danger"),
    ]
    blocks.append({"type": "actions", "block_id": "approval", "elements": buttons})
    note = f"Only <@{pending.owner}> can approve. Expires in {hours:g} hours."
    blocks.append({"type": "context", "elements": [_mrkdwn(note)]})
    if len(blocks) > MAX_BLOCKS:
        raise TooLargeToShow(f"it needs {len(blocks)} Slack blocks to show in full; a card holds {MAX_BLOCKS}")
    return f"{pending.subject}?", blocks


def _button(action_id: str, text: str, value: str, style: str | None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "action_id": action_id, "text": _plain(text), "value": value}
    if style:
        button["style"] = style
    return button


# A send under way when its user revoked or relinked (its record is erased then).
_FORGOTTEN_MID_SEND = {
    "revoked": "You disconnected Gmail",
    "relinked": "Gmail was linked to another address",
}


def _change_outcome(record: ApprovalRecord) -> str:
    """outcome() for a decided change to the inbox (change_emails)."""
    state = record.state
    if state == State.SENDING and record.reason:  # under way, then cut off
        forgotten = _FORGOTTEN_MID_SEND.get(record.reason)
        if forgotten:
            return f":warning: {forgotten} before this change was confirmed: look at the messages in Gmail."
        return ":warning: Approved, but I could not confirm the change was applied: look at the messages in Gmail."
    return {
        State.SENT: f":white_check_mark: Approved by <@{record.user_id}> and done"
        + ("." if record.reason == "undo" else "; \u201cundo\u201d reverses it."),
        State.FAILED: f":warning: Not changed: {record.reason or 'Gmail did not accept it'}.",
        State.CANCELLED: f":x: Cancelled by <@{record.user_id}>; nothing was changed.",
        State.EXPIRED: ":hourglass: This request expired; nothing was changed.",
        State.SUPERSEDED: ":leftwards_arrow_with_hook: You moved on without approving; nothing was changed.",
    }.get(state, ":hourglass_flowing_sand: Approved; applying the change…")


def outcome(record: ApprovalRecord, unconfirmed: bool = False) -> str:
    """One line that says what became of the request (mrkdwn; ours, no mail text)."""
    state = record.state
    if state == State.CANCELLED and record.reason == PRESS_FAILED:
        nothing = "changed" if record.kind == "change_emails" else "sent"
        return (
            f":warning: Your Approve could not be completed (the reference is in the chat); nothing was {nothing}. "
            "Ask again if you still want it."
        )
    if record.kind == "change_emails" and state != State.PENDING:
        return _change_outcome(record)
    if state == State.SENT:
        return f":white_check_mark: Approved by <@{record.user_id}> and sent (Gmail id `{record.gmail_id}`)."
    if state in (State.APPROVED, State.SENDING):
        cut_off = _FORGOTTEN_MID_SEND.get(record.reason or "") if state == State.SENDING else None
        if cut_off:  # ApprovalForgetter: the record is erased, nothing can check it any more
            return (
                f":warning: {cut_off} before Gmail confirmed this send, so I can no longer check it: look in "
                "your Sent mail to see whether it went out. It will not be sent again."
            )
        if state == State.SENDING and record.reason:  # tries stopped (ApprovalDesk.abandon)
            return (
                ":warning: Gmail did not confirm it and I stopped trying. I will check your Sent mail when you "
                "next write here and say what happened. It will not be sent again."
            )
        if unconfirmed:
            return (
                ":hourglass_flowing_sand: Sending… Gmail did not confirm it yet; I will check again in a few "
                "minutes and tell you here. It will not be sent twice."
            )
        return ":hourglass_flowing_sand: Sending…"
    if state == State.FAILED:
        why = record.reason or "Gmail did not accept it"
        return f":warning: Not sent: {why}. Nothing will be sent unless you ask again."
    if state == State.CANCELLED:
        forgotten = {
            "revoked": ":x: Cancelled: you disconnected Gmail; nothing was sent.",
            "relinked": ":x: Cancelled: Gmail is now linked to another address; nothing was sent.",
        }
        return forgotten.get(record.reason or "", f":x: Cancelled by <@{record.user_id}>; nothing was sent.")
    if state == State.EXPIRED:
        return ":hourglass: This request expired; nothing was sent."
    if state == State.SUPERSEDED:
        reasons = {
            "edited": "Replaced by your edited version below; nothing was sent from this card.",
            "draft_changed": "The draft changed in Gmail; its current version is shown below. Nothing was sent.",
            "draft_gone": "The draft is no longer in Gmail (deleted, or sent from Gmail itself); nothing was sent.",
            "relinked": "Gmail is now linked to another address, so this was not sent from it.",
        }
        return ":leftwards_arrow_with_hook: " + reasons.get(
            record.reason or "", "You moved on without approving; nothing was sent."
        )
    return "Waiting for your decision."


def decided_card(record: ApprovalRecord, pending: PendingSend | None, unconfirmed: bool = False) -> tuple[str, Blocks]:
    """The card once decided or in progress: the message (when known), no buttons, the outcome."""
    line = outcome(record, unconfirmed)
    blocks: Blocks = _summary(pending) if pending is not None and pending.kind != "change_emails" else []
    blocks.append({"type": "context", "elements": [_mrkdwn(line)]})
    if len(blocks) > MAX_BLOCKS:
        blocks = [{"type": "context", "elements": [_mrkdwn(line)]}]
    return line, blocks


# -- the Edit modal ------------------------------------------------------------------------
# Slack limits: a modal title 24 characters, a plain_text_input's initial_value 3,000.
EDIT_FIELDS = (("to", "To", False), ("cc", "Cc", False), ("bcc", "Bcc", False), ("subject", "Subject", False))
INPUT_CHARS = 3000


def edit_view(pending: PendingSend, private_metadata: str) -> dict[str, Any]:
    """The modal prefilled with the message; submitting it replaces the request."""
    values = {
        "to": ", ".join(pending.to),
        "cc": ", ".join(pending.cc),
        "bcc": ", ".join(pending.bcc),
        "subject": pending.subject,
    }
    blocks: Blocks = []
    for key, label, _ in EDIT_FIELDS:
        element: dict[str, Any] = {"type": "plain_text_input", "action_id": key}
        if values[key]:
            element["initial_value"] = values[key][:INPUT_CHARS]
        blocks.append(
            {"type": "input", "block_id": key, "label": _plain(label), "element": element, "optional": key != "to"}
        )
    body: dict[str, Any] = {"type": "plain_text_input", "action_id": "body", "multiline": True}
    if pending.body:
        body["initial_value"] = pending.body[:INPUT_CHARS]
    blocks.append({"type": "input", "block_id": "body", "label": _plain("Message"), "element": body})
    if len(pending.body) > INPUT_CHARS:
        note = (
            f"The message is longer than Slack lets a form hold ({INPUT_CHARS} characters); edit it in Gmail instead."
        )
        blocks = [{"type": "section", "text": _mrkdwn(note)}]
        return {"type": "modal", "title": _plain("Edit email"), "close": _plain("Close"), "blocks": blocks}
    return {
        "type": "modal",
        "callback_id": approvals.EDIT_SUBMIT,
        "private_metadata": private_metadata,
        "title": _plain("Edit email"),
        "submit": _plain("Show to approve"),
        "close": _plain("Cancel"),
        "blocks": blocks,
    }


def edit_unavailable_view() -> dict[str, Any]:
    return notice_view(
        "This request can't be edited here: a draft is sent exactly as it is in Gmail. Edit the draft in Gmail, "
        "then press *Approve and send*: the changed draft is shown to you again before anything is sent."
    )


def notice_view(text: str) -> dict[str, Any]:
    """The Edit modal when there is nothing to edit: why (our own words, mrkdwn)."""
    return {
        "type": "modal",
        "title": _plain("Edit email"),
        "close": _plain("Close"),
        "blocks": [{"type": "section", "text": _mrkdwn(text)}],
    }
