"""Shared fixtures: embedded AWS over HTTP, a fresh deployment of the template per
test, emulators, and real-shaped Lambda events and contexts."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from infra.local.aws import EmbeddedAws, aws_environment, provision
from infra.local.emulators.google import GoogleEmulator
from infra.local.emulators.slack import SlackEmulator
from infra.local.lambda_child import LocalLambdaContext
from infra.local.slack_requests import LOCAL_BOT_USER_ID, LOCAL_SIGNING_SECRET, LOCAL_TEAM_ID
from infra.local.template import Template


@pytest.fixture(scope="session")
def embedded_aws() -> Iterator[EmbeddedAws]:
    aws = EmbeddedAws().start()
    with aws_environment(aws.env):
        yield aws
    aws.stop()


@dataclass
class Deployment:
    """The template's resources, freshly created on embedded AWS for one test."""

    aws: EmbeddedAws
    template: Template

    def physical(self, logical_id: str, attribute: str = "Ref") -> str:
        return self.template.physical[logical_id][attribute]

    def function_env(self, logical_id: str) -> dict[str, str]:
        spec = self.template.functions()[logical_id]
        return {name: str(self.template.resolve(value)) for name, value in spec.environment.items()}

    def queued(self, logical_id: str = "MessagesQueue") -> list[dict[str, Any]]:
        """Receive (and leave invisible) what is in a queue right now."""
        sqs = self.aws.client("sqs")
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.physical(logical_id), MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return messages
            messages += batch


@pytest.fixture
def deployment(embedded_aws: EmbeddedAws) -> Deployment:
    stage = "t" + uuid.uuid4().hex[:10]
    template = Template.load(parameter_overrides={"Stage": stage})
    provision(template, embedded_aws, stack_name=f"mailroom-{stage}")
    return Deployment(embedded_aws, template)


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(bot_user_id=LOCAL_BOT_USER_ID, team_id=LOCAL_TEAM_ID)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def google() -> Iterator[GoogleEmulator]:
    emulator = GoogleEmulator()
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def function_env(monkeypatch: pytest.MonkeyPatch, deployment: Deployment, slack: SlackEmulator):
    """Set this process's environment to what the template gives one function."""

    def apply(logical_id: str, **extra: str) -> dict[str, str]:
        env = deployment.function_env(logical_id) | {
            "SLACK_API_URL": slack.api_url,
            "SLACK_SIGNING_SECRET": LOCAL_SIGNING_SECRET,
            "SLACK_BOT_TOKEN": slack.bot_token,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_LAMBDA_FUNCTION_NAME": logical_id,
        }
        env |= extra
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return env

    return apply


@pytest.fixture
def lambda_context() -> LocalLambdaContext:
    import time

    return LocalLambdaContext("test-function", uuid.uuid4().hex, time.time() + 60, 1024)


def pytest_configure(config: pytest.Config) -> None:
    # Nothing in the tests may reach a real AWS account, whatever the machine has set.
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
