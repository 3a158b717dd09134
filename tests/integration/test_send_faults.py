"""Approve -> send with a failure injected at every step: exactly one send when the user
approved and Gmail eventually accepts; none after a cancel, an expiry, a supersession or
a failure the user was told about; the card always ends telling the truth."""

from __future__ import annotations

import pytest

from infra.local.slack_requests import LOCAL_DM_CHANNEL
from mailroom.bootstrap import build_worker
from tests.integration.harness import Harness
from tests.integration.send_faults import (
    ADA,
    action_of,
    card,
    current,
    deliver,
    has_buttons,
    kill_at,
    press,
    record,
    sends,
    set_record,
    shown,
)


def ask(harness: Harness, email: bool = False):
    if email:
        harness.say("send an email to bob@example.com about the budget, saying Thursday works")
    else:
        harness.say("Draft a reply to Bob saying Thursday works")
        harness.say("send it")
    return card(harness)


def test_approve_sends_once_and_the_card_says_so(agent: Harness):
    approval = ask(agent)
    assert has_buttons(approval)
    assert deliver(agent, press(approval, "approve_send")) == "ok"
    assert sends(agent) == 1
    final = current(agent, approval)
    stored = record(agent, action_of(approval))
    assert stored["state"] == "sent" and stored["gmail_id"] in shown(final)
    assert not has_buttons(final)
