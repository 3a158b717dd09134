"""One agent turn for a `chat` command: from the user's words to the reply in Slack."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import HumanMessage

from mailroom import replies
from mailroom.adapters.gmail_api import GmailApiMailbox
from mailroom.adapters.google_oauth import GoogleOAuth, GrantRevoked
from mailroom.agent.graph import AgentContext, build_graph, final_answer, this_turn
from mailroom.agent.tools import gmail_tools
from mailroom.commands import Command
from mailroom.errors import ToolInputError, TransientError
from mailroom.gmail_link import GmailLinkCommands, LinkBroken
from mailroom.observability import logger, metrics
from mailroom.ports import Chat
from mailroom.slack.format import split_message, to_mrkdwn

WORKING = "_Working on it…_"


@dataclass(frozen=True)
class AgentSettings:
    model: str
    temperature: float
    # Read when the first model call needs it, so a user without a Gmail link is
    # answered even where the model is not configured.
    api_key: Callable[[], str]
    gmail_api_url: str
    keep_turns: int
    # Stop starting model calls this long before the Lambda's own timeout.
    time_margin_seconds: float
    recursion_limit: int = 24


class AgentChat:
    def __init__(
        self,
        chat: Chat,
        links: GmailLinkCommands,
        oauth: GoogleOAuth,
        checkpointer: Any,
        settings: AgentSettings,
        seconds_left: Callable[[], float],
        model: Any | None = None,
    ):
        self._chat = chat
        self._links = links
        self._oauth = oauth
        self._checkpointer = checkpointer
        self._settings = settings
        self._seconds_left = seconds_left
        self._model = model

    def __call__(self, command: Command) -> None:
        if not command.is_direct_message:
            # Mail content stays out of channels: point to the DM instead.
            self._chat.post_ephemeral(
                command.channel_id, command.user_id, replies.dm_only(), thread_ts=command.thread_ts
            )
            return
        link = self._links.require_link(command)
        if link is None:
            return
        placeholder = self._chat.post(command.channel_id, WORKING, thread_ts=command.thread_ts)
        started = time.monotonic()
        try:
            answer = self._turn(command, link.email, self._oauth.credentials(link.tokens))
        except (GrantRevoked, LinkBroken):
            self._links.links.mark_broken(command.team_id, command.user_id)
            self._chat.update(command.channel_id, placeholder, replies.link_broken())
            return
        except (TransientError, ToolInputError) as exc:
            logger.warning("agent turn failed on a dependency", extra={"error": str(exc)[:200]})
            metrics.add_metric(name="AgentFailures", unit="Count", value=1)
            self._chat.update(command.channel_id, placeholder, replies.busy(command.event_id))
            return
        except Exception:
            logger.exception("agent turn failed")
            metrics.add_metric(name="AgentFailures", unit="Count", value=1)
            self._chat.update(command.channel_id, placeholder, replies.failure(command.event_id))
            return
        metrics.add_metric(name="AgentTurns", unit="Count", value=1)
        metrics.add_metric(name="AgentLatency", unit="Milliseconds", value=(time.monotonic() - started) * 1000)
        first, *rest = split_message(to_mrkdwn(answer) or "I have nothing to add.")
        self._chat.update(command.channel_id, placeholder, first)
        for piece in rest:
            self._chat.post(command.channel_id, piece, thread_ts=command.thread_ts)

    def _turn(self, command: Command, email: str, credentials: Any) -> str:
        mailbox = GmailApiMailbox(credentials, self._settings.gmail_api_url, email)
        graph = build_graph(
            self._chat_model(), gmail_tools(mailbox), self._checkpointer, keep_turns=self._settings.keep_turns
        )
        deadline = time.monotonic() + self._seconds_left() - self._settings.time_margin_seconds
        result = graph.invoke(
            {"messages": [HumanMessage(content=command.text)]},
            {"configurable": {"thread_id": command.conversation_id}, "recursion_limit": self._settings.recursion_limit},
            context=AgentContext(email=email, deadline=deadline),
            # One checkpoint write at the end of the turn, not one per step.
            durability="exit",
        )
        tool_calls = sum(len(getattr(m, "tool_calls", None) or []) for m in this_turn(result["messages"]))
        metrics.add_metric(name="ToolCalls", unit="Count", value=tool_calls)
        return final_answer(result["messages"])

    def _chat_model(self) -> Any:
        if self._model is None:
            from langchain_openai import ChatOpenAI

            # The base URL comes from OPENAI_BASE_URL, which the client reads itself.
            self._model = ChatOpenAI(
                model=self._settings.model,
                temperature=self._settings.temperature,
                api_key=self._settings.api_key(),  # type: ignore[arg-type]
                timeout=30,
                max_retries=2,
            )
        return self._model
