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
from langgraph.runtime import Runtime

from mailroom.agent.context import AgentContext
from mailroom.agent.prompt import SYSTEM_PROMPT
from mailroom.errors import ToolInputError

OUT_OF_TIME = (
    "I had to stop before finishing: this request needed more time than I have per message. "
    "Ask again, or narrow it down (a sender, a date range)."
)
_STUB = "[older tool result removed to keep the conversation short; call the tool again if needed]"


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
        if time.monotonic() > runtime.context.deadline:
            return {"messages": [AIMessage(content=OUT_OF_TIME)]}
        today = datetime.now(UTC).strftime("%A %d %B %Y")
        system = SystemMessage(content=SYSTEM_PROMPT.format(email=runtime.context.email, today=today))
        return {"messages": [bound.invoke([system, *state["messages"]])]}

    def route(state: MessagesState) -> Literal["tools", "compact"]:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else "compact"

    def compact(state: MessagesState) -> dict[str, list[AnyMessage | RemoveMessage]]:
        return {"messages": compaction(state["messages"], keep_turns, tool_result_chars)}

    graph = StateGraph(MessagesState, context_schema=AgentContext)
    graph.add_node("agent", agent)
    # A request Gmail cannot serve goes back to the model as text, so it can correct
    # itself; anything else (auth, outages) ends the turn for the worker to report.
    graph.add_node("tools", ToolNode(tools, handle_tool_errors=(ToolInputError,)))
    graph.add_node("compact", compact)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route)
    graph.add_edge("tools", "agent")
    graph.add_edge("compact", END)
    return graph.compile(checkpointer=checkpointer)


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
