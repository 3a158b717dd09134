"""A graph run saves all it did or nothing (AtomicSaver over LangGraph's own in-memory
saver), tool errors the model can act on become tool messages, unanswered tool calls
are repaired, and each call's timeout fits the turn's time."""

from __future__ import annotations

import time
from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import StructuredTool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command, interrupt
from pydantic import Field

from mailroom.agent.atomic import AtomicSaver
from mailroom.agent.context import AgentContext
from mailroom.agent.graph import OUT_OF_TIME, build_graph, final_answer, unanswered_repairs
from mailroom.errors import OutOfTime, ToolInputError, TransientError
from mailroom.timeouts import MIN_CALL_SECONDS, call_timeout

CONFIG: Any = {"configurable": {"thread_id": "t"}}


class ScriptedModel:
    """Answers with the next scripted message; records what it was sent and how."""

    def __init__(self, *answers: AIMessage | Exception):
        self.answers = list(answers)
        self.seen: list[list[Any]] = []
        self.timeouts: list[float] = []

    def bind_tools(self, tools: Any) -> ScriptedModel:
        return self

    def invoke(self, messages: list[Any], timeout: float) -> AIMessage:
        self.seen.append(list(messages))
        self.timeouts.append(timeout)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def call(name: str, call_id: str = "c1", **args: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"id": call_id, "name": name, "args": args}])


def search(query: str, max_results: Annotated[int, Field(ge=1, le=25)] = 10) -> str:
    """Search."""
    if query == "gmail-down":
        raise TransientError("Gmail answered 503 after retries")
    if query == "unknown":
        raise ToolInputError("Gmail answered 404: not found")
    if query == "late":
        raise OutOfTime("spent")
    if query == "ask":
        return str(interrupt({"send": "?"}))
    return "found 1"


def run(model: ScriptedModel, saver: AtomicSaver, text: str, deadline: float | None = None) -> dict[str, Any]:
    graph = build_graph(model, [StructuredTool.from_function(search)], saver)  # type: ignore[arg-type]
    context = AgentContext(email="ada@example.com", deadline=deadline or time.monotonic() + 60)
    with saver.atomic():
        result: dict[str, Any] = graph.invoke(
            {"messages": [HumanMessage(content=text)]}, CONFIG, context=context, durability="exit"
        )
    return result


def saved(saver: AtomicSaver) -> list[Any]:
    found = saver.get_tuple(CONFIG)
    return list(found.checkpoint["channel_values"]["messages"]) if found else []


def test_a_run_that_fails_in_a_tool_saves_nothing():
    saver = AtomicSaver(InMemorySaver())
    run(ScriptedModel(AIMessage(content="hello")), saver, "hi")
    before = saved(saver)
    with pytest.raises(TransientError):
        run(ScriptedModel(call("search", query="gmail-down")), saver, "search")
    assert saved(saver) == before


def test_without_the_atomic_saver_langgraph_saves_the_failed_run():
    # Why AtomicSaver exists: LangGraph (durability="exit") keeps the unanswered call.
    plain = InMemorySaver()
    model: Any = ScriptedModel(call("search", query="gmail-down"))
    graph = build_graph(model, [StructuredTool.from_function(search)], plain)
    with pytest.raises(TransientError):
        graph.invoke(
            {"messages": [HumanMessage(content="x")]},
            CONFIG,
            context=AgentContext(email="a", deadline=time.monotonic() + 60),
            durability="exit",
        )
    messages = plain.get_tuple(CONFIG).checkpoint["channel_values"]["messages"]  # type: ignore[union-attr]
    assert isinstance(messages[-1], AIMessage) and messages[-1].tool_calls


def test_a_run_stopped_by_an_interrupt_is_saved_and_can_be_resumed():
    saver = AtomicSaver(InMemorySaver())
    model = ScriptedModel(call("search", query="ask"), AIMessage(content="done"))
    result = run(model, saver, "send it")
    assert result["__interrupt__"]
    graph = build_graph(model, [StructuredTool.from_function(search)], saver)  # type: ignore[arg-type]
    with saver.atomic():
        resumed = graph.invoke(
            Command(resume="yes"),
            CONFIG,
            context=AgentContext(email="a", deadline=time.monotonic() + 60),
            durability="exit",
        )
    assert final_answer(resumed["messages"]) == "done"
    assert final_answer(saved(saver)) == "done"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"query": "x", "max_results": 50}, "Error: invalid arguments for search (max_results: Input should be less"),
        ({"query": ["a", "b"]}, "Error: invalid arguments for search (query: Input should be a valid string)"),
        ({"query": "unknown"}, "Error: Gmail answered 404: not found"),
        ({"query": "late"}, "Error: stopped, this request ran out of time"),
    ],
)
def test_errors_the_model_can_act_on_come_back_as_tool_messages(args: dict[str, Any], expected: str):
    saver = AtomicSaver(InMemorySaver())
    model = ScriptedModel(call("search", **args), AIMessage(content="sorry"))
    result = run(model, saver, "search")
    [tool_message] = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert str(tool_message.content).startswith(expected)
    assert "['a', 'b']" not in str(tool_message.content), "the arguments are not echoed"
    assert final_answer(saved(saver)) == "sorry"


def test_unanswered_tool_calls_are_repaired_before_the_model_sees_them_and_in_the_checkpoint():
    inner = InMemorySaver()
    graph = build_graph(ScriptedModel(), [StructuredTool.from_function(search)], inner)  # type: ignore[arg-type]
    broken = [HumanMessage(content="q", id="h1"), AIMessage(content="", id="a1", tool_calls=call("search").tool_calls)]
    graph.update_state(CONFIG, {"messages": broken}, as_node="agent")
    model = ScriptedModel(AIMessage(content="fine"))
    saver = AtomicSaver(inner)
    run(model, saver, "next")
    [sent] = model.seen
    assert not any(isinstance(m, AIMessage) and m.tool_calls for m in sent)
    assert [m.id for m in saved(saver)][:2] == ["h1", "a1"]
    assert unanswered_repairs(saved(saver)) == []


def test_a_partly_answered_call_keeps_its_answered_part():
    message = AIMessage(
        content="", id="a", tool_calls=[{"id": "x", "name": "s", "args": {}}, {"id": "y", "name": "s", "args": {}}]
    )
    [repair] = unanswered_repairs([message, ToolMessage(content="r", tool_call_id="x")])
    assert isinstance(repair, AIMessage) and repair.id == "a"
    assert [c["id"] for c in repair.tool_calls] == ["x"]


def test_a_model_call_gets_a_timeout_that_ends_by_the_deadline_and_is_retried_within_it():
    model = ScriptedModel(TransientError("model 503"), AIMessage(content="ok"))
    result = run(model, AtomicSaver(InMemorySaver()), "hi", deadline=time.monotonic() + 12)
    assert final_answer(result["messages"]) == "ok"
    assert len(model.timeouts) == 2 and all(t <= 12 for t in model.timeouts)


def test_no_call_starts_when_too_little_time_is_left():
    with pytest.raises(OutOfTime):
        call_timeout(time.monotonic() + MIN_CALL_SECONDS / 2, 30)
    model = ScriptedModel()
    result = run(model, AtomicSaver(InMemorySaver()), "hi", deadline=time.monotonic() + MIN_CALL_SECONDS / 2)
    assert final_answer(result["messages"]) == OUT_OF_TIME and model.seen == []
