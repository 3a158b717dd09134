from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.emulators.gmail import GmailMailbox
from infra.local.emulators.openai import OpenAIEmulator
from infra.local.poller import sqs_record
from mailroom.bootstrap import build_worker
from mailroom.commands import Command
from tests.integration.harness import Harness


@pytest.fixture
def harness(function_env, deployment, slack, google, lambda_context, monkeypatch) -> Harness:
    google_env = {
        "GOOGLE_AUTH_URI": google.auth_uri,
        "GOOGLE_TOKEN_URI": google.token_uri,
        "GOOGLE_REVOKE_URI": google.revoke_uri,
        "GMAIL_API_URL": google.gmail_api_url,
        "GOOGLE_CLIENT_ID": google.client_id,
        "GOOGLE_CLIENT_SECRET": google.client_secret,
    }
    function_env(
        "OAuthCallbackFunction",
        **google_env,
        SLACK_CLIENT_ID=slack.client_id,
        SLACK_CLIENT_SECRET=slack.client_secret,
        SLACK_OIDC_AUTHORIZE_URL=slack.oidc_authorize_url,
    )
    function_env("WorkerFunction", **google_env)
    return Harness(deployment, slack, google, lambda_context)


@pytest.fixture
def openai() -> Iterator[OpenAIEmulator]:
    emulator = OpenAIEmulator()
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def agent(harness: Harness, openai: OpenAIEmulator, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setenv("OPENAI_BASE_URL", openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", openai.api_key)
    harness.gmail = GmailMailbox(harness.google)
    harness.gmail.seed()
    harness.openai = openai
    harness.worker = build_worker()
    assert harness.link()[0] == 200
    return harness


@pytest.fixture
def queue(deployment):
    """Put commands through the real FIFO queue and take them out as Lambda records."""
    sqs = deployment.aws.client("sqs")
    url, arn = deployment.physical("MessagesQueue"), deployment.physical("MessagesQueue", "Arn")

    def records(*commands: Command, receive_count: int | None = None) -> dict[str, Any]:
        for c in commands:
            sqs.send_message(
                QueueUrl=url,
                MessageBody=c.model_dump_json(),
                MessageGroupId=c.conversation_id,
                MessageDeduplicationId=uuid.uuid4().hex,  # let a test redeliver one event
            )
        received: list[dict[str, Any]] = []
        for _ in range(20):
            if len(received) == len(commands):
                break
            received += sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
        assert len(received) == len(commands), "the queue did not give back what was sent"
        for message in received:  # as Lambda's poller would after the batch; frees the FIFO group
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        result = [sqs_record(m, arn) for m in received]
        if receive_count is not None:
            for record in result:
                record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
        return {"Records": result}

    return records
