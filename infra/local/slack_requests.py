"""Build and sign requests the way Slack sends them (for the demo, tests and events/)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode

# Slack's documented example signing secret; events/ are signed with it and the local
# stack configures it. Never a real app's secret.
LOCAL_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
LOCAL_TEAM_ID = "T0LOCAL"
LOCAL_USER_ID = "U0ADA"
LOCAL_DM_CHANNEL = "D0ADA"
LOCAL_BOT_USER_ID = "U0MAILBOT"


def sign(body: bytes, secret: str = LOCAL_SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


_counter = 0


def _next_id() -> int:
    global _counter
    _counter += 1
    return _counter


def message_event(
    text: str,
    *,
    user: str = LOCAL_USER_ID,
    channel: str = LOCAL_DM_CHANNEL,
    team: str = LOCAL_TEAM_ID,
    thread_ts: str | None = None,
    event_id: str | None = None,
    ts: str | None = None,
) -> dict[str, Any]:
    """A `message.im` event_callback, shaped as Slack sends it."""
    n = _next_id()
    ts = ts or f"{int(time.time())}.{n:06d}"
    event_id = event_id or f"Ev{int(time.time())}{n:04d}"
    event: dict[str, Any] = {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": "im",
        "client_msg_id": str(uuid.uuid5(uuid.NAMESPACE_URL, event_id)),
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return {
        "token": "legacy-verification-token-unused",
        "team_id": team,
        "api_app_id": "A0MAILROOM",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": team, "user_id": LOCAL_BOT_USER_ID, "is_bot": True}],
        "is_ext_shared_channel": False,
        "event_context": f"4-{event_id}",
    }


def block_action(
    action_id: str, value: str, *, message_ts: str, thread_ts: str | None = None, user: str = LOCAL_USER_ID
) -> dict[str, Any]:
    """A `block_actions` interactivity payload for a button press."""
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": LOCAL_DM_CHANNEL,
        "is_ephemeral": False,
    }
    if thread_ts:
        container["thread_ts"] = thread_ts
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "ada", "team_id": LOCAL_TEAM_ID},
        "api_app_id": "A0MAILROOM",
        "team": {"id": LOCAL_TEAM_ID, "domain": "local"},
        "container": container,
        "channel": {"id": LOCAL_DM_CHANNEL, "name": "directmessage"},
        "message": {"ts": message_ts, "thread_ts": thread_ts, "type": "message"},
        "response_url": "http://127.0.0.1:9/unused",
        # Slack-shaped (<n>.<n>.<hex>); the emulator reads the first part as the issue time.
        "trigger_id": f"{int(time.time() * 1000)}.{_next_id()}.local",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "approval",
                "value": value,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def feedback_press(
    value: str, *, message_ts: str, thread_ts: str | None = None, user: str = LOCAL_USER_ID
) -> dict[str, Any]:
    """A press on the feedback buttons (context_actions > feedback_buttons) under an answer."""
    payload = block_action("answer_feedback", value, message_ts=message_ts, thread_ts=thread_ts, user=user)
    payload["actions"][0].update({"type": "feedback_buttons", "block_id": "feedback", "text": {"type": "plain_text"}})
    return payload


def _event_callback(event: dict[str, Any], team: str, event_id: str | None) -> dict[str, Any]:
    event_id = event_id or f"Ev{int(time.time())}{_next_id():04d}"
    return {
        "team_id": team,
        "api_app_id": "A0MAILROOM",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": team, "user_id": LOCAL_BOT_USER_ID, "is_bot": True}],
    }


def app_home_opened_event(
    *, user: str = LOCAL_USER_ID, channel: str = LOCAL_DM_CHANNEL, tab: str = "messages", team: str = LOCAL_TEAM_ID
) -> dict[str, Any]:
    """The user opened the bot's App Home on a tab (`messages`: the DM)."""
    event = {"type": "app_home_opened", "user": user, "channel": channel, "tab": tab, "event_ts": f"{time.time():.6f}"}
    return _event_callback(event, team, None)


def assistant_thread_started_event(
    thread_ts: str, *, user: str = LOCAL_USER_ID, channel: str = LOCAL_DM_CHANNEL, team: str = LOCAL_TEAM_ID
) -> dict[str, Any]:
    """The user opened a new thread with the agent (Slack's agent/assistant surface)."""
    event = {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": user,
            "channel_id": channel,
            "thread_ts": thread_ts,
            "context": {"channel_id": None, "team_id": team, "enterprise_id": None},
        },
        "event_ts": f"{time.time():.6f}",
    }
    return _event_callback(event, team, None)


def view_submission(view: dict[str, Any], values: dict[str, str], user: str = LOCAL_USER_ID) -> dict[str, Any]:
    """A `view_submission` payload: the modal `view` (as views.open/update stored it)
    submitted with `values` typed into its inputs (block id = action id, as our modals use)."""
    state = {"values": {key: {key: {"type": "plain_text_input", "value": value}} for key, value in values.items()}}
    return {
        "type": "view_submission",
        "team": {"id": LOCAL_TEAM_ID, "domain": "local"},
        "user": {"id": user, "username": "ada", "team_id": LOCAL_TEAM_ID},
        "api_app_id": "A0MAILROOM",
        "trigger_id": f"{int(time.time() * 1000)}.{_next_id()}.local",
        "view": {**view, "state": state, "hash": f"{time.time():.6f}"},
    }


def interaction_body(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


@dataclass
class HttpAnswer:
    status: int
    body: str
    seconds: float


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 10) -> HttpAnswer:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (local URL)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return HttpAnswer(response.status, response.read().decode(), time.perf_counter() - started)
    except HTTPError as error:
        return HttpAnswer(error.code, error.read().decode(), time.perf_counter() - started)


def post_event(
    base_url: str,
    payload: dict[str, Any],
    *,
    secret: str = LOCAL_SIGNING_SECRET,
    retry_num: int | None = None,
    timestamp: int | None = None,
) -> HttpAnswer:
    """POST an Events API payload as Slack does (signed; retries carry X-Slack-Retry-*)."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
    headers |= sign(body, secret, timestamp)
    if retry_num:
        headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
    return post(f"{base_url.rstrip('/')}/slack/events", body, headers)


def post_interaction(base_url: str, payload: dict[str, Any], *, secret: str = LOCAL_SIGNING_SECRET) -> HttpAnswer:
    body = interaction_body(payload)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} | sign(body, secret)
    return post(f"{base_url.rstrip('/')}/slack/interactions", body, headers)
