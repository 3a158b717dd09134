"""Every exception the worker can meet, classified in one place; and what may be logged."""

from __future__ import annotations

from typing import Any

import httplib2
import httpx
import openai
import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyPersistenceLayerError
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from googleapiclient.errors import HttpError
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from mailroom.errors import (
    ConfigurationError,
    Failure,
    OutOfTime,
    PermanentError,
    ToolInputError,
    TransientError,
    classify,
    describe,
    is_timeout,
)
from mailroom.gmail_link import LinkBroken
from mailroom.vault import VaultError

_REQUEST: Any = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")


def aws(code: str, operation: str = "PutItem", status: int = 400) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, operation)


def gmail(status: int) -> HttpError:
    return HttpError(httplib2.Response({"status": status}), b"{}", uri="https://gmail.googleapis.com/x?q=secret")


def openai_status(cls: type[openai.APIStatusError], status: int) -> openai.APIStatusError:
    response: Any = httpx.Response(status, request=_REQUEST)
    return cls("m", response=response, body=None)


def slack(status: int, error: str) -> SlackApiError:
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="u",
        req_args={},
        data={"ok": False, "error": error},
        headers={},
        status_code=status,
    )
    return SlackApiError("m", response)


def caused(outer: Exception, cause: BaseException) -> Exception:
    try:
        raise outer from cause
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    "exc",
    [
        aws("ProvisionedThroughputExceededException"),
        aws("ThrottlingException", "Decrypt"),
        aws("RequestLimitExceeded"),
        aws("InternalServerError", status=500),
        aws("ServiceUnavailable", status=503),
        aws("ResourceNotFoundException", "GetSecretValue"),  # any Secrets Manager error
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
        GetParameterError("secret unavailable"),
        IdempotencyPersistenceLayerError("store down"),
        gmail(429),
        gmail(503),
        openai_status(openai.InternalServerError, 500),
        openai_status(openai.RateLimitError, 429),
        openai.APITimeoutError(request=_REQUEST),
        openai.APIConnectionError(request=_REQUEST),
        slack(503, "service_unavailable"),
        slack(429, "ratelimited"),
        TimeoutError(),
        TimeoutError(),
        ConnectionResetError(),
        ConnectionRefusedError(),
        httplib2.ServerNotFoundError("no dns"),
        TransientError("x"),
        caused(RuntimeError("wrapper"), aws("ThrottlingException")),
    ],
    ids=repr,
)
def test_transient(exc: BaseException):
    assert classify(exc) is Failure.TRANSIENT


@pytest.mark.parametrize(
    "exc",
    [ToolInputError("unknown id"), LinkBroken("x"), VaultError("x"), PermanentError("x", "why")],
    ids=repr,
)
def test_permanent(exc: BaseException):
    assert classify(exc) is Failure.PERMANENT


@pytest.mark.parametrize(
    "exc",
    [
        KeyError("a bug"),
        ValueError("a bug"),
        aws("AccessDeniedException"),  # a policy the template lacks: an operator must fix it
        aws("ValidationException"),
        openai_status(openai.BadRequestError, 400),
        openai_status(openai.AuthenticationError, 401),
        gmail(400),
        caused(RuntimeError("x"), ValueError("y")),
        ConfigurationError("no key"),
        slack(200, "channel_not_found"),
    ],
    ids=repr,
)
def test_bug(exc: BaseException):
    assert classify(exc) is Failure.BUG


def test_timeouts_are_recognised_whatever_raised_them():
    assert is_timeout(openai.APITimeoutError(request=_REQUEST))
    assert is_timeout(caused(TransientError("Gmail unreachable"), TimeoutError()))
    assert not is_timeout(gmail(503)) and not is_timeout(OutOfTime("spent"))


def test_describe_gives_types_codes_and_places_never_the_message():
    def search() -> None:
        raise gmail(503)

    try:
        try:
            search()
        except HttpError as inner:
            raise TransientError("from:alice subject:salary") from inner
    except TransientError as exc:
        detail = describe(exc)
    text = repr(detail)
    assert "alice" not in text and "salary" not in text and "secret" not in text
    assert detail["error_type"] == "TransientError"
    assert detail["error_chain"] == ["mailroom.errors.TransientError", "googleapiclient.errors.HttpError"]
    assert detail["http_status"] == 503
    assert any(place.endswith(":search") for place in detail["raised_at"])
    assert describe(aws("ThrottlingException"))["aws_error_code"] == "ThrottlingException"
