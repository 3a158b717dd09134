"""Errors the domain raises, and the one place that decides what any exception means.

`classify` sorts every exception the worker can meet into what to do about it:

- transient: a dependency is throttling or briefly down (AWS throttling and 5xx, Secrets
  Manager, KMS throttling, Slack 5xx/429, Gmail 429/5xx, model 5xx/429/timeouts, any
  transport error): SQS retries the message; the user is told on the last try.
- permanent: the request cannot be done as asked and a retry will not change that: the
  user is told why.
- bug: anything else (our code, or a deployment an operator must fix): the user is told
  with the reference, and the message is kept for the dead-letter queue.

`describe` is what may be logged about an exception: types, codes, statuses and code
locations, never its message (messages can carry search queries, recipients, bodies).

Third-party exceptions are recognised by their qualified class names, so this module
imports nothing heavy and works whichever of those libraries a function has loaded.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from enum import Enum
from typing import Any


class MailroomError(Exception):
    """Base of the errors below."""


class ConfigurationError(MailroomError):
    """A setting or secret is missing: an operator must fix the deployment."""


class TransientError(MailroomError):
    """Worth retrying later (a dependency is throttling or briefly down)."""


class PermanentError(MailroomError):
    """The request cannot be done, whatever the retries; `reply` tells the user why."""

    def __init__(self, message: str, reply: str):
        super().__init__(message)
        self.reply = reply


class ToolInputError(MailroomError):
    """Something the model asked for that cannot be done as asked (an unknown message
    id, a bad query): reported back to the model so it can correct itself."""


class MessageGone(MailroomError):
    """The Slack message to edit is gone (deleted by the user): post a new one instead."""


class OutOfTime(MailroomError):
    """The invocation's time budget is spent: no further call may start."""


class Failure(Enum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    BUG = "bug"


# AWS error codes that mean "try again later", whatever the service.
_AWS_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionInProgressException",
        "TransactionConflictException",
        "KMSInternalException",
        "LimitExceededException",
    }
)

_SECRETS_MANAGER_OPERATIONS = frozenset({"GetSecretValue", "DescribeSecret", "BatchGetSecretValue"})

# Class names (module.qualname prefixes) that are transport failures or outages.
_TRANSIENT_CLASSES = (
    "botocore.exceptions.BotoCoreError",  # connection, endpoint and read timeouts
    "aws_lambda_powertools.utilities.parameters.exceptions.GetParameterError",  # Secrets Manager
    "aws_lambda_powertools.utilities.parameters.exceptions.GetSecretError",
    "aws_lambda_powertools.utilities.idempotency.exceptions.IdempotencyPersistenceLayerError",
    "aws_lambda_powertools.utilities.idempotency.exceptions.IdempotencyPersistenceConnectionError",
    "aws_lambda_powertools.utilities.idempotency.exceptions.IdempotencyPersistenceConsistencyError",
    "aws_lambda_powertools.utilities.idempotency.exceptions.IdempotencyAlreadyInProgressError",
    "openai.APIConnectionError",  # includes APITimeoutError
    "openai.RateLimitError",
    "openai.InternalServerError",
    "httplib2.error.HttpLib2Error",
    "httplib2.HttpLib2Error",
    "google.auth.exceptions.TransportError",
    "requests.exceptions.ConnectionError",
    "requests.exceptions.Timeout",
    "httpx.TransportError",
)

_PERMANENT_CLASSES = (
    "mailroom.errors.PermanentError",
    "mailroom.errors.ToolInputError",
    "mailroom.gmail_link.LinkBroken",
    "mailroom.adapters.google_oauth.GrantRevoked",
    "mailroom.adapters.google_oauth.OAuthExchangeError",
    "mailroom.vault.VaultError",
)


def _names(exc: BaseException) -> set[str]:
    names = set()
    for cls in type(exc).__mro__:
        names.add(f"{cls.__module__}.{cls.__qualname__}")
        # openai re-exports its errors at the package top level: match either spelling.
        names.add(f"{cls.__module__.split('.')[0]}.{cls.__qualname__}")
    return names


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes, outermost first (each once)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def _status(exc: BaseException) -> int | None:
    """The HTTP status an API error carries (googleapiclient, openai, slack-sdk), if any."""
    for attribute in ("status_code", "status"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def aws_error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code")
        return str(code) if code else None
    return None


def _classify_one(exc: BaseException) -> Failure | None:
    names = _names(exc)
    if "mailroom.errors.TransientError" in names or "mailroom.errors.OutOfTime" in names:
        return Failure.TRANSIENT
    if any(name in names for name in _PERMANENT_CLASSES):
        return Failure.PERMANENT
    if "mailroom.errors.ConfigurationError" in names:
        return Failure.BUG
    if "botocore.exceptions.ClientError" in names:
        code = aws_error_code(exc) or ""
        status = (getattr(exc, "response", {}) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _AWS_TRANSIENT_CODES or (isinstance(status, int) and status >= 500):
            return Failure.TRANSIENT
        if getattr(exc, "operation_name", None) in _SECRETS_MANAGER_OPERATIONS:
            return Failure.TRANSIENT  # any Secrets Manager error: the secret is read again later
        return None
    if any(name in names for name in _TRANSIENT_CLASSES):
        return Failure.TRANSIENT
    if "googleapiclient.errors.HttpError" in names or "slack_sdk.errors.SlackApiError" in names:
        status = _status(exc)
        if status is not None and (status == 429 or status >= 500):
            return Failure.TRANSIENT
        return None
    if isinstance(exc, TimeoutError | ConnectionError):
        return Failure.TRANSIENT
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError | PermissionError):
        return Failure.TRANSIENT  # sockets: refused, reset, unreachable, DNS
    return None


def classify(exc: BaseException) -> Failure:
    """What `exc` means for the message being handled (see the module's docstring).
    The outermost exception that says something decides; wrappers defer to their cause."""
    for link in chain(exc):
        found = _classify_one(link)
        if found is not None:
            return found
    return Failure.BUG


def is_timeout(exc: BaseException) -> bool:
    """A call that ran out of its time (socket, HTTP client or model timeout)."""
    for link in chain(exc):
        names = _names(link)
        if isinstance(link, TimeoutError) or any(
            n.endswith(("APITimeoutError", "ReadTimeoutError", "ConnectTimeoutError", "ReadTimeout", "ConnectTimeout"))
            for n in names
        ):
            return True
    return False


def describe(exc: BaseException) -> dict[str, Any]:
    """What may be logged about `exc`: the types along its chain, AWS error codes and HTTP
    statuses, and where it was raised (file, line, function). Never a message."""
    links = list(chain(exc))
    detail: dict[str, Any] = {
        "error_type": type(exc).__name__,
        "error_chain": [f"{type(link).__module__}.{type(link).__qualname__}" for link in links],
    }
    codes = [code for link in links if (code := aws_error_code(link))]
    if codes:
        detail["aws_error_code"] = codes[0]
    statuses = [status for link in links if (status := _status(link)) is not None]
    if statuses:
        detail["http_status"] = statuses[0]
    innermost = links[-1]
    frames = traceback.extract_tb(innermost.__traceback__)[-6:]
    if frames:
        detail["raised_at"] = [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}:{f.name}" for f in frames]
    return detail
