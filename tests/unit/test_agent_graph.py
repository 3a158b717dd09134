"""The agent graph's own logic: history compaction and the deadline."""

from __future__ import annotations

import time
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from mailroom.agent.context import AgentContext
from mailroom.agent.graph import OUT_OF_TIME, build_graph, compaction, final_answer


def conversation(turns: int, tool_result: str = "r" * 2000) -> list[Any]:
    messages: list[Any] = []
    for n in range(turns):
        messages += [
            HumanMessage(content=f"question {n}", id=f"h{n}"),
            AIMessage(content="", id=f"c{n}", tool_calls=[{"id": f"t{n}", "name": "search_emails", "args": {}}]),
            ToolMessage(content=tool_result, id=f"r{n}", tool_call_id=f"t{n}", name="search_emails"),
            AIMessage(content=f"answer {n}", id=f"a{n}"),
        ]
    return messages


def test_compaction_keeps_the_last_turns_whole_and_removes_older_ones():
    updates = compaction(conversation(10), keep_turns=6, tool_result_chars=600)
    removed = {u.id for u in updates if isinstance(u, RemoveMessage)}
    assert removed == {f"{kind}{n}" for n in range(4) for kind in "hcra"}


def test_compaction_stubs_long_tool_results_except_in_the_latest_turn():
    updates = compaction(conversation(3), keep_turns=6, tool_result_chars=600)
    stubbed = {u.id: u for u in updates if isinstance(u, ToolMessage)}
    assert set(stubbed) == {"r0", "r1"}
    assert all(len(str(m.content)) < 800 and "removed" in str(m.content) for m in stubbed.values())
    assert stubbed["r0"].tool_call_id == "t0"


def test_a_short_conversation_needs_no_compaction():
    assert compaction(conversation(2, tool_result="short"), keep_turns=6, tool_result_chars=600) == []


def test_the_final_answer_is_the_last_ai_message_without_tool_calls():
    assert final_answer(conversation(2)) == "answer 1"


class _NeverCalled:
    def bind_tools(self, tools: Any) -> Any:
        return self

    def invoke(self, messages: Any) -> Any:
        raise AssertionError("no model call may start after the deadline")


def test_past_the_deadline_the_agent_stops_and_says_so():
    graph = build_graph(_NeverCalled(), [], InMemorySaver())  # type: ignore[arg-type]
    result = graph.invoke(
        {"messages": [HumanMessage(content="summarise everything")]},
        {"configurable": {"thread_id": "t"}},
        context=AgentContext(email="ada@example.com", deadline=time.monotonic() - 1),
    )
    assert final_answer(result["messages"]) == OUT_OF_TIME
