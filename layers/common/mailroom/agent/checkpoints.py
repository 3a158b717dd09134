"""The DynamoDB checkpointer: one read of each checkpoint per turn, and only the latest
checkpoint of a conversation kept.

Reads: a turn first looks at the conversation's state (is a send waiting for a press?)
and then runs the graph, which loads the same checkpoint again. Within `turn()`, the
latest checkpoint read is reused until the next write; outside it, every read goes to
DynamoDB as usual.

Storage and writes: the graph runs with `durability="exit"`, so each run saves one
checkpoint whose parent is the one it started from. The new checkpoint's two items
(metadata and payload, built by DynamoDBSaver itself) and the deletion of the parent's
parent (its two items and any pending writes) go in one BatchWriteItem: one write call
per saved turn instead of two PutItems, and a conversation keeps two checkpoints however
long it runs. Why the grandparent and not the parent: a batch is not atomic, and if
DynamoDB stored the deletions but not the new items, the conversation must still be as
it was, at its parent. The save fails if the new items stay unprocessed after a few
retries; leftovers of the old one are logged and left to the table's TTL. An old
checkpoint's pending writes are looked up (one Query) only when this process has not
seen it had none. This works on DynamoDBSaver's key scheme, not on what the payload
holds, so it does not care which serializer (`serde`) the saver was given.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple
from langgraph_checkpoint_aws import DynamoDBSaver

from mailroom.errors import TransientError
from mailroom.observability import logger

# DynamoDBSaver's item keys (langgraph_checkpoint_aws.checkpoint.dynamodb.unified_repository).
_CHUNK_SK = "CHUNK"
_BATCH_LIMIT = 25  # BatchWriteItem's most requests per call
_UNPROCESSED_RETRIES = 3
_SEEN_LIMIT = 512  # checkpoints remembered per process (a warm worker serves many conversations)


def _checkpoint_key(thread_id: str, ns: str, checkpoint_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"CHECKPOINT_{thread_id}"}, "SK": {"S": f"{ns}#{checkpoint_id}"}}


def _payload_key(thread_id: str, ns: str, checkpoint_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"CHUNK_{thread_id}#{ns}#{checkpoint_id}"}, "SK": {"S": _CHUNK_SK}}


def _writes_pk(thread_id: str, ns: str, checkpoint_id: str) -> str:
    return f"WRITES_{thread_id}#{ns}#{checkpoint_id}"


class _CollectedPuts:
    """Stands in for the DynamoDB client while DynamoDBSaver saves a checkpoint: its
    unconditional PutItems are kept, to be sent in one batch; anything else passes."""

    def __init__(self, client: Any):
        self._client = client
        self.items: list[dict[str, Any]] = []

    def put_item(self, **params: Any) -> dict[str, Any]:
        if set(params) != {"TableName", "Item"}:  # a conditional put must stay a PutItem
            return dict(self._client.put_item(**params))
        self.items.append(params["Item"])
        return {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


Key = tuple[str, str, str]  # thread id, checkpoint namespace, checkpoint id


class TurnCachedSaver(DynamoDBSaver):
    _turn_cache: dict[Key, CheckpointTuple | None] | None = None

    def __init__(self, *args: Any, **kwargs: Any):
        if kwargs.get("s3_offload_config"):
            # Pruning deletes payloads from DynamoDB only.
            raise ValueError("TurnCachedSaver keeps payloads in DynamoDB; S3 offload is not supported")
        super().__init__(*args, **kwargs)
        self._saving = threading.Lock()
        # Checkpoints read in this process: how many pending writes they had, their parent.
        self._seen: dict[Key, tuple[int, str | None]] = {}

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
        if found is not None:
            loaded = found.config["configurable"]
            seen = (str(loaded["thread_id"]), str(loaded.get("checkpoint_ns", "")), str(loaded["checkpoint_id"]))
            parent = ((found.parent_config or {}).get("configurable") or {}).get("checkpoint_id")
            self._remember(seen, len(found.pending_writes or []), parent)
        if cache is not None:
            cache[key] = copy.deepcopy(found)
        return found

    def put(self, config: RunnableConfig, checkpoint: Any, metadata: Any, new_versions: Any) -> RunnableConfig:
        self._forget()
        configurable = config.get("configurable") or {}
        thread_id, ns = str(configurable.get("thread_id")), str(configurable.get("checkpoint_ns", ""))
        parent = configurable.get("checkpoint_id")
        with self._saving:
            collected = _CollectedPuts(self.client)
            self.repo.dynamodb_client = self.storage.dynamodb_client = collected
            try:
                saved = super().put(config, checkpoint, metadata, new_versions)
            finally:
                self.repo.dynamodb_client = self.storage.dynamodb_client = self.client
            puts = [{"PutRequest": {"Item": item}} for item in collected.items]
            deletes = []
            grandparent = self._seen.get((thread_id, ns, str(parent)), (0, None))[1] if parent else None
            if grandparent and grandparent != checkpoint["id"]:
                keys = self._checkpoint_keys(thread_id, ns, grandparent)
                deletes = [{"DeleteRequest": {"Key": key}} for key in keys]
            self._batch_write(puts, deletes)
            if grandparent:
                self._seen.pop((thread_id, ns, grandparent), None)
            self._remember((thread_id, ns, str(checkpoint["id"])), 0, str(parent) if parent else None)
        return saved

    def _remember(self, key: Key, pending_writes: int, parent: str | None) -> None:
        self._seen.pop(key, None)
        self._seen[key] = (pending_writes, parent)
        while len(self._seen) > _SEEN_LIMIT:
            self._seen.pop(next(iter(self._seen)))

    def put_writes(self, config: RunnableConfig, *args: Any, **kwargs: Any) -> None:
        self._forget()
        configurable = config.get("configurable") or {}
        key = (
            str(configurable.get("thread_id")),
            str(configurable.get("checkpoint_ns", "")),
            str(configurable.get("checkpoint_id")),
        )
        with self._saving:
            known = self._seen.get(key)
            if known is not None:
                self._seen[key] = (known[0] + 1, known[1])  # has writes now: look them up when pruning
            super().put_writes(config, *args, **kwargs)

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
        keys = self._checkpoint_keys(thread_id, ns, checkpoint_id)
        self._batch_write([], [{"DeleteRequest": {"Key": key}} for key in keys])

    def _checkpoint_keys(self, thread_id: str, ns: str, checkpoint_id: str) -> list[dict[str, Any]]:
        """The items of one checkpoint: metadata, payload, and its pending writes (with
        their payloads), looked up unless this process saw it had none; none at all if
        the writes could not be looked up (the checkpoint is then kept)."""
        keys = [_checkpoint_key(thread_id, ns, checkpoint_id), _payload_key(thread_id, ns, checkpoint_id)]
        known = self._seen.get((thread_id, ns, checkpoint_id))
        if known is not None and known[0] == 0:
            return keys
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            writes = self._write_items(_writes_pk(thread_id, ns, checkpoint_id))
        except (BotoCoreError, ClientError) as exc:
            # Keep the checkpoint: its writes are found only through it (by revoke too);
            # without it they would be left where nothing can erase them before the TTL.
            logger.warning("could not list an old checkpoint's writes", extra={"error": type(exc).__name__})
            return []
        for write in writes:
            keys.append({"PK": write["PK"], "SK": write["SK"]})
            if write.get("ref_key", {}).get("S"):
                keys.append({"PK": write["ref_key"], "SK": {"S": _CHUNK_SK}})
        return keys

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

    def _batch_write(self, puts: list[dict[str, Any]], deletes: list[dict[str, Any]]) -> None:
        """The new checkpoint's items must land (or the save fails); the old one's
        deletions are best effort (the TTL removes what is left)."""
        from botocore.exceptions import BotoCoreError, ClientError

        requests = puts + deletes
        for start in range(0, len(requests), _BATCH_LIMIT):
            pending: dict[str, Any] = {self.table_name: requests[start : start + _BATCH_LIMIT]}
            for _ in range(_UNPROCESSED_RETRIES):
                try:
                    pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                except (BotoCoreError, ClientError) as exc:
                    if any("PutRequest" in r for r in pending[self.table_name]):
                        raise
                    logger.warning("could not prune an old checkpoint", extra={"error": type(exc).__name__})
                    break
                if not pending:
                    break
            left = pending.get(self.table_name, [])
            if any("PutRequest" in r for r in left):
                raise TransientError(f"DynamoDB left {len(left)} checkpoint items unprocessed")
            if left:
                logger.warning("old checkpoint items left for the TTL", extra={"items": len(left)})

    def _forget(self) -> None:
        if self._turn_cache is not None:
            self._turn_cache.clear()
