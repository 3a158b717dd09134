"""The worker: run each queued command once, answer the user, never lose a message.

Records arrive in FIFO batches; a failed record fails the rest of its conversation's
group (Powertools' FIFO processor), so one conversation's messages stay in order while
other conversations go on. A record either completes, or is retried by SQS; on its
last attempt, or on an error a retry cannot fix, the user is told with a reference id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.typing import LambdaContext

from mailroom import replies
from mailroom.commands import Command
from mailroom.errors import TransientError
from mailroom.observability import logger, metrics
from mailroom.ports import Chat

CommandHandler = Callable[[Command], None]


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
    ):
        self.clock = clock or InvocationClock()
        self._chat = chat
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
        try:
            self._run_once(command=command.model_dump(mode="json"))
        except IdempotencyAlreadyInProgressError:
            raise  # another invocation holds it; SQS brings it back after the visibility timeout
        except TransientError as exc:
            metrics.add_metric(name="TransientFailures", unit="Count", value=1)
            if attempt >= self._max_receive_count:
                logger.error("giving up after retries", extra={"attempt": attempt, "error": str(exc)})
                self._tell_user(command, replies.busy(command.event_id))
            else:
                logger.warning("will retry", extra={"attempt": attempt, "error": str(exc)})
            raise
        except Exception:
            # A bug or a permanent refusal: retrying will not help, but the user must hear back.
            logger.exception("command failed", extra={"command": command.name})
            metrics.add_metric(name="CommandFailures", unit="Count", value=1)
            self._tell_user(command, replies.failure(command.event_id))

    def _run(self, command: dict[str, Any]) -> None:
        parsed = Command.model_validate(command)
        logger.info("running", extra={"kind": parsed.kind, "command": parsed.name, "retry_num": parsed.retry_num})
        self._route(parsed)
        metrics.add_metric(name="CommandsHandled", unit="Count", value=1)

    def _tell_user(self, command: Command, text: str) -> None:
        try:
            self._chat.post(command.channel_id, text, thread_ts=command.thread_ts)
        except Exception:
            logger.exception("could not tell the user about the failure")
