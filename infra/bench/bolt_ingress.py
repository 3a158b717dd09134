"""The ingress as a typical Bolt-on-Lambda app writes it: Bolt's `App` verifies the
request and dispatches it, a listener for `message` and `app_mention` sends the event to
SQS FIFO, and Bolt's AWS Lambda adapter turns API Gateway's event into a Bolt request.

`process_before_response=True` (required on Lambda: nothing may run after the response)
makes Bolt ack only after the listener returns, so the queue send is inside the ack,
as in Mailroom's ingress. The token is never checked at import
(`token_verification_enabled=False`); Bolt's single-workspace authorization then calls
`auth.test` once, on the first request, and keeps the answer; the client points at
`SLACK_API_URL` when set (the bench's Slack emulator), as Mailroom's worker does.

Bolt's adapter reads API Gateway's payload 2.0 (HTTP API) as it is: the method from
`requestContext.http.method` (1.0's `httpMethod` as the fallback), the lower-cased
headers, `isBase64Encoded` and the body; no 1.0-style fields are needed.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
from slack_bolt import App
from slack_bolt.adapter.aws_lambda import SlackRequestHandler

# SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN come from the environment (Bolt's defaults).
app = App(process_before_response=True, token_verification_enabled=False)
if os.environ.get("SLACK_API_URL"):  # Mailroom's endpoint override; Bolt's per-request clients copy it
    app.client.base_url = os.environ["SLACK_API_URL"]

_sqs: Any = None


def _enqueue(body: dict[str, Any], event: dict[str, Any]) -> None:
    global _sqs
    if _sqs is None:
        _sqs = boto3.client("sqs")
    _sqs.send_message(
        QueueUrl=os.environ["QUEUE_URL"],
        MessageBody=json.dumps(body),
        MessageGroupId=f"{body['team_id']}:{event['channel']}",
        MessageDeduplicationId=body["event_id"],
    )


@app.event("message")
def on_message(body: dict[str, Any], event: dict[str, Any]) -> None:
    _enqueue(body, event)


@app.event("app_mention")
def on_mention(body: dict[str, Any], event: dict[str, Any]) -> None:
    _enqueue(body, event)


_handler = SlackRequestHandler(app)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _handler.handle(event, context)
