"""Forgetting a user: every conversation the agent remembers for them, and their
pending approvals, when they revoke or link another address.

The agent's memory is keyed by conversation (thread id), not by user, so each user
keeps an index of their thread ids: items `PK = "THREADS_{team}#{user}"`, `SK = thread
id` in the checkpoints table itself, with the table's `ttl` attribute, written before
each turn is checkpointed (so the index outlives what it points to). Each conversation also names its owner (`PK =
"OWNER_{thread}"`), written first and only if the conversation has no other owner: no
one else can add it to their index (and erase it with their revoke) or run a turn in
it, and a button press in it opens its memory as the owner's, whoever pressed (the
turn then refuses a press that is not the owner's).

Erasing a thread deletes what langgraph-checkpoint-aws's DynamoDBSaver stores for it
(`delete_thread` does the same, but this runs in functions that do not ship the agent's
libraries, and on `revoke`, which must stay light): the checkpoint items
`CHECKPOINT_{thread}`, their payload items `CHUNK_{thread}#{ns}#{id}`, the pending
writes `WRITES_{thread}#{ns}#{id}` and their payloads `CHUNK_...#{task}#{idx}`. The
integration tests scan the table after a revoke, so a change of that layout fails them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from mailroom.adapters.aws import LazyClient
from mailroom.observability import logger

_BATCH = 25  # BatchWriteItem's limit


_DAY = 86400


class PendingApprovals(Protocol):
    """Cancel every approval of this user that still waits for a press (its card says
    so), then erase all their approval records; the number cancelled
    (mailroom.approval_forget)."""

    def cancel_and_erase(self, team_id: str, user_id: str, reason: str) -> int: ...


@dataclass(frozen=True)
class Forgotten:
    conversations: int
    approvals: int


class ThreadIndex:
    """Which conversations the agent remembers for each user, and their erasure."""

    def __init__(
        self, table_name: str, ttl_seconds: int, client: Any | None = None, clock: Callable[[], float] = time.time
    ):
        self._table = table_name
        self._ttl = ttl_seconds
        self._dynamodb = LazyClient("dynamodb", client)
        self._clock = clock

    def claim(self, team_id: str, user_id: str, thread_id: str) -> bool:
        """Record (or refresh) the conversation as this user's, before it is checkpointed;
        False, and nothing written, if it is someone else's.

        Read first (both items, consistently): a conversation already this user's, with
        its index entry, both outliving the checkpoints this turn writes, needs no write
        (most turns). Otherwise one transaction writes them. Both are read every turn, not
        cached: a revoke in another worker may have erased the index."""
        now = int(self._clock())
        current = self._claimed(team_id, user_id, thread_id)
        if current is not None:
            claimed_by, ttls = current
            if claimed_by is not None and claimed_by != (team_id, user_id):
                logger.warning("conversation claimed by another user", extra={"team_id": team_id, "user_id": user_id})
                return False
            # Both must outlive, by a day, any checkpoint written from now (a press can
            # save one up to a day after this turn): otherwise refresh them.
            if claimed_by is not None and len(ttls) == 2 and min(ttls) >= now + self._ttl + _DAY:
                return True
        # Two days beyond the checkpoints' own TTL, so the index never loses a live
        # thread; refreshed at most once a day (above).
        ttl = {"N": str(now + self._ttl + 2 * _DAY)}
        owner = {**_owner_key(thread_id), "team_id": {"S": team_id}, "user_id": {"S": user_id}, "ttl": ttl}
        try:
            self._dynamodb().transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": owner,
                            "ConditionExpression": "attribute_not_exists(PK) OR (team_id = :t AND user_id = :u)",
                            "ExpressionAttributeValues": {":t": {"S": team_id}, ":u": {"S": user_id}},
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {"PK": {"S": _index_pk(team_id, user_id)}, "SK": {"S": thread_id}, "ttl": ttl},
                        }
                    },
                ]
            )
        except self._dynamodb().exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                logger.warning("conversation claimed by another user", extra={"team_id": team_id, "user_id": user_id})
                return False
            raise
        return True

    def _claimed(self, team_id: str, user_id: str, thread_id: str) -> tuple[tuple[str, str] | None, list[int]] | None:
        """(owner, TTLs of the owner and index items found), or None if DynamoDB left the
        read unprocessed (then the transaction decides)."""
        index_key = {"PK": {"S": _index_pk(team_id, user_id)}, "SK": {"S": thread_id}}
        response = self._dynamodb().batch_get_item(
            RequestItems={self._table: {"Keys": [_owner_key(thread_id), index_key], "ConsistentRead": True}}
        )
        if response.get("UnprocessedKeys"):
            return None
        owner: tuple[str, str] | None = None
        ttls: list[int] = []
        for item in (response.get("Responses") or {}).get(self._table, []):
            if item["PK"]["S"].startswith("OWNER_"):
                owner = (item["team_id"]["S"], item["user_id"]["S"])
            ttls.append(int(item.get("ttl", {}).get("N", "0")))
        return owner, ttls

    def owner_of(self, thread_id: str) -> tuple[str, str] | None:
        """(team, user) whose conversation this is, if the index knows it."""
        item = (
            self._dynamodb().get_item(TableName=self._table, Key=_owner_key(thread_id), ConsistentRead=True).get("Item")
        )
        return (item["team_id"]["S"], item["user_id"]["S"]) if item else None

    def threads(self, team_id: str, user_id: str) -> list[str]:
        return [item["SK"]["S"] for item in self._query(_index_pk(team_id, user_id), "SK")]

    def forget_user(self, team_id: str, user_id: str) -> int:
        """Erase every indexed conversation of the user, then the index; how many."""
        threads = self.threads(team_id, user_id)
        for thread_id in threads:
            self.erase_thread(thread_id)
        self._delete_keys({"PK": {"S": _index_pk(team_id, user_id)}, "SK": {"S": t}} for t in threads)
        self._delete_keys(_owner_key(t) for t in threads)
        return len(threads)

    def erase_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, pending write and payload of one conversation."""
        keys: list[dict[str, Any]] = []
        for checkpoint in self._query(f"CHECKPOINT_{thread_id}", "PK, SK"):
            keys.append(checkpoint)
            ns_and_id = checkpoint["SK"]["S"]  # "{checkpoint_ns}#{checkpoint_id}"
            keys.append(_chunk(f"CHUNK_{thread_id}#{ns_and_id}"))
            for write in self._query(f"WRITES_{thread_id}#{ns_and_id}", "PK, SK"):
                keys.append(write)
                keys.append(_chunk(f"CHUNK_{thread_id}#{ns_and_id}#{write['SK']['S']}"))  # SK: "{task}#{idx}"
        self._delete_keys(keys)

    # -- DynamoDB ----------------------------------------------------------------------
    def _query(self, pk: str, projection: str) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ProjectionExpression": projection,
            "ConsistentRead": True,
        }
        while True:
            page = self._dynamodb().query(**params)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _delete_keys(self, keys: Iterable[dict[str, Any]]) -> None:
        batch: list[dict[str, Any]] = []
        for key in keys:
            batch.append({"DeleteRequest": {"Key": {"PK": key["PK"], "SK": key["SK"]}}})
            if len(batch) == _BATCH:
                self._write(batch)
                batch = []
        if batch:
            self._write(batch)

    def _write(self, requests: list[dict[str, Any]]) -> None:
        pending = {self._table: requests}
        for attempt in range(8):
            unprocessed = self._dynamodb().batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not unprocessed:
                return
            pending = unprocessed
            time.sleep(min(0.05 * 2**attempt, 1.0))
        raise RuntimeError("DynamoDB left deletions unprocessed")


class Forgetter:
    """Forget a user's conversations and cancel their pending approvals. Revoke calls
    it, and so does linking a different address (an old pending send must never go
    out From the new one)."""

    def __init__(self, index: ThreadIndex, approvals: PendingApprovals | None = None):
        self._index = index
        self._approvals = approvals

    def forget(self, team_id: str, user_id: str, reason: str) -> Forgotten:
        # Approvals first: a press racing with this finds them cancelled, not half-erased.
        approvals = self._approvals.cancel_and_erase(team_id, user_id, reason) if self._approvals else 0
        conversations = self._index.forget_user(team_id, user_id)
        logger.info(
            "user's memory forgotten",
            extra={"team_id": team_id, "user_id": user_id, "conversations": conversations, "approvals": approvals},
        )
        return Forgotten(conversations, approvals)


def _index_pk(team_id: str, user_id: str) -> str:
    if not team_id or not user_id or "#" in team_id or "#" in user_id:
        raise ValueError("team_id and user_id must be non-empty Slack ids")
    return f"THREADS_{team_id}#{user_id}"


def _owner_key(thread_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"OWNER_{thread_id}"}, "SK": {"S": "OWNER"}}


def _chunk(pk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": "CHUNK"}}
