"""Run the agent graph while showing it in Slack: a status and a task card as each tool
step starts (the card turns complete, or error, when the step ends), the model's words as
they arrive. The run and what it saves are those of `invoke`."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage

from mailroom.agent.graph import this_turn
from mailroom.slack.presenter import TASK_RUNNING, THINKING, TurnView, step_status, task_title


def run_shown(graph: Any, turn_input: Any, config: dict[str, Any], context: Any, view: TurnView) -> dict[str, Any]:
    """As `graph.invoke(..., durability="exit")`, streaming "messages" too (which makes
    the chat model stream its tokens) and showing progress in `view`."""
    latest: dict[str, Any] = {}
    interrupts: list[Any] = []
    subjects: dict[str, str] = {}
    for mode, payload in graph.stream(
        turn_input, config, context=context, durability="exit", stream_mode=["updates", "values", "messages"]
    ):
        if mode == "values":
            latest = payload
        elif mode == "messages":
            chunk, metadata = payload
            if isinstance(chunk, AIMessageChunk) and metadata.get("langgraph_node") == "agent":
                view.token(chunk.text)
        elif mode == "updates" and isinstance(payload, dict):
            interrupts.extend(payload.get("__interrupt__") or ())
            _show_steps(payload, view, subjects)
    said = this_turn(latest.get("messages") or [])
    view.spoke([m.text for m in said if isinstance(m, AIMessage) and m.text])
    return {**latest, "__interrupt__": interrupts} if interrupts else latest


def _show_steps(update: dict[str, Any], view: TurnView, subjects: dict[str, str]) -> None:
    for message in (update.get("tools") or {}).get("messages") or []:
        if isinstance(message, ToolMessage):
            # A tool error the model gets back (handle_tool_errors) ends its card as an error.
            view.end_task(message.tool_call_id, ok=message.status != "error")
            if message.name == "search_emails":
                subjects.update(_subjects(str(message.content)))
    if update.get("tools"):
        view.status(THINKING)
    for message in (update.get("agent") or {}).get("messages") or []:
        if isinstance(message, AIMessage) and message.tool_calls:
            for call in message.tool_calls:
                words = step_status(call["name"], call.get("args") or {}, subjects)
                view.status(words)
                view.task(str(call.get("id") or ""), task_title(words), TASK_RUNNING)


def _subjects(search_result: str) -> dict[str, str]:
    """Message and thread ids to subjects from a search_emails result (a fenced JSON
    list), so "reading …" can name what it reads. Best effort."""
    start, end = search_result.find("["), search_result.rfind("]")
    try:
        found = json.loads(search_result[start : end + 1]) if 0 <= start < end else []
    except ValueError:
        return {}
    names: dict[str, str] = {}
    for item in found if isinstance(found, list) else []:
        if isinstance(item, dict) and isinstance(item.get("subject"), str):
            for key in ("id", "thread_id", "threadId"):
                if isinstance(item.get(key), str):
                    names[item[key]] = item["subject"]
    return names
