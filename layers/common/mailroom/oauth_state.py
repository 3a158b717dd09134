"""Single-use OAuth state: binds a consent round trip to the Slack user who asked.

The state value is a bearer secret that travels in URLs, so the table stores only its
SHA-256: a leaked table row cannot be replayed. Consuming is one conditional delete,
so two callbacks racing with the same state cannot both succeed.

A URL can be forwarded, so the state alone proves nothing about who holds it. Its row
also records, step by step: the browser that opened the Connect Gmail link (the hash of
a cookie set by /auth/start), and that this browser then signed in with Slack as the
very user the state was made for (`slack_verified`, with the Slack name and the PKCE
verifier of the Google consent it was sent on to). Google's callback is honoured only
for a verified state, from the same browser.
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
    # Filled in by the Sign in with Slack step (see the module's docstring).
    browser: str | None = None
    slack_verified: bool = False
    slack_name: str | None = None


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
        code_verifier: str = "",
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
            # DynamoDB's TTL deletes within days, not on time: expiry is checked on use too.
            "expires_at": {"N": str(link.expires_at)},
        }
        if thread_ts:
            item["thread_ts"] = {"S": thread_ts}
        if code_verifier:
            item["code_verifier"] = {"S": code_verifier}
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
        return self._live(deleted.get("Attributes"))

    def peek(self, state: str) -> PendingLink | None:
        """The pending link for `state` if it is known and unexpired, left in place."""
        if not state or len(state) > 200:
            return None
        item = (
            self._dynamodb()
            .get_item(TableName=self._table_name, Key={"state": {"S": _digest(state)}}, ConsistentRead=True)
            .get("Item")
        )
        return self._live(item)

    def bind_browser(self, state: str, browser: str) -> bool:
        """Record the browser (a cookie's hash) that opened the link; False if the state
        is gone or its Slack sign-in already passed (then no other browser may take it)."""
        return self._update(
            state,
            "SET browser = :browser",
            "attribute_exists(#s) AND attribute_not_exists(slack_verified)",
            {":browser": {"S": browser}},
        )

    def mark_slack_verified(self, state: str, browser: str, slack_name: str, code_verifier: str) -> bool:
        """The browser bound to `state` signed in with Slack as the state's own user;
        it goes on to Google's consent with `code_verifier`. Once only."""
        return self._update(
            state,
            "SET slack_verified = :yes, slack_name = :name, code_verifier = :verifier",
            "attribute_exists(#s) AND browser = :browser AND attribute_not_exists(slack_verified)",
            {
                ":yes": {"BOOL": True},
                ":name": {"S": slack_name or "-"},
                ":verifier": {"S": code_verifier},
                ":browser": {"S": browser},
            },
        )

    def _update(self, state: str, update: str, condition: str, values: dict[str, Any]) -> bool:
        if not state or len(state) > 200:
            return False
        try:
            self._dynamodb().update_item(
                TableName=self._table_name,
                Key={"state": {"S": _digest(state)}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=values,
            )
        except self._dynamodb().exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _live(self, item: dict[str, Any] | None) -> PendingLink | None:
        if not item or int(item["expires_at"]["N"]) < self._clock():
            return None
        return PendingLink(
            team_id=item["team_id"]["S"],
            user_id=item["user_id"]["S"],
            channel_id=item["channel_id"]["S"],
            thread_ts=item["thread_ts"]["S"] if "thread_ts" in item else None,
            redirect_uri=item["redirect_uri"]["S"],
            code_verifier=item.get("code_verifier", {}).get("S", ""),
            expires_at=int(item["expires_at"]["N"]),
            browser=item["browser"]["S"] if "browser" in item else None,
            slack_verified=bool(item.get("slack_verified", {}).get("BOOL")),
            slack_name=item["slack_name"]["S"] if "slack_name" in item else None,
        )


def new_state() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def browser_digest(secret: str) -> str:
    """What the table keeps of a browser's cookie (never the cookie itself)."""
    return hashlib.sha256(b"browser:" + secret.encode()).hexdigest()


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()
