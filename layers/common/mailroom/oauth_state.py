"""Single-use OAuth state: binds a consent round trip to the Slack user who asked.

The state value is a bearer secret that travels in URLs, so the table stores only its
SHA-256: a leaked table row cannot be replayed. Consuming is one conditional delete,
so two callbacks racing with the same state cannot both succeed.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailroom.adapters.aws import LazyClient


@dataclass(frozen=True)
class PendingLink:
    team_id: str
    user_id: str
    # Where the user asked, so the callback can tell them how it went.
    channel_id: str
    thread_ts: str | None
    redirect_uri: str
    code_verifier: str
    expires_at: int


class OAuthStateStore:
    def __init__(
        self,
        table_name: str,
        client: Any | None = None,
        ttl_seconds: int = 600,
        clock: Callable[[], float] = time.time,
    ):
        self._table_name = table_name
        self._dynamodb = LazyClient("dynamodb", client)
        self._ttl_seconds = ttl_seconds
        self._clock = clock

    def save(
        self,
        state: str,
        *,
        team_id: str,
        user_id: str,
        channel_id: str,
        thread_ts: str | None,
        redirect_uri: str,
        code_verifier: str,
    ) -> PendingLink:
        """Store the pending link that `state` (from `new_state()`) will redeem."""
        link = PendingLink(
            team_id=team_id,
            user_id=user_id,
            channel_id=channel_id,
            thread_ts=thread_ts,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
            expires_at=int(self._clock()) + self._ttl_seconds,
        )
        item = {
            "state": {"S": _digest(state)},
            "team_id": {"S": link.team_id},
            "user_id": {"S": link.user_id},
            "channel_id": {"S": link.channel_id},
            "redirect_uri": {"S": link.redirect_uri},
            "code_verifier": {"S": link.code_verifier},
            # DynamoDB's TTL deletes within days, not on time: expiry is checked on use too.
            "expires_at": {"N": str(link.expires_at)},
        }
        if thread_ts:
            item["thread_ts"] = {"S": thread_ts}
        self._dynamodb().put_item(
            TableName=self._table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(#s)",
            ExpressionAttributeNames={"#s": "state"},
        )
        return link

    def consume(self, state: str) -> PendingLink | None:
        """Take the pending link for `state` out of the table, or None if it is unknown,
        already used or expired. Whatever the answer, the state cannot be used again."""
        if not state or len(state) > 200:
            return None
        try:
            deleted = self._dynamodb().delete_item(
                TableName=self._table_name,
                Key={"state": {"S": _digest(state)}},
                ConditionExpression="attribute_exists(#s)",
                ExpressionAttributeNames={"#s": "state"},
                ReturnValues="ALL_OLD",
            )
        except self._dynamodb().exceptions.ConditionalCheckFailedException:
            return None
        item = deleted.get("Attributes")
        if not item or int(item["expires_at"]["N"]) < self._clock():
            return None
        return PendingLink(
            team_id=item["team_id"]["S"],
            user_id=item["user_id"]["S"],
            channel_id=item["channel_id"]["S"],
            thread_ts=item["thread_ts"]["S"] if "thread_ts" in item else None,
            redirect_uri=item["redirect_uri"]["S"],
            code_verifier=item["code_verifier"]["S"],
            expires_at=int(item["expires_at"]["N"]),
        )


def new_state() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()
