"""Approval edge cases with the worker in process: expiry and superseded requests."""

from __future__ import annotations

import pytest

from infra.local.emulators.slack import PostedMessage
from infra.local.slack_requests import LOCAL_DM_CHANNEL
from mailroom.bootstrap import build_worker
from tests.integration.harness import Harness


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
