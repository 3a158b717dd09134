"""The queued Command: what the ingress writes, the worker reads back exactly, and a
message that is not a Command is refused with a ValueError (the worker drops it)."""

from __future__ import annotations

import json

import pytest

from mailroom.commands import Command, InvalidCommand

COMMAND = Command(
    kind="action",
    name="approve_send",
    team_id="T1",
    user_id="U1",
    channel_id="D1",
    thread_ts="1700000000.000100",
    event_id="act-1",
    action_value="pending-7",
    retry_num=2,
)


def test_a_command_survives_the_queue_unchanged():
    assert Command.model_validate_json(COMMAND.model_dump_json()) == COMMAND
    assert Command.model_validate(COMMAND.model_dump(mode="json")) == COMMAND


def test_unknown_keys_are_ignored_as_pydantic_did():
    data = json.loads(COMMAND.model_dump_json()) | {"added_later": 1}
    assert Command.model_validate(data) == COMMAND


def test_model_copy_changes_only_what_it_is_given():
    copy = COMMAND.model_copy(update={"name": "cancel_send"})
    assert copy.name == "cancel_send" and copy.event_id == COMMAND.event_id


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kind": "reaction"}, "kind"),
        ({"retry_num": "2"}, "retry_num"),
        ({"retry_num": True}, "retry_num"),
        ({"thread_ts": 5}, "thread_ts"),
        ({"team_id": None}, "team_id"),
    ],
)
def test_a_field_of_the_wrong_type_is_refused(change, reason):
    with pytest.raises(InvalidCommand, match=reason):
        Command.model_validate(json.loads(COMMAND.model_dump_json()) | change)


@pytest.mark.parametrize("body", ["not json", "[]", json.dumps({"kind": "message"})])
def test_what_is_not_a_command_is_a_value_error(body):
    with pytest.raises(ValueError):
        Command.model_validate_json(body)
