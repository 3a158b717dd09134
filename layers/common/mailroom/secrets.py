"""Secrets from Secrets Manager (one JSON secret), cached, with environment overrides."""

from __future__ import annotations

from typing import Literal

from mailroom.errors import ConfigurationError
from mailroom.settings import CommonSettings

SecretName = Literal[
    "SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET", "OPENAI_API_KEY"
]


class SecretStore:
    def __init__(self, settings: CommonSettings):
        self._settings = settings

    def get(self, name: SecretName) -> str:
        override = getattr(self._settings, name.lower())
        if override is not None and override.get_secret_value():
            return str(override.get_secret_value())
        if not self._settings.secret_arn:
            raise ConfigurationError(f"{name} is not configured: set SECRET_ARN or {name}")
        # Imported here so a function whose secrets all come from the environment
        # (tests, local runs) never pays for the parameters module.
        from aws_lambda_powertools.utilities import parameters

        values = parameters.get_secret(
            self._settings.secret_arn, transform="json", max_age=self._settings.secrets_max_age_seconds
        )
        value = values.get(name) if isinstance(values, dict) else None
        if not value:
            raise ConfigurationError(f"{name} is empty in the app secret; see README, 'Configure the secret'")
        return str(value)
