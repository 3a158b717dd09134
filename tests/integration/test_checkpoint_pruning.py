"""A conversation keeps its latest checkpoint and the one before: the saver prunes as
it goes (DynamoDB on moto's server, a real LangGraph graph with the production saver)."""

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


def test_a_long_conversation_keeps_two_checkpoints_and_all_its_state(table, items):
    graph = note_graph(TurnCachedSaver(table_name=table, ttl_seconds=3600))
    for _ in range(12):
        result = graph.invoke({"notes": []}, config("T1:D1"), durability="exit")
    assert len(result["notes"]) == 12  # nothing of the history was lost with the old checkpoints
    assert items("T1:D1") == {"CHECKPOINT": 2, "CHUNK": 2}
    assert len(list(graph.checkpointer.list(config("T1:D1")))) == 2


def test_a_new_worker_prunes_what_it_reads(table, items):
    for _ in range(3):  # each turn on a fresh saver, as after a cold start
        note_graph(TurnCachedSaver(table_name=table, ttl_seconds=3600)).invoke(
            {"notes": []}, config("T1:D8"), durability="exit"
        )
    assert items("T1:D8") == {"CHECKPOINT": 2, "CHUNK": 2}


def test_an_answered_interrupt_leaves_no_pending_writes_behind(table, items):
    graph = note_graph(TurnCachedSaver(table_name=table, ttl_seconds=3600), ask=True)
    graph.invoke({"notes": []}, config("T1:D2"), durability="exit")
    waiting = items("T1:D2")
    assert waiting["WRITES"] >= 1  # the interrupt is stored with the checkpoint it paused
    result = graph.invoke(Command(resume="approved"), config("T1:D2"), durability="exit")
    assert result["notes"] == ["note 1 approved"]
    assert graph.get_state(config("T1:D2")).interrupts == ()
    graph.invoke({"notes": []}, config("T1:D2"), durability="exit")  # asks again: a new interrupt
    graph.invoke(Command(resume="approved"), config("T1:D2"), durability="exit")
    # The first interrupt's checkpoint went with its writes; the second's stays as the parent.
    assert items("T1:D2") == {"CHECKPOINT": 2, "CHUNK": 2 + waiting["CHUNK"] - 1, "WRITES": waiting["WRITES"]}


def test_other_conversations_are_left_alone(table, items):
    graph = note_graph(TurnCachedSaver(table_name=table, ttl_seconds=3600))
    for thread in ("T1:D3", "T1:D3:1700000000.000100"):
        for _ in range(3):
            graph.invoke({"notes": []}, config(thread), durability="exit")
    assert items("T1:D3") == {"CHECKPOINT": 2, "CHUNK": 2}
    assert items("T1:D3:1700000000.000100") == {"CHECKPOINT": 2, "CHUNK": 2}


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


def unprocessed(saver: Any, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """DynamoDB under throttling: BatchWriteItem does the rest and hands back these requests."""
    real = saver.client.batch_write_item

    def throttled(RequestItems: dict[str, Any]) -> dict[str, Any]:
        [(table, requests)] = RequestItems.items()
        kept = [r for r in requests if kind not in r]
        if kept:
            real(RequestItems={table: kept})
        left = [r for r in requests if kind in r]
        return {"UnprocessedItems": {table: left} if left else {}}

    monkeypatch.setattr(saver.client, "batch_write_item", throttled)


def test_a_prune_dynamodb_does_not_finish_never_fails_the_turn(table, items, monkeypatch):
    saver = TurnCachedSaver(table_name=table, ttl_seconds=3600)
    graph = note_graph(saver)
    for _ in range(2):
        graph.invoke({"notes": []}, config("T1:D5"), durability="exit")
    unprocessed(saver, monkeypatch, "DeleteRequest")
    result = graph.invoke({"notes": []}, config("T1:D5"), durability="exit")
    assert len(result["notes"]) == 3
    assert items("T1:D5") == {"CHECKPOINT": 3, "CHUNK": 3}  # the oldest is left for the TTL


def test_a_checkpoint_dynamodb_does_not_store_fails_the_save_and_keeps_the_old_one(table, items, monkeypatch):
    from mailroom.errors import TransientError

    saver = TurnCachedSaver(table_name=table, ttl_seconds=3600)
    graph = note_graph(saver)
    for _ in range(3):
        graph.invoke({"notes": []}, config("T1:D6"), durability="exit")
    unprocessed(saver, monkeypatch, "PutRequest")  # the deletions go through, the new items do not
    with pytest.raises(TransientError):
        graph.invoke({"notes": []}, config("T1:D6"), durability="exit")
    monkeypatch.undo()
    assert len(graph.get_state(config("T1:D6")).values["notes"]) == 3  # as it was


def test_a_saved_turn_is_one_write_call(table, monkeypatch):
    saver = TurnCachedSaver(table_name=table, ttl_seconds=3600)
    graph = note_graph(saver)
    for _ in range(2):
        graph.invoke({"notes": []}, config("T1:D7"), durability="exit")
    calls: list[str] = []
    for name in ("put_item", "update_item", "delete_item", "batch_write_item"):
        real = getattr(saver.client, name)

        def counted(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(saver.client, name, counted)
    graph.invoke({"notes": []}, config("T1:D7"), durability="exit")
    assert calls == ["batch_write_item"]


def test_a_checkpoint_whose_writes_cannot_be_listed_is_kept_so_a_revoke_still_finds_them(table, items, monkeypatch):
    """Pruning finds an old checkpoint's pending writes (a send waiting for Approve, mail
    text in it) through the checkpoint itself; so does a revoke. Deleting the checkpoint
    without them would leave them where no revoke can find them."""
    from botocore.exceptions import ClientError

    from mailroom.forget import ThreadIndex

    saver = TurnCachedSaver(table_name=table, ttl_seconds=3600)
    graph = note_graph(saver, ask=True)
    graph.invoke({"notes": []}, config("T1:D9"), durability="exit")  # waits for a press: writes
    first = graph.get_state(config("T1:D9")).config["configurable"]["checkpoint_id"]
    graph.invoke({"notes": []}, config("T1:D9"), durability="exit")
    real = saver.client.query

    def throttled(**params: Any) -> Any:
        if params["ExpressionAttributeValues"][":pk"]["S"].endswith(first):  # that checkpoint's writes
            error: Any = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
            raise ClientError(error, "Query")
        return real(**params)

    monkeypatch.setattr(saver.client, "query", throttled)
    graph.invoke({"notes": []}, config("T1:D9"), durability="exit")  # prunes the first checkpoint
    monkeypatch.undo()
    assert items("T1:D9")["WRITES"] >= 3  # the turn went on; nothing of the old checkpoint was lost

    ThreadIndex(table, 3600).erase_thread("T1:D9")  # what revoke does for each conversation
    assert items("T1:D9") == {}
