"""Reading everything and tidying the inbox over the whole local stack: long mail, attachments,
drafts found by topic, archive/label/read with undo, and bulk changes that wait for a press."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infra.local.emulators import mailbox_seed
from infra.local.emulators.gmail import GmailMailbox
from infra.local.emulators.google import MAILROOM_SCOPES, MAILROOM_SCOPES_BEFORE_MODIFY
from infra.local.emulators.slack import PostedMessage
from infra.local.slack_requests import (
    LOCAL_DM_CHANNEL,
    LOCAL_TEAM_ID,
    LOCAL_USER_ID,
    block_action,
    message_event,
    post_event,
    post_interaction,
)
from infra.local.stack import LocalStack
from mailroom.vault import GoogleTokens, TokenVault
from tests.e2e.test_agent import ask

pytestmark = pytest.mark.e2e
ADA = "ada@example.com"


def gmail(stack: LocalStack) -> GmailMailbox:
    assert stack.gmail is not None
    return stack.gmail


def labels(stack: LocalStack, name: str) -> list[str]:
    query = f"rfc822msgid:{mailbox_seed.message_id(name)}"
    [message] = gmail(stack).search(ADA, query, include_spam_trash=True)
    return message.label_ids


def shown_to_model(stack: LocalStack, tool: str) -> list[str]:
    assert stack.openai is not None
    names: dict[str, str] = {}
    found: list[str] = []
    for request in stack.openai.requests:
        for message in request["messages"]:
            for call in message.get("tool_calls") or []:
                names[call["id"]] = call["function"]["name"]
            if message["role"] == "tool" and names.get(message["tool_call_id"]) == tool:
                found.append(message["content"])
    return list(dict.fromkeys(found))


def card(stack: LocalStack, thread: str) -> PostedMessage:
    assert stack.slack is not None
    in_thread = stack.slack.messages(channel=LOCAL_DM_CHANNEL, thread_ts=thread)
    [found] = [m for m in in_thread if any(b.get("block_id") == "approval" for b in m.blocks)]
    return found


def press(stack: LocalStack, approval: PostedMessage, action: str) -> None:
    [value] = {e["value"] for b in approval.blocks for e in b.get("elements", []) if "value" in e}
    payload = block_action(action, value, message_ts=approval.ts, thread_ts=approval.thread_ts, user="U0ADA")
    assert post_interaction(stack.url, payload).status == 200
    stack.wait_until_drained(timeout=60)


def test_the_last_line_of_a_260_kb_log_reaches_the_model_and_the_answer(linked: LocalStack):
    answer = ask(linked, "Read the nightly build log", thread_ts="1795000013.000100")
    assert mailbox_seed.LOG_LAST_LINE in answer.text
    assert any(mailbox_seed.LOG_LAST_LINE in shown for shown in shown_to_model(linked, "read_email"))


def test_pdf_docx_and_ics_attachment_text_reaches_the_model(linked: LocalStack):
    thread = "1795000013.000200"
    assert mailbox_seed.RECEIPT_TOTAL in ask(linked, "What does the PDF receipt attached to my order say?", thread).text
    assert mailbox_seed.CONTRACT_CLAUSE in ask(linked, "What does the contract docx attached say?", thread).text
    assert mailbox_seed.INVITE_LOCATION in ask(linked, "What does the offsite invitation attached say?", thread).text
    read = "\n".join(shown_to_model(linked, "read_attachment"))
    assert all(text in read for text in (mailbox_seed.RECEIPT_TOTAL, mailbox_seed.CONTRACT_CLAUSE, "Lisbon office"))


def test_send_my_draft_about_x_finds_the_right_draft_and_asks_to_approve(linked: LocalStack):
    gmail(linked).seed_drafts(ADA)
    thread = "1795000013.000300"
    ask(linked, "Send my draft about the offsite", thread)
    approval = card(linked, thread)
    assert "Offsite travel plan" in str(approval.blocks) and "Lunch" not in str(approval.blocks)
    assert not [m for m in gmail(linked).sent(ADA) if "Offsite travel plan" in str(m.email["Subject"])]
    press(linked, approval, "cancel_send")


def test_archive_label_mark_read_and_undo(linked: LocalStack):
    thread = "1795000013.000400"
    assert "archived" in ask(linked, "Archive the emails from frank", thread).text.lower()
    assert "INBOX" not in labels(linked, "read_old")
    ask(linked, "Label the emails from frank as Receipts", thread)
    [receipts] = [i for i, n in gmail(linked).labels(ADA).items() if n == "Receipts"]
    assert receipts in labels(linked, "read_old")
    ask(linked, "Mark the emails from erin as read", thread)
    assert "UNREAD" not in labels(linked, "unread_yesterday")
    for _ in range(3):
        assert "undone" in ask(linked, "undo that", thread).text.lower()
    assert "UNREAD" in labels(linked, "unread_yesterday")
    assert receipts not in labels(linked, "read_old") and "INBOX" in labels(linked, "read_old")


def test_a_bulk_change_waits_for_a_press(linked: LocalStack):
    thread = "1795000013.000500"
    deals = [f"deal_{n}" for n in range(1, mailbox_seed.NEWSLETTER_COUNT + 1)]
    ask(linked, f"Mark the emails from {mailbox_seed.NEWSLETTER_SENDER} as unread", thread)
    assert all("UNREAD" not in labels(linked, name) for name in deals)  # waiting for the press
    approval = card(linked, thread)
    assert "Deal of the week #1" in str(approval.blocks)
    press(linked, approval, "approve_send")
    assert all("UNREAD" in labels(linked, name) for name in deals)
    ask(linked, "undo", thread)
    assert all("UNREAD" not in labels(linked, name) for name in deals)


def save_tokens(stack: LocalStack, scopes: tuple[str, ...]) -> None:
    """Store ada's link as one made with `scopes` (as an older Mailroom asked for)."""
    assert stack.google is not None
    granted = stack.google.issue_tokens(scopes=scopes)
    tokens = GoogleTokens(
        access_token=granted["access_token"],
        refresh_token=granted["refresh_token"],
        expiry=datetime.now(UTC) + timedelta(hours=1),
        scopes=scopes,
        token_uri=stack.google.token_uri,
    )
    vault = TokenVault(
        stack.physical("TokensTable"),
        stack.physical("TokensKey", "Arn"),
        dynamodb_client=stack.aws.client("dynamodb"),
        kms_client_factory=lambda: stack.aws.client("kms"),
    )
    vault.save(LOCAL_TEAM_ID, LOCAL_USER_ID, ADA, tokens)


def test_an_old_link_without_gmail_modify_is_told_to_relink_without_errors(linked: LocalStack):
    thread = "1795000013.000600"
    save_tokens(linked, MAILROOM_SCOPES_BEFORE_MODIFY)
    try:
        assert post_event(linked.url, message_event("status")).status == 200
        linked.wait_until_drained(timeout=60)
        assert linked.slack is not None
        status = linked.slack.messages(channel=LOCAL_DM_CHANNEL)[-1]
        assert "`auth`" in status.text and "tidy" in status.text
        tidy = ask(linked, "Archive the emails from frank", thread)
        assert "auth" in tidy.text and "INBOX" in labels(linked, "read_old")
        assert "Alice" in ask(linked, "What did Alice send me this week?", thread).text
        assert linked.queue_depth("MessagesDeadLetterQueue") == 0
    finally:
        save_tokens(linked, MAILROOM_SCOPES)
