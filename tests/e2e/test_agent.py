"""The mail agent over the whole local stack: a linked user chats in Slack; the worker
runs the LangGraph agent (scripted model emulator, seeded Gmail emulator, DynamoDB
checkpoints on moto) and answers in the thread."""

from __future__ import annotations

import email
from email import policy

import pytest

from infra.local.emulators.slack import PostedMessage
from infra.local.slack_requests import LOCAL_DM_CHANNEL, message_event, post_event
from infra.local.stack import LocalStack

pytestmark = pytest.mark.e2e


def ask(stack: LocalStack, text: str, thread_ts: str | None = None) -> PostedMessage:
    """Send a DM (in a thread if given) and wait for the placeholder to become the answer."""
    assert stack.slack is not None
    before = {m.ts for m in stack.slack.messages(channel=LOCAL_DM_CHANNEL)}
    assert post_event(stack.url, message_event(text, thread_ts=thread_ts)).status == 200
    stack.wait_until_drained(timeout=60)
    new = [m for m in stack.slack.messages(channel=LOCAL_DM_CHANNEL) if m.ts not in before]
    assert new, f"no answer to {text!r}"
    answer = new[0]
    # A top-level message: the placeholder edited into the answer; in a thread (Slack's
    # agent surface) the answer is streamed (see test_agent_surface.py).
    assert answer.edits >= 1 or (thread_ts and not answer.streaming), "the answer never replaced the placeholder"
    return answer


def test_search_and_read_a_multipart_email(linked: LocalStack):
    answer = ask(linked, "What did Alice send me this week?")
    assert answer.thread_ts is None
    assert "Alice" in answer.text or "alice" in answer.text
    assert linked.openai is not None
    tools_used = [
        call["function"]["name"]
        for request in linked.openai.requests
        for message in request["messages"]
        for call in message.get("tool_calls") or []
    ]
    assert "search_emails" in tools_used and "read_email" in tools_used


def test_a_follow_up_in_the_thread_remembers_across_a_fresh_worker(linked: LocalStack):
    first = ask(linked, "What did Alice send me this week?", thread_ts="1795000000.000100")
    assert first.thread_ts == "1795000000.000100"
    linked.functions["WorkerFunction"].stop()  # the next turn runs in a cold worker process
    assert linked.openai is not None
    seen_before = len(linked.openai.requests)
    ask(linked, "Draft a reply saying Thursday works", thread_ts="1795000000.000100")
    follow_up = linked.openai.requests[seen_before]
    roles = [m["role"] for m in follow_up["messages"]]
    # The earlier turn (its question, tool calls and answer) came back from DynamoDB.
    assert roles.count("user") >= 2 and "tool" in roles


def test_a_reply_draft_lands_in_the_right_thread_with_reply_headers(linked: LocalStack):
    assert linked.gmail is not None and linked.seeded is not None
    answer = ask(linked, "Draft a reply to Bob saying Thursday works", thread_ts="1795000000.000200")
    assert "draft" in answer.text.lower()
    [draft] = [d for d in linked.gmail.drafts("ada@example.com") if "bob@example.com" in str(d.message.email["To"])]
    assert draft.message.thread_id == linked.seeded.thread["project_thread"]
    parsed = email.message_from_bytes(draft.message.raw, policy=policy.default)
    body = parsed.get_body(("plain",))
    assert body is not None and "Thursday works" in body.get_content()
    assert parsed["Subject"].startswith("Re: ")
    assert parsed["In-Reply-To"] and parsed["References"]
    assert parsed["In-Reply-To"] in parsed["References"]


def test_chat_in_a_channel_points_to_the_dm(linked: LocalStack):
    assert linked.slack is not None
    payload = message_event("<@U0MAILBOT> what did Alice send me?", channel="C0GENERAL")
    payload["event"] |= {"type": "app_mention"}
    del payload["event"]["channel_type"]
    assert post_event(linked.url, payload).status == 200
    linked.wait_until_drained()
    [reply] = linked.slack.messages(channel="C0GENERAL")
    assert reply.ephemeral and "direct messages" in reply.text


def test_reading_a_multipart_email_gives_the_model_its_plain_text_part(linked: LocalStack):
    assert linked.openai is not None
    seen = len(linked.openai.requests)
    answer = ask(linked, "What did Carol send me this week?", thread_ts="1795000000.000300")
    assert "Offsite agenda" in answer.text
    read_results = [
        message["content"]
        for request in linked.openai.requests[seen:]
        for message in request["messages"]
        if message["role"] == "tool" and "Agenda for the offsite" in str(message["content"])
    ]
    assert read_results, "the model never saw the email's text"
    # text/plain was preferred over the HTML alternative, and nothing of the markup leaked.
    assert "1. Roadmap" in read_results[-1] and "<b>" not in read_results[-1]
