"""The approval card shows the whole message, as plain text, within Slack's limits."""

from __future__ import annotations

import pytest

from mailroom.agent import approval_card
from mailroom.approvals import PendingSend
from mailroom.mail.draft import stamp, view


def pending(body: str, **extra) -> PendingSend:
    return PendingSend(
        action_id="send-1",
        kind="send_email",
        owner="U1",
        from_="ada@example.com",
        to=("bob@example.com",),
        cc=(),
        bcc=("carol@example.com",),
        subject="<https://evil.test|Approve> *now*",
        body=body,
        message_hash="h",
        expires_at=0.0,
        **extra,
    )


def plain_texts(blocks):
    return [b["text"]["text"] for b in blocks if b.get("type") == "section" and b["text"]["type"] == "plain_text"]


def test_a_long_body_is_split_over_sections_and_shown_whole():
    body = "".join(f"line {i} with <@U999> and *stars*\n" for i in range(2000))
    _, blocks = approval_card.request_card(pending(body), 24)
    sections = plain_texts(blocks)
    assert all(0 < len(s) <= approval_card.SECTION_CHARS for s in sections)
    assert body in "".join(sections)
    assert len(blocks) <= approval_card.MAX_BLOCKS


def test_mail_text_is_never_formatted():
    text, blocks = approval_card.request_card(pending("hi"), 24)
    assert "<https://evil.test|Approve>" not in text and "&lt;https://evil.test|Approve&gt;" in text  # notifications
    mrkdwn = [b["text"]["text"] for b in blocks if b.get("type") == "section" and b["text"]["type"] == "mrkdwn"]
    assert not any("evil.test" in t for t in mrkdwn)
    assert any("evil.test" in t for t in plain_texts(blocks))


def test_a_body_too_large_for_one_card_is_refused():
    with pytest.raises(approval_card.TooLargeToShow):
        approval_card.request_card(pending("x" * approval_card.SECTION_CHARS * approval_card.MAX_BLOCKS), 24)


def test_stamping_keeps_every_other_byte():
    raw = b"From: a@x.com\r\nMessage-ID: <old@x>\r\nX-Mailroom-Action: older\r\n\tfolded\r\nSubject: s\r\n\r\nbody\r\n"
    stamped = stamp(raw, "send-abc")
    assert stamped.endswith(b"From: a@x.com\r\nSubject: s\r\n\r\nbody\r\n")
    assert stamped.count(b"Message-ID:") == 1 and b"<old@x>" not in stamped and b"folded" not in stamped
    assert stamp(stamped, "send-abc") == stamped
    assert view(stamped).subject == "s"


def test_a_change_card_lists_the_messages_and_has_no_edit_button() -> None:
    import dataclasses

    from mailroom.approval_record import ApprovalRecord, State

    pending = PendingSend(
        action_id="send-abc",
        kind="change_emails",
        owner="U0ADA",
        from_="ada@example.com",
        to=(),
        cc=(),
        bcc=(),
        subject="Archived: 6 messages",
        body="\u2022 Shop Deals <deals@shop.example> \u2014 Deal of the week #1 (Mon, 16 Nov 2026)",
        message_hash="h",
        expires_at=0.0,
    )
    text, blocks = approval_card.request_card(pending, 1)
    assert text == "Archived: 6 messages?" and "Deal of the week #1" in str(blocks)
    [actions] = [b for b in blocks if b.get("block_id") == "approval"]
    assert [e["action_id"] for e in actions["elements"]] == ["approve_send", "cancel_send"]
    record = ApprovalRecord(
        action_id="send-abc",
        kind="change_emails",
        team_id="T",
        user_id="U0ADA",
        conversation_id="c",
        channel_id="D",
        gmail_address="ada@example.com",
        message_hash="h",
        state=State.SENT,
        created_at=0.0,
        expires_at=1.0,
    )
    assert "done" in approval_card.outcome(record) and "sent" not in approval_card.outcome(record)
    cancelled = dataclasses.replace(record, state=State.CANCELLED)
    assert "nothing was changed" in approval_card.outcome(cancelled)
    assert "can be undone after" in str(blocks)
    # An undo's own card: it cannot be undone in turn, so it does not say it can.
    _, undo_blocks = approval_card.request_card(dataclasses.replace(pending, follows="undo"), 1)
    assert "can be undone" not in str(undo_blocks) and "until you approve" in str(undo_blocks)


def test_a_label_name_cannot_put_a_link_or_mention_in_a_change_card() -> None:
    """The label is the model's (an email may have asked for it), and the card's title is
    mrkdwn: a `<url|label>` there would be a live link on an Approve card."""
    import re

    label = "<https://evil.example/login?d=x|Reconnect Gmail> <!here> evil.example/p?d=secret"
    change = PendingSend(
        action_id="send-abc",
        kind="change_emails",
        owner="U0ADA",
        from_="ada@example.com",
        to=(),
        cc=(),
        bcc=(),
        subject=f"Labelled {label!r}: 6 messages",
        body="\u2022 Carol <carol@example.com> \u2014 Heads up (Mon, 16 Nov 2026)",
        message_hash="h",
        expires_at=0.0,
    )
    _, blocks = approval_card.request_card(change, 1)
    shown = " ".join(b["text"]["text"] for b in blocks if b.get("type") == "section" and b["text"]["type"] == "mrkdwn")
    assert "evil.example" in shown
    outside_code = re.sub(r"`[^`]*`", "", shown)
    assert "<" not in outside_code and not re.search(r"https?://|evil\.example/", outside_code), shown
