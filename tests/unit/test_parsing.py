import json

import pytest

from infra.local.slack_requests import (
    LOCAL_BOT_USER_ID,
    LOCAL_DM_CHANNEL,
    LOCAL_TEAM_ID,
    LOCAL_USER_ID,
    block_action,
    interaction_body,
    message_event,
)
from mailroom.commands import Command, parse_command_text
from mailroom.slack.parsing import MalformedPayload, load_event_body, parse_event_callback, parse_interaction

ORIGIN = "https://abc.execute-api.eu-west-1.amazonaws.com"


def parse(payload: dict) -> Command | None:
    return parse_event_callback(payload, ORIGIN)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", ("hello", "")),
        ("Hello!", ("hello", "")),
        ("help", ("hello", "")),
        ("", ("hello", "")),
        ("auth", ("auth", "")),
        ("  STATUS ", ("status", "")),
        ("revoke", ("revoke", "")),
        ("chat what's new?", ("chat", "what's new?")),
        ("status of my order from Bob?", ("chat", "status of my order from Bob?")),
        ("what did Alice send me?", ("chat", "what did Alice send me?")),
    ],
)
def test_command_words_alone_are_commands_and_the_rest_goes_to_the_agent(text, expected):
    assert parse_command_text(text) == expected


def test_a_direct_message_becomes_a_command_for_its_conversation():
    payload = message_event("hello", event_id="Ev123")
    command = parse(payload)
    assert command is not None
    assert (command.kind, command.name, command.event_id) == ("message", "hello", "Ev123")
    assert (command.team_id, command.user_id, command.channel_id) == (LOCAL_TEAM_ID, LOCAL_USER_ID, LOCAL_DM_CHANNEL)
    assert command.thread_ts is None
    assert command.conversation_id == f"{LOCAL_TEAM_ID}:{LOCAL_DM_CHANNEL}"
    assert command.public_base_url == ORIGIN


def test_a_message_in_a_thread_is_its_own_conversation():
    command = parse(message_event("what's new?", thread_ts="1700000000.000100"))
    assert command is not None
    assert command.name == "chat" and command.text == "what's new?"
    assert command.conversation_id == f"{LOCAL_TEAM_ID}:{LOCAL_DM_CHANNEL}:1700000000.000100"


def test_an_app_mention_drops_the_mention_and_answers_in_a_thread_under_it():
    payload = message_event(f"<@{LOCAL_BOT_USER_ID}> hello", channel="C0GENERAL", ts="1700000000.000200")
    payload["event"] |= {"type": "app_mention"}
    del payload["event"]["channel_type"]
    command = parse(payload)
    assert command is not None
    assert command.name == "hello" and command.channel_type == "channel"
    assert command.thread_ts == "1700000000.000200"


@pytest.mark.parametrize(
    "change",
    [
        {"bot_id": "B0OTHER"},
        {"subtype": "bot_message"},
        {"subtype": "message_changed"},
        {"subtype": "message_deleted"},
        {"subtype": "channel_join"},
        {"user": LOCAL_BOT_USER_ID},
        {"channel_type": "channel"},
        {"type": "reaction_added"},
    ],
)
def test_messages_not_for_the_bot_are_ignored(change):
    payload = message_event("hello")
    payload["event"] |= change
    assert parse(payload) is None


def test_a_message_without_a_user_is_ignored():
    payload = message_event("hello")
    del payload["event"]["user"]
    assert parse(payload) is None


@pytest.mark.parametrize("missing", ["event", "event_id", "team_id"])
def test_an_event_callback_missing_its_envelope_is_malformed(missing):
    payload = message_event("hello")
    del payload[missing]
    with pytest.raises(MalformedPayload):
        parse(payload)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"no_type": 1}', b"\xff\xfe", b'{"type": 5}'])
def test_bodies_that_are_not_events_api_payloads_are_malformed(body):
    with pytest.raises(MalformedPayload):
        load_event_body(body)


def test_an_approve_press_becomes_an_action_in_the_conversation_of_its_message():
    payload = block_action("approve_send", "pending-1", message_ts="1700000000.000300", thread_ts="1700000000.000100")
    command = parse_interaction(interaction_body(payload), ORIGIN)
    assert command is not None
    assert (command.kind, command.name, command.action_value) == ("action", "approve_send", "pending-1")
    assert command.conversation_id == f"{LOCAL_TEAM_ID}:{LOCAL_DM_CHANNEL}:1700000000.000100"
    assert command.event_id.startswith("act-") and len(command.event_id) <= 128


def test_two_presses_are_two_events_and_one_press_is_one():
    payload = block_action("approve_send", "pending-1", message_ts="1700000000.000300")
    first = parse_interaction(interaction_body(payload), ORIGIN)
    again = parse_interaction(interaction_body(payload), ORIGIN)
    payload["actions"][0]["action_ts"] = "1700000099.000000"
    second = parse_interaction(interaction_body(payload), ORIGIN)
    assert first is not None and again is not None and second is not None
    assert first.event_id == again.event_id
    assert first.event_id != second.event_id


def test_a_press_on_the_connect_gmail_link_button_needs_no_work():
    payload = block_action("connect_gmail", "", message_ts="1700000000.000300")
    assert parse_interaction(interaction_body(payload), ORIGIN) is None


def test_a_press_on_a_top_level_card_that_became_a_thread_parent_stays_in_the_top_level_conversation():
    payload = block_action("approve_send", "send-1", message_ts="1700.5", thread_ts="1700.5")
    command = parse_interaction(interaction_body(payload), ORIGIN)
    assert command is not None and command.thread_ts is None
    assert command.conversation_id == f"{command.team_id}:{command.channel_id}"


def test_other_interaction_types_are_ignored():
    body = interaction_body({"type": "view_closed", "user": {"id": "U1"}})
    assert parse_interaction(body, ORIGIN) is None


def test_the_edit_modal_submit_names_its_request_and_carries_the_fields():
    from infra.local.slack_requests import view_submission

    view = {
        "id": "V123",
        "callback_id": "edit_send_submit",
        "private_metadata": '{"action_id": "send-abc", "channel": "D0ADA", "thread_ts": "1700.1"}',
    }
    values = {"to": "bob@example.com", "cc": "", "bcc": "c@example.com", "subject": "Hi", "body": "text"}
    command = parse_interaction(interaction_body(view_submission(view, values)), ORIGIN)
    assert command is not None and command.name == "edit_send_submit" and command.action_value == "send-abc"
    assert command.conversation_id == "T0LOCAL:D0ADA:1700.1" and command.form == values
    assert command.view_id == "V123"


def test_another_modal_or_a_submit_without_its_request_is_not_queued():
    from infra.local.slack_requests import view_submission

    other = {"id": "V1", "callback_id": "something_else", "private_metadata": ""}
    assert parse_interaction(interaction_body(view_submission(other, {})), ORIGIN) is None
    broken = {"id": "V1", "callback_id": "edit_send_submit", "private_metadata": "{}"}
    with pytest.raises(MalformedPayload):
        parse_interaction(interaction_body(view_submission(broken, {})), ORIGIN)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"payload=",
        b"payload=not-json",
        b"something=else",
        b"payload=%5B1%5D",
        interaction_body({"type": "block_actions"}),
        interaction_body({"type": "block_actions", "actions": [], "user": {"id": "U1"}}),
        b"\xff\xfe",
    ],
)
def test_unreadable_interactions_are_malformed(body):
    with pytest.raises(MalformedPayload):
        parse_interaction(body, ORIGIN)


def test_a_command_survives_the_queue_round_trip():
    command = parse(message_event("chat summarise today", thread_ts="1.2"))
    assert command is not None
    assert Command.model_validate_json(command.model_dump_json()) == command
    assert json.loads(command.model_dump_json())["text"] == "summarise today"
