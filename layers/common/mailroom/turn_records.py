"""What a delivery of a Slack message needs to know about earlier deliveries of it.

One small DynamoDB item per Slack event id (in the usage table, next to the rate-limit
counters, with a TTL): the ts of the "Working on it…" placeholder, how many of the
answer's extra messages were posted, and whether the user was already told of a
failure. Ids and counts only: the answer itself is in the conversation's checkpoint.

It lets a redelivery (after Slack failed while answering, a crash, a retry) reuse the
placeholder instead of leaving one behind, skip the rate limit it already counted, skip
messages it already posted, and tell the user of a failure once.

Writes: one `start` per turn; `posted` and `claim_failure_notice` only on failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailroom.adapters.aws import LazyClient, quick_config


@dataclass(frozen=True)
class TurnRecord:
    event_id: str
    placeholder_ts: str | None
    posted: int
    # A streamed turn has no placeholder: this says its first delivery got past the
    # rate limit (the streamed message's ts is recorded as placeholder_ts once it exists).
    begun: bool = False


class TurnRecords:
    def __init__(
        self, table_name: str, ttl_seconds: int, client: Any | None = None, clock: Callable[[], float] = time.time
    ):
        self._table_name = table_name
        self._ttl = ttl_seconds
        self._dynamodb = LazyClient("dynamodb", client, config=quick_config())
        self._clock = clock

    def get(self, event_id: str) -> TurnRecord | None:
        item = (
            self._dynamodb().get_item(TableName=self._table_name, Key=_key(event_id), ConsistentRead=True).get("Item")
        )
        return _record(event_id, item) if item else None

    def start(self, event_id: str, placeholder_ts: str) -> None:
        """Record the turn's placeholder (the first delivery's, kept by later ones)."""
        self._dynamodb().update_item(
            TableName=self._table_name,
            Key=_key(event_id),
            UpdateExpression="SET placeholder_ts = if_not_exists(placeholder_ts, :ts), expires_at = :expires",
            ExpressionAttributeValues={":ts": {"S": placeholder_ts}, ":expires": self._expires()},
        )

    def begin(self, event_id: str) -> None:
        """Record that the turn started (a streamed turn: no placeholder yet)."""
        self._dynamodb().update_item(
            TableName=self._table_name,
            Key=_key(event_id),
            UpdateExpression="SET begun = :yes, expires_at = :expires",
            ExpressionAttributeValues={":yes": {"BOOL": True}, ":expires": self._expires()},
        )

    def posted(self, event_id: str, count: int) -> None:
        """How many of the answer's messages (after the placeholder) reached Slack."""
        self._dynamodb().update_item(
            TableName=self._table_name,
            Key=_key(event_id),
            UpdateExpression="SET posted = :n, expires_at = :expires",
            ExpressionAttributeValues={":n": {"N": str(count)}, ":expires": self._expires()},
        )

    def claim_failure_notice(self, event_id: str) -> tuple[bool, str | None]:
        """(True, placeholder ts) the first time a failure of this event is to be told;
        (False, ...) if the user was told already."""
        client = self._dynamodb()
        try:
            response = client.update_item(
                TableName=self._table_name,
                Key=_key(event_id),
                UpdateExpression="SET told = :yes, expires_at = :expires",
                ConditionExpression="attribute_not_exists(told)",
                ExpressionAttributeValues={":yes": {"BOOL": True}, ":expires": self._expires()},
                ReturnValues="ALL_NEW",
            )
        except client.exceptions.ConditionalCheckFailedException:
            return False, None
        return True, _record(event_id, response.get("Attributes") or {}).placeholder_ts

    def _expires(self) -> dict[str, str]:
        return {"N": str(int(self._clock()) + self._ttl)}


def _key(event_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"turn#{event_id}"}}


def _record(event_id: str, item: dict[str, Any]) -> TurnRecord:
    return TurnRecord(
        event_id=event_id,
        placeholder_ts=(item.get("placeholder_ts") or {}).get("S"),
        posted=int((item.get("posted") or {}).get("N", "0")),
        begun=bool((item.get("begun") or {}).get("BOOL", False)),
    )
