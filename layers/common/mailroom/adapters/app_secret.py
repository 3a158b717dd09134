"""One JSON secret in Secrets Manager, read on first use and kept for a while.

What Powertools Parameters' `get_secret(transform="json", max_age=...)` does, for the
ingress only: importing Powertools' parameters package costs a sixth of a bare
handler's cold start, and the ingress needs one value of one secret.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from mailroom.adapters.aws import LazyClient
from mailroom.errors import ConfigurationError, TransientError


class AppSecret:
    def __init__(
        self,
        secret_arn: str | None,
        *,
        overrides: dict[str, str | None] | None = None,
        max_age_seconds: float = 300,
        client: Any | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._secret_arn = secret_arn
        self._overrides = overrides or {}
        self._max_age = max_age_seconds
        self._client = LazyClient("secretsmanager", client)
        self._clock = clock
        self._values: dict[str, Any] = {}
        self._read_at: float | None = None

    def get(self, name: str) -> str:
        override = self._overrides.get(name)
        if override:
            return override
        if not self._secret_arn:
            raise ConfigurationError(f"{name} is not configured: set its secret's ARN or {name}")
        if self._read_at is None or self._clock() - self._read_at > self._max_age:
            self._values = self._read(self._secret_arn)
            self._read_at = self._clock()
        value = self._values.get(name)
        if not value:
            raise ConfigurationError(f"{name} is empty in its secret; see README, 'Configure the secrets'")
        return str(value)

    def _read(self, secret_arn: str) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            text = self._client().get_secret_value(SecretId=secret_arn)["SecretString"]
        except (BotoCoreError, ClientError) as exc:
            raise TransientError(f"Secrets Manager: {type(exc).__name__}") from exc
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ConfigurationError("the secret is not a JSON object")
        return values
