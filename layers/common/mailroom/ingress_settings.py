"""The ingress's settings: the fields of `settings.IngressSettings` it reads, from the
same environment variables, without pydantic.

The ingress answers Slack within 3 s and its cold start is measured; importing pydantic
alone costs a third of a bare handler's. tests/unit/test_template.py keeps these names
and defaults equal to the pydantic model's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Self

from mailroom.errors import ConfigurationError


@dataclass(frozen=True, kw_only=True)
class IngressSettings:
    queue_url: str
    mailroom_stage: str = "dev"
    # The ingress reads one secret (see mailroom.secrets: a secret per audience).
    slack_signing_secret_arn: str | None = None
    # A signing secret set here (local runs, tests) wins over the one in Secrets Manager.
    slack_signing_secret: str | None = None
    secrets_max_age_seconds: int = 300
    # The public https origin of the API, when it is not the one requests arrive on.
    public_base_url: str | None = None
    # Slack's payloads are a few KB; anything near this is not from Slack.
    max_body_bytes: int = 512 * 1024

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Self:
        environ = os.environ if environ is None else environ
        values: dict[str, str | int] = {}
        for f in fields(cls):
            raw = environ.get(f.name.upper())
            if raw is None:
                continue
            if isinstance(f.default, int):
                try:
                    values[f.name] = int(raw)
                except ValueError as exc:
                    raise ConfigurationError(f"{f.name.upper()} must be a whole number") from exc
            else:
                values[f.name] = raw
        if "queue_url" not in values:
            raise ConfigurationError("QUEUE_URL is not set")
        return cls(**values)  # type: ignore[arg-type]
