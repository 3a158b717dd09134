"""One settings model per function, read from the environment once and validated.

Names are the configuration contract of DESIGN.md: the template sets the table, queue
and key variables; the endpoint variables point the clients at emulators or at the
real services; a secret set in the environment overrides the Secrets Manager value.
Domain code receives these objects and never reads `os.environ` itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, SecretStr


class EnvironmentModel(BaseModel):
    """A pydantic model whose fields are read from environment variables of the same
    name in upper case. (Plain pydantic rather than pydantic-settings: the ingress's
    cold start is measured, and this is all we need of it.)"""

    model_config = ConfigDict(extra="ignore", frozen=True)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Self:
        environ = os.environ if environ is None else environ
        values = {name: environ[name.upper()] for name in cls.model_fields if name.upper() in environ}
        return cls.model_validate(values)


class CommonSettings(EnvironmentModel):
    mailroom_stage: str = "dev"
    # A secret per audience: each function is given the ARNs of the secrets it reads
    # (and IAM lets it read only those). See mailroom.secrets for what each holds.
    slack_signing_secret_arn: str | None = None
    slack_bot_secret_arn: str | None = None
    slack_oidc_secret_arn: str | None = None
    google_oauth_secret_arn: str | None = None
    openai_secret_arn: str | None = None
    # Per-secret overrides (local runs and tests); otherwise read from the secret above.
    slack_signing_secret: SecretStr | None = None
    slack_bot_token: SecretStr | None = None
    slack_client_id: SecretStr | None = None
    slack_client_secret: SecretStr | None = None
    google_client_id: SecretStr | None = None
    google_client_secret: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    secrets_max_age_seconds: int = 300

    slack_api_url: str = "https://slack.com/api/"
    # The public https origin of the API, when it is not the one requests arrive on
    # (a custom domain behind a proxy). Normally derived from the request itself.
    public_base_url: str | None = None


class IngressSettings(CommonSettings):
    queue_url: str
    # Slack's payloads are a few KB; anything near this is not from Slack.
    max_body_bytes: int = 512 * 1024


class WorkerSettings(CommonSettings):
    tokens_table: str
    oauth_state_table: str
    idempotency_table: str
    checkpoints_table: str
    approvals_table: str
    tokens_key_arn: str
    openai_model: str = "gpt-4o-mini"
    openai_temperature: float = 0.2
    # Turns of a conversation the agent keeps; older ones are dropped from memory.
    agent_keep_turns: int = 6
    # Kept at the end of each invocation for saving the turn and answering in Slack:
    # longer than the longest of those calls (Slack's 10 s timeout, DynamoDB's).
    agent_time_margin_seconds: float = 30.0
    checkpoint_ttl_seconds: int = 30 * 24 * 3600
    usage_table: str
    # Agent turns a user may start per window (each costs model tokens and Gmail quota).
    chat_rate_limit: int = 60
    chat_rate_window_seconds: int = 3600
    # How long an Approve/Cancel request for a send stays valid.
    approval_ttl_seconds: float = 24 * 3600
    # Gmail calls give up after this long (a send's lost answer is settled on redelivery).
    gmail_timeout_seconds: float = 20.0
    queue_max_receive_count: int = 4
    # The worker's own queue, to deliver a failed message again sooner (backoff).
    queue_url: str | None = None
    # Slack retries an event for minutes; a day covers any late redelivery too.
    idempotency_ttl_seconds: int = 24 * 3600
    # What a delivery of an event left for the next one (placeholder ts, failure told):
    # as long as SQS keeps the message (4 days).
    turn_record_ttl_seconds: int = 4 * 24 * 3600

    google_auth_uri: str = "https://accounts.google.com/o/oauth2/auth"
    google_token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)
    google_revoke_uri: str = "https://oauth2.googleapis.com/revoke"
    gmail_api_url: str = "https://gmail.googleapis.com/"


class CallbackSettings(CommonSettings):
    tokens_table: str
    oauth_state_table: str
    tokens_key_arn: str
    # Linking another address forgets the conversations (and approvals) of the old one.
    checkpoints_table: str
    approvals_table: str
    checkpoint_ttl_seconds: int = 30 * 24 * 3600

    # Sign in with Slack; its token and userInfo methods go through SLACK_API_URL.
    slack_oidc_authorize_url: str = "https://slack.com/openid/connect/authorize"

    google_auth_uri: str = "https://accounts.google.com/o/oauth2/auth"
    google_token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)
    google_revoke_uri: str = "https://oauth2.googleapis.com/revoke"
    gmail_api_url: str = "https://gmail.googleapis.com/"
