"""A per-user limit on agent turns: each costs model tokens and Gmail quota, so a
runaway script or a stuck client must not be able to spend without bound.

Fixed windows counted in DynamoDB with one conditional update per turn: the count
only goes up while it is under the limit, so concurrent turns cannot overshoot it.
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

    def allow(self, team_id: str, user_id: str) -> bool:
        """Count one turn for this user; False when the window's limit is reached."""
        window_start = int(self._clock()) // self._window * self._window
        try:
            self._dynamodb().update_item(
                TableName=self._table_name,
                Key={"pk": {"S": f"chat#{team_id}#{user_id}#{window_start}"}},
                UpdateExpression="ADD turns :one SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(turns) OR turns < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(self._limit)},
                    ":expires": {"N": str(window_start + 2 * self._window)},
                },
            )
        except self._dynamodb().exceptions.ConditionalCheckFailedException:
            return False
        return True

    def minutes_until_reset(self) -> int:
        now = int(self._clock())
        return max(1, -(-(self._window - now % self._window) // 60))
