"""OnceChat against a small in-memory Slack (a fake, not a mock): what it marks, when it
reads back, what it takes for its own."""

from __future__ import annotations

from typing import Any

import pytest

from mailroom.commands import Command
from mailroom.errors import TransientError
from mailroom.reply_once import EarlierReply, OnceChat, mark


class FakeSlack:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.lookups = 0
        self.down = False

    def post(self, channel, text, *, thread_ts=None, blocks=None, metadata=None) -> str:
        ts = f"1796000000.{len(self.messages) + 200:06d}"
        self.messages.append({"ts": ts, "thread_ts": thread_ts, "text": text, "metadata": metadata})
        return ts

    def post_ephemeral(self, channel, user, text, *, thread_ts=None, blocks=None) -> None:
        raise AssertionError("not used here")

    def update(self, channel, ts, text, *, blocks=None, metadata=None) -> None:
        [message] = [m for m in self.messages if m["ts"] == ts]
        message["text"] = text
        message["metadata"] = metadata or message["metadata"]

    def open_view(self, trigger_id, view) -> bool:
        return True

    def bot_messages_since(self, channel, thread_ts, oldest) -> list[EarlierReply]:
        self.lookups += 1
        if self.down:
            raise TransientError("Slack conversations.replies failed: 503")
        found = []
        for m in self.messages:
            if m["thread_ts"] == thread_ts and (oldest is None or m["ts"] > oldest):
                payload = (m["metadata"] or {}).get("event_payload") or {}
                found.append(EarlierReply(m["ts"], payload.get("event_id"), payload.get("part")))
        return found


def ask(event_id: str, thread_ts: str | None = "1796000000.000100") -> Command:
    return Command(
        kind="message",
        name="chat",
        team_id="T0",
        user_id="U0ADA",
        channel_id="D0ADA",
        thread_ts=thread_ts,
        message_ts="1796000000.000150",
        event_id=event_id,
    )


def test_a_first_delivery_marks_every_part_and_reads_nothing_back():
    slack = FakeSlack()
    once = OnceChat(slack)
    with once.delivering(ask("Ev1"), repeat=False):
        once.post_placeholder("D0ADA", "_Working on it…_", thread_ts="1796000000.000100")
        once.post("D0ADA", "more", thread_ts="1796000000.000100")
    assert [m["metadata"] for m in slack.messages] == [mark("Ev1", "placeholder"), mark("Ev1", "1")]
    assert slack.lookups == 0


def test_a_repeat_reuses_its_own_parts_and_reads_back_once():
    slack = FakeSlack()
    once = OnceChat(slack)
    with once.delivering(ask("Ev1"), repeat=False):
        first = once.post_placeholder("D0ADA", "_Working on it…_", thread_ts="1796000000.000100")
    with once.delivering(ask("Ev1"), repeat=True):
        assert once.post_placeholder("D0ADA", "_Working on it…_", thread_ts="1796000000.000100") == first
        once.post("D0ADA", "part one", thread_ts="1796000000.000100")  # not posted before: posted now
        assert once.told_in() == first
    assert len(slack.messages) == 2 and slack.lookups == 1


def test_an_unmarked_message_is_a_lost_stream_but_a_marked_one_of_another_event_is_not():
    slack = FakeSlack()
    once = OnceChat(slack)
    with once.delivering(ask("Ev0"), repeat=False):
        once.post("D0ADA", "an earlier answer", thread_ts="1796000000.000100")
    once.post("D0ADA", "Connected as ada@example.com", thread_ts="1796000000.000100")  # the OAuth callback
    with once.delivering(ask("Ev1"), repeat=True):
        assert once.earlier_stream() is None
    lost = slack.post("D0ADA", "Alice sent", thread_ts="1796000000.000100")  # startStream: no metadata
    with once.delivering(ask("Ev1"), repeat=True):
        assert once.earlier_stream() == lost
        once.update("D0ADA", lost, "the whole answer")
    assert slack.messages[-1]["metadata"] == mark("Ev1", "stream"), "taken over, and marked as this event's"


def test_a_repeat_that_cannot_read_slack_back_fails_rather_than_posts():
    slack = FakeSlack()
    slack.down = True
    once = OnceChat(slack)
    with once.delivering(ask("Ev1"), repeat=True), pytest.raises(TransientError):
        once.post("D0ADA", "hello", thread_ts="1796000000.000100")
    assert slack.messages == []


def test_outside_a_dm_nothing_is_read_back():
    slack = FakeSlack()
    once = OnceChat(slack)
    channel_ask = Command(**{**ask("Ev1").model_dump(), "channel_id": "C0GENERAL", "channel_type": "channel"})
    with once.delivering(channel_ask, repeat=True):
        once.post("C0GENERAL", "hi")
    assert slack.lookups == 0


def test_an_unmarked_message_from_before_this_sqs_message_is_never_taken_over():
    """A thread older than the metadata (or another event's dead stream) holds unmarked
    bot messages: a repeat takes only one posted after its own message was first received."""
    slack = FakeSlack()
    once = OnceChat(slack)
    old = slack.post("D0ADA", "last week's answer", thread_ts="1796000000.000100")  # ts 1796000000.0002xx
    first_received = 1796000100.0
    with once.delivering(ask("Ev1"), repeat=True, first_received=first_received):
        assert once.earlier_stream() is None
        assert once.told_in() is None, "a failure is posted, never written over an old answer"
    assert slack.messages[0]["text"] == "last week's answer" and old == slack.messages[0]["ts"]
    lost = {"ts": "1796000101.000001", "thread_ts": "1796000000.000100", "text": "Alice", "metadata": None}
    slack.messages.append(lost)  # this message's own dead stream (startStream: no metadata)
    with once.delivering(ask("Ev1"), repeat=True, first_received=first_received):
        assert once.earlier_stream() == "1796000101.000001"


def test_a_command_without_a_message_reads_back_from_its_first_delivery_not_the_whole_dm():
    slack = FakeSlack()
    seen: list[str | None] = []
    real = slack.bot_messages_since

    def spy(channel, thread_ts, oldest):
        seen.append(oldest)
        return real(channel, thread_ts, oldest)

    slack.bot_messages_since = spy  # type: ignore[method-assign]
    submit = Command(**{**ask("act-1").model_dump(), "message_ts": None})
    once = OnceChat(slack)
    with once.delivering(submit, repeat=True, first_received=1796000100.0):
        once.post("D0ADA", "Sent.", thread_ts="1796000000.000100")
    assert seen == ["1796000035.000000"], "a minute (and the clock margin) before its first delivery"
