"""The agent graph: model <-> tools until the model answers, then compact the history.

State is checkpointed by thread (the Slack conversation), so a follow-up in the same
thread continues where the last turn ended, in whatever Lambda runs it next. History
is kept bounded: after each answer, turns older than `keep_turns` are removed and old
tool results are cut to a stub, so checkpoints stay small and model calls cheap.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolInvocationError
from langgraph.runtime import Runtime

from mailroom.agent.context import AgentContext
from mailroom.agent.prompt import SYSTEM_PROMPT
from mailroom.errors import Failure, OutOfTime, ToolInputError, classify, is_timeout
from mailroom.timeouts import MIN_CALL_SECONDS, MODEL_ATTEMPTS, MODEL_CALL_SECONDS, call_timeout, seconds_left

OUT_OF_TIME = (
    "I had to stop before finishing: this request needed more time than I have per message. "
    "Ask again, or narrow it down (a sender, a date range)."
)
_STUB = "[older tool result removed to keep the conversation short; call the tool again if needed]"
_NOT_FINISHED = "(I could not finish this step: a service I use failed. Nothing more was done.)"


def build_graph(
    model: BaseChatModel,
    tools: Sequence[BaseTool],
    checkpointer: BaseCheckpointSaver[Any] | None,
    *,
    keep_turns: int = 6,
    tool_result_chars: int = 600,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    bound = model.bind_tools(tools)

    def agent(state: MessagesState, runtime: Runtime[AgentContext]) -> dict[str, list[AnyMessage]]:
        # A history with unanswered tool calls is never sent (the model's API refuses it)
        # and is repaired in the checkpoint by this step's write.
        repairs = unanswered_repairs(state["messages"])
        history = _with_repairs(state["messages"], repairs)
        today = datetime.now(UTC).strftime("%A %d %B %Y")
        system = SystemMessage(content=SYSTEM_PROMPT.format(email=runtime.context.email, today=today))
        try:
            answer = _call_model(bound, [system, *history], runtime.context.deadline)
        except OutOfTime:
            answer = AIMessage(content=OUT_OF_TIME)
        return {"messages": [*repairs, answer]}

    def route(state: MessagesState) -> Literal["tools", "compact"]:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else "compact"

    def compact(state: MessagesState) -> dict[str, list[AnyMessage | RemoveMessage]]:
        return {"messages": compaction(state["messages"], keep_turns, tool_result_chars)}

    graph = StateGraph(MessagesState, context_schema=AgentContext)
    graph.add_node("agent", agent)
    # What the model can act on (bad arguments, unknown ids) goes back to it as text;
    # anything else (auth, outages, bugs) ends the run, which then saves nothing.
    graph.add_node("tools", ToolNode(tools, handle_tool_errors=tool_error_message))
    graph.add_node("compact", compact)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route)
    graph.add_edge("tools", "agent")
    graph.add_edge("compact", END)
    return graph.compile(checkpointer=checkpointer)


def tool_error_message(exc: Exception) -> str:
    """The tool message for an error the model can act on; re-raises any other.
    Built from the error's kind and field names only: never echoes the arguments."""
    if isinstance(exc, ToolInvocationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
            for error in exc.filtered_errors or []
        )
        problems = problems or "see the tool's schema"
        return f"Error: invalid arguments for {exc.tool_name} ({problems}). Call it again with valid arguments."
    if isinstance(exc, ToolInputError):
        return f"Error: {exc}"
    if isinstance(exc, OutOfTime):
        return "Error: stopped, this request ran out of time before the tool could finish."
    raise exc


def _call_model(model: Any, messages: list[AnyMessage], deadline: float) -> AIMessage:
    """One model answer: each try's timeout ends by the deadline; a transient failure is
    retried while time allows. OutOfTime when the budget is spent."""
    for attempt in range(MODEL_ATTEMPTS):
        timeout = call_timeout(deadline, MODEL_CALL_SECONDS)
        try:
            answer: AIMessage = model.invoke(messages, timeout=timeout)
            return answer
        except Exception as exc:
            if is_timeout(exc) and seconds_left(deadline) < MIN_CALL_SECONDS:
                raise OutOfTime("the model call ran out of time") from exc
            if classify(exc) is not Failure.TRANSIENT or attempt == MODEL_ATTEMPTS - 1:
                raise
            time.sleep(max(0.0, min(2.0**attempt, seconds_left(deadline) - MIN_CALL_SECONDS)))
    raise AssertionError("unreachable")  # pragma: no cover


def unanswered_repairs(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """Replacements (same id) for model messages whose tool calls were never all answered:
    each keeps only its answered calls, so the history is valid again. Such a history is
    left by an earlier version that saved failed runs."""
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    repairs: list[AnyMessage] = []
    for message in messages:
        if not isinstance(message, AIMessage) or not message.tool_calls:
            continue
        kept = [call for call in message.tool_calls if call.get("id") in answered]
        if len(kept) == len(message.tool_calls):
            continue
        content = message.content if (message.content or kept) else _NOT_FINISHED
        repairs.append(
            AIMessage(content=content, id=message.id, tool_calls=kept, response_metadata=message.response_metadata)
        )
    return repairs


def _with_repairs(messages: Sequence[AnyMessage], repairs: Sequence[AnyMessage]) -> list[AnyMessage]:
    by_id = {m.id: m for m in repairs}
    return [by_id.get(m.id, m) if m.id else m for m in messages]


def compaction(
    messages: Sequence[AnyMessage], keep_turns: int, tool_result_chars: int
) -> list[AnyMessage | RemoveMessage]:
    """The updates that bound the history: remove whole turns older than the last
    `keep_turns` (a turn starts at a human message, so a tool call is never parted from
    its result), and stub long tool results of every turn but the latest."""
    turn_starts = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
    updates: list[AnyMessage | RemoveMessage] = []
    first_kept = turn_starts[-keep_turns] if len(turn_starts) > keep_turns else 0
    updates += [RemoveMessage(id=m.id) for m in messages[:first_kept] if m.id]
    latest = turn_starts[-1] if turn_starts else 0
    for message in messages[first_kept:latest]:
        if isinstance(message, ToolMessage) and len(str(message.content)) > tool_result_chars:
            short = str(message.content)[:tool_result_chars] + "\n" + _STUB
            updates.append(
                ToolMessage(content=short, id=message.id, tool_call_id=message.tool_call_id, name=message.name)
            )
    return updates


def this_turn(messages: Sequence[AnyMessage]) -> Sequence[AnyMessage]:
    """The messages since the latest human message."""
    starts = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
    return messages[starts[-1] :] if starts else messages


def final_answer(messages: Sequence[AnyMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, AIMessage) and not message.tool_calls:
            return message.text
    return ""
