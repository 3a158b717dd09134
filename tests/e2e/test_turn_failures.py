"""Failures over the whole local stack: the queue's redeliveries (the local poller makes
a failed record visible again after a second), the worker in its own process, the
checkpoints and turn records on moto, Slack, Gmail and the model emulated."""

from __future__ import annotations

import pytest

from infra.local.emulators.slack import PostedMessage
from infra.local.slack_requests import LOCAL_DM_CHANNEL, message_event, post_event
from infra.local.stack import LocalStack

pytestmark = pytest.mark.e2e


def send(stack: LocalStack, text: str, thread_ts: str) -> list[PostedMessage]:
    """Post a DM in a thread, wait until the queue is drained, return the bot's new messages there."""
    assert stack.slack is not None
    before = {m.ts for m in stack.slack.messages(channel=LOCAL_DM_CHANNEL)}
    assert post_event(stack.url, message_event(text, thread_ts=thread_ts)).status == 200
    stack.wait_until_drained(timeout=120)
    return [m for m in stack.slack.messages(channel=LOCAL_DM_CHANNEL) if m.ts not in before]


def test_slack_failing_to_take_the_answer_does_not_run_the_turn_again(linked: LocalStack):
    assert linked.slack is not None and linked.openai is not None and linked.gmail is not None
    drafts_before = len(linked.gmail.drafts("ada@example.com"))
    # In a thread the answer streams: its end (chat.stopStream) fails, then the fallback
    # edit into the whole answer (chat.update), each with the client's retries.
    linked.slack.fail_next("chat.stopStream", status=503, times=3)
    linked.slack.fail_next("chat.update", status=503, times=3)
    model_calls = len(linked.openai.requests)
    [answer] = send(linked, "Draft a reply to Bob saying Thursday works", thread_ts="1796000000.000100")
    assert "draft" in answer.text.lower() and answer.edits >= 1, "the one placeholder became the answer"
    assert len(linked.gmail.drafts("ada@example.com")) == drafts_before + 1, "one draft, not two"
    # The redelivery posted the recorded answer: the turn started (a request ending with the
    # user's message) once, not twice.
    started = [r for r in linked.openai.requests[model_calls:] if r["messages"][-1]["role"] == "user"]
    assert len(started) == 1


def test_after_gmail_is_down_through_every_delivery_the_next_message_works(linked: LocalStack):
    assert linked.gmail is not None
    # Every try of every delivery (4 deliveries x 4 client tries) fails.
    linked.gmail.fail_next("messages.list", 500, times=16)
    [told] = send(linked, "What did Alice send me this week?", thread_ts="1796000000.000200")
    assert "not answering" in told.text and "Reference: `Ev" in told.text
    [answer] = send(linked, "What did Alice send me this week?", thread_ts="1796000000.000200")
    assert "Notes from Tuesday" in answer.text
