"""How a chat turn fails: Gmail errors retried or explained, a revoked grant, the
Lambda's deadline. Worker in process against moto's server and the emulators."""

from __future__ import annotations

import pytest

from infra.local.emulators.gmail import GmailMailbox
from infra.local.slack_requests import LOCAL_TEAM_ID, LOCAL_USER_ID
from mailroom.agent.graph import OUT_OF_TIME
from mailroom.bootstrap import build_worker
from tests.integration.harness import Harness


def gmail(harness: Harness) -> GmailMailbox:
    assert harness.gmail is not None
    return harness.gmail


def answer(harness: Harness, text: str) -> str:
    reply = harness.say(text)
    assert reply.edits == 1, "the placeholder is edited into the answer"
    return reply.text


def test_a_turn_reads_the_mailbox_and_answers(agent: Harness):
    assert "Notes from Tuesday" in answer(agent, "What did Alice send me this week?")


def test_a_brief_gmail_outage_is_retried_by_the_client(agent: Harness):
    gmail(agent).fail_next("messages.list", 503)
    assert "Notes from Tuesday" in answer(agent, "What did Alice send me this week?")


def test_a_lasting_gmail_outage_is_explained_with_a_reference_on_the_last_delivery(agent: Harness):
    gmail(agent).fail_next("messages.list", 500, times=10)
    question = agent.chat("What did Alice send me this week?")
    before = len(agent.slack.messages(channel=question.channel_id))
    assert agent.deliver(question, receive_count=4) is False  # kept: it goes on to the DLQ
    told = agent.slack.messages(channel=question.channel_id)[before]
    assert "not answering" in told.text and f"Reference: `{question.event_id}`" in told.text
    assert "Traceback" not in told.text and "HttpError" not in told.text


def test_an_expired_access_token_is_refreshed_on_gmails_401(agent: Harness):
    agent.google.expire_access_tokens()  # Gmail now answers 401 to the stored token
    assert "Notes from Tuesday" in answer(agent, "What did Alice send me this week?")


def test_a_grant_revoked_at_google_marks_the_link_broken(agent: Harness):
    agent.google.expire_access_tokens()
    agent.google.invalidate_refresh_tokens()
    assert "no longer works" in answer(agent, "What did Alice send me this week?")
    link = agent.vault().load(LOCAL_TEAM_ID, LOCAL_USER_ID)
    assert link is not None and link.status == "broken"


def test_a_turn_that_would_outlast_the_lambda_stops_and_says_so(agent: Harness, monkeypatch: pytest.MonkeyPatch):
    # A margin longer than the invocation's whole time: no model call may start.
    monkeypatch.setenv("AGENT_TIME_MARGIN_SECONDS", "100000")
    agent.worker = build_worker()
    assert answer(agent, "What did Alice send me this week?") == OUT_OF_TIME
    assert agent.openai_requests() == 0


def test_past_the_hourly_limit_a_user_gets_a_polite_answer_and_no_model_call(
    agent: Harness, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("CHAT_RATE_LIMIT", "2")
    agent.worker = build_worker()
    for _ in range(2):
        assert "Notes from Tuesday" in answer(agent, "What did Alice send me this week?")
    calls = agent.openai_requests()
    limited = agent.say("What did Alice send me this week?")
    assert "try again in about" in limited.text and limited.edits == 0
    assert agent.openai_requests() == calls
