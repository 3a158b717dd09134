"""The ingress: verify a Slack request, queue one message for the worker, ack at once.

Slack retries any request not acked within 3 s, so this does the least work that is
safe: no Slack or Google calls, nothing heavy imported. A retry is never dropped here:
if its first try failed before reaching the queue it must still be delivered; the
FIFO deduplication id (Slack's event_id) and the worker's idempotency record make the
duplicates harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from mailroom.commands import Command
from mailroom.errors import TransientError, describe
from mailroom.http import HttpRequest, HttpResponse, UnreadableBody
from mailroom.ingress_settings import IngressSettings
from mailroom.observability import logger, metrics
from mailroom.ports import MessageQueue
from mailroom.slack.parsing import MalformedPayload, load_event_body, parse_event_callback, parse_interaction
from mailroom.slack.signature import is_valid_slack_request

# An Edit press only opens a modal (read-only, see approval_desk._open_editor) and must
# reach the worker within the trigger id's 3 s: it gets a FIFO group of its own so it
# never waits behind a turn of the same conversation.
EDIT = "edit_send"

EVENTS_PATH = "/slack/events"
INTERACTIONS_PATH = "/slack/interactions"


class Secrets(Protocol):
    def get(self, name: str) -> str: ...


class Ingress:
    def __init__(
        self,
        settings: IngressSettings,
        secrets: Secrets,
        queue: MessageQueue,
        clock: Callable[[], float] = time.time,
    ):
        self._settings = settings
        self._secrets = secrets
        self._queue = queue
        self._clock = clock

    def handle_api_gateway(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            request = HttpRequest.from_api_gateway(event)
        except UnreadableBody as exc:
            return self._refuse(400, "malformed", str(exc)).to_api_gateway()
        return self.handle(request).to_api_gateway()

    def handle(self, request: HttpRequest) -> HttpResponse:
        if request.path not in (EVENTS_PATH, INTERACTIONS_PATH):
            return self._refuse(404, "not_found")
        if len(request.body) > self._settings.max_body_bytes:
            return self._refuse(413, "too_large")
        try:
            signing_secret = self._secrets.get("SLACK_SIGNING_SECRET")
        except TransientError as exc:
            # Not acked: Slack retries, by then Secrets Manager has likely recovered.
            logger.error("could not read the signing secret", extra=describe(exc))
            return HttpResponse(503, "try again")
        if not is_valid_slack_request(signing_secret, request.headers, request.body, self._clock):
            return self._refuse(401, "bad_signature")

        origin = self._settings.public_base_url or request.origin
        retry_num = _retry_num(request)
        try:
            if request.path == INTERACTIONS_PATH:
                command = parse_interaction(request.body, origin)
            else:
                payload = load_event_body(request.body)
                if payload["type"] == "url_verification":
                    metrics.add_metric(name="UrlVerifications", unit="Count", value=1)
                    return HttpResponse.json(200, {"challenge": payload.get("challenge", "")})
                if payload["type"] != "event_callback":
                    return self._ignore(f"payload type {payload['type']}")
                command = parse_event_callback(payload, origin, retry_num)
        except MalformedPayload as exc:
            return self._refuse(400, "malformed", str(exc))
        except (AttributeError, TypeError, ValueError, LookupError) as exc:
            # Signed, but shaped as the parser did not expect (a field of the wrong type):
            # still malformed, never a 500. The type only: a message could echo the body.
            logger.error("unexpected payload shape", extra={"error_type": type(exc).__name__})
            return self._refuse(400, "malformed")

        if command is None:
            return self._ignore("not for the bot")
        return self._enqueue(command, retry_num)

    def _enqueue(self, command: Command, retry_num: int) -> HttpResponse:
        logger.set_correlation_id(command.event_id)
        group = f"{command.conversation_id}:edit" if command.name == EDIT else command.conversation_id
        try:
            self._queue.send(command.model_dump_json(), group_id=group, deduplication_id=command.event_id)
        except TransientError as exc:
            # Not acked: Slack retries, and that retry gets a fresh attempt at the queue.
            logger.error("could not queue the request", extra={"retry_num": retry_num, **describe(exc)})
            metrics.add_metric(name="QueueSendFailures", unit="Count", value=1)
            return HttpResponse(503, "try again")
        logger.info("queued", extra={"kind": command.kind, "command": command.name, "retry_num": retry_num})
        metrics.add_metric(name="MessagesQueued", unit="Count", value=1)
        return HttpResponse(200)

    def _ignore(self, reason: str) -> HttpResponse:
        logger.debug("ignored", extra={"reason": reason})
        metrics.add_metric(name="RequestsIgnored", unit="Count", value=1)
        return HttpResponse(200)

    def _refuse(self, status: int, reason: str, detail: str = "") -> HttpResponse:
        logger.warning("refused", extra={"status": status, "reason": reason, "detail": detail})
        metrics.add_metric(name="RequestsRefused", unit="Count", value=1)
        return HttpResponse(status, reason)


def _retry_num(request: HttpRequest) -> int:
    value = request.headers.get("x-slack-retry-num", "0")
    return int(value) if value.isdigit() else 0
