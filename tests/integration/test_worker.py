"""The worker handler against embedded AWS (idempotency in DynamoDB over HTTP) and
the Slack emulator (through slack-sdk's WebClient)."""

from __future__ import annotations

from typing import Any

import pytest

from functions.worker import app
from infra.local.slack_requests import LOCAL_DM_CHANNEL, message_event
from mailroom.bootstrap import build_worker
from mailroom.commands import Command
from mailroom.errors import TransientError
from mailroom.slack.parsing import parse_event_callback
from mailroom.turn_records import TurnRecords
from mailroom.worker import Worker
from tests.integration.harness import logged


def command(text: str, event_id: str, thread_ts: str | None = None) -> Command:
    parsed = parse_event_callback(message_event(text, event_id=event_id, thread_ts=thread_ts), "https://example.test")
    assert parsed is not None
    return parsed


@pytest.fixture
def worker(function_env) -> Worker:
    function_env("WorkerFunction")
    return build_worker()


def failed_ids(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def test_hello_is_answered_in_the_dm_with_the_commands(worker, queue, slack, lambda_context, deployment):
    response = app.handler(queue(command("hello", "EvH1")), lambda_context, worker=worker)
    assert failed_ids(response) == []
    [reply] = slack.messages(channel=LOCAL_DM_CHANNEL)
    assert reply.thread_ts is None
    for word in ("auth", "status", "revoke", "Approve"):
        assert word in reply.text
    assert reply.blocks, "the welcome is laid out in Block Kit"
    records = deployment.aws.client("dynamodb").scan(TableName=deployment.physical("IdempotencyTable"))["Items"]
    assert [r["status"]["S"] for r in records] == ["COMPLETED"]


def test_hello_in_a_thread_is_answered_in_that_thread(worker, queue, slack, lambda_context):
    app.handler(queue(command("hello", "EvH2", thread_ts="1700000000.000100")), lambda_context, worker=worker)
    [reply] = slack.messages(channel=LOCAL_DM_CHANNEL)
    assert reply.thread_ts == "1700000000.000100"


def test_a_redelivered_event_is_answered_once(worker, queue, slack, lambda_context):
    hello = command("hello", "EvTWICE")
    app.handler(queue(hello), lambda_context, worker=worker)
    response = app.handler(queue(hello), lambda_context, worker=worker)
    assert failed_ids(response) == []
    assert len(slack.messages(channel=LOCAL_DM_CHANNEL)) == 1


def test_a_rate_limited_reply_is_retried_by_the_client(worker, queue, slack, lambda_context):
    slack.fail_next("chat.postMessage", retry_after=0)
    response = app.handler(queue(command("hello", "EvRATE")), lambda_context, worker=worker)
    assert failed_ids(response) == []
    assert len(slack.calls("chat.postMessage")) == 2
    assert len(slack.messages(channel=LOCAL_DM_CHANNEL)) == 1


def test_slack_down_fails_the_record_for_a_retry_which_then_answers_once(worker, queue, slack, lambda_context):
    hello = command("hello", "EvDOWN")
    slack.fail_next("chat.postMessage", status=503)  # a post is not retried in the client (it may have landed)
    first = app.handler(queue(hello), lambda_context, worker=worker)
    assert len(failed_ids(first)) == 1
    assert slack.messages(channel=LOCAL_DM_CHANNEL) == []

    second = app.handler(queue(hello, receive_count=2), lambda_context, worker=worker)
    assert failed_ids(second) == []
    assert len(slack.messages(channel=LOCAL_DM_CHANNEL)) == 1


def test_on_its_last_delivery_a_failing_message_tells_the_user_with_a_reference(worker, queue, slack, lambda_context):
    slack.fail_next("chat.postMessage", status=503)  # the greeting fails; the apology gets through
    response = app.handler(queue(command("hello", "EvLAST"), receive_count=4), lambda_context, worker=worker)
    assert len(failed_ids(response)) == 1  # still failed: it goes to the DLQ, not lost
    [apology] = slack.messages(channel=LOCAL_DM_CHANNEL)
    assert "EvLAST" in apology.text
    assert "Traceback" not in apology.text


def test_a_bug_is_told_once_with_a_reference_and_its_message_kept_for_the_dlq(
    function_env, queue, slack, lambda_context, caplog, capsys
):
    env = function_env("WorkerFunction")
    real = build_worker()

    def broken_route(command: Command) -> None:
        raise KeyError("from:alice secret-words")  # an error message may carry mail text

    records = TurnRecords(env["USAGE_TABLE"], 3600)
    worker = Worker(real._chat, broken_route, _store(), records=records)
    bug = command("hello", "EvBUG")
    for delivery in (1, 2, 4):  # every delivery fails the record: after the last, SQS moves it to the DLQ
        response = app.handler(queue(bug, receive_count=delivery), lambda_context, worker=worker)
        assert len(failed_ids(response)) == 1
    [apology] = slack.messages(channel=LOCAL_DM_CHANNEL)  # told once, not on every delivery
    assert "EvBUG" in apology.text
    assert "KeyError" not in apology.text and "Traceback" not in apology.text
    text = logged(caplog, capsys)
    assert "secret-words" not in text
    assert "'error_type': 'KeyError'" in text and "broken_route" in text


def test_the_idempotency_stores_own_errors_are_retried(function_env, queue, slack, lambda_context):
    function_env("WorkerFunction", IDEMPOTENCY_TABLE="no-such-table")
    worker = build_worker()
    response = app.handler(queue(command("hello", "EvSTORE")), lambda_context, worker=worker)
    assert len(failed_ids(response)) == 1
    assert slack.messages(channel=LOCAL_DM_CHANNEL) == [], "not told before the last delivery"


def test_an_unreadable_message_is_dropped_without_a_retry_loop(worker, deployment, slack, lambda_context):
    record = {
        "messageId": "m-1",
        "receiptHandle": "r-1",
        "body": '{"not": "a command"}',
        "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": "g"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": deployment.physical("MessagesQueue", "Arn"),
        "awsRegion": "us-east-1",
    }
    response = app.handler({"Records": [record]}, lambda_context, worker=worker)
    assert failed_ids(response) == []
    assert slack.calls("chat.postMessage") == []


def test_a_failure_holds_back_its_own_conversation_but_not_others(function_env, queue, slack, lambda_context):
    function_env("WorkerFunction")
    real = build_worker()
    handled: list[str] = []

    def route(command: Command) -> None:
        if command.event_id == "EvA1":
            raise TransientError("dependency briefly down")
        handled.append(command.event_id)

    worker = Worker(real._chat, route, _store())
    a1, a2 = command("one", "EvA1"), command("two", "EvA2")
    b1 = command("three", "EvB1", thread_ts="1700000000.000900")
    event = queue(a1, a2, b1)
    response = app.handler(event, lambda_context, worker=worker)
    by_id = {r["messageId"]: Command.model_validate_json(r["body"]).event_id for r in event["Records"]}
    assert sorted(by_id[i] for i in failed_ids(response)) == ["EvA1", "EvA2"]
    assert handled == ["EvB1"]


def _store():
    import os

    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(table_name=os.environ["IDEMPOTENCY_TABLE"])


def test_a_command_this_version_does_not_know_gets_an_honest_answer(worker, queue, slack, lambda_context):
    unknown = command("hello", "EvNEWER").model_copy(update={"name": "summarise-calendar"})
    response = app.handler(queue(unknown), lambda_context, worker=worker)
    assert failed_ids(response) == []
    [reply] = slack.messages(channel=LOCAL_DM_CHANNEL)
    assert "`summarise-calendar`" in reply.text and "hello" in reply.text


@pytest.mark.parametrize(("delivery", "backoff"), [(1, 30), (2, 60), (3, 120), (4, None)])
def test_a_failed_message_comes_back_after_a_backoff_not_the_whole_visibility_timeout(
    function_env, queue, lambda_context, deployment, delivery, backoff, caplog
):
    from botocore.stub import Stubber

    from mailroom.adapters.sqs_queue import SqsQueue

    env = function_env("WorkerFunction")
    real = build_worker()

    def route(command: Command) -> None:
        raise TransientError("dependency briefly down")

    sqs = deployment.aws.client("sqs")
    event = queue(command("hello", "EvBACKOFF"), receive_count=delivery)
    [record] = event["Records"]
    worker = Worker(real._chat, route, _store(), queue=SqsQueue(env["QUEUE_URL"], client=sqs))
    with Stubber(sqs) as pinned:  # the exact request; none on the last delivery (the DLQ is next)
        if backoff is not None:
            expected = {
                "QueueUrl": env["QUEUE_URL"],
                "ReceiptHandle": record["receiptHandle"],
                "VisibilityTimeout": backoff,
            }
            pinned.add_response("change_message_visibility", {}, expected)
        response = app.handler(event, lambda_context, worker=worker)
        pinned.assert_no_pending_responses()
    assert len(failed_ids(response)) == 1
    assert "could not shorten the retry delay" not in caplog.text, "no other SQS call was made"
