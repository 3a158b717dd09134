"""Turn Slack's Events API and interactivity payloads into `Command`s.

Anything the bot does not act on (its own or other bots' messages, edits, deletions,
unknown events) parses to `None`: Slack gets a 200 and nothing is queued.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qs

from mailroom.commands import Command, parse_command_text, strip_mentions


class MalformedPayload(ValueError):
    """The body is not a Slack payload we can read (answered with 400)."""


# Block Kit action ids the worker acts on; other presses (such as the link button of
# "Connect Gmail", which Slack also reports) need nothing more than the ack.
WORKER_ACTIONS = frozenset({"approve_send", "cancel_send", "edit_send", "answer_feedback"})
# The feedback buttons under each answer (mailroom.slack.presenter.feedback_blocks).
FEEDBACK_ACTION = "answer_feedback"
# The worker's command that sets the suggested prompts of a DM or agent thread opening.
PROMPTS = "prompts"
# The Edit modal's callback_id; its fields by block id.
EDIT_SUBMIT = "edit_send_submit"
EDIT_FIELDS = ("to", "cc", "bcc", "subject", "body")

# Message subtypes that are still a person writing to the bot.
_USER_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})


def load_event_body(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedPayload("body is not JSON") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise MalformedPayload("not a Slack Events API payload")
    return payload


def parse_event_callback(payload: dict[str, Any], public_base_url: str | None, retry_num: int = 0) -> Command | None:
    event = payload.get("event")
    event_id = payload.get("event_id")
    team_id = payload.get("team_id")
    if not isinstance(event, dict) or not isinstance(event_id, str) or not isinstance(team_id, str):
        raise MalformedPayload("event_callback without event, event_id or team_id")

    event_type = event.get("type")
    if event_type in ("app_home_opened", "assistant_thread_started"):
        return _parse_opening(event, event_id, team_id, public_base_url, retry_num)
    if event_type not in ("message", "app_mention"):
        return None
    if event.get("bot_id") or event.get("subtype") not in _USER_SUBTYPES:
        return None  # bots (ourselves included), edits, deletions, joins...
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if not isinstance(user, str) or not isinstance(channel, str) or not isinstance(ts, str):
        return None
    if user in _bot_user_ids(payload):
        return None
    text = event.get("text")
    text = text if isinstance(text, str) else ""

    thread_ts = event.get("thread_ts") if isinstance(event.get("thread_ts"), str) else None
    if event_type == "message":
        if event.get("channel_type") != "im":
            return None  # channels reach us as app_mention, never as plain messages
        channel_type = "im"
    else:
        channel_type = "channel"
        text = strip_mentions(text)
        thread_ts = thread_ts or ts  # answer a channel mention in a thread under it

    name, command_text = parse_command_text(text)
    return Command(
        kind="message",
        name=name,
        text=command_text,
        team_id=team_id,
        user_id=user,
        channel_id=channel,
        channel_type=channel_type,
        message_ts=ts,
        thread_ts=thread_ts,
        event_id=event_id,
        public_base_url=public_base_url,
        retry_num=retry_num,
    )


def _parse_opening(
    event: dict[str, Any], event_id: str, team_id: str, public_base_url: str | None, retry_num: int
) -> Command | None:
    """The user opened the bot's DM (app_home_opened, Messages tab) or a new agent
    thread (assistant_thread_started): the worker offers suggested prompts there."""
    if event["type"] == "app_home_opened":
        if event.get("tab") != "messages":
            return None  # the Home tab is not enabled; nothing to offer there
        user, channel, thread_ts = event.get("user"), event.get("channel"), None
    else:
        thread = event.get("assistant_thread")
        if not isinstance(thread, dict):
            return None
        user, channel, thread_ts = thread.get("user_id"), thread.get("channel_id"), thread.get("thread_ts")
        if not isinstance(thread_ts, str):
            return None
    if not isinstance(user, str) or not isinstance(channel, str) or not channel.startswith("D"):
        return None  # prompts are for the user's own DM with the bot
    return Command(
        kind="message",
        name=PROMPTS,
        team_id=team_id,
        user_id=user,
        channel_id=channel,
        channel_type="im",
        thread_ts=thread_ts,
        event_id=event_id,
        public_base_url=public_base_url,
        retry_num=retry_num,
    )


def _bot_user_ids(payload: dict[str, Any]) -> set[str]:
    authorizations = payload.get("authorizations")
    if not isinstance(authorizations, list):
        return set()
    return {a["user_id"] for a in authorizations if isinstance(a, dict) and a.get("is_bot") and "user_id" in a}


def parse_interaction(body: bytes, public_base_url: str | None) -> Command | None:
    """Parse a form-encoded interactivity request (`payload=<json>`)."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = json.loads(form["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError) as exc:
        raise MalformedPayload("interactivity body without a JSON payload field") from exc
    if not isinstance(payload, dict):
        raise MalformedPayload("interactivity payload is not an object")
    if payload.get("type") == "view_submission":
        return _parse_view_submission(payload, public_base_url)
    if payload.get("type") != "block_actions":
        return None
    try:
        action = payload["actions"][0]
        user_id = payload["user"]["id"]
        team_id = (payload.get("team") or {}).get("id") or payload["user"]["team_id"]
        container = payload.get("container") or {}
        channel_id = container.get("channel_id") or payload["channel"]["id"]
        action_id = action["action_id"]
    except (KeyError, IndexError, TypeError) as exc:
        raise MalformedPayload("block_actions payload without action, user or channel") from exc
    if action_id not in WORKER_ACTIONS:
        return None
    message = payload.get("message") or {}
    message_ts = container.get("message_ts") or message.get("ts")
    # A press is queued in the conversation its message lives in (the worker then acts in
    # the one its approval record names). A top-level card that has since gathered
    # replies carries thread_ts == its own ts: it still lives at the top level.
    thread_ts = container.get("thread_ts") or message.get("thread_ts")
    if thread_ts is not None and thread_ts == message_ts:
        thread_ts = None
    value = action.get("value")
    # Slack does not retry interactions, but a user may press twice: each press is its
    # own event, keyed by what was pressed and when.
    press = f"{team_id}:{user_id}:{channel_id}:{message_ts}:{action_id}:{action.get('action_ts')}"
    return Command(
        kind="action",
        name=action_id,
        team_id=team_id,
        user_id=user_id,
        channel_id=channel_id,
        channel_type="im" if channel_id.startswith("D") else "channel",
        message_ts=message_ts,
        thread_ts=thread_ts,
        event_id="act-" + hashlib.sha256(press.encode()).hexdigest()[:40],
        action_value=value if isinstance(value, str) else None,
        response_url=payload.get("response_url"),
        trigger_id=payload.get("trigger_id") if isinstance(payload.get("trigger_id"), str) else None,
        public_base_url=public_base_url,
    )


def _parse_view_submission(payload: dict[str, Any], public_base_url: str | None) -> Command | None:
    """The Edit modal's submit: where it belongs comes from the modal's private_metadata
    (set by us); the worker checks it against the approval record all the same."""
    try:
        view = payload["view"]
        user_id = payload["user"]["id"]
        team_id = (payload.get("team") or {}).get("id") or payload["user"]["team_id"]
        view_id = view["id"]
    except (KeyError, TypeError) as exc:
        raise MalformedPayload("view_submission without view or user") from exc
    if not isinstance(view, dict) or view.get("callback_id") != EDIT_SUBMIT:
        return None
    try:
        where = json.loads(view.get("private_metadata") or "{}")
    except ValueError as exc:
        raise MalformedPayload("view_submission with unreadable private_metadata") from exc
    action_id, channel_id = where.get("action_id"), where.get("channel")
    if not isinstance(action_id, str) or not isinstance(channel_id, str) or not channel_id:
        raise MalformedPayload("view_submission without its request")
    form: dict[str, str] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        if block_id in EDIT_FIELDS and isinstance(actions, dict):
            value = (actions.get(block_id) or {}).get("value")
            form[block_id] = value if isinstance(value, str) else ""
    # Each submit is its own event: the same modal submitted twice carries a new view hash.
    press = f"{team_id}:{user_id}:{view_id}:{view.get('hash')}"
    return Command(
        kind="action",
        name=EDIT_SUBMIT,
        team_id=team_id,
        user_id=user_id,
        channel_id=channel_id,
        channel_type="im" if channel_id.startswith("D") else "channel",
        thread_ts=where.get("thread_ts") or None,
        event_id="act-" + hashlib.sha256(press.encode()).hexdigest()[:40],
        action_value=action_id,
        view_id=view_id,
        form=form,
        public_base_url=public_base_url,
    )
