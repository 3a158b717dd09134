"""The worker: run each queued command once, answer the user, never lose a message.

Records arrive one at a time (BatchSize 1; the FIFO group keeps each conversation in
order while others run in parallel). A failure is classified once (mailroom.errors):

- transient: the record fails, SQS delivers it again (after 30 s, 60 s, 120 s...: the
  worker shortens the message's visibility timeout); on the last delivery the user is
  told, and the message goes to the dead-letter queue;
- permanent: the user is told why; the record is done;
- bug: the user is told with the reference, the error is logged (types and code
  locations, never messages), and the record fails, so that after MaxReceiveCount
  deliveries it is kept in the dead-letter queue for an operator to redrive.

The user hears of a failure once per Slack event (TurnRecords), in the "Working on
it…" placeholder (or streamed answer) when there is one. What each delivery posts is
marked in Slack, and a delivery that may repeat an earlier one reuses what it finds
there instead of posting again (mailroom.reply_once).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailroom import replies
from mailroom.commands import Command
from mailroom.errors import Failure, MessageGone, PermanentError, chain, classify, describe
from mailroom.observability import logger, metrics
from mailroom.ports import Chat
from mailroom.reply_once import OnceChat
from mailroom.turn_records import TurnRecords

if TYPE_CHECKING:
    from mailroom.adapters.sqs_queue import SqsQueue

CommandHandler = Callable[[Command], None]

# The first redelivery of a failed message after this, then twice as long each time.
RETRY_BACKOFF_SECONDS = 30


class RecordFailed(Exception):
    """A record that must fail (SQS delivers it again, then the DLQ); says only its kind."""


class CommandRouter:
    """Maps a command to the function that carries it out."""

    def __init__(self, chat: Chat, handlers: Mapping[str, CommandHandler] | None = None):
        self._chat = chat
        self._handlers = dict(handlers or {})

    def __call__(self, command: Command) -> None:
        handler = self._handlers.get(command.name)
        if handler is not None:
            handler(command)
        elif command.kind == "message" and command.name == "hello":
            self.hello(command)
        else:
            # Only a message queued by another version of Mailroom (mid-deploy) gets here.
            logger.warning("no handler for the command", extra={"command": command.name})
            self._chat.post(command.channel_id, replies.unknown_command(command.name), thread_ts=command.thread_ts)

    def hello(self, command: Command) -> None:
        text, blocks = replies.hello()
        self._chat.post(command.channel_id, text, thread_ts=command.thread_ts, blocks=blocks)


class InvocationClock:
    """How long the current Lambda invocation has left, for work that must stop in time."""

    def __init__(self) -> None:
        self._context: LambdaContext | None = None

    def start(self, context: LambdaContext) -> None:
        self._context = context

    def seconds_left(self) -> float:
        if self._context is None:
            return 900.0  # Lambda's longest timeout: outside Lambda there is no limit to honour
        return self._context.get_remaining_time_in_millis() / 1000


class Worker:
    def __init__(
        self,
        chat: Chat,
        route: Callable[[Command], None],
        idempotency_store: BasePersistenceLayer,
        *,
        idempotency_ttl_seconds: int = 24 * 3600,
        max_receive_count: int = 4,
        clock: InvocationClock | None = None,
        records: TurnRecords | None = None,
        queue: SqsQueue | None = None,
        give_up: Callable[[Command], None] | None = None,
        sweep: Callable[[], int] | None = None,
    ):
        self.clock = clock or InvocationClock()
        # Called when a command will not run again (its last delivery failed, or a
        # permanent refusal): an approved send never attempted must end, not wait for a
        # DLQ redrive (see ApprovalDesk.abandon).
        self._give_up = give_up
        # The scheduled expiry sweep (mailroom.approval_sweep), run by `handle_schedule`.
        self._sweep = sweep
        self._records = records
        self._queue = queue
        self._chat = chat
        # Marks what each delivery posts and, on a repeat, finds what an earlier one did.
        self._replies = chat if isinstance(chat, OnceChat) else None
        self._route = route
        self._max_receive_count = max_receive_count
        self._idempotency = IdempotencyConfig(
            event_key_jmespath="event_id",
            expires_after_seconds=idempotency_ttl_seconds,
            raise_on_no_idempotency_key=True,
        )
        # One record per Slack event: a redelivery or a late Slack retry finds it and
        # does nothing; a failure deletes it so that the retry runs again.
        self._run_once = idempotent_function(
            data_keyword_argument="command", config=self._idempotency, persistence_store=idempotency_store
        )(self._run)

    def handle_batch(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        self._idempotency.register_lambda_context(context)
        self.clock.start(context)
        processor = SqsFifoPartialProcessor(skip_group_on_error=True)
        # Report a batch whose records all failed as item failures too, rather than as a
        # failed invocation: SQS retries the same records either way, and a transient
        # outage should not count as a worker error (that alarm is for bugs).
        processor.raise_on_entire_batch_failure = False
        response = process_partial_response(
            event=event, record_handler=self.process_record, processor=processor, context=context
        )
        return dict(response)

    def handle_schedule(self, context: LambdaContext) -> dict[str, Any]:
        """The scheduled tick (EventBridge): end the approval requests that expired unpressed.
        A failure raises, so the invocation fails and is logged; the next tick tries again."""
        self.clock.start(context)
        expired = self._sweep() if self._sweep is not None else 0
        return {"expired": expired}

    def process_record(self, record: SQSRecord) -> None:
        try:
            command = Command.model_validate_json(record.body)
        except ValueError:  # InvalidCommand (and pydantic's ValidationError) are ValueErrors
            # A message we cannot read will not become readable on retry: drop it loudly.
            logger.error("unreadable queued message dropped", extra={"message_id": record.message_id})
            metrics.add_metric(name="UnreadableMessages", unit="Count", value=1)
            return
        logger.set_correlation_id(command.event_id)
        attempt = int(record.attributes.approximate_receive_count or 1)
        # Only a delivery that may repeat an earlier one reads Slack back first.
        # A DLQ redrive starts a new SQS message (its receive count is 1 again): an
        # event older than a first delivery ever is counts as a repeat too.
        repeat = attempt > 1 or command.retry_num > 0 or _late(command, time.time())
        first_received = _first_received(record)
        with (
            self._replies.delivering(command, repeat=repeat, first_received=first_received)
            if self._replies
            else contextlib.nullcontext()
        ):
            self._process(command, record, attempt)

    def _process(self, command: Command, record: SQSRecord, attempt: int) -> None:
        try:
            self._run_once(command=command.model_dump(mode="json"))
        except IdempotencyAlreadyInProgressError:
            # Another invocation holds it (or one that died still does); SQS brings it back
            # after the visibility timeout. On the last delivery it goes to the DLQ: say so.
            if attempt >= self._max_receive_count:
                logger.error("giving up: still in progress elsewhere", extra={"attempt": attempt})
                self._tell_once(command, replies.busy(command.event_id), first_time=True)
            raise
        except Exception as exc:
            if not self._failed(command, exc, attempt):
                self._retry_soon(record, attempt)
                # The batch processor keeps (and at debug level logs) what is raised here:
                # hand it the failure's kind, never the original message.
                raise RecordFailed(f"{classify(exc).value}: {type(exc).__name__}") from None

    def _retry_soon(self, record: SQSRecord, attempt: int) -> None:
        """Bring a failed message back after a backoff rather than the queue's whole
        visibility timeout (6x the worker's), so the user hears back in minutes."""
        if self._queue is None or attempt >= self._max_receive_count:
            return
        try:
            self._queue.retry_after(record.receipt_handle, RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1))
        except Exception as exc:  # then SQS's visibility timeout brings it back
            logger.warning("could not shorten the retry delay", extra=describe(exc))

    def _failed(self, command: Command, exc: Exception, attempt: int) -> bool:
        """Log and tell the user about a failed command; True if the record is done,
        False if it must fail (SQS delivers it again, then the dead-letter queue)."""
        kind = classify(exc)
        detail = {"command": command.name, "attempt": attempt, "failure": kind.value, **describe(exc)}
        last = attempt >= self._max_receive_count
        if kind is Failure.TRANSIENT:
            metrics.add_metric(name="TransientFailures", unit="Count", value=1)
            if last:
                logger.error("giving up after retries", extra=detail)
                self._tell_once(command, replies.busy(command.event_id, _failing_service(exc)), first_time=True)
                self._ended(command)
            else:
                logger.warning("will retry", extra=detail)
            return False
        if kind is Failure.PERMANENT:
            logger.warning("command refused", extra=detail)
            self._tell_once(command, _permanent_reply(exc, command.event_id), first_time=True)
            self._ended(command)
            return True
        # A bug: no retry will fix it, but its message is kept for the DLQ and a redrive.
        # The user is told now, so its open work ends now: a send they heard failed must
        # not go out on a later delivery or a redrive.
        logger.error("command failed", extra=detail)
        metrics.add_metric(name="CommandFailures", unit="Count", value=1)
        self._tell_once(command, replies.failure(command.event_id), first_time=attempt == 1)
        self._ended(command)
        return False

    def _ended(self, command: Command) -> None:
        if self._give_up is None:
            return
        try:
            self._give_up(command)
        except Exception as exc:
            logger.warning("could not close the command's open work", extra=describe(exc))

    def _run(self, command: dict[str, Any]) -> None:
        parsed = Command.model_validate(command)
        logger.info("running", extra={"kind": parsed.kind, "command": parsed.name, "retry_num": parsed.retry_num})
        self._route(parsed)
        metrics.add_metric(name="CommandsHandled", unit="Count", value=1)

    def _tell_once(self, command: Command, text: str, *, first_time: bool) -> None:
        """Tell the user, unless they were told of this event's failure already (in the
        turn's placeholder or stream, if it has one). Without the record, `first_time` decides."""
        if self._records is not None:
            try:
                first_time = self._records.claim_failure_notice(command.event_id)
            except Exception as exc:
                logger.warning("turn record unavailable", extra=describe(exc))
        if not first_time:
            return
        try:
            placeholder = self._told_in()
            if placeholder is not None:
                try:
                    self._chat.update(command.channel_id, placeholder, text)
                    return
                except MessageGone:
                    pass  # deleted by the user: post instead
            if not command.is_direct_message:
                self._chat.post_ephemeral(command.channel_id, command.user_id, text, thread_ts=command.thread_ts)
            elif self._replies is not None:
                self._replies.post_notice(command.channel_id, text, thread_ts=command.thread_ts)
            else:
                self._chat.post(command.channel_id, text, thread_ts=command.thread_ts)
        except Exception as exc:
            logger.warning("could not tell the user about the failure", extra=describe(exc))

    def _told_in(self) -> str | None:
        if self._replies is None:
            return None
        try:
            return self._replies.told_in()
        except Exception as exc:  # Slack could not be read back: tell in a message of its own
            logger.warning("could not find the turn's placeholder", extra=describe(exc))
            return None


def _failing_service(exc: Exception) -> str | None:
    """Which service the user can be told was down: Gmail or the model; None when unsure."""
    for link in chain(exc):
        module = type(link).__module__
        if module.startswith(("googleapiclient", "httplib2", "google.auth")) or str(link).startswith("Gmail"):
            return "Gmail"
        if module.startswith("openai"):
            return "the AI model"
    return None


def _permanent_reply(exc: Exception, reference: str) -> str:
    for link in chain(exc):
        if isinstance(link, PermanentError):
            return link.reply
        if type(link).__name__ in ("LinkBroken", "GrantRevoked", "VaultError"):
            return replies.link_broken()
    return replies.cannot_do(reference)


# A first delivery comes seconds after the user's message; one this late is a redrive
# (or a long outage), which may repeat what an earlier delivery posted.
LATE_SECONDS = 300


def _late(command: Command, now: float) -> bool:
    try:
        return command.message_ts is not None and now - float(command.message_ts) > LATE_SECONDS
    except ValueError:
        return False


def _first_received(record: SQSRecord) -> float | None:
    try:
        return int(record.attributes.approximate_first_receive_timestamp) / 1000
    except (KeyError, TypeError, ValueError):
        return None
