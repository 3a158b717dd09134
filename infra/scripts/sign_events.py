"""Write the real-shaped events under events/ for `sam local invoke` and local invoke.

Slack signs each request with a timestamp and refuses signatures older than five
minutes, so the Slack events are re-signed here with the current time (`make events`)
using the documented local signing secret. Ids are fixed so the files diff cleanly.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from infra.local.front import api_gateway_event
from infra.local.poller import sqs_record
from infra.local.schedule import scheduled_event
from infra.local.slack_requests import block_action, interaction_body, message_event, sign

EVENTS = Path(__file__).resolve().parents[2] / "events"
HOST = "abc123defg.execute-api.us-east-1.amazonaws.com"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:mailroom-dev-messages.fifo"
FIXED_TS = "1795500000.000100"


def _signed(path: str, body: bytes, content_type: str, timestamp: int, secret: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
    headers |= sign(body, timestamp=timestamp) if secret is None else sign(body, secret, timestamp)
    event = api_gateway_event("POST", path, headers, body, HOST, source_ip="3.80.0.1")
    event["requestContext"] |= {
        "requestId": "local-request-id",
        "timeEpoch": timestamp * 1000,
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(timestamp)),
    }
    return event


def build(timestamp: int) -> dict[str, dict[str, Any]]:
    hello = message_event("hello", event_id="Ev0HELLO0001", ts=FIXED_TS)
    hello["event_time"] = timestamp
    hello_body = json.dumps(hello).encode()
    verification = json.dumps(
        {"token": "unused", "challenge": "local-challenge-value", "type": "url_verification"}
    ).encode()
    press = block_action("approve_send", "pending-0001", message_ts=FIXED_TS)
    press["actions"][0]["action_ts"] = f"{timestamp}.000200"
    press["trigger_id"] = "0001.local"

    from mailroom.slack.parsing import parse_event_callback

    command = parse_event_callback(hello, f"https://{HOST}")
    assert command is not None
    queued = {
        "MessageId": "9b7f2d4e-0000-4000-8000-000000000001",
        "ReceiptHandle": "local-receipt-handle",
        "Body": command.model_dump_json(),
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(timestamp * 1000),
            "SequenceNumber": "18890000000000000001",
            "MessageGroupId": command.conversation_id,
            "SenderId": "AROAEXAMPLE:mailroom-dev-ingress",
            "MessageDeduplicationId": command.event_id,
            "ApproximateFirstReceiveTimestamp": str(timestamp * 1000),
        },
    }
    return {
        "ingress/slack_hello_dm.json": _signed("/slack/events", hello_body, "application/json", timestamp),
        "ingress/slack_url_verification.json": _signed("/slack/events", verification, "application/json", timestamp),
        "ingress/slack_approve_press.json": _signed(
            "/slack/interactions", interaction_body(press), "application/x-www-form-urlencoded", timestamp
        ),
        "ingress/slack_forged_signature.json": _signed(
            "/slack/events", hello_body, "application/json", timestamp, secret="not-the-signing-secret"
        ),
        "worker/sqs_hello.json": {"Records": [sqs_record(queued, QUEUE_ARN)]},
        # The worker's schedule (the expiry sweep); not signed, only its time moves.
        "worker/scheduled.json": scheduled_event(
            "mailroom-dev-WorkerFunctionExpiredApprovals", timestamp, "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa"
        ),
    }


def main() -> int:
    timestamp = int(time.time())
    for name, event in build(timestamp).items():
        path = EVENTS / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(event, indent=2) + "\n")
        print(f"wrote {path.relative_to(EVENTS.parent)}")
    print(f"Slack signatures are valid until {time.strftime('%H:%M:%S', time.localtime(timestamp + 300))}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
