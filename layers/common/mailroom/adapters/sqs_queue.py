"""`MessageQueue` on SQS FIFO through boto3."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from mailroom.errors import TransientError

# The ingress must ack Slack within 3 s: fail fast and let Slack's own retry, which
# reaches a fresh attempt, do the rest.
_FAST = Config(connect_timeout=1, read_timeout=1.5, retries={"max_attempts": 2, "mode": "standard"})


class SqsQueue:
    def __init__(self, queue_url: str, client: Any | None = None):
        self._queue_url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("sqs", config=_FAST)
        return self._client

    def send(self, body: str, *, group_id: str, deduplication_id: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=body,
                MessageGroupId=group_id,
                MessageDeduplicationId=deduplication_id,
            )
        except (BotoCoreError, ClientError) as exc:
            raise TransientError(f"SQS send failed: {type(exc).__name__}") from exc
