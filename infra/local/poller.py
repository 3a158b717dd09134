"""Feed the worker from SQS as Lambda's SQS event source mapping does.

Long-polls the queue, hands the function a batch as an `aws:sqs` event, deletes the
records it did not report in `batchItemFailures` (ReportBatchItemFailures), and
leaves the failed ones for SQS to bring back; an invocation error fails the whole
batch. One difference, for local speed only: a failed record becomes visible again
after `retry_delay` seconds instead of the queue's full visibility timeout. Whatever
the real wait implies must still hold: after a crashed invocation, `after_crash` runs
(the local stack uses it to expire the idempotency records the crash left in
progress, as the 12 minutes of a real visibility timeout would).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.local.functions import FunctionPool, InvocationError, LocalFunction

log = logging.getLogger("mailroom.local.poller")


@dataclass(frozen=True)
class Processed:
    """One record's run: its FIFO group, deduplication id, when it ran, and whether it failed."""

    group: str
    deduplication_id: str
    started: float
    finished: float
    failed: bool
    batch: str  # records of one batch share it (one invocation runs them one after another)


class QueuePoller:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        function: LocalFunction | FunctionPool,
        batch_size: int = 10,
        retry_delay: int = 2,
        after_crash: Callable[[], None] | None = None,
        shared: bool = False,
    ):
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._function = function
        self._batch_size = batch_size
        self._retry_delay = retry_delay
        self._after_crash = after_crash
        self._shared = shared  # other pollers read the same queue
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="QueuePoller", daemon=True)
        self.batches = 0
        self.failed_records = 0
        self.journal: list[Processed] = []  # every record run, in order of completion
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
        # moto decides which FIFO groups are in flight once per receive call, and keeps
        # that during a long poll: two pollers polling at once could be handed two
        # messages of one group. SQS never does; so pollers of one queue take turns, each
        # with a short poll, and wait outside the turn when the queue is empty.
        with _receive_lock(self._queue_url) if self._shared else contextlib.nullcontext():
            received = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=self._batch_size,
                WaitTimeSeconds=0 if self._shared else wait_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        messages = received.get("Messages", [])
        if not messages and wait_seconds and self._shared:
            self._stopping.wait(0.05)
        if not messages:
            return 0
        records = [sqs_record(m, self._queue_arn) for m in messages]
        self.batches += 1
        started = time.time()
        self.handed_over.append(time.time())
        try:
            result = self._function.invoke({"Records": records})
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        except InvocationError as exc:
            log.warning("worker invocation failed, whole batch returns to the queue: %s", exc)
            failed = {r["messageId"] for r in records}
            if self._after_crash is not None:
                self._after_crash()
        finished = time.time()
        for m in messages:
            attributes = m.get("Attributes", {})
            self.journal.append(
                Processed(
                    attributes.get("MessageGroupId", ""),
                    attributes.get("MessageDeduplicationId", ""),
                    started,
                    finished,
                    m["MessageId"] in failed,
                    f"{id(self)}:{self.batches}",
                )
            )
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


_RECEIVE_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _receive_lock(queue_url: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _RECEIVE_LOCKS.setdefault(queue_url, threading.Lock())


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
