"""A request nobody presses loses its buttons at the next scheduled tick, over the whole
stack (the local stack fires the template's schedule as EventBridge would)."""

from __future__ import annotations

import time

import pytest

from infra.local.emulators.slack import PostedMessage
from infra.local.stack import LocalStack
from tests.e2e.test_send_approval import approval_in, current, gmail, press

pytestmark = pytest.mark.e2e


def pass_expiry(stack: LocalStack, action_id: str) -> None:
    """Move the record's expiry into the past, as a day going by would."""
    stack.aws.client("dynamodb").update_item(
        TableName=stack.physical("ApprovalsTable"),
        Key={"pk": {"S": action_id}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": repr(time.time() - 1)}},
    )


def action_of(card: PostedMessage) -> str:
    [value] = {e["value"] for b in card.blocks for e in b.get("elements", []) if "value" in e}
    return str(value)


def buttons(card: PostedMessage) -> bool:
    return any(b.get("block_id") == "approval" for b in card.blocks)


def test_an_expired_card_loses_its_buttons_at_the_next_tick_and_a_later_press_sends_nothing(linked: LocalStack):
    before = gmail(linked).send_count
    expired = approval_in(linked, "1796000100.000001")
    waiting = approval_in(linked, "1796000100.000002")
    pass_expiry(linked, action_of(expired))

    assert linked.fire_schedule("WorkerFunction") == [{"expired": 1}]

    assert not buttons(current(linked, expired)) and "expired" in current(linked, expired).text
    assert buttons(current(linked, waiting))
    press(linked, expired, "approve_send")
    assert gmail(linked).send_count == before
    press(linked, waiting, "cancel_send")  # leave nothing pending for the other tests
