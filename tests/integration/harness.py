"""A Slack user, the worker and the OAuth callback, in process: drives commands
through the real handlers against moto's server and the emulators."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from functions.oauth_callback import app as callback_app
from functions.worker import app as worker_app
from infra.local.emulators.gmail import GmailMailbox
from infra.local.emulators.google import GoogleEmulator
from infra.local.emulators.openai import OpenAIEmulator
from infra.local.emulators.slack import PostedMessage, SlackEmulator
from infra.local.front import api_gateway_event
from infra.local.poller import sqs_record
from infra.local.slack_requests import (
    LOCAL_DM_CHANNEL,
    LOCAL_USER_ID,
    block_action,
    interaction_body,
    message_event,
)
from mailroom.bootstrap import build_oauth_callback, build_worker
from mailroom.slack.parsing import parse_event_callback, parse_interaction
from mailroom.vault import TokenVault

PUBLIC = "https://abc123.execute-api.us-east-1.amazonaws.com"


class Harness:
    def __init__(self, deployment, slack: SlackEmulator, google: GoogleEmulator, lambda_context):
        self.deployment, self.slack, self.google, self.context = deployment, slack, google, lambda_context
        self.worker = build_worker()
        self.callback = build_oauth_callback()
        # Set by tests that run the agent.
        self.gmail: GmailMailbox | None = None
        self.openai: OpenAIEmulator | None = None

    def openai_requests(self) -> int:
        return len(self.openai.requests) if self.openai else 0

    def run(self, command: Any) -> None:
        assert self.deliver(command) is True

    def deliver(self, command: Any, receive_count: int = 1) -> bool:
        """One delivery of `command` to the worker, as SQS would make it; True if the
        record succeeded, False if it failed (SQS would deliver it again)."""
        message = {
            "MessageId": uuid.uuid4().hex,
            "ReceiptHandle": "r",
            "Body": command.model_dump_json(),
            "Attributes": {"ApproximateReceiveCount": str(receive_count), "MessageGroupId": command.conversation_id},
        }
        record = sqs_record(message, self.deployment.physical("MessagesQueue", "Arn"))
        response = worker_app.handler({"Records": [record]}, self.context, worker=self.worker)
        return response == {"batchItemFailures": []}

    def chat(self, text: str, user: str = LOCAL_USER_ID, channel: str = LOCAL_DM_CHANNEL) -> Any:
        """A chat message as the ingress would queue it (not yet delivered)."""
        command = parse_event_callback(
            message_event(text, user=user, channel=channel, event_id=f"Ev{uuid.uuid4().hex[:10]}"), PUBLIC
        )
        assert command is not None
        return command

    def press(self, approval: PostedMessage, action: str, user: str = LOCAL_USER_ID) -> None:
        [value] = {e["value"] for b in approval.blocks for e in b.get("elements", []) if "value" in e}
        payload = block_action(action, value, message_ts=approval.ts, thread_ts=approval.thread_ts, user=user)
        command = parse_interaction(interaction_body(payload), PUBLIC)
        assert command is not None
        self.run(command)

    def say(self, text: str, user: str = LOCAL_USER_ID, channel: str = LOCAL_DM_CHANNEL) -> PostedMessage:
        before = len(self.slack.messages(channel=channel))
        command = parse_event_callback(
            message_event(text, user=user, channel=channel, event_id=f"Ev{uuid.uuid4().hex[:10]}"), PUBLIC
        )
        assert command is not None
        self.run(command)
        return self.slack.wait_for_messages(before + 1, channel=channel, timeout=10)[before]

    def consent_url(self, user: str = LOCAL_USER_ID) -> str:
        prompt = self.say("auth", user=user)
        [url] = [e["url"] for b in prompt.blocks for e in b.get("elements", []) if "url" in e]
        return str(url)

    def callback_to(self, location: str) -> tuple[int, str]:
        parts = urlsplit(location)
        assert f"{parts.scheme}://{parts.netloc}" == PUBLIC and parts.path == "/auth/callback"
        target = f"{parts.path}?{parts.query}"
        event = api_gateway_event("GET", target, {"User-Agent": "Mozilla/5.0"}, b"", parts.netloc)
        response = callback_app.handler(event, self.context, callback=self.callback)
        return response["statusCode"], response["body"]

    def link(self, user: str = LOCAL_USER_ID) -> tuple[int, str]:
        return self.callback_to(self.google.consent(self.consent_url(user)))

    def rows(self) -> list[dict[str, Any]]:
        return self.deployment.aws.client("dynamodb").scan(TableName=self.deployment.physical("TokensTable"))["Items"]

    def vault(self) -> TokenVault:
        return TokenVault(self.deployment.physical("TokensTable"), self.deployment.physical("TokensKey", "Arn"))


def logged(caplog: Any, capsys: Any) -> str:
    """Everything logged so far: each record's message, extra fields and traceback, and
    what was printed (metrics), for tests that check what never reaches the logs."""
    import logging

    formatter = logging.Formatter()
    lines = []
    for record in caplog.records:
        lines.append(f"{record.getMessage()} {record.__dict__}")
        if record.exc_info:
            lines.append(formatter.formatException(record.exc_info))
    printed = capsys.readouterr()
    return "\n".join([*lines, printed.out, printed.err])
