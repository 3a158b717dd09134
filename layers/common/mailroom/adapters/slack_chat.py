"""`Chat` on Slack's Web API through slack-sdk's WebClient, with its retry handlers."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest as RetryRequest
from slack_sdk.http_retry.response import HttpResponse as RetryResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.chat_stream import ChatStream

from mailroom.errors import MessageGone, TransientError
from mailroom.reply_once import EVENT_TYPE, EarlierReply

_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# The message to edit is not there to edit (the user deleted the placeholder, say).
_GONE_ERRORS = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


# views.open refusals that mean the press came too late (a trigger id lives 3 s), not a bug.
_SPENT_TRIGGER = frozenset({"expired_trigger_id", "invalid_trigger_id"})
# The trigger was exchanged already: only this app receives a press's trigger id, so by
# an earlier delivery of the same press (which then crashed or lost Slack's answer), and
# its modal is open. Asking the user to press again would be wrong.
_OPENED_BEFORE = "exchanged_trigger_id"


# A repeated delivery reads back at most this many pages (200 messages each) of the
# conversation since the user's message: far more than one answer ever posts.
_LOOKUP_PAGES = 5

# A stream that can take no more: expired, stopped, or the message is gone.
_NOT_STREAMING = frozenset({"message_not_in_streaming_state", "message_not_found", "cant_update_message"})


# Calls that make something new in Slack. After an ambiguous failure (the connection
# dropped once the request was out, a 5xx) Slack may have made it already, and a retry
# would make it twice; so they fail to the worker instead, whose redelivery reads the DM
# back before posting (mailroom.reply_once). A refusal (429, a refused connection) is
# retried: nothing was made.
_CREATES = frozenset({"chat.postMessage", "chat.postEphemeral", "chat.startStream", "chat.appendStream"})


def _creates(request: RetryRequest) -> bool:
    return request.url.rstrip("/").rsplit("/", 1)[-1] in _CREATES


class _NoBlindRepeat:
    """A retry handler that never repeats a call making a message, unless the connection
    was refused (nothing reached Slack)."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: RetryRequest,
        response: RetryResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        refused = isinstance(getattr(error, "reason", error), ConnectionRefusedError)
        if _creates(request) and not refused:
            return False
        return super()._can_retry(state=state, request=request, response=response, error=error)  # type: ignore[misc]  # a mixin: the handler class comes after it


class _ConnectionRetries(_NoBlindRepeat, ConnectionErrorRetryHandler):
    pass


class _ServerErrorRetries(_NoBlindRepeat, ServerErrorRetryHandler):
    pass


def make_web_client(token: str, base_url: str) -> WebClient:
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=10,
        retry_handlers=[
            _ConnectionRetries(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=2),
            _ServerErrorRetries(max_retry_count=2),
        ],
    )


class SlackChat:
    def __init__(self, client: WebClient):
        self._client = client

    def post(
        self,
        channel: str,
        text: str,
        *,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        # Never unfurl: a URL in an answer or card may come from an email and carry mail text.
        response = self._call(
            "chat_postMessage",
            channel=channel,
            text=text,
            thread_ts=thread_ts,
            blocks=blocks,
            metadata=metadata,
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(response["ts"])

    def post_ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> None:
        self._call("chat_postEphemeral", channel=channel, user=user, text=text, thread_ts=thread_ts, blocks=blocks)

    def update(
        self,
        channel: str,
        ts: str,
        text: str,
        *,
        blocks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        # Without `metadata` Slack keeps the message's own.
        self._call("chat_update", channel=channel, ts=ts, text=text, blocks=blocks, metadata=metadata)

    def bot_messages_since(self, channel: str, thread_ts: str | None, oldest: str | None) -> list[EarlierReply]:
        """The bot's messages in the thread (conversations.replies) or at the top of the
        channel (conversations.history) after `oldest`, oldest first, with Mailroom's
        metadata read back (include_all_metadata). Any failure is transient: a repeated
        delivery must not post without knowing what is there."""
        method = "conversations.replies" if thread_ts else "conversations.history"
        args: dict[str, Any] = {"channel": channel, "oldest": oldest, "include_all_metadata": True, "limit": 200}
        found: list[EarlierReply] = []
        for _ in range(_LOOKUP_PAGES):
            try:
                if thread_ts:
                    response = self._call("conversations_replies", ts=thread_ts, **args)
                else:
                    response = self._call("conversations_history", **args)
            except SlackApiError as exc:
                if thread_ts and exc.response.get("error") == "thread_not_found":
                    break  # nothing was ever written in it
                raise TransientError(f"Slack {method} failed: {exc.response.get('error')}") from exc
            messages = response.get("messages") or []
            found += [_earlier(m) for m in messages if m.get("bot_id") and m.get("ts") != thread_ts]
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not response.get("has_more") or not cursor:
                break
            args["cursor"] = cursor
        else:
            raise TransientError(f"Slack {method}: more than {_LOOKUP_PAGES} pages since the message")
        return sorted(found, key=lambda r: _ts_key(r.ts))

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> bool:
        """Open a modal; False if the trigger came too late (the user must press again)."""
        try:
            return self._call_unless(_SPENT_TRIGGER, "views_open", trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            if exc.response.get("error") == _OPENED_BEFORE:
                return True
            raise

    # -- the agent surface (assistant:write): status, suggested prompts, title, streams --
    def set_status(self, channel_id: str, thread_ts: str, status: str) -> None:
        """The thread's status line ("" clears it); Slack drops it after 2 minutes."""
        self._call("assistant_threads_setStatus", channel_id=channel_id, thread_ts=thread_ts, status=status)

    def set_suggested_prompts(
        self, channel_id: str, prompts: list[dict[str, str]], *, thread_ts: str | None = None, title: str | None = None
    ) -> None:
        # No thread_ts for the agent view (Slack: it makes the call fail silently there).
        self._call(
            "assistant_threads_setSuggestedPrompts",
            channel_id=channel_id,
            prompts=prompts,
            thread_ts=thread_ts,
            title=title,
        )

    def set_title(self, channel_id: str, thread_ts: str, title: str) -> None:
        self._call("assistant_threads_setTitle", channel_id=channel_id, thread_ts=thread_ts, title=title)

    def start_stream(
        self, channel: str, thread_ts: str, *, user_id: str, team_id: str, buffer_size: int = 256
    ) -> AnswerStream:
        """A streamed reply in `thread_ts`: slack-sdk's ChatStream (chat.startStream on the
        first flush, chat.appendStream, chat.stopStream). Task chunks show as cards in the
        text's order ("timeline")."""
        return AnswerStream(
            self._client.chat_stream(
                channel=channel,
                thread_ts=thread_ts,
                recipient_user_id=user_id,
                recipient_team_id=team_id,
                buffer_size=buffer_size,
                task_display_mode="timeline",
            )
        )

    def stop_stream(self, channel: str, ts: str) -> bool:
        """Close a stream left open (by a failed delivery); False if it was not streaming."""
        return self._call_unless(_NOT_STREAMING, "chat_stopStream", channel=channel, ts=ts)

    def _call_unless(self, expected: frozenset[str], method: str, **kwargs: Any) -> bool:
        """Call `method`; False when Slack refuses it with one of the `expected` errors."""
        try:
            self._call(method, **kwargs)
        except SlackApiError as exc:
            if exc.response.get("error") in expected:
                return False
            raise
        return True

    def _call(self, method: str, **kwargs: Any) -> Any:
        args = {k: v for k, v in kwargs.items() if v is not None}
        try:
            return getattr(self._client, method)(**args)
        except SlackApiError as exc:
            status = exc.response.status_code
            if status >= 500 or status == 429 or exc.response.get("error") in _TRANSIENT_ERRORS:
                raise TransientError(f"Slack {method} failed: {exc.response.get('error') or status}") from exc
            if method == "chat_update" and exc.response.get("error") in _GONE_ERRORS:
                raise MessageGone(f"Slack {method}: {exc.response.get('error')}") from exc
            raise
        except SlackClientError as exc:
            raise TransientError(f"Slack {method} unreachable: {type(exc).__name__}") from exc
        except OSError as exc:  # connection refused/reset after the retry handlers gave up
            raise TransientError(f"Slack {method} unreachable: {type(exc).__name__}") from exc


class AnswerStream:
    """One streamed message, through slack-sdk's ChatStream (which buffers `buffer_size`
    characters before each call); `flush` sends what is buffered now."""

    def __init__(self, stream: ChatStream):
        self._stream = stream
        self._buffered = 0

    @property
    def ts(self) -> str | None:
        return self._stream.ts

    def append(self, text: str) -> None:
        self._buffered = 0 if self._stream.append(markdown_text=text) is not None else self._buffered + len(text)

    def flush(self) -> None:
        if self._buffered:
            # ChatStream flushes whenever chunks are given; none more than the buffer.
            self._stream.append(chunks=[])
            self._buffered = 0

    def append_chunks(self, chunks: list[dict[str, Any]]) -> None:
        """Send `chunks` (task_update, ...) now, after the text buffered so far."""
        self._stream.append(chunks=chunks)
        self._buffered = 0

    def stop(
        self,
        blocks: list[dict[str, Any]] | None = None,
        chunks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._stream.stop(blocks=blocks, chunks=chunks, metadata=metadata)


def _earlier(message: dict[str, Any]) -> EarlierReply:
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {} if metadata.get("event_type") == EVENT_TYPE else {}
    event_id, part = payload.get("event_id"), payload.get("part")
    return EarlierReply(
        ts=str(message["ts"]),
        event_id=event_id if isinstance(event_id, str) else None,
        part=part if isinstance(part, str) else None,
    )


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or 0)
