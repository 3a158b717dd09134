"""Open a Slack modal from the ingress, within the trigger id's 3 seconds.

Slack accepts a `trigger_id` for `views.open` only within 3 seconds of the interaction.
The worker cannot promise that: the press reaches it through SQS, and on a cold path
(a new Lambda loading the agent) it starts later than that. So the ingress, which
answers Slack anyway, opens a small "Loading…" modal at once, and the worker fills it in
with `views.update` (no trigger needed) after it has checked the press against the
approval record. The ingress never reads mail or the record: it only opens the frame.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mailroom.observability import logger


class SlackModals:
    def __init__(self, token: Callable[[], str], base_url: str, timeout: int = 2):
        self._token = token
        self._base_url = base_url
        self._timeout = timeout
        self._client: Any = None

    def open(self, trigger_id: str, view: dict[str, Any]) -> str | None:
        """The opened view's id, or None if Slack refused (e.g. expired_trigger_id)."""
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackClientError

        if self._client is None:
            self._client = WebClient(token=self._token(), base_url=self._base_url, timeout=self._timeout)
        try:
            response = self._client.views_open(trigger_id=trigger_id, view=view)
        except (SlackClientError, OSError) as exc:
            logger.warning("could not open the modal", extra={"error": type(exc).__name__})
            return None
        return str(response["view"]["id"])
