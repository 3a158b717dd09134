"""Secrets from Secrets Manager, a secret per audience, cached, with environment overrides.

Each credential lives in the secret of the parties that need it, and each function's
IAM policy names only the secrets it reads: the ingress can read the signing secret and
nothing else.

| secret (ARN variable)      | holds                                      | read by          |
|----------------------------|--------------------------------------------|------------------|
| SLACK_SIGNING_SECRET_ARN   | SLACK_SIGNING_SECRET                       | ingress          |
| SLACK_BOT_SECRET_ARN       | SLACK_BOT_TOKEN                            | worker, callback |
| SLACK_OIDC_SECRET_ARN      | SLACK_CLIENT_ID, SLACK_CLIENT_SECRET       | callback         |
| GOOGLE_OAUTH_SECRET_ARN    | GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET     | worker, callback |
| OPENAI_SECRET_ARN          | OPENAI_API_KEY                             | worker           |
"""

from __future__ import annotations

from typing import Literal

from mailroom.errors import ConfigurationError
from mailroom.settings import CommonSettings

SecretName = Literal[
    "SLACK_SIGNING_SECRET",
    "SLACK_BOT_TOKEN",
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
    "GOOGLE_CLIENT_ID",
    "GOOGLE_CLIENT_SECRET",
    "OPENAI_API_KEY",
]

# Which values each secret holds, by the setting that names the secret's ARN.
_SECRETS: dict[str, tuple[str, ...]] = {
    "slack_signing_secret_arn": ("SLACK_SIGNING_SECRET",),
    "slack_bot_secret_arn": ("SLACK_BOT_TOKEN",),
    "slack_oidc_secret_arn": ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"),
    "google_oauth_secret_arn": ("GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET"),
    "openai_secret_arn": ("OPENAI_API_KEY",),
}
SECRET_OF = {name: setting for setting, names in _SECRETS.items() for name in names}


class SecretStore:
    def __init__(self, settings: CommonSettings):
        self._settings = settings

    def get(self, name: SecretName) -> str:
        # An environment variable of the same name overrides (local runs and tests).
        override = getattr(self._settings, name.lower())
        if override is not None and override.get_secret_value():
            return str(override.get_secret_value())
        arn_setting = SECRET_OF[name]
        secret_arn = getattr(self._settings, arn_setting)
        if not secret_arn:
            raise ConfigurationError(f"{name} is not configured: set {arn_setting.upper()} or {name}")
        # Imported here so a function whose secrets all come from the environment
        # (tests, local runs) never pays for the parameters module.
        from aws_lambda_powertools.utilities import parameters

        values = parameters.get_secret(secret_arn, transform="json", max_age=self._settings.secrets_max_age_seconds)
        value = values.get(name) if isinstance(values, dict) else None
        if not value:
            raise ConfigurationError(f"{name} is empty in its secret; see README, 'Configure the secrets'")
        return str(value)
