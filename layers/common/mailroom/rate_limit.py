"""A per-user limit on agent turns: each costs model tokens and Gmail quota, so a
runaway script or a stuck client must not be able to spend without bound.

Fixed windows counted in DynamoDB with one conditional update per turn: the count
only goes up while it is under the limit, so concurrent turns cannot overshoot it. The
window's item also keeps the ids of the Slack events it counted, so a redelivery of a
counted turn is let through without counting it again (no separate record needed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mailroom.adapters.aws import LazyClient


class RateLimiter:
    def __init__(
        self,
        table_name: str,
        limit: int,
        window_seconds: int,
        client: Any | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._table_name = table_name
        self._limit = limit
        self._window = window_seconds
        self._dynamodb = LazyClient("dynamodb", client)
        self._clock = clock

    def allow(self, team_id: str, user_id: str, event_id: str, at: float | None = None) -> bool:
        """Count the turn of `event_id` for this user, once; False when the window's
        limit is reached (a turn already counted is always allowed). The window is the
        one of `at` (when the user wrote), so every delivery of an event meets the same."""
        window_start = int(self._clock() if at is None else at) // self._window * self._window
        client = self._dynamodb()
        try:
            client.update_item(
                TableName=self._table_name,
                Key={"pk": {"S": f"chat#{team_id}#{user_id}#{window_start}"}},
                UpdateExpression="ADD turns :one, events :event SET expires_at = :expires",
                ConditionExpression="(attribute_not_exists(turns) OR turns < :limit) AND NOT contains(events, :id)",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":event": {"SS": [event_id]},
                    ":id": {"S": event_id},
                    ":limit": {"N": str(self._limit)},
                    ":expires": {"N": str(window_start + 2 * self._window)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except client.exceptions.ConditionalCheckFailedException as exc:
            counted = (exc.response.get("Item") or {}).get("events", {}).get("SS", [])
            return event_id in counted
        return True

    def minutes_until_reset(self) -> int:
        now = int(self._clock())
        return max(1, -(-(self._window - now % self._window) // 60))
