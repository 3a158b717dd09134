"""The expiry sweep: the worker's scheduled tick (events/worker/scheduled.json, as
EventBridge sends it) against moto's server and the Slack, Google and OpenAI emulators.
A request nobody pressed ends as expired and its card loses its buttons; requests not
yet expired, or decided already, are left as they are."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from functions.worker import app as worker_app
from infra.local.emulators.slack import PostedMessage
from infra.local.slack_requests import LOCAL_DM_CHANNEL, message_event
from infra.scripts.sign_events import EVENTS
from mailroom.adapters.approval_table import PENDING_INDEX, DynamoApprovalStore
from mailroom.approval_record import State
from mailroom.bootstrap import build_worker
from mailroom.slack.parsing import parse_event_callback
from tests.integration.harness import PUBLIC, Harness

TICK = json.loads((EVENTS / "worker/scheduled.json").read_text())


def tick(harness: Harness) -> dict[str, Any]:
    return dict(worker_app.handler(dict(TICK), harness.context, worker=harness.worker))


def ask_to_send(harness: Harness, thread_ts: str, ttl_seconds: str, monkeypatch: pytest.MonkeyPatch) -> PostedMessage:
    """A request to send a reply, in its own conversation (a thread of the DM), that
    expires `ttl_seconds` after it is asked; its card."""
    monkeypatch.setenv("APPROVAL_TTL_SECONDS", ttl_seconds)
    harness.worker = build_worker()
    for text in ("Draft a reply to Bob saying Thursday works", "send it"):
        event = message_event(text, thread_ts=thread_ts, event_id=f"Ev{uuid.uuid4().hex[:10]}")
        command = parse_event_callback(event, PUBLIC)
        assert command is not None
        harness.run(command)
    [card] = [m for m in cards(harness) if m.thread_ts == thread_ts]
    return card


def cards(harness: Harness) -> list[PostedMessage]:
    return [m for m in harness.slack.messages(channel=LOCAL_DM_CHANNEL) if has_buttons(m) or "request" in m.text]


def has_buttons(message: PostedMessage) -> bool:
    return any(b.get("block_id") == "approval" for b in message.blocks)


def now_of(harness: Harness, card: PostedMessage) -> PostedMessage:
    [current] = [m for m in harness.slack.messages(channel=LOCAL_DM_CHANNEL) if m.ts == card.ts]
    return current


def state_of(harness: Harness, card: PostedMessage) -> State:
    [action_id] = {e["value"] for b in card.blocks for e in b.get("elements", []) if "value" in e}
    record = DynamoApprovalStore(harness.deployment.physical("ApprovalsTable")).get(action_id)
    assert record is not None
    return record.state


def in_pending_index(harness: Harness) -> int:
    answer = harness.deployment.aws.client("dynamodb").scan(
        TableName=harness.deployment.physical("ApprovalsTable"), IndexName=PENDING_INDEX
    )
    return int(answer["Count"])


def test_the_tick_expires_unpressed_requests_and_takes_their_buttons_off(
    agent: Harness, monkeypatch: pytest.MonkeyPatch
):
    expired = ask_to_send(agent, "1700000001.000100", "0", monkeypatch)
    cancelled = ask_to_send(agent, "1700000002.000100", "0", monkeypatch)
    agent.press(cancelled, "cancel_send")
    cancelled_card = now_of(agent, cancelled)
    waiting = ask_to_send(agent, "1700000003.000100", str(24 * 3600), monkeypatch)
    assert in_pending_index(agent) == 2  # the cancelled one left the index when it was decided

    assert tick(agent) == {"expired": 1}

    card = now_of(agent, expired)
    assert not has_buttons(card) and "expired; nothing was sent" in card.text
    assert state_of(agent, expired) == State.EXPIRED
    # Decided before: its record and its card are as the press left them.
    assert state_of(agent, cancelled) == State.CANCELLED
    assert now_of(agent, cancelled) == cancelled_card
    # Not expired yet: still waiting, buttons on, and still in the index.
    assert state_of(agent, waiting) == State.PENDING and has_buttons(now_of(agent, waiting))
    assert in_pending_index(agent) == 1

    # The next tick finds nothing more to do.
    assert tick(agent) == {"expired": 0}
    assert now_of(agent, expired).edits == card.edits


def test_a_press_after_the_sweep_is_told_it_expired_and_sends_nothing(agent: Harness, monkeypatch: pytest.MonkeyPatch):
    card = ask_to_send(agent, "1700000004.000100", "0", monkeypatch)
    assert tick(agent) == {"expired": 1}

    agent.press(card, "approve_send")

    assert agent.gmail is not None and agent.gmail.send_count == 0
    assert state_of(agent, card) == State.EXPIRED
    told = [m for m in agent.slack.messages(channel=LOCAL_DM_CHANNEL) if m.ephemeral]
    assert told and "no longer waiting for a decision: it expired" in told[-1].text
    assert not has_buttons(now_of(agent, card))


def test_a_card_that_cannot_be_rewritten_does_not_stop_the_sweep(agent: Harness, monkeypatch: pytest.MonkeyPatch):
    first = ask_to_send(agent, "1700000005.000100", "0", monkeypatch)
    second = ask_to_send(agent, "1700000006.000100", "0", monkeypatch)
    agent.slack.fail_next("chat.update", error="message_not_found")  # the oldest card (first) was deleted

    assert tick(agent) == {"expired": 2}

    assert state_of(agent, first) == State.EXPIRED and has_buttons(now_of(agent, first))
    assert state_of(agent, second) == State.EXPIRED and not has_buttons(now_of(agent, second))
