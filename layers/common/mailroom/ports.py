"""The small interfaces the domain talks through; adapters implement them."""

from __future__ import annotations

from typing import Any, Protocol


class MessageQueue(Protocol):
    def send(self, body: str, *, group_id: str, deduplication_id: str) -> None: ...


class Chat(Protocol):
    """Posting to Slack as the bot."""

    def post(
        self, channel: str, text: str, *, thread_ts: str | None = None, blocks: list[dict[str, Any]] | None = None
    ) -> str:
        """Post a message; returns its ts."""
        ...

    def post_ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> None: ...

    def update(self, channel: str, ts: str, text: str, *, blocks: list[dict[str, Any]] | None = None) -> None: ...
