"""Suggested prompts when the user opens the bot's DM or a new agent thread: up to four
(Slack's limit), fitting whether their Gmail is linked.

Light on purpose: it runs on every opening of the DM, so it imports nothing of the agent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from mailroom.commands import Command
from mailroom.observability import logger, metrics

MAX_PROMPTS = 4  # Slack: "up to four suggested prompts"

NOT_LINKED = [
    {"title": "Connect Gmail", "message": "auth"},
    {"title": "What can you do?", "message": "help"},
]
LINKED = [
    {"title": "What's unread?", "message": "What's unread in my inbox?"},
    {"title": "Summarise today's mail", "message": "Summarise the mail I received today."},
    {"title": "Draft a reply to …", "message": "Draft a reply to the latest email from "},
    {"title": "Is my Gmail connected?", "message": "status"},
]


class PromptSurface(Protocol):
    def set_suggested_prompts(
        self, channel_id: str, prompts: list[dict[str, str]], *, thread_ts: str | None = None, title: str | None = None
    ) -> None: ...


def prompts_for(linked: bool) -> list[dict[str, str]]:
    return (LINKED if linked else NOT_LINKED)[:MAX_PROMPTS]


def offer_prompts(surface: PromptSurface, command: Command, linked_email: Callable[[str, str], str | None]) -> None:
    """Set the prompts in the DM (agent view: no thread) or the agent thread just opened.
    A workspace without the agent surface refuses the call: that is not a failure."""
    linked = linked_email(command.team_id, command.user_id) is not None
    try:
        surface.set_suggested_prompts(
            command.channel_id,
            prompts_for(linked),
            thread_ts=command.thread_ts,
            title="Try asking" if linked else "Get started",
        )
    except Exception as exc:
        logger.info("suggested prompts unavailable", extra={"error": type(exc).__name__})
        return
    metrics.add_metric(name="PromptsOffered", unit="Count", value=1)
