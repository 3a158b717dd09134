"""Only the latest checkpoint of a conversation is kept: the saver prunes as it goes
(DynamoDB on moto's server, a real LangGraph graph with the production saver)."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from mailroom.agent.checkpoints import TurnCachedSaver


class Notes(TypedDict):
    notes: Annotated[list[str], operator.add]


def note_graph(saver: Any, *, ask: bool = False) -> Any:
    def write(state: Notes) -> dict[str, list[str]]:
        answer = interrupt("approve?") if ask else "ok"
        return {"notes": [f"note {len(state['notes']) + 1} {answer}"]}

    graph = StateGraph(Notes)
    graph.add_node("write", write)
    graph.add_edge(START, "write")
    graph.add_edge("write", END)
    return graph.compile(checkpointer=saver)


@pytest.fixture
def table(deployment) -> str:
    return deployment.physical("CheckpointsTable")


@pytest.fixture
def items(deployment, table):
    dynamodb = deployment.aws.client("dynamodb")

    def of_thread(thread: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                pk = item["PK"]["S"]
                kind, _, rest = pk.partition("_")
                if rest == thread or rest.startswith(thread + "#"):
                    counts[kind] = counts.get(kind, 0) + 1
        return counts

    return of_thread


def config(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def test_a_long_conversation_keeps_one_checkpoint_and_all_its_state(table, items):
    graph = note_graph(TurnCachedSaver(table_name=table, ttl_seconds=3600))
    for _ in range(12):
        result = graph.invoke({"notes": []}, config("T1:D1"), durability="exit")
    assert len(result["notes"]) == 12  # nothing of the history was lost with the old checkpoints
    assert items("T1:D1") == {"CHECKPOINT": 1, "CHUNK": 1}
    assert len(list(graph.checkpointer.list(config("T1:D1")))) == 1


def test_an_answered_interrupt_leaves_no_pending_writes_behind(table, items):
    graph = note_graph(TurnCachedSaver(table_name=table, ttl_seconds=3600), ask=True)
    graph.invoke({"notes": []}, config("T1:D2"), durability="exit")
    waiting = items("T1:D2")
    assert waiting["WRITES"] >= 1  # the interrupt is stored with the checkpoint it paused
    result = graph.invoke(Command(resume="approved"), config("T1:D2"), durability="exit")
    assert result["notes"] == ["note 1 approved"]
    assert items("T1:D2") == {"CHECKPOINT": 1, "CHUNK": 1}
    assert graph.get_state(config("T1:D2")).interrupts == ()


def test_other_conversations_are_left_alone(table, items):
    graph = note_graph(TurnCachedSaver(table_name=table, ttl_seconds=3600))
    for thread in ("T1:D3", "T1:D3:1700000000.000100"):
        for _ in range(3):
            graph.invoke({"notes": []}, config(thread), durability="exit")
    assert items("T1:D3") == {"CHECKPOINT": 1, "CHUNK": 1}
    assert items("T1:D3:1700000000.000100") == {"CHECKPOINT": 1, "CHUNK": 1}


def test_prune_keeps_the_latest_of_a_conversation_saved_before_pruning(table, items):
    from langgraph_checkpoint_aws import DynamoDBSaver

    unpruned = note_graph(DynamoDBSaver(table_name=table, ttl_seconds=3600))
    for _ in range(4):
        unpruned.invoke({"notes": []}, config("T1:D4"))  # durability "async": a checkpoint per step
    assert items("T1:D4")["CHECKPOINT"] > 4

    saver = TurnCachedSaver(table_name=table, ttl_seconds=3600)
    saver.prune(["T1:D4"])
    assert items("T1:D4").get("CHECKPOINT") == 1
    assert len(note_graph(saver).get_state(config("T1:D4")).values["notes"]) == 4


def test_a_failed_prune_never_fails_the_turn(table, items, monkeypatch):
    from botocore.exceptions import ClientError

    saver = TurnCachedSaver(table_name=table, ttl_seconds=3600)
    graph = note_graph(saver)
    graph.invoke({"notes": []}, config("T1:D5"), durability="exit")

    def throttled(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "BatchWriteItem")

    monkeypatch.setattr(saver.client, "batch_write_item", throttled)
    result = graph.invoke({"notes": []}, config("T1:D5"), durability="exit")
    assert len(result["notes"]) == 2
    assert items("T1:D5")["CHECKPOINT"] == 2  # left for the TTL
