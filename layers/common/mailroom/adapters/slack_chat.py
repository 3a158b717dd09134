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

from mailroom.errors import MessageGone, TransientError

_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# The message to edit is not there to edit (the user deleted the placeholder, say).
_GONE_ERRORS = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


# views.open refusals that mean the press came too late (a trigger id lives 3 s), not a bug.
_SPENT_TRIGGER = frozenset({"expired_trigger_id", "exchanged_trigger_id", "invalid_trigger_id"})


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
        try:
            self._call("views_open", trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            if exc.response.get("error") in _SPENT_TRIGGER:
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
