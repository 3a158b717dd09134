"""A streamed answer when something fails mid-answer, over the whole local stack (ingress,
queue with its redeliveries, the worker in its own process, moto, the Slack, Gmail and
OpenAI emulators through the real clients): the stream is closed, the user ends with one
honest message in its place (what failed, the reference), nothing is left streaming,
and the next message in the conversation works."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from infra.local.emulators.openai import Call, Rule, Script
from infra.local.emulators.slack import PostedMessage
from infra.local.slack_requests import LOCAL_DM_CHANNEL, message_event, post_event
from infra.local.stack import LocalStack
from mailroom.timeouts import MODEL_ATTEMPTS

pytestmark = pytest.mark.e2e

QUESTION = "What did Alice send me this week?"
PREAMBLE = "Let me look through your mail for Alice."
DELIVERIES = 4  # the queue's maxReceiveCount
GMAIL_TRIES = 4  # googleapiclient's num_retries + 1


def ask(stack: LocalStack, text: str, thread_ts: str, event_id: str) -> list[PostedMessage]:
    """Post a DM in the thread, wait until the queue is drained, return the bot's new messages there."""
    assert stack.slack is not None
    before = {m.ts for m in stack.slack.messages(channel=LOCAL_DM_CHANNEL)}
    assert post_event(stack.url, message_event(text, thread_ts=thread_ts, event_id=event_id)).status == 200
    stack.wait_until_drained(timeout=240)
    return [m for m in stack.slack.messages(channel=LOCAL_DM_CHANNEL) if m.ts not in before]


@contextmanager
def model_speaks_before_searching(stack: LocalStack) -> Iterator[None]:
    """The model streams a sentence, then calls search_emails (as real models often do)."""
    assert stack.openai is not None
    normal = stack.openai.script
    look = Rule(
        name="look first",
        user=r"what did alice send",
        preamble=PREAMBLE,
        call=Call("search_emails", {"query": "from:alice newer_than:7d", "max_results": 5}),
    )
    stack.openai.script = Script([look, *normal.rules], fallback=normal.fallback)
    try:
        yield
    finally:
        stack.openai.script = normal


def streamed_words(calls: list[dict[str, Any]]) -> str:
    words = []
    for call in calls:
        if call["method"] in ("chat.startStream", "chat.appendStream", "chat.stopStream") and call["ok"]:
            words.append(str(call["args"].get("markdown_text") or ""))
            chunks = call["args"].get("chunks") or []
            words += [c.get("text", "") for c in chunks if c.get("type") == "markdown_text"]
    return "".join(words)


def assert_closed_and_told(stack: LocalStack, thread: str, told: list[PostedMessage], service: str, event: str):
    assert stack.slack is not None
    [notice] = told  # one message: the streamed reply itself, edited into the notice
    assert len([c for c in stack.slack.calls("chat.startStream") if c["ok"]]) == 1, "one stream, never a second"
    assert {c["args"]["ts"] for c in stack.slack.calls("chat.stopStream")} == {notice.ts}, "the stream was closed"
    assert notice.thread_ts == thread
    assert f"{service} is not answering" in notice.text and f"Reference: `{event}`" in notice.text
    assert not any(m.streaming for m in stack.slack.messages()), "a message left streaming"
    assert stack.slack.status_log(LOCAL_DM_CHANNEL, thread)[-1]["status"] == ""


@pytest.mark.parametrize("fault", ["http", "reset"])
def test_gmail_failing_mid_answer_ends_as_one_honest_message_and_the_next_message_works(linked: LocalStack, fault: str):
    assert linked.slack is not None and linked.gmail is not None
    thread, event = f"179610000{len(fault)}.000100", f"EvStreamGmail{fault}"
    with model_speaks_before_searching(linked):
        # Gmail's search fails (503, or the connection reset) on every try of every delivery.
        linked.gmail.fail_next("messages.list", 503, times=DELIVERIES * GMAIL_TRIES, kind=fault)
        try:
            told = ask(linked, QUESTION, thread, event)
        finally:
            linked.gmail.clear_faults()
        # The answer had started: the model's first words and the search's task card.
        assert streamed_words(linked.slack.calls()).startswith(PREAMBLE)
        assert_closed_and_told(linked, thread, told, "Gmail", event)
        [notice] = told
        assert [t["status"] for t in notice.tasks] == ["error"], "the search's card says it failed"

        [answer] = ask(linked, QUESTION, thread, f"{event}-next")
    assert "Notes from Tuesday" in answer.text and not answer.streaming
    assert any(b["type"] == "context_actions" for b in answer.blocks)
    assert {t["status"] for t in answer.tasks} == {"complete"}


def test_the_model_failing_mid_answer_ends_as_one_honest_message_and_the_next_message_works(linked: LocalStack):
    assert linked.slack is not None and linked.openai is not None
    thread, event = "1796100009.000100", "EvStreamModel"
    # The answer (after the search and the read) is cut off after a few words, every try.
    linked.openai.cut_next_streams(after_events=4, times=DELIVERIES * MODEL_ATTEMPTS)
    try:
        told = ask(linked, QUESTION, thread, event)
    finally:
        linked.openai.reset()  # no cut left over for the next message
    assert streamed_words(linked.slack.calls()), "the answer had started streaming"
    assert_closed_and_told(linked, thread, told, "the AI model", event)

    [answer] = ask(linked, QUESTION, thread, f"{event}-next")
    assert "Notes from Tuesday" in answer.text and not answer.streaming
    assert answer.text.count("Alice Liddell") == 1
