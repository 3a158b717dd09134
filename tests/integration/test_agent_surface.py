"""Slack's agent surface, in process: the worker's real handlers against moto's server and
the Slack, Google/Gmail and OpenAI emulators. A question in an agent thread shows a status
per step, streams its answer, ends with feedback buttons, and always leaves one complete
answer, whatever the stream or the model does."""

from __future__ import annotations

import uuid
from typing import Any

from infra.local.emulators.slack import PostedMessage
from infra.local.slack_requests import (
    LOCAL_DM_CHANNEL,
    LOCAL_TEAM_ID,
    LOCAL_USER_ID,
    app_home_opened_event,
    assistant_thread_started_event,
    feedback_press,
    interaction_body,
    message_event,
)
from mailroom import replies
from mailroom.agent.runner import WORKING
from mailroom.commands import Command
from mailroom.feedback import FeedbackRecords
from mailroom.slack.parsing import parse_event_callback, parse_interaction
from mailroom.timeouts import MODEL_ATTEMPTS
from tests.integration.harness import PUBLIC, Harness

QUESTION = "What did Alice send me this week?"


def threaded(text: str, thread_ts: str) -> Command:
    command = parse_event_callback(
        message_event(text, thread_ts=thread_ts, event_id=f"Ev{uuid.uuid4().hex[:10]}"), PUBLIC
    )
    assert command is not None
    return command


def new_thread() -> str:
    return f"1795{uuid.uuid4().int % 10**6:06d}.000100"


def answer_in(h: Harness, thread_ts: str) -> PostedMessage:
    [answer] = h.slack.messages(channel=LOCAL_DM_CHANNEL, thread_ts=thread_ts)
    return answer


def statuses(h: Harness, thread_ts: str) -> list[str]:
    return [s["status"] for s in h.slack.status_log(LOCAL_DM_CHANNEL, thread_ts)]


def has_feedback(message: PostedMessage) -> bool:
    return any(
        b["type"] == "context_actions" and b["elements"][0]["type"] == "feedback_buttons" for b in message.blocks
    )


def test_a_question_in_an_agent_thread_shows_each_step_streams_the_answer_and_asks_for_feedback(agent: Harness):
    thread = new_thread()
    command = threaded(QUESTION, thread)
    agent.run(command)

    shown = statuses(agent, thread)
    assert any(s.startswith("is searching your mail for “from:alice") for s in shown), shown
    assert any(s.startswith("is reading “") for s in shown), shown  # the subject found by the search
    assert shown[-1] == ""  # cleared at the end
    assert agent.slack.thread_title(LOCAL_DM_CHANNEL, thread) == QUESTION

    answer = answer_in(agent, thread)
    assert not answer.streaming
    assert "Alice" in answer.text
    assert len(agent.slack.calls("chat.startStream")) == 1
    assert len(agent.slack.calls("chat.appendStream")) >= 2  # written as it comes, in several appends
    [stop] = agent.slack.calls("chat.stopStream")
    assert stop["ok"] and has_feedback(answer)
    assert agent.slack.calls("chat.update") == []  # the stream was the whole answer
    assert [c for c in agent.slack.calls("chat.postMessage") if c["args"].get("thread_ts") == thread] == []
    # The statuses came before the first token.
    first_token = agent.slack.calls("chat.startStream")[0]["ts"]
    assert agent.slack.status_log(LOCAL_DM_CHANNEL, thread)[0]["at"] <= first_token


def test_an_expired_stream_falls_back_to_one_complete_answer_in_the_same_message(agent: Harness):
    agent.slack.expire_streams_after(0)  # the first append already finds it expired
    thread = new_thread()
    agent.run(threaded(QUESTION, thread))

    answer = answer_in(agent, thread)
    assert [c["error"] for c in agent.slack.calls("chat.appendStream")] == ["message_not_in_streaming_state"]
    [update] = agent.slack.calls("chat.update")
    assert update["args"]["ts"] == answer.ts
    assert "Alice" in answer.text and has_feedback(answer)
    assert statuses(agent, thread)[-1] == ""


def test_a_stream_whose_stop_failed_is_closed_before_the_fallback_edit(agent: Harness):
    agent.slack.fail_next("chat.stopStream", status=503, times=3)  # past the client's own retries
    thread = new_thread()
    agent.run(threaded(QUESTION, thread))

    answer = answer_in(agent, thread)
    assert [c["ok"] for c in agent.slack.calls("chat.stopStream")] == [False, False, False, True]
    assert not answer.streaming, "the stream was left open"
    [update] = agent.slack.calls("chat.update")
    assert update["args"]["ts"] == answer.ts and "Alice" in answer.text and has_feedback(answer)


def test_a_redelivery_edits_the_streamed_message_and_never_streams_a_second_answer(agent: Harness):
    agent.slack.expire_streams_after(0)
    agent.slack.fail_next("chat.update", status=503, times=3)  # past the client's own retries
    thread = new_thread()
    command = threaded(QUESTION, thread)
    assert agent.deliver(command, receive_count=1) is False
    model_calls = agent.openai_requests()

    agent.slack.expire_streams_after(None)
    assert agent.deliver(command, receive_count=2) is True

    answer = answer_in(agent, thread)  # one message in the thread
    assert "Alice" in answer.text and has_feedback(answer)
    assert len(agent.slack.calls("chat.startStream")) == 1
    assert agent.openai_requests() == model_calls  # the saved outcome, not a second run


def test_the_stream_is_closed_when_the_model_fails_mid_answer_and_the_retry_completes_it(agent: Harness):
    assert agent.openai is not None
    thread = new_thread()
    command = threaded(QUESTION, thread)
    # The answer (after the search and the read) is cut off after a few words, every try.
    agent.openai.cut_next_streams(after_events=4, times=MODEL_ATTEMPTS)
    assert agent.deliver(command, receive_count=1) is False

    [message] = agent.slack.messages(channel=LOCAL_DM_CHANNEL, thread_ts=thread)
    assert not message.streaming  # closed, not left spinning
    assert agent.slack.calls("chat.stopStream")
    assert statuses(agent, thread)[-1] == ""
    assert message.text == WORKING  # its unfinished words taken back until the retry

    assert agent.deliver(command, receive_count=2) is True
    [message] = agent.slack.messages(channel=LOCAL_DM_CHANNEL, thread_ts=thread)
    assert "Alice" in message.text and has_feedback(message) and message.text.count("Alice Liddell") == 1
    assert len(agent.slack.calls("chat.startStream")) == 1  # the retry edits, never streams again


def test_the_user_is_told_once_in_the_streamed_message_when_the_model_keeps_failing(agent: Harness):
    assert agent.openai is not None
    thread = new_thread()
    command = threaded(QUESTION, thread)
    agent.openai.cut_next_streams(after_events=4, times=MODEL_ATTEMPTS)
    assert agent.deliver(command, receive_count=4) is False  # the last delivery

    [message] = agent.slack.messages(channel=LOCAL_DM_CHANNEL, thread_ts=thread)
    assert not message.streaming
    assert message.text == replies.busy(command.event_id, "the AI model")  # says what failed


def test_a_workspace_without_the_agent_surface_gets_a_plain_reply(agent: Harness):
    agent.slack.without_agent_surface()
    thread = new_thread()
    agent.run(threaded(QUESTION, thread))

    answer = answer_in(agent, thread)
    assert "Alice" in answer.text and not answer.streaming
    assert all(c["error"] == "missing_scope" for c in agent.slack.calls("assistant.threads.setStatus"))
    # Tried once before the agent loads and once by the turn, which then leaves it alone.
    assert len(agent.slack.calls("assistant.threads.setStatus")) == 2


def test_opening_the_dm_offers_prompts_that_fit_the_users_state(harness: Harness):
    opened = parse_event_callback(app_home_opened_event(), PUBLIC)
    assert opened is not None
    harness.run(opened)
    prompts = harness.slack.suggested_prompts(LOCAL_DM_CHANNEL)
    assert prompts is not None
    assert [p["title"] for p in prompts["prompts"]] == ["Connect Gmail", "What can you do?"]

    assert harness.link()[0] == 200
    thread = new_thread()
    started = parse_event_callback(assistant_thread_started_event(thread), PUBLIC)
    assert started is not None and started.thread_ts == thread
    harness.run(started)
    prompts = harness.slack.suggested_prompts(LOCAL_DM_CHANNEL, thread)
    assert prompts is not None
    titles = [p["title"] for p in prompts["prompts"]]
    assert titles[:3] == ["What's unread?", "Summarise today's mail", "Draft a reply to …"]
    assert len(titles) <= 4


def test_the_home_tab_and_other_peoples_channels_get_no_prompts():
    assert parse_event_callback(app_home_opened_event(tab="home"), PUBLIC) is None
    assert parse_event_callback(app_home_opened_event(channel="C0GENERAL"), PUBLIC) is None


def test_a_feedback_press_is_recorded_and_the_latest_press_wins(agent: Harness, deployment: Any):
    thread = new_thread()
    command = threaded(QUESTION, thread)
    agent.run(command)
    answer = answer_in(agent, thread)
    [buttons] = [b["elements"][0] for b in answer.blocks if b["type"] == "context_actions"]

    for side in ("positive_button", "negative_button"):
        press = feedback_press(buttons[side]["value"], message_ts=answer.ts, thread_ts=thread)
        pressed = parse_interaction(interaction_body(press), PUBLIC)
        assert pressed is not None
        agent.run(pressed)

    table = deployment.physical("UsageTable")
    records = FeedbackRecords(table)
    saved = records.get(LOCAL_TEAM_ID, LOCAL_USER_ID, command.event_id)
    assert saved is not None
    assert saved["vote"] == "down"
    assert saved["conversation_id"] == f"{LOCAL_TEAM_ID}:{LOCAL_DM_CHANNEL}:{thread}"
    assert set(saved) == {
        "pk",
        "team_id",
        "user_id",
        "conversation_id",
        "answer_id",
        "vote",
        "pressed_at",
        "expires_at",
    }  # ids and the vote: no mail content
