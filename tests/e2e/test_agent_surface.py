"""Slack's agent surface over the whole local stack (ingress, queue, worker processes,
moto, the emulators): prompts when the DM opens, a status per tool step, the answer
streamed in several appends, feedback recorded, and one complete answer when a stream
expires."""

from __future__ import annotations

from typing import Any

import pytest

from infra.local.emulators.slack import PostedMessage
from infra.local.slack_requests import (
    LOCAL_DM_CHANNEL,
    app_home_opened_event,
    assistant_thread_started_event,
    feedback_press,
    message_event,
    post_event,
    post_interaction,
)
from infra.local.stack import LocalStack

pytestmark = pytest.mark.e2e


def ask_in_thread(stack: LocalStack, text: str, thread_ts: str) -> PostedMessage:
    assert stack.slack is not None
    assert post_event(stack.url, message_event(text, thread_ts=thread_ts)).status == 200
    stack.wait_until_drained(timeout=60)
    [answer] = stack.slack.messages(channel=LOCAL_DM_CHANNEL, thread_ts=thread_ts)
    return answer


def opened_prompts(stack: LocalStack) -> list[str]:
    assert stack.slack is not None
    assert post_event(stack.url, app_home_opened_event()).status == 200
    stack.wait_until_drained()
    prompts = stack.slack.suggested_prompts(LOCAL_DM_CHANNEL)
    assert prompts is not None, stack.slack.calls()
    return [p["title"] for p in prompts["prompts"]]


def test_opening_the_dm_unlinked_suggests_connecting_gmail(stack: LocalStack):
    assert opened_prompts(stack)[0] == "Connect Gmail"


def test_opening_the_dm_and_a_thread_linked_suggests_mail_questions(linked: LocalStack):
    assert opened_prompts(linked)[:3] == ["What's unread?", "Summarise today's mail", "Draft a reply to …"]
    assert linked.slack is not None
    assert post_event(linked.url, assistant_thread_started_event("1795100000.000100")).status == 200
    linked.wait_until_drained()
    prompts = linked.slack.suggested_prompts(LOCAL_DM_CHANNEL, "1795100000.000100")
    assert prompts is not None and len(prompts["prompts"]) <= 4


def test_each_step_shows_a_status_and_the_answer_streams_then_takes_feedback(linked: LocalStack):
    assert linked.slack is not None
    thread = "1795100000.000200"
    answer = ask_in_thread(linked, "What did Alice send me this week?", thread)

    shown = [s["status"] for s in linked.slack.status_log(LOCAL_DM_CHANNEL, thread)]
    assert any("searching your mail" in s for s in shown) and any("reading" in s for s in shown), shown
    assert shown[-1] == ""
    assert not answer.streaming and "Alice" in answer.text
    assert len(linked.slack.calls("chat.startStream")) == 1
    assert len(linked.slack.calls("chat.appendStream")) >= 2
    assert len(linked.slack.calls("chat.stopStream")) == 1
    # Each tool step is a task card in the reply too, and every card ended complete.
    titles = [t["title"] for t in answer.tasks]
    assert any(t.startswith("Searching your mail") for t in titles) and any(t.startswith("Reading") for t in titles)
    assert {t["status"] for t in answer.tasks} == {"complete"}, answer.tasks
    # The reply streams in the user's own thread: the thread its conversation is named by.
    assert {c["args"]["thread_ts"] for c in linked.slack.calls("chat.startStream")} == {thread}

    [feedback] = [b for b in answer.blocks if b["type"] == "context_actions"]
    value = feedback["elements"][0]["positive_button"]["value"]
    assert post_interaction(linked.url, feedback_press(value, message_ts=answer.ts, thread_ts=thread)).status == 200
    linked.wait_until_drained()
    votes: list[dict[str, Any]] = [i for i in linked.scan("UsageTable") if i["pk"]["S"].startswith("feedback#")]
    assert [v["vote"]["S"] for v in votes if v["answer_id"]["S"] == value.partition(":")[2]] == ["up"]


def test_an_expired_stream_still_ends_as_one_complete_answer(linked: LocalStack):
    assert linked.slack is not None
    linked.slack.expire_streams_after(1)
    thread = "1795100000.000300"
    answer = ask_in_thread(linked, "What did Alice send me this week?", thread)
    assert "message_not_in_streaming_state" in [c["error"] for c in linked.slack.calls("chat.appendStream")]
    assert not answer.streaming and "Alice" in answer.text
    assert any(b["type"] == "context_actions" for b in answer.blocks)
    [update] = linked.slack.calls("chat.update")
    assert update["args"]["ts"] == answer.ts


def test_a_top_level_dm_is_answered_in_place_and_stays_one_conversation(linked: LocalStack):
    """A top-level DM (the Messages tab; the agent surface always writes in a thread) gets
    the placeholder edited into the answer at the top level: Slack streams only replies in
    a DM, and a reply in a thread would invite a follow-up there, which is another
    conversation (team:channel:thread) that does not remember this one."""
    assert linked.slack is not None and linked.openai is not None
    question = "What did Alice send me this week?"

    def ask_top_level(text: str) -> PostedMessage:
        assert linked.slack is not None
        before = {m.ts for m in linked.slack.messages(channel=LOCAL_DM_CHANNEL)}
        assert post_event(linked.url, message_event(text)).status == 200
        linked.wait_until_drained(timeout=60)
        [answer] = [m for m in linked.slack.messages(channel=LOCAL_DM_CHANNEL) if m.ts not in before]
        return answer

    answer = ask_top_level(question)
    assert answer.thread_ts is None and answer.edits >= 1 and not answer.streaming  # the placeholder, edited
    assert "Alice" in answer.text and any(b["type"] == "context_actions" for b in answer.blocks)
    assert linked.slack.calls("chat.startStream") == [] and linked.slack.calls("assistant.threads.setStatus") == []

    seen = len(linked.openai.requests)
    follow_up = ask_top_level("Draft a reply saying Thursday works")
    assert follow_up.thread_ts is None
    # The follow-up continued the same conversation: the first question came back from memory.
    remembered = [m.get("content") for m in linked.openai.requests[seen]["messages"] if m["role"] == "user"]
    assert question in remembered and remembered[-1] == "Draft a reply saying Thursday works"
