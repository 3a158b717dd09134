from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.local.emulators.gmail import GmailMailbox
from infra.local.emulators.openai import OpenAIEmulator
from mailroom.bootstrap import build_worker
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
