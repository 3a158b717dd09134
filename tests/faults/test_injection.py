"""The fault-injection tools themselves: each kind of fault does what it says, through
the real clients (slack-sdk, boto3), so the matrix built on them can be trusted."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from infra.local.aws import REGION, EmbeddedAws
from infra.local.emulators.slack import SlackEmulator
from infra.local.faults import AwsFaultProxy, identify

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=1)


@pytest.fixture
def slack_client(slack: SlackEmulator) -> WebClient:
    # No client retries here: these tests watch one request meet one fault.
    return WebClient(token=slack.bot_token, base_url=slack.api_url, timeout=1, retry_handlers=[])


def test_a_status_fault_answers_that_status_then_clears(slack: SlackEmulator, slack_client: WebClient):
    slack.add_fault("status", "/api/chat.postMessage", status=503, times=1)
    with pytest.raises(SlackApiError) as raised:
        slack_client.chat_postMessage(channel="D1", text="hi")
    assert raised.value.response.status_code == 503
    assert slack_client.chat_postMessage(channel="D1", text="hi")["ok"]
    assert len(slack.messages(channel="D1")) == 1


def test_a_timeout_fault_holds_past_the_clients_timeout(slack: SlackEmulator, slack_client: WebClient):
    slack.add_fault("timeout", "/api/chat.postMessage", seconds=2)
    started = time.monotonic()
    with pytest.raises((TimeoutError, OSError)):
        slack_client.chat_postMessage(channel="D1", text="hi")
    assert time.monotonic() - started >= 0.9  # the client gave up on its own timeout
    assert slack.messages(channel="D1") == []


def test_a_reset_fault_drops_the_connection_unanswered(slack: SlackEmulator, slack_client: WebClient):
    slack.add_fault("reset", "/api/chat.postMessage")
    with pytest.raises((ConnectionError, OSError)):
        slack_client.chat_postMessage(channel="D1", text="hi")
    assert slack.messages(channel="D1") == []


def test_after_means_the_call_took_effect_but_its_answer_was_lost(slack: SlackEmulator, slack_client: WebClient):
    slack.add_fault("reset", "/api/chat.postMessage", after=True)
    with pytest.raises((ConnectionError, OSError)):
        slack_client.chat_postMessage(channel="D1", text="hi")
    assert [m.text for m in slack.messages(channel="D1")] == ["hi"]


def test_skip_lets_calls_through_and_on_match_runs(slack: SlackEmulator, slack_client: WebClient):
    fired: list[bool] = []
    slack.add_fault("status", "/api/", status=500, skip=2, on_match=lambda: fired.append(True))
    slack_client.auth_test()
    slack_client.auth_test()
    with pytest.raises(SlackApiError):
        slack_client.auth_test()
    assert fired == [True]


def test_a_star_in_a_faults_path_stands_for_one_segment(slack: SlackEmulator, slack_client: WebClient):
    slack.add_fault("status", "/api/*.postMessage", status=503, times=5)
    slack_client.chat_postEphemeral(channel="D1", user="U1", text="not this one")
    with pytest.raises(SlackApiError):
        slack_client.chat_postMessage(channel="D1", text="this one")
    assert [m.text for m in slack.messages(channel="D1")] == ["not this one"]


def test_transport_faults_over_http_and_the_emulators_own_faults_still_work(
    slack: SlackEmulator, slack_client: WebClient
):
    def control(path: str, body: dict) -> int:
        request = urllib.request.Request(f"{slack.url}_emulator/{path}", data=json.dumps(body).encode(), method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status)

    assert control("faults", {"kind": "status", "path": "/api/auth.test", "status": 502}) == 200
    with pytest.raises(SlackApiError):
        slack_client.auth_test()
    assert control("faults", {"method": "auth.test", "error": "invalid_auth"}) == 200  # Slack's own API
    with pytest.raises(SlackApiError) as raised:
        slack_client.auth_test()
    assert raised.value.response["error"] == "invalid_auth"
    with pytest.raises(urllib.error.HTTPError):
        control("faults", {"kind": "explode"})


# -- the AWS fault proxy ------------------------------------------------------------------
@pytest.fixture
def proxy(embedded_aws: EmbeddedAws) -> Iterator[AwsFaultProxy]:
    running = AwsFaultProxy(embedded_aws.endpoint_url).start()
    yield running
    running.stop()


def client(proxy: AwsFaultProxy, service: str, config: Config = NO_RETRIES):
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=proxy.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


@pytest.fixture
def table(proxy: AwsFaultProxy) -> str:
    name = f"faults-{time.time_ns()}"
    client(proxy, "dynamodb").create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


@pytest.mark.parametrize(
    ("code", "status"),
    [("ProvisionedThroughputExceededException", 400), ("ThrottlingException", 400), ("InternalServerError", 500)],
)
def test_dynamodb_errors_have_aws_shape(proxy: AwsFaultProxy, table: str, code: str, status: int):
    ddb = client(proxy, "dynamodb")
    proxy.fail("dynamodb", "PutItem", code=code)
    with pytest.raises(ClientError) as raised:
        ddb.put_item(TableName=table, Item={"pk": {"S": "a"}})
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}})  # the next call goes through
    assert "Item" in ddb.get_item(TableName=table, Key={"pk": {"S": "a"}})


def test_botocore_retries_a_throttle_within_its_attempts(proxy: AwsFaultProxy, table: str):
    ddb = client(proxy, "dynamodb", Config(retries={"total_max_attempts": 3, "mode": "standard"}))
    proxy.fail("dynamodb", "GetItem", code="ThrottlingException", times=2)
    ddb.get_item(TableName=table, Key={"pk": {"S": "a"}})
    assert [c.fault for c in proxy.calls if c.operation == "GetItem"] == ["error", "error", None]


def test_after_the_write_took_effect_only_the_answer_is_lost(proxy: AwsFaultProxy, table: str):
    ddb = client(proxy, "dynamodb")
    proxy.fail("dynamodb", "PutItem", kind="reset", after=True)
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        ddb.put_item(TableName=table, Item={"pk": {"S": "b"}})
    assert "Item" in ddb.get_item(TableName=table, Key={"pk": {"S": "b"}})


def test_body_contains_breaks_only_the_calls_that_name_it(proxy: AwsFaultProxy, table: str):
    ddb = client(proxy, "dynamodb")
    proxy.fail("dynamodb", "PutItem", body_contains="feedback#", times=5)
    ddb.put_item(TableName=table, Item={"pk": {"S": "turn#1"}})
    with pytest.raises(ClientError):
        ddb.put_item(TableName=table, Item={"pk": {"S": "feedback#1"}})
    assert [c.fault for c in proxy.calls if c.operation == "PutItem"] == [None, "error"]


def test_a_timeout_outlasts_the_clients_read_timeout(proxy: AwsFaultProxy, table: str):
    ddb = client(proxy, "dynamodb")
    proxy.fail("dynamodb", "GetItem", kind="timeout", seconds=2)
    with pytest.raises(ReadTimeoutError):
        ddb.get_item(TableName=table, Key={"pk": {"S": "a"}})


@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException", "DisabledException"])
def test_kms_refusals(proxy: AwsFaultProxy, code: str):
    kms = client(proxy, "kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    proxy.fail("kms", "GenerateDataKey", code=code)
    with pytest.raises(ClientError) as raised:
        kms.generate_data_key(KeyId=key, KeySpec="AES_256")
    assert raised.value.response["Error"]["Code"] == code


def test_secrets_manager_and_sqs(proxy: AwsFaultProxy):
    secrets = client(proxy, "secretsmanager")
    secrets.create_secret(Name=f"s-{time.time_ns()}", SecretString="{}")
    proxy.fail("secretsmanager", "GetSecretValue", code="InternalServiceError")
    with pytest.raises(ClientError) as raised:
        secrets.get_secret_value(SecretId="anything")
    assert raised.value.response["Error"]["Code"] == "InternalServiceError"

    sqs = client(proxy, "sqs")
    url = sqs.create_queue(QueueName=f"q-{time.time_ns()}")["QueueUrl"]
    proxy.fail("sqs", "SendMessage", code="RequestThrottled")
    with pytest.raises(ClientError) as raised:
        sqs.send_message(QueueUrl=url, MessageBody="x")
    assert raised.value.response["Error"]["Code"] == "RequestThrottled"
    sqs.send_message(QueueUrl=url, MessageBody="x")


def test_a_conditional_check_failure_is_not_a_fault(proxy: AwsFaultProxy):
    with pytest.raises(ValueError, match="not a fault"):
        proxy.fail("dynamodb", "PutItem", code="ConditionalCheckFailedException")


def test_requests_are_identified_by_target_or_action():
    assert identify({"x-amz-target": "TrentService.Decrypt"}, b"") == ("kms", "Decrypt", "json")
    scope = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host"
    assert identify({"authorization": scope}, b"Action=SendMessage&QueueUrl=x") == ("sqs", "SendMessage", "query")


def test_the_proxy_forwards_to_loopback_only():
    with pytest.raises(ValueError, match="loopback"):
        AwsFaultProxy("http://example.com:80")


def test_the_drain_check_is_not_fooled_by_a_message_turning_visible_mid_count(monkeypatch: pytest.MonkeyPatch):
    """moto computes ApproximateNumberOfMessages, then ...NotVisible, each at its own
    instant: a message whose redelivery delay ends between the two is in neither, and
    that one reading says 0 with the message still queued (how the matrix once checked
    send-kms-Decrypt-reset before its redelivery ran). One empty reading is not drained."""
    from infra.local.stack import LocalStack

    stack = LocalStack.__new__(LocalStack)
    readings = iter([0, 1])  # the straddled count, then the message visible again
    monkeypatch.setattr(stack, "queue_depth", lambda logical_id="MessagesQueue": next(readings))
    assert not stack.is_drained()
    monkeypatch.setattr(stack, "queue_depth", lambda logical_id="MessagesQueue": 0)
    assert stack.is_drained()
