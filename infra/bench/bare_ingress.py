"""The baseline the ingress is measured against: a bare Lambda handler that only
checks Slack's HMAC and sends the body to SQS FIFO. No parsing, filtering, logging,
metrics or tracing: the least any correct ingress could do."""

import base64
import hashlib
import hmac
import json
import os
import time

import boto3

_sqs = None


def handler(event, context):
    global _sqs
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    headers = event.get("headers") or {}
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return {"statusCode": 401}
    secret = os.environ["SLACK_SIGNING_SECRET"].encode()
    expected = "v0=" + hmac.new(secret, b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return {"statusCode": 401}
    payload = json.loads(raw)
    if _sqs is None:
        _sqs = boto3.client("sqs")
    _sqs.send_message(
        QueueUrl=os.environ["QUEUE_URL"],
        MessageBody=raw.decode(),
        MessageGroupId=payload["team_id"] + ":" + payload["event"]["channel"],
        MessageDeduplicationId=payload["event_id"],
    )
    return {"statusCode": 200}
