"""The DynamoDB checkpointer: one read of each checkpoint per turn, and only the latest
checkpoint of a conversation kept.

Reads: a turn first looks at the conversation's state (is a send waiting for a press?)
and then runs the graph, which loads the same checkpoint again. Within `turn()`, the
latest checkpoint read is reused until the next write; outside it, every read goes to
DynamoDB as usual.

Storage: the graph runs with `durability="exit"`, so each run saves one checkpoint
whose parent is the one it started from. Once the new one is saved, the parent goes:
its metadata item, its payload item and its pending writes, in one BatchWriteItem
(after one Query for the writes' keys). So a conversation keeps one checkpoint however
long it runs. A failed prune is logged and left to the table's TTL; it never fails the
turn. This works on DynamoDBSaver's key scheme, not on what the payload holds, so it
does not care which serializer (`serde`) the saver was given.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple
from langgraph_checkpoint_aws import DynamoDBSaver

from mailroom.observability import logger

# DynamoDBSaver's item keys (langgraph_checkpoint_aws.checkpoint.dynamodb.unified_repository).
_CHUNK_SK = "CHUNK"
_BATCH_LIMIT = 25  # BatchWriteItem's most requests per call
_UNPROCESSED_RETRIES = 3


def _checkpoint_key(thread_id: str, ns: str, checkpoint_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"CHECKPOINT_{thread_id}"}, "SK": {"S": f"{ns}#{checkpoint_id}"}}


def _payload_key(thread_id: str, ns: str, checkpoint_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"CHUNK_{thread_id}#{ns}#{checkpoint_id}"}, "SK": {"S": _CHUNK_SK}}


def _writes_pk(thread_id: str, ns: str, checkpoint_id: str) -> str:
    return f"WRITES_{thread_id}#{ns}#{checkpoint_id}"


class TurnCachedSaver(DynamoDBSaver):
    _turn_cache: dict[tuple[str, str, str], CheckpointTuple | None] | None = None

    def __init__(self, *args: Any, **kwargs: Any):
        if kwargs.get("s3_offload_config"):
            # Pruning deletes payloads from DynamoDB only.
            raise ValueError("TurnCachedSaver keeps payloads in DynamoDB; S3 offload is not supported")
        super().__init__(*args, **kwargs)

    @contextmanager
    def turn(self) -> Iterator[None]:
        self._turn_cache = {}
        try:
            yield
        finally:
            self._turn_cache = None

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        cache = self._turn_cache
        configurable = config.get("configurable") or {}
        key = (
            str(configurable.get("thread_id")),
            str(configurable.get("checkpoint_ns", "")),
            str(configurable.get("checkpoint_id", "")),
        )
        if cache is not None and key in cache:
            return copy.deepcopy(cache[key])  # callers own what they are given
        found = super().get_tuple(config)
        if cache is not None:
            cache[key] = copy.deepcopy(found)
        return found

    def put(self, config: RunnableConfig, checkpoint: Any, metadata: Any, new_versions: Any) -> RunnableConfig:
        self._forget()
        saved = super().put(config, checkpoint, metadata, new_versions)
        configurable = config.get("configurable") or {}
        parent = configurable.get("checkpoint_id")
        if parent and parent != checkpoint["id"]:
            self._delete_checkpoint(str(configurable["thread_id"]), str(configurable.get("checkpoint_ns", "")), parent)
        return saved

    def put_writes(self, *args: Any, **kwargs: Any) -> None:
        self._forget()
        super().put_writes(*args, **kwargs)

    def delete_thread(self, *args: Any, **kwargs: Any) -> None:
        self._forget()
        super().delete_thread(*args, **kwargs)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """LangGraph's prune: keep each namespace's latest checkpoint (or none), for
        conversations saved before pruning on put existed."""
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}")
        self._forget()
        for thread_id in thread_ids:
            if strategy == "delete":
                super().delete_thread(thread_id)
                continue
            latest: dict[str, str] = {}
            info = self.repo.get_thread_checkpoint_info(thread_id)
            for ns, checkpoint_id in info:  # ids are time-ordered (uuid6)
                latest[ns] = max(latest.get(ns, checkpoint_id), checkpoint_id)
            for ns, checkpoint_id in info:
                if checkpoint_id != latest[ns]:
                    self._delete_checkpoint(thread_id, ns, checkpoint_id)

    def _delete_checkpoint(self, thread_id: str, ns: str, checkpoint_id: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            keys = [_checkpoint_key(thread_id, ns, checkpoint_id), _payload_key(thread_id, ns, checkpoint_id)]
            for write in self._write_items(_writes_pk(thread_id, ns, checkpoint_id)):
                keys.append({"PK": write["PK"], "SK": write["SK"]})
                if write.get("ref_key", {}).get("S"):
                    keys.append({"PK": write["ref_key"], "SK": {"S": _CHUNK_SK}})
            for start in range(0, len(keys), _BATCH_LIMIT):
                self._batch_delete(keys[start : start + _BATCH_LIMIT])
        except (BotoCoreError, ClientError) as exc:
            # The turn is saved; the old checkpoint expires with the table's TTL.
            logger.warning("could not prune an old checkpoint", extra={"error": type(exc).__name__})

    def _write_items(self, pk: str) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ProjectionExpression": "PK, SK, ref_key",
        }
        items: list[dict[str, Any]] = []
        while True:
            page = self.client.query(**params)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _batch_delete(self, keys: list[dict[str, Any]]) -> None:
        requests: dict[str, Any] = {self.table_name: [{"DeleteRequest": {"Key": key}} for key in keys]}
        for _ in range(_UNPROCESSED_RETRIES):
            requests = self.client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
            if not requests:
                return
        logger.warning("old checkpoint items left for the TTL", extra={"items": len(requests[self.table_name])})

    def _forget(self) -> None:
        if self._turn_cache is not None:
            self._turn_cache.clear()
