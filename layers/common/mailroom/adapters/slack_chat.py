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
from slack_sdk.web.chat_stream import ChatStream

from mailroom.errors import MessageGone, TransientError

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


# A stream that can take no more: expired, stopped, or the message is gone.
_NOT_STREAMING = frozenset({"message_not_in_streaming_state", "message_not_found", "cant_update_message"})


def make_web_client(token: str, base_url: str) -> WebClient:
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=10,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=2),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


class SlackChat:
    def __init__(self, client: WebClient):
        self._client = client

    def post(
        self, channel: str, text: str, *, thread_ts: str | None = None, blocks: list[dict[str, Any]] | None = None
    ) -> str:
        # Never unfurl: a URL in an answer or card may come from an email and carry mail text.
        response = self._call(
            "chat_postMessage",
            channel=channel,
            text=text,
            thread_ts=thread_ts,
            blocks=blocks,
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

    def update(self, channel: str, ts: str, text: str, *, blocks: list[dict[str, Any]] | None = None) -> None:
        self._call("chat_update", channel=channel, ts=ts, text=text, blocks=blocks)

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
        first flush, chat.appendStream, chat.stopStream)."""
        return AnswerStream(
            self._client.chat_stream(
                channel=channel,
                thread_ts=thread_ts,
                recipient_user_id=user_id,
                recipient_team_id=team_id,
                buffer_size=buffer_size,
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

    def stop(self, blocks: list[dict[str, Any]] | None = None) -> None:
        self._stream.stop(blocks=blocks)
