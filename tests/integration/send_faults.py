"""Helpers for the approve -> send fault tests: deliveries that may fail or be killed,
the approval card, and the record behind it (read straight from DynamoDB)."""

from __future__ import annotations

import uuid
from typing import Any

from functions.worker import app as worker_app
from infra.local.emulators.slack import PostedMessage
from infra.local.poller import sqs_record
from infra.local.slack_requests import LOCAL_DM_CHANNEL, LOCAL_USER_ID, block_action, interaction_body
from mailroom.commands import Command
from mailroom.slack.parsing import parse_interaction
from tests.integration.harness import PUBLIC, Harness

ADA = "ada@example.com"


class WorkerKilled(BaseException):
    """The function process dies at a step boundary (nothing in it catches this)."""


def kill_at(step_name: str, times: int = 1) -> Any:
    left = {"n": times}

    def step(name: str) -> None:
        if name == step_name and left["n"] > 0:
            left["n"] -= 1
            raise WorkerKilled(name)

    return step


def deliver(harness: Harness, command: Command, attempt: int = 1) -> str:
    """One SQS delivery of `command`: "ok", "retry" (reported as a batch item failure) or
    "killed". After a kill the idempotency lock is released, as its in-progress expiry
    does when the Lambda's time is up, so the redelivery runs."""
    message = {
        "MessageId": uuid.uuid4().hex,
        "ReceiptHandle": "r",
        "Body": command.model_dump_json(),
        "Attributes": {"ApproximateReceiveCount": str(attempt), "MessageGroupId": command.conversation_id},
    }
    record = sqs_record(message, harness.deployment.physical("MessagesQueue", "Arn"))
    try:
        response = worker_app.handler({"Records": [record]}, harness.context, worker=harness.worker)
    except WorkerKilled:
        _release_idempotency_locks(harness)
        return "killed"
    return "retry" if response["batchItemFailures"] else "ok"


def _release_idempotency_locks(harness: Harness) -> None:
    dynamodb = harness.deployment.aws.client("dynamodb")
    table = harness.deployment.physical("IdempotencyTable")
    for item in dynamodb.scan(TableName=table)["Items"]:
        if item.get("status", {}).get("S") == "INPROGRESS":
            dynamodb.delete_item(TableName=table, Key={"id": item["id"]})


def cards(harness: Harness) -> list[PostedMessage]:
    return [
        m
        for m in harness.slack.messages(channel=LOCAL_DM_CHANNEL)
        if any(e.get("action_id") == "approve_send" for b in m.blocks for e in b.get("elements", []))
        or any(b.get("block_id") == "approval" for b in m.blocks)
    ]


def card(harness: Harness) -> PostedMessage:
    return cards(harness)[-1]


def current(harness: Harness, message: PostedMessage) -> PostedMessage:
    [now] = [m for m in harness.slack.messages(channel=LOCAL_DM_CHANNEL) if m.ts == message.ts]
    return now


def shown(message: PostedMessage) -> str:
    """Everything the card says, mail text included."""
    return message.text + "\n" + "\n".join(str(b) for b in message.blocks)


def has_buttons(message: PostedMessage) -> bool:
    return any(b.get("type") == "actions" for b in message.blocks)


def action_of(message: PostedMessage) -> str:
    [value] = {e["value"] for b in message.blocks for e in b.get("elements", []) if "value" in e}
    return str(value)


def press(approval: PostedMessage, action: str, user: str = LOCAL_USER_ID, value: str | None = None) -> Command:
    payload = block_action(
        action, value or action_of(approval), message_ts=approval.ts, thread_ts=approval.thread_ts, user=user
    )
    command = parse_interaction(interaction_body(payload), PUBLIC)
    assert command is not None
    return command


def record(harness: Harness, action_id: str) -> dict[str, Any]:
    dynamodb = harness.deployment.aws.client("dynamodb")
    item = dynamodb.get_item(TableName=harness.deployment.physical("ApprovalsTable"), Key={"pk": {"S": action_id}})
    return {k: next(iter(v.values())) for k, v in item["Item"].items()}


def set_record(harness: Harness, action_id: str, **values: str | float) -> None:
    """Change a record as time or another worker would (e.g. its expiry passing)."""
    dynamodb = harness.deployment.aws.client("dynamodb")
    names = {f"#{k}": k for k in values}
    typed = {f":{k}": ({"N": repr(v)} if isinstance(v, float) else {"S": v}) for k, v in values.items()}
    dynamodb.update_item(
        TableName=harness.deployment.physical("ApprovalsTable"),
        Key={"pk": {"S": action_id}},
        UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in values),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=typed,
    )


def sends(harness: Harness) -> int:
    assert harness.gmail is not None
    return harness.gmail.send_count
