"""Approval edge cases with the worker in process: expiry and superseded requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.local.emulators.gmail import GmailMailbox
from infra.local.emulators.openai import OpenAIEmulator
from infra.local.emulators.slack import PostedMessage
from infra.local.slack_requests import LOCAL_DM_CHANNEL
from mailroom.bootstrap import build_worker
from tests.integration.harness import Harness


@pytest.fixture
def openai() -> Iterator[OpenAIEmulator]:
    emulator = OpenAIEmulator()
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def agent(harness: Harness, openai: OpenAIEmulator, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setenv("OPENAI_BASE_URL", openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", openai.api_key)
    harness.gmail = GmailMailbox(harness.google)
    harness.gmail.seed()
    harness.worker = build_worker()
    assert harness.link()[0] == 200
    return harness


def approval(harness: Harness) -> PostedMessage:
    harness.say("Draft a reply to Bob saying Thursday works")
    harness.say("send it")
    [found] = [
        m
        for m in harness.slack.messages(channel=LOCAL_DM_CHANNEL)
        if any(b.get("block_id") == "approval" for b in m.blocks)
    ]
    return found


def sends(harness: Harness) -> int:
    assert harness.gmail is not None
    return harness.gmail.send_count


def test_an_expired_request_sends_nothing(agent: Harness, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("APPROVAL_TTL_SECONDS", "0")
    agent.worker = build_worker()
    request = approval(agent)
    agent.press(request, "approve_send")
    assert sends(agent) == 0
    [updated] = [m for m in agent.slack.messages(channel=LOCAL_DM_CHANNEL) if m.ts == request.ts]
    assert "expired" in updated.text


def test_moving_on_drops_the_pending_request(agent: Harness):
    request = approval(agent)
    agent.say("What did Alice send me this week?")  # answered normally: the model saw its send answered
    agent.press(request, "approve_send")
    assert sends(agent) == 0
    told = [m for m in agent.slack.messages(channel=LOCAL_DM_CHANNEL) if m.ephemeral]
    assert told and "no longer waiting" in told[-1].text
