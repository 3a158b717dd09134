"""The whole path over HTTP: signed Slack request -> front -> ingress process -> SQS
FIFO on moto's server -> poller -> worker process -> Slack emulator."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from infra.local.slack_requests import (
    LOCAL_DM_CHANNEL,
    block_action,
    message_event,
    post,
    post_event,
    post_interaction,
    sign,
)
from infra.local.stack import LocalStack

pytestmark = pytest.mark.e2e


def test_hello_gets_the_welcome_in_the_dm(stack: LocalStack):
    assert stack.slack is not None
    answer = post_event(stack.url, message_event("hello"))
    assert answer.status == 200
    [reply] = stack.slack.wait_for_messages(1, channel=LOCAL_DM_CHANNEL, timeout=30)
    assert "auth" in reply.text and "revoke" in reply.text
    stack.wait_until_drained()
    assert stack.queue_depth("MessagesDeadLetterQueue") == 0


def test_slack_retries_of_one_event_give_one_reply(stack: LocalStack):
    assert stack.slack is not None
    payload = message_event("hello", event_id="EvE2ERETRY")
    statuses = [post_event(stack.url, payload, retry_num=n).status for n in (None, 1, 2, 3)]
    assert statuses == [200, 200, 200, 200]
    stack.slack.wait_for_messages(1, channel=LOCAL_DM_CHANNEL, timeout=30)
    stack.wait_until_drained()
    time.sleep(0.5)  # a duplicate, were there one, would be posted by now
    assert len(stack.slack.messages(channel=LOCAL_DM_CHANNEL)) == 1


def test_a_late_retry_after_the_fifo_window_is_still_answered_once(stack: LocalStack):
    """Past SQS's 5-minute deduplication window the message is queued again; the
    worker's idempotency record is what keeps the reply single."""
    assert stack.slack is not None
    payload = message_event("hello", event_id="EvE2ELATE")
    assert post_event(stack.url, payload).status == 200
    stack.slack.wait_for_messages(1, channel=LOCAL_DM_CHANNEL, timeout=30)
    stack.wait_until_drained()
    # Stand in for "six minutes later": the same event arrives as a new queue message.
    sqs = stack.aws.client("sqs")
    original = json.loads(json.dumps(payload))
    from mailroom.slack.parsing import parse_event_callback

    command = parse_event_callback(original, stack.url)
    assert command is not None
    sqs.send_message(
        QueueUrl=stack.physical("MessagesQueue"),
        MessageBody=command.model_dump_json(),
        MessageGroupId=command.conversation_id,
        MessageDeduplicationId="after-the-window",
    )
    stack.wait_until_drained()
    assert len(stack.slack.messages(channel=LOCAL_DM_CHANNEL)) == 1


@pytest.mark.parametrize(
    ("name", "secret", "age", "status"),
    [("forged", "guessed-secret", 0, 401), ("stale", None, 400, 401)],
)
def test_forged_and_stale_requests_are_refused_and_nothing_is_queued(stack: LocalStack, name, secret, age, status):
    assert stack.slack is not None
    kwargs = {"secret": secret} if secret else {}
    answer = post_event(stack.url, message_event("hello"), timestamp=int(time.time()) - age, **kwargs)
    assert answer.status == status, name
    assert stack.queue_depth() == 0
    assert stack.slack.calls("chat.postMessage") == []


def test_malformed_and_huge_bodies_get_400_and_413(stack: LocalStack):
    body = b"{not json"
    assert post(f"{stack.url}/slack/events", body, {"Content-Type": "application/json"} | sign(body)).status == 400
    huge = b'{"type":"event_callback","x":"' + b"a" * 700_000 + b'"}'
    assert post(f"{stack.url}/slack/events", huge, {"Content-Type": "application/json"} | sign(huge)).status == 413
    assert stack.queue_depth() == 0


def test_a_press_on_nothing_pending_is_verified_queued_and_answered(stack: LocalStack):
    assert stack.slack is not None
    answer = post_interaction(stack.url, block_action("approve_send", "pending-1", message_ts="1700000000.000100"))
    assert answer.status == 200
    [reply] = stack.slack.wait_for_messages(1, channel=LOCAL_DM_CHANNEL, timeout=30)
    assert reply.ephemeral and "no longer waiting" in reply.text


def test_unknown_routes_are_404(stack: LocalStack):
    request = urllib.request.Request(f"{stack.url}/nope", method="GET")  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)  # noqa: S310
    assert raised.value.code == 404
