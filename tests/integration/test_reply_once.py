"""A reply is posted once per Slack event, even when the delivery that posted it died
before anything recorded it: every reply carries Slack message metadata naming its
event and part, and a repeated delivery reads the DM back (conversations.history /
conversations.replies through the Slack emulator) before it posts.

The worker's real handler and bootstrap, against moto's server and the emulators; a
"crash right after Slack took it" is a route that posts and then fails the record."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from slack_sdk import WebClient

from functions.worker import app
from infra.local.slack_requests import LOCAL_DM_CHANNEL, LOCAL_TEAM_ID, LOCAL_USER_ID
from mailroom.bootstrap import build_worker
from mailroom.commands import Command
from mailroom.errors import TransientError
from mailroom.worker import CommandRouter, Worker
from tests.integration.test_worker import _store, command, failed_ids


def dies_after_posting_once(real: Worker) -> Callable[[Command], None]:
    """hello, but the first delivery dies right after Slack took the greeting."""
    router = CommandRouter(real._chat)
    died: list[str] = []

    def route(cmd: Command) -> None:
        router(cmd)
        if cmd.event_id not in died:
            died.append(cmd.event_id)
            raise TransientError("the worker died right after Slack took the reply")

    return route


@pytest.fixture
def crashing(function_env) -> Worker:
    function_env("WorkerFunction")
    real = build_worker()
    return Worker(real._chat, dies_after_posting_once(real), _store())


def test_a_redelivery_finds_its_own_reply_and_posts_nothing_new(crashing, queue, slack, lambda_context):
    hello = command("hello", "EvONCE1")
    assert failed_ids(app.handler(queue(hello), lambda_context, worker=crashing))  # died after the post
    [greeting] = slack.messages(channel=LOCAL_DM_CHANNEL)
    assert greeting.metadata == {"event_type": "mailroom_reply", "event_payload": {"event_id": "EvONCE1", "part": "1"}}
    assert not slack.calls("conversations.history"), "a first delivery pays nothing extra"

    assert failed_ids(app.handler(queue(hello, receive_count=2), lambda_context, worker=crashing)) == []
    assert [m.ts for m in slack.messages(channel=LOCAL_DM_CHANNEL)] == [greeting.ts], "no second greeting"
    [lookup] = slack.calls("conversations.history")
    assert lookup["args"]["include_all_metadata"] in (True, "1", "true")
    assert lookup["args"]["oldest"] == hello.message_ts


def test_a_dlq_redrive_of_an_answered_event_posts_nothing_new(crashing, queue, slack, lambda_context):
    """A redrive makes a new SQS message (receive count 1 again): the event's age, not
    the count, tells the worker it may repeat an earlier delivery."""
    from infra.local.slack_requests import message_event
    from mailroom.slack.parsing import parse_event_callback

    an_hour_ago = f"{int(time.time()) - 3600}.000100"
    old = parse_event_callback(message_event("hello", event_id="EvREDRIVE", ts=an_hour_ago), "https://example.test")
    assert old is not None
    assert failed_ids(app.handler(queue(old), lambda_context, worker=crashing))  # died after the post
    [greeting] = slack.messages(channel=LOCAL_DM_CHANNEL)

    assert failed_ids(app.handler(queue(old, receive_count=1), lambda_context, worker=crashing)) == []
    assert [m.ts for m in slack.messages(channel=LOCAL_DM_CHANNEL)] == [greeting.ts], "no second greeting"
    assert slack.calls("conversations.history"), "a late event reads the DM back first"


def test_another_events_reply_with_the_same_text_is_not_taken_for_this_one(crashing, queue, slack, lambda_context):
    first, second = command("hello", "EvSAME1"), command("hello", "EvSAME2")
    assert failed_ids(app.handler(queue(first), lambda_context, worker=crashing))
    assert failed_ids(app.handler(queue(first, receive_count=2), lambda_context, worker=crashing)) == []
    [earlier] = slack.messages(channel=LOCAL_DM_CHANNEL)

    # The second "hello" is redelivered (a Slack retry, say): the same words are there
    # already, but answering the first event, so it is answered.
    assert failed_ids(app.handler(queue(second), lambda_context, worker=crashing))
    assert failed_ids(app.handler(queue(second, receive_count=2), lambda_context, worker=crashing)) == []
    greetings = slack.messages(channel=LOCAL_DM_CHANNEL)
    assert len(greetings) == 2 and greetings[1].text == earlier.text
    assert [m.metadata["event_payload"]["event_id"] for m in greetings] == ["EvSAME1", "EvSAME2"]


def test_slack_failing_during_the_lookup_is_retried_not_a_second_post(crashing, queue, slack, lambda_context):
    hello = command("hello", "EvLOOK1")
    assert failed_ids(app.handler(queue(hello), lambda_context, worker=crashing))
    slack.fail_next("conversations.history", status=503, times=3)  # the call and the client's two retries
    assert failed_ids(app.handler(queue(hello, receive_count=2), lambda_context, worker=crashing))
    assert len(slack.messages(channel=LOCAL_DM_CHANNEL)) == 1, "not posted blind"

    slack.fail_next("conversations.history", status=200, error="missing_scope")
    assert failed_ids(app.handler(queue(hello, receive_count=2), lambda_context, worker=crashing))
    assert len(slack.messages(channel=LOCAL_DM_CHANNEL)) == 1, "any refusal is a reason to wait, not to post"

    assert failed_ids(app.handler(queue(hello, receive_count=3), lambda_context, worker=crashing)) == []
    assert len(slack.messages(channel=LOCAL_DM_CHANNEL)) == 1


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        pytest.param("reset", {"times": 3}, id="reset-every-try"),
        pytest.param("timeout", {"seconds": 11}, id="timeout-past-the-clients-10s"),
    ],
)
def test_a_lookup_cut_off_at_the_transport_never_posts_blind(crashing, queue, slack, lambda_context, kind, options):
    """The read-back itself times out or has its connection reset: whether the client
    retries it or the delivery is retried, the greeting is never posted a second time."""
    hello = command("hello", f"EvCUT{kind}")
    assert failed_ids(app.handler(queue(hello), lambda_context, worker=crashing))  # died after the post
    cut = slack.add_fault(kind, "/api/conversations.history", **options)
    app.handler(queue(hello, receive_count=2), lambda_context, worker=crashing)
    assert cut.fired, "the lookup was cut off"
    assert len(slack.messages(channel=LOCAL_DM_CHANNEL)) == 1, "not posted blind"

    assert failed_ids(app.handler(queue(hello, receive_count=3), lambda_context, worker=crashing)) == []
    assert len(slack.messages(channel=LOCAL_DM_CHANNEL)) == 1


def test_a_redelivery_finishes_the_stream_a_dead_delivery_left_instead_of_streaming_again(agent, slack):
    from tests.integration.test_agent_surface import QUESTION, has_feedback, new_thread, threaded

    thread = new_thread()
    ask = threaded(QUESTION, thread)
    # What a delivery that died right after chat.startStream leaves: an unmarked,
    # still-streaming reply in the thread (chat.startStream takes no metadata).
    client = WebClient(token=slack.bot_token, base_url=slack.api_url)
    client.chat_startStream(channel=LOCAL_DM_CHANNEL, thread_ts=thread, markdown_text="Alice sent")
    assert agent.deliver(ask, receive_count=2) is True

    [answer] = slack.messages(channel=LOCAL_DM_CHANNEL, thread_ts=thread)
    assert "Alice" in answer.text and has_feedback(answer) and not answer.streaming
    assert answer.metadata["event_payload"] == {"event_id": ask.event_id, "part": "stream"}
    assert len(slack.calls("chat.startStream")) == 1, "only the dead delivery's stream"

    # A later question in the thread, redelivered, does not take that (now marked) answer for its own.
    later = threaded("And from Bob?", thread)
    assert agent.deliver(later, receive_count=2) is True
    replies = slack.messages(channel=LOCAL_DM_CHANNEL, thread_ts=thread)
    assert len(replies) == 2 and replies[0].text == answer.text
    assert replies[1].metadata["event_payload"]["event_id"] == later.event_id


def test_a_first_delivery_reads_nothing_back_and_writes_no_turn_record(agent, slack):
    ask = agent.chat("What did Alice send me this week?")
    assert agent.deliver(ask) is True
    assert not slack.calls("conversations.history") and not slack.calls("conversations.replies")
    usage = agent.deployment.aws.client("dynamodb").scan(TableName=agent.deployment.physical("UsageTable"))["Items"]
    assert not [i for i in usage if i["pk"]["S"].startswith("turn#")]
    [counter] = [i for i in usage if i["pk"]["S"].startswith(f"chat#{LOCAL_TEAM_ID}#{LOCAL_USER_ID}#")]
    assert ask.event_id in counter["events"]["SS"]


WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def test_an_agent_turn_writes_dynamodb_at_most_four_times(agent, monkeypatch):
    """Idempotency (2), the rate limit (1) and the checkpoint (1): what was posted is in
    Slack, and the conversation's ownership, once claimed, is only read."""
    from botocore.client import BaseClient

    calls: list[tuple[str, str]] = []
    original = getattr(BaseClient, "_make_api_call")  # noqa: B009 (private to botocore)

    def counting(client, operation, params):
        calls.append((client.meta.service_model.service_name, operation))
        return original(client, operation, params)

    agent.say("What did Alice send me this week?")  # the conversation's first turn claims it
    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    agent.say("And from Bob?")
    writes = [op for service, op in calls if service == "dynamodb" and op in WRITES]
    assert sorted(writes) == ["BatchWriteItem", "PutItem", "UpdateItem", "UpdateItem"], writes
