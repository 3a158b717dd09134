"""`MessageQueue` on SQS FIFO through boto3."""

from __future__ import annotations

from typing import Any

from botocore.config import Config

from mailroom.adapters.aws import LazyClient
from mailroom.errors import TransientError

# The ingress must ack Slack within 3 s: fail fast and let Slack's own retry, which
# reaches a fresh attempt, do the rest.
_FAST = Config(connect_timeout=1, read_timeout=1.5, retries={"max_attempts": 2, "mode": "standard"})


class SqsQueue:
    def __init__(self, queue_url: str, client: Any | None = None):
        self._queue_url = queue_url
        self._sqs = LazyClient("sqs", client, config=_FAST)

    def send(self, body: str, *, group_id: str, deduplication_id: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._sqs().send_message(
                QueueUrl=self._queue_url,
                MessageBody=body,
                MessageGroupId=group_id,
                MessageDeduplicationId=deduplication_id,
            )
        except (BotoCoreError, ClientError) as exc:
            raise TransientError(f"SQS send failed: {type(exc).__name__}") from exc

    def retry_after(self, receipt_handle: str, seconds: int) -> None:
        """Deliver a received message again in `seconds` (instead of after the queue's
        whole visibility timeout): the worker's backoff after a failure."""
        self._sqs().change_message_visibility(
            QueueUrl=self._queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )
