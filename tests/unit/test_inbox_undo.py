"""Undo puts back exactly what a change took away, message by message."""

from __future__ import annotations

from langchain_core.messages import ToolMessage

from mailroom.agent.inbox_tools import _last_change, _reversal


def test_reversal_restores_each_message_as_it_was() -> None:
    # Archive + mark read: one message had both labels, one was already read, one already archived.
    change = {"add": [], "remove": ["INBOX", "UNREAD"], "before": {"a": ["INBOX", "UNREAD"], "b": ["INBOX"], "c": []}}
    assert _reversal(change) == {(("INBOX", "UNREAD"), ()): ["a"], (("INBOX",), ()): ["b"]}
    # A label added: taken off only where the change put it.
    labelled = {"add": ["Label_1"], "remove": [], "before": {"a": [], "b": ["Label_1"]}}
    assert _reversal(labelled) == {((), ("Label_1",)): ["a"]}


def test_the_last_change_not_yet_undone_is_found() -> None:
    def tool(call_id: str, artifact: dict[str, object]) -> ToolMessage:
        return ToolMessage(content="ok", tool_call_id=call_id, artifact=artifact)

    first = {"add": [], "remove": ["INBOX"], "before": {"a": ["INBOX"]}}
    second = {"add": ["STARRED"], "remove": [], "before": {"a": []}}
    history = [tool("c1", {"change": first}), tool("c2", {"change": second})]
    assert _last_change(history) == ("c2", second)
    assert _last_change([*history, tool("u1", {"undid": "c2"})]) == ("c1", first)
    assert _last_change([*history, tool("u1", {"undid": "c2"}), tool("u2", {"undid": "c1"})]) is None
