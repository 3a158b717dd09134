from __future__ import annotations

import pytest

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
    function_env("OAuthCallbackFunction", **google_env)
    function_env("WorkerFunction", **google_env)
    return Harness(deployment, slack, google, lambda_context)
