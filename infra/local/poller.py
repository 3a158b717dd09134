"""Feed the worker from SQS as Lambda's SQS event source mapping does.

Long-polls the queue, hands the function a batch as an `aws:sqs` event, deletes the
records it did not report in `batchItemFailures` (ReportBatchItemFailures), and
leaves the failed ones for SQS to bring back; an invocation error fails the whole
batch. One difference, for local speed only: a failed record becomes visible again
after `retry_delay` seconds instead of the queue's full visibility timeout.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any

from infra.local.functions import InvocationError, LocalFunction

log = logging.getLogger("mailroom.local.poller")


class QueuePoller:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        function: LocalFunction,
        batch_size: int = 10,
        retry_delay: int = 2,
    ):
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._function = function
        self._batch_size = batch_size
        self._retry_delay = retry_delay
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="QueuePoller", daemon=True)
        self.batches = 0
        self.failed_records = 0
        # When each batch was handed to the function (time.time()), for benchmarks.
        self.handed_over: list[float] = []

    def start(self) -> QueuePoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once(wait_seconds=1)
            except Exception:
                log.exception("poll failed")
                time.sleep(0.5)

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receive one batch and run it; returns how many records it held."""
        received = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = received.get("Messages", [])
        if not messages:
            return 0
        records = [sqs_record(m, self._queue_arn) for m in messages]
        self.batches += 1
        self.handed_over.append(time.time())
        try:
            result = self._function.invoke({"Records": records})
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        except InvocationError as exc:
            log.warning("worker invocation failed, whole batch returns to the queue: %s", exc)
            failed = {r["messageId"] for r in records}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        for message in messages:
            if message["MessageId"] in failed:
                self.failed_records += 1
                self._sqs.change_message_visibility(
                    QueueUrl=self._queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=self._retry_delay,
                )
        return len(messages)


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One received SQS message as a record of Lambda's `aws:sqs` event."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }
