"""Each reply posted once per Slack event, even when the worker dies right after Slack
took it: Slack itself is the record of what was posted.

Slack's Web API takes no idempotency key, and a record written after the post can be
lost to a crash just as the post's answer can. So every message the worker posts while
running a command carries Slack message metadata: `event_type` "mailroom_reply" and an
`event_payload` naming the Slack event (or press) it answers and which part of the
answer it is (the n-th message this command posts; "placeholder" for the "Working on
it…" message). A delivery that may repeat an earlier one (SQS's ApproximateReceiveCount
above 1, or Slack's retry of the event) first reads the conversation since the user's
message (`conversations.replies` in a thread, `conversations.history` at the top of the
DM, with `include_all_metadata`; the bot has `im:history`) and reuses what it finds:
a part already posted is not posted again, the placeholder is reused. A first delivery
pays nothing extra. A lookup that fails is a transient failure (SQS tries again later),
never a reason to post blind.

Streams: `chat.startStream` takes no metadata (`chat.stopStream` does), so a stream the
worker died in the middle of is unmarked. A repeated delivery takes the first unmarked
bot message posted in the thread after its SQS message was first received as its own
stream: in the user's DM thread only the bot and the user write, the conversation's
messages are handled in order (SQS FIFO: an earlier event ended before this one was
first received), and every stream that ended is marked (its stop, or the edit that
replaces it, carries the metadata), so such a message is the stream of a delivery of
this event that died. Older unmarked messages (another event's, or from before the
metadata) are never taken. Ephemeral messages (the Connect Gmail button, pointers in channels) are not kept
by Slack and cannot be looked up; lookups are made only in DMs (`im:history`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from mailroom.commands import Command
from mailroom.ports import Chat

EVENT_TYPE = "mailroom_reply"
PLACEHOLDER = "placeholder"
STREAM = "stream"
NOTICE = "notice"


@dataclass(frozen=True)
class EarlierReply:
    """A bot message in the conversation: its ts and, if it carries Mailroom's metadata,
    the event and the part it was posted for."""

    ts: str
    event_id: str | None = None
    part: str | None = None


class MarkedChat(Chat, Protocol):
    """The `Chat` port with message metadata on posts and edits, and the lookup (SlackChat)."""

    def post(
        self,
        channel: str,
        text: str,
        *,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str: ...

    def update(
        self,
        channel: str,
        ts: str,
        text: str,
        *,
        blocks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None: ...

    def bot_messages_since(self, channel: str, thread_ts: str | None, oldest: str | None) -> list[EarlierReply]:
        """The bot's messages in the thread (or at the top of the channel) after `oldest`,
        oldest first; TransientError if Slack cannot say."""
        ...


def mark(event_id: str, part: str) -> dict[str, Any]:
    """The metadata a reply carries: which event it answers and which part it is."""
    return {"event_type": EVENT_TYPE, "event_payload": {"event_id": event_id, "part": part}}


# Slack's clock and SQS's may differ by this much.
_CLOCK_MARGIN_SECONDS = 5.0
# How far before its first delivery a command without a message of its own looks.
_NO_MESSAGE_WINDOW_SECONDS = 60.0


def _seconds(ts: str) -> float:
    return float(ts)


# A message posted outside a queued command (the OAuth callback's "connected"): marked
# too, so that no repeated delivery ever takes it for a stream it lost.
_OUTSIDE = mark("-", "outside")


@dataclass
class _Delivery:
    event_id: str
    channel_id: str
    thread_ts: str | None
    after_ts: str | None
    repeat: bool
    # An unmarked message is taken for a dead stream only if posted after this SQS
    # message was first received (less a clock margin): anything older in the thread
    # belongs to an earlier event (FIFO: that one ended before this one began).
    unmarked_since: float | None = None
    posts: int = 0
    # part -> ts of what this delivery posted or found, and the message a failure is told in
    parts: dict[str, str] = field(default_factory=dict)
    earlier: list[EarlierReply] | None = None


class OnceChat:
    """`Chat` that marks each message with the command it answers and, on a delivery
    that may be a repeat, reuses what an earlier delivery posted instead of posting it
    again. Outside a delivery (`delivering`) it marks what it posts as answering no
    event, and never looks anything up."""

    def __init__(self, slack: MarkedChat):
        self._slack = slack
        # One record at a time per worker (BatchSize 1): the delivery being run.
        self._delivery: _Delivery | None = None

    @contextmanager
    def delivering(self, command: Command, *, repeat: bool, first_received: float | None = None) -> Iterator[None]:
        """Run one delivery of `command`; `first_received` is when SQS first handed this
        message over (epoch seconds), which bounds what a repeat may take as its own."""
        since = first_received - _CLOCK_MARGIN_SECONDS if first_received is not None else None
        self._delivery = _Delivery(
            event_id=command.event_id,
            channel_id=command.channel_id,
            thread_ts=command.thread_ts,
            # From the user's message (or card); a command without one (an Edit modal's
            # submit) from its first delivery, never the whole DM.
            after_ts=command.message_ts or (f"{since - _NO_MESSAGE_WINDOW_SECONDS:.6f}" if since else None),
            # Only the DM can be read back (im:history); elsewhere the bot posts little.
            repeat=repeat and command.is_direct_message,
            unmarked_since=since,
        )
        try:
            yield
        finally:
            self._delivery = None

    # -- Chat ------------------------------------------------------------------------------
    def post(
        self, channel: str, text: str, *, thread_ts: str | None = None, blocks: list[dict[str, Any]] | None = None
    ) -> str:
        delivery = self._delivery
        if delivery is None:
            return self._slack.post(channel, text, thread_ts=thread_ts, blocks=blocks, metadata=_OUTSIDE)
        delivery.posts += 1
        return self._post_part(delivery, str(delivery.posts), channel, text, thread_ts, blocks)

    def post_ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> None:
        self._slack.post_ephemeral(channel, user, text, thread_ts=thread_ts, blocks=blocks)

    def update(self, channel: str, ts: str, text: str, *, blocks: list[dict[str, Any]] | None = None) -> None:
        # Slack keeps a message's metadata through an edit that gives none; a stream
        # gets its mark here (it could not have one at its start).
        delivery = self._delivery
        part = next((p for p, t in delivery.parts.items() if t == ts), None) if delivery else None
        metadata = mark(delivery.event_id, part) if delivery is not None and part is not None else None
        self._slack.update(channel, ts, text, blocks=blocks, metadata=metadata)

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> bool:
        return self._slack.open_view(trigger_id, view)

    # -- the turn's own messages -------------------------------------------------------------
    def post_placeholder(self, channel: str, text: str, *, thread_ts: str | None = None) -> str:
        """The "Working on it…" message, or the one an earlier delivery posted."""
        delivery = self._delivery
        if delivery is None:
            return self._slack.post(channel, text, thread_ts=thread_ts, metadata=_OUTSIDE)
        return self._post_part(delivery, PLACEHOLDER, channel, text, thread_ts, None)

    def earlier_stream(self) -> str | None:
        """On a repeated delivery, the ts of the answer an earlier one streamed (finished
        or not), which this one must edit rather than stream again."""
        delivery = self._delivery
        if delivery is None or not delivery.repeat or delivery.thread_ts is None:
            return None
        mine = [r for r in self._earlier(delivery) if r.event_id == delivery.event_id and r.part == STREAM]
        unmarked = [
            r
            for r in self._earlier(delivery)
            if r.event_id is None and (delivery.unmarked_since is None or _seconds(r.ts) >= delivery.unmarked_since)
        ]
        found = (mine or unmarked)[:1]
        if not found:
            return None
        delivery.parts[STREAM] = found[0].ts
        return found[0].ts

    def stream_started(self, ts: str) -> None:
        """The answer's stream exists: edits of it carry this turn's mark from now on."""
        if self._delivery is not None:
            self._delivery.parts[STREAM] = ts

    def stream_mark(self) -> dict[str, Any] | None:
        """The metadata for the stream's end (chat.stopStream takes it)."""
        delivery = self._delivery
        return mark(delivery.event_id, STREAM) if delivery is not None else None

    def told_in(self) -> str | None:
        """Where to tell the user of a failure: the placeholder or stream of this event,
        this delivery's or (on a repeat) an earlier one's; None to post."""
        delivery = self._delivery
        if delivery is None:
            return None
        for part in (PLACEHOLDER, STREAM):
            if part in delivery.parts:
                return delivery.parts[part]
        if not delivery.repeat:
            return None
        for reply in self._earlier(delivery):
            if reply.event_id == delivery.event_id and reply.part in (PLACEHOLDER, STREAM):
                delivery.parts[reply.part] = reply.ts
                return reply.ts
        return self.earlier_stream()

    def post_notice(self, channel: str, text: str, *, thread_ts: str | None = None) -> str:
        """A failure told as a message of its own (the caller tells it once)."""
        delivery = self._delivery
        if delivery is None:
            return self._slack.post(channel, text, thread_ts=thread_ts, metadata=_OUTSIDE)
        return self._post_part(delivery, NOTICE, channel, text, thread_ts, None, reuse=False)

    # -- inside ----------------------------------------------------------------------------
    def _post_part(
        self,
        delivery: _Delivery,
        part: str,
        channel: str,
        text: str,
        thread_ts: str | None,
        blocks: list[dict[str, Any]] | None,
        *,
        reuse: bool = True,
    ) -> str:
        if reuse and delivery.repeat and channel == delivery.channel_id:
            found = next(
                (r for r in self._earlier(delivery) if r.event_id == delivery.event_id and r.part == part), None
            )
            if found is not None:
                delivery.parts[part] = found.ts
                return found.ts
        ts = self._slack.post(channel, text, thread_ts=thread_ts, blocks=blocks, metadata=mark(delivery.event_id, part))
        delivery.parts[part] = ts
        return ts

    def _earlier(self, delivery: _Delivery) -> list[EarlierReply]:
        """What the bot posted in the conversation since the user's message (read once
        per delivery: what this delivery posts itself it knows)."""
        if delivery.earlier is None:
            delivery.earlier = self._slack.bot_messages_since(
                delivery.channel_id, delivery.thread_ts, delivery.after_ts
            )
        return delivery.earlier
