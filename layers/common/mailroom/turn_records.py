"""Whether the user was already told that a Slack event failed.

One small DynamoDB item per Slack event id that failed (in the usage table, next to the
rate-limit counters, with a TTL), written only on a failure: a conditional `told` flag,
so the user hears of a failure once however many deliveries fail. Ids only.

What a turn posted is not recorded here: Slack is that record (mailroom.reply_once).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mailroom.adapters.aws import LazyClient, quick_config


class TurnRecords:
    def __init__(
        self, table_name: str, ttl_seconds: int, client: Any | None = None, clock: Callable[[], float] = time.time
    ):
        self._table_name = table_name
        self._ttl = ttl_seconds
        self._dynamodb = LazyClient("dynamodb", client, config=quick_config())
        self._clock = clock

    def claim_failure_notice(self, event_id: str) -> bool:
        """True the first time a failure of this event is to be told; False if the user
        was told already."""
        client = self._dynamodb()
        try:
            client.update_item(
                TableName=self._table_name,
                Key={"pk": {"S": f"turn#{event_id}"}},
                UpdateExpression="SET told = :yes, expires_at = :expires",
                ConditionExpression="attribute_not_exists(told)",
                ExpressionAttributeValues={
                    ":yes": {"BOOL": True},
                    ":expires": {"N": str(int(self._clock()) + self._ttl)},
                },
            )
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True
