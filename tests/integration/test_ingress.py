"""The ingress handler against embedded AWS (moto's server over HTTP, real boto3)."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from typing import Any

import pytest

from functions.ingress import app
from infra.local.front import api_gateway_event
from infra.local.slack_requests import LOCAL_SIGNING_SECRET, block_action, interaction_body, message_event, sign
from mailroom.bootstrap import build_ingress
from mailroom.commands import Command
from mailroom.ingress_settings import IngressSettings

HOST = "abc123.execute-api.us-east-1.amazonaws.com"


def event_for(
    body: bytes,
    *,
    path: str = "/slack/events",
    content_type: str = "application/json",
    secret: str = LOCAL_SIGNING_SECRET,
    timestamp: int | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    all_headers = {"Content-Type": content_type, **sign(body, secret, timestamp), **(headers or {})}
    return api_gateway_event("POST", path, all_headers, body, HOST)


@pytest.fixture
def invoke(function_env, lambda_context):
    function_env("IngressFunction")
    ingress = build_ingress()

    def call(event: dict[str, Any]) -> dict[str, Any]:
        return app.handler(event, lambda_context, ingress=ingress)

    return call


def test_a_signed_dm_is_queued_once_in_its_conversation_group(invoke, deployment):
    payload = message_event("hello", event_id="EvHELLO1")
    response = invoke(event_for(json.dumps(payload).encode()))
    assert response["statusCode"] == 200
    [message] = deployment.queued()
    command = Command.model_validate_json(message["Body"])
    assert (command.name, command.event_id) == ("hello", "EvHELLO1")
    assert message["Attributes"]["MessageGroupId"] == command.conversation_id
    assert message["Attributes"]["MessageDeduplicationId"] == "EvHELLO1"
    assert command.public_base_url == f"https://{HOST}"


def test_slack_retries_of_one_event_queue_one_message(invoke, deployment):
    body = json.dumps(message_event("hello", event_id="EvRETRY")).encode()
    statuses = [invoke(event_for(body))["statusCode"]]
    for retry in (1, 2, 3):
        retry_headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        statuses.append(invoke(event_for(body, headers=retry_headers))["statusCode"])
    assert statuses == [200, 200, 200, 200]
    assert len(deployment.queued()) == 1


def test_a_retry_whose_first_try_never_reached_the_queue_is_delivered(function_env, lambda_context, deployment):
    function_env("IngressFunction")
    settings = IngressSettings.from_environment()
    broken = build_ingress(dataclasses.replace(settings, queue_url=settings.queue_url + "-missing"))
    body = json.dumps(message_event("hello", event_id="EvLOST")).encode()

    first = app.handler(event_for(body), lambda_context, ingress=broken)
    assert first["statusCode"] == 503  # not acked, so Slack will retry
    assert deployment.queued() == []

    retry = app.handler(event_for(body, headers={"X-Slack-Retry-Num": "1"}), lambda_context, ingress=build_ingress())
    assert retry["statusCode"] == 200
    [message] = deployment.queued()
    assert Command.model_validate_json(message["Body"]).retry_num == 1


def test_url_verification_answers_the_challenge(invoke, deployment):
    body = json.dumps(
        {"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}
    )
    response = invoke(event_for(body.encode()))
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert deployment.queued() == []


def test_a_base64_encoded_interaction_is_verified_on_its_raw_bytes_and_queued(invoke, deployment):
    body = interaction_body(block_action("approve_send", "pending-7", message_ts="1700000000.000300"))
    event = event_for(body, path="/slack/interactions", content_type="application/x-www-form-urlencoded")
    assert event["isBase64Encoded"] is True  # as API Gateway delivers form bodies
    assert invoke(event)["statusCode"] == 200
    [message] = deployment.queued()
    assert Command.model_validate_json(message["Body"]).action_value == "pending-7"


def test_a_press_on_a_link_button_is_acked_and_not_queued(invoke, deployment):
    body = interaction_body(block_action("connect_gmail", "", message_ts="1700000000.000300"))
    event = event_for(body, path="/slack/interactions", content_type="application/x-www-form-urlencoded")
    assert invoke(event)["statusCode"] == 200
    assert deployment.queued() == []


@pytest.mark.parametrize(
    "change",
    [{"bot_id": "B1"}, {"subtype": "message_changed"}, {"subtype": "message_deleted"}, {"type": "reaction_added"}],
)
def test_events_the_bot_ignores_are_acked_and_not_queued(invoke, deployment, change):
    payload = message_event("hello")
    payload["event"] |= change
    assert invoke(event_for(json.dumps(payload).encode()))["statusCode"] == 200
    assert deployment.queued() == []


BODY = json.dumps(message_event("hello")).encode()


@pytest.mark.parametrize(
    ("name", "event", "status"),
    [
        ("forged signature", lambda: event_for(BODY, secret="an-attacker-guess"), 401),
        ("stale timestamp", lambda: event_for(BODY, timestamp=int(time.time()) - 301), 401),
        ("missing headers", lambda: api_gateway_event("POST", "/slack/events", {}, BODY, HOST), 401),
        ("non-JSON", lambda: event_for(b"this is not json"), 400),
        ("JSON that is not an event", lambda: event_for(b'{"hello": "world"}'), 400),
        ("envelope without event id", lambda: event_for(b'{"type": "event_callback", "event": {}}'), 400),
        ("form without payload", lambda: event_for(b"a=b", path="/slack/interactions"), 400),
        ("huge body", lambda: event_for(b'{"type":"event_callback","pad":"' + b"x" * 600_000 + b'"}'), 413),
        ("unknown path", lambda: event_for(BODY, path="/slack/other"), 404),
    ],
)
def test_bad_requests_get_their_status_and_nothing_is_queued(invoke, deployment, name, event, status):
    response = invoke(event())
    assert response["statusCode"] == status, name
    assert "Traceback" not in response["body"]
    assert deployment.queued() == []


def test_a_body_that_claims_base64_but_is_not_is_malformed(invoke, deployment):
    event = event_for(BODY)
    event |= {"body": "%%% not base64 %%%", "isBase64Encoded": True}
    assert invoke(event)["statusCode"] == 400
    assert deployment.queued() == []


def test_an_event_api_gateway_did_not_base64_encode_is_read_as_text(invoke, deployment):
    event = event_for(BODY)
    assert event["isBase64Encoded"] is False
    event_b64 = dict(event, body=base64.b64encode(BODY).decode(), isBase64Encoded=True)
    assert invoke(event)["statusCode"] == 200
    assert invoke(event_b64)["statusCode"] == 200
    assert len(deployment.queued()) == 1  # same event_id: deduplicated by the FIFO queue


def test_the_signing_secret_comes_from_secrets_manager_when_not_overridden(
    monkeypatch, function_env, lambda_context, deployment
):
    function_env("IngressFunction")
    monkeypatch.delenv("SLACK_SIGNING_SECRET")
    deployment.aws.client("secretsmanager").put_secret_value(
        SecretId=deployment.physical("SlackSigningSecret"),
        SecretString=json.dumps({"SLACK_SIGNING_SECRET": "from-secrets-manager"}),
    )
    ingress = build_ingress()
    good = app.handler(event_for(BODY, secret="from-secrets-manager"), lambda_context, ingress=ingress)
    bad = app.handler(event_for(BODY), lambda_context, ingress=ingress)
    assert (good["statusCode"], bad["statusCode"]) == (200, 401)


def test_a_signing_secret_secrets_manager_cannot_give_is_not_acked_so_slack_retries(
    monkeypatch, function_env, lambda_context, deployment
):
    function_env("IngressFunction")
    monkeypatch.delenv("SLACK_SIGNING_SECRET")
    monkeypatch.setenv("SLACK_SIGNING_SECRET_ARN", deployment.physical("SlackSigningSecret") + "-gone")
    response = app.handler(event_for(BODY), lambda_context, ingress=build_ingress())
    assert response["statusCode"] == 503
    assert deployment.queued() == []
