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
    LOCAL_TEAM_ID,
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
        # The browser's cookies for the API's origin (the link flow binds to them).
        self.cookies: dict[str, str] = {}

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

    def button_url(self, user: str = LOCAL_USER_ID, channel: str = LOCAL_DM_CHANNEL) -> str:
        """The Connect Gmail button's URL from `auth`."""
        prompt = self.say("auth", user=user, channel=channel)
        [url] = [e["url"] for b in prompt.blocks for e in b.get("elements", []) if "url" in e]
        return str(url)

    def consent_url(
        self, user: str = LOCAL_USER_ID, *, signed_in_as: str | None = None, channel: str = LOCAL_DM_CHANNEL
    ) -> str:
        """Press Connect Gmail as `user` and sign in with Slack as `signed_in_as` (the
        same user unless given): Google's consent URL this browser is sent on to."""
        return self.through_slack(self.button_url(user, channel), signed_in_as or user)

    def through_slack(self, button_url: str, signed_in_as: str = LOCAL_USER_ID) -> str:
        """Open the button's URL in this browser and sign in with Slack; the Location
        the Slack step answers with (Google's consent page when it passes)."""
        status, headers, _ = self.browse(button_url)
        assert status == 302, (status, headers)
        self.slack.sign_in_as(signed_in_as, LOCAL_TEAM_ID)
        status, headers, body = self.browse(self.slack.authorize(headers["Location"]))
        assert status == 302, (status, body)
        return headers["Location"]

    def browse(self, location: str) -> tuple[int, dict[str, str], str]:
        """GET one of the API's URLs as this browser does: with its cookies, keeping
        the ones the answer sets."""
        parts = urlsplit(location)
        assert f"{parts.scheme}://{parts.netloc}" == PUBLIC, location
        headers = {"User-Agent": "Mozilla/5.0"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        event = api_gateway_event("GET", f"{parts.path}?{parts.query}", headers, b"", parts.netloc)
        response = callback_app.handler(event, self.context, callback=self.callback)
        for cookie in response.get("cookies", []):
            name, _, value = cookie.split(";")[0].partition("=")
            self.cookies[name] = value
        return response["statusCode"], response["headers"], response["body"]

    def callback_to(self, location: str) -> tuple[int, str]:
        parts = urlsplit(location)
        assert parts.path == "/auth/callback"
        status, _, body = self.browse(location)
        return status, body

    def link(self, user: str = LOCAL_USER_ID, channel: str = LOCAL_DM_CHANNEL) -> tuple[int, str]:
        return self.callback_to(self.google.consent(self.consent_url(user, channel=channel)))

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
