"""Agent memory sealed for its owner, against moto's DynamoDB and KMS over HTTP with the
template's checkpoints table and key, through langgraph-checkpoint-aws's DynamoDBSaver."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langgraph.checkpoint.base import create_checkpoint, empty_checkpoint
from langgraph_checkpoint_aws import DynamoDBSaver

from mailroom.agent.checkpoints import TurnCachedSaver
from mailroom.agent.encrypted_memory import KmsEnvelopeCipher, MemoryNotYours, encrypt_memory, owner_scope
from mailroom.errors import ConfigurationError

if TYPE_CHECKING:
    from tests.conftest import Deployment

TEAM = "T0MEM"
ADA, BOB = "U0ADA", "U0BOB"
ADA_THREAD, BOB_THREAD = f"{TEAM}:D0ADA", f"{TEAM}:D0BOB"


class CountingKms:
    """moto's KMS through boto3, counting the calls (the cost a turn pays)."""

    def __init__(self, client: Any):
        self._client = client
        self.calls: list[str] = []

    def generate_data_key(self, **kwargs: Any) -> Any:
        self.calls.append("GenerateDataKey")
        return self._client.generate_data_key(**kwargs)

    def decrypt(self, **kwargs: Any) -> Any:
        self.calls.append("Decrypt")
        return self._client.decrypt(**kwargs)


@pytest.fixture
def kms(deployment: Deployment) -> CountingKms:
    return CountingKms(deployment.aws.client("kms"))


def saver(deployment: Deployment, kms: CountingKms) -> TurnCachedSaver:
    cipher = KmsEnvelopeCipher(deployment.physical("TokensKey", "Arn"), kms)
    return encrypt_memory(TurnCachedSaver(table_name=deployment.physical("CheckpointsTable")), cipher)


def save_turn(memory: DynamoDBSaver, thread_id: str, secret: str) -> None:
    """A checkpoint and a pending write, both holding mail text, as a turn leaves them."""
    checkpoint = create_checkpoint(empty_checkpoint(), None, 1)
    checkpoint["channel_values"] = {"messages": [HumanMessage(content=f"what did Alice say? {secret}")]}
    checkpoint["channel_versions"] = {"messages": 1}
    config = memory.put(
        {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}},
        checkpoint,
        {"source": "loop", "step": 1},
        {"messages": 1},
    )
    memory.put_writes(config, [("messages", ToolMessage(content=f"email: {secret}", tool_call_id="c1"))], "task-1")


def latest(memory: DynamoDBSaver, thread_id: str) -> Any:
    return memory.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})


def items(deployment: Deployment, prefix: str) -> list[dict[str, Any]]:
    scanned = deployment.aws.client("dynamodb").scan(TableName=deployment.physical("CheckpointsTable"))["Items"]
    return [item for item in scanned if item["PK"]["S"].startswith(prefix)]


def test_memory_round_trips_for_its_owner_and_is_never_stored_in_the_clear(deployment, kms):
    memory, secret = saver(deployment, kms), secrets.token_hex(8)
    with owner_scope(TEAM, ADA):
        save_turn(memory, ADA_THREAD, secret)
        found = latest(memory, ADA_THREAD)
    assert secret in found.checkpoint["channel_values"]["messages"][0].content
    assert any(secret in str(value) for *_, value in found.pending_writes)
    stored = repr(items(deployment, ""))
    assert "CHECKPOINT_" in stored and "WRITES_" in stored
    assert secret not in stored and secret.encode().hex() not in stored


def test_a_checkpoint_copied_into_another_users_thread_does_not_decrypt(deployment, kms):
    memory = saver(deployment, kms)
    with owner_scope(TEAM, ADA):
        save_turn(memory, ADA_THREAD, "ada's mail")
    ddb, table = deployment.aws.client("dynamodb"), deployment.physical("CheckpointsTable")
    for item in items(deployment, ""):  # every checkpoint, write and payload, re-keyed to bob's thread
        moved = {**item, "PK": {"S": item["PK"]["S"].replace(ADA_THREAD, BOB_THREAD)}}
        ddb.put_item(TableName=table, Item=moved)
    with owner_scope(TEAM, BOB), pytest.raises(MemoryNotYours):
        latest(saver(deployment, kms), BOB_THREAD)
    # Bob holding his own data key (a turn of his own) changes nothing.
    bobs = saver(deployment, kms)
    with owner_scope(TEAM, BOB):
        save_turn(bobs, f"{TEAM}:D0BOB:1.2", "bob's own")
        with pytest.raises(MemoryNotYours):
            latest(bobs, BOB_THREAD)


def test_memory_from_before_encryption_still_opens_and_the_next_save_is_sealed(deployment, kms):
    """A deployment upgraded in place: its conversations keep working (refusing them would
    break each until its TTL), and what is saved from then on is sealed."""
    plain = DynamoDBSaver(table_name=deployment.physical("CheckpointsTable"))
    save_turn(plain, ADA_THREAD, "from before the upgrade")
    memory, secret = saver(deployment, kms), secrets.token_hex(8)
    with owner_scope(TEAM, ADA):
        old = latest(memory, ADA_THREAD)
        assert "from before the upgrade" in old.checkpoint["channel_values"]["messages"][0].content
        save_turn(memory, ADA_THREAD, secret)
        assert secret in latest(memory, ADA_THREAD).checkpoint["channel_values"]["messages"][0].content
    stored = repr(items(deployment, ""))
    assert secret not in stored and secret.encode().hex() not in stored


def test_memory_is_never_sealed_or_opened_for_nobody(deployment, kms):
    with pytest.raises(ConfigurationError):
        save_turn(saver(deployment, kms), ADA_THREAD, "x")


def test_a_turn_costs_at_most_one_kms_call_and_a_warm_worker_none(deployment, kms):
    with owner_scope(TEAM, ADA):
        save_turn(saver(deployment, kms), ADA_THREAD, "first turn")
    assert kms.calls == ["GenerateDataKey"]  # a conversation's first checkpoint

    kms.calls.clear()
    cold = saver(deployment, kms)  # a new worker: its turn reads, then writes
    with owner_scope(TEAM, ADA):
        assert latest(cold, ADA_THREAD) is not None
        save_turn(cold, ADA_THREAD, "second turn")
        assert latest(cold, ADA_THREAD) is not None
    assert kms.calls == ["Decrypt"]

    kms.calls.clear()
    with owner_scope(TEAM, ADA):  # the same worker, next turn
        assert latest(cold, ADA_THREAD) is not None
        save_turn(cold, ADA_THREAD, "third turn")
    assert kms.calls == []


def test_data_keys_are_per_owner(deployment, kms):
    memory = saver(deployment, kms)
    with owner_scope(TEAM, ADA):
        save_turn(memory, ADA_THREAD, "a")
    with owner_scope(TEAM, BOB):
        save_turn(memory, BOB_THREAD, "b")
    assert kms.calls == ["GenerateDataKey", "GenerateDataKey"]


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "another cipher"])
def test_damaged_memory_does_not_open(deployment, kms, damage):
    cipher = KmsEnvelopeCipher(deployment.physical("TokensKey", "Arn"), kms)
    with owner_scope(TEAM, ADA):
        name, blob = cipher.encrypt(b"ada's mail")
        assert cipher.decrypt(name, blob) == b"ada's mail"
        if damage == "flip a byte":
            name, blob = name, blob[:-1] + bytes([blob[-1] ^ 1])
        elif damage == "truncate":
            blob = blob[:5]
        else:
            name = "aes"
        with pytest.raises(MemoryNotYours):
            cipher.decrypt(name, blob)
