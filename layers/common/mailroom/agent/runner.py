"""One agent turn for a `chat` command: from the user's words to the reply in Slack."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.types import Command as Resume
from langgraph.types import Interrupt

from mailroom import replies
from mailroom.adapters.gmail_api import GmailApiMailbox
from mailroom.adapters.google_oauth import GoogleOAuth, GrantRevoked
from mailroom.agent.approval_desk import ApprovalDesk
from mailroom.agent.context import AgentContext
from mailroom.agent.graph import build_graph, final_answer, this_turn
from mailroom.agent.sending import Step, no_step
from mailroom.agent.tools import gmail_tools
from mailroom.approval_record import ApprovalRecord, ApprovalStore
from mailroom.commands import Command
from mailroom.errors import ToolInputError, TransientError
from mailroom.gmail_link import GmailLinkCommands, LinkBroken
from mailroom.observability import logger, metrics
from mailroom.ports import Chat
from mailroom.rate_limit import RateLimiter
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
    approval_ttl_seconds: float = 24 * 3600
    # Deliveries of an approving press that may try Gmail (the queue's maxReceiveCount).
    max_send_attempts: int = 4
    gmail_timeout_seconds: float = 30.0


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
        rate_limiter: RateLimiter | None = None,
        approvals: ApprovalStore | None = None,
        send_step: Step = no_step,
    ):
        self._approvals = approvals
        self._approval_desk: ApprovalDesk | None = None
        self._send_step = send_step
        self._rate_limiter = rate_limiter
        self._compiled: Any = None
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
        limiter = self._rate_limiter
        if limiter is not None and not limiter.allow(command.team_id, command.user_id):
            metrics.add_metric(name="ChatRateLimited", unit="Count", value=1)
            self._chat.post(
                command.channel_id, replies.rate_limited(limiter.minutes_until_reset()), thread_ts=command.thread_ts
            )
            return
        placeholder = self._chat.post(command.channel_id, WORKING, thread_ts=command.thread_ts)
        started = time.monotonic()
        try:
            answer, pending = self._turn(command, link.email, self._oauth.credentials(link.tokens))
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
        if pending and not answer:
            answer = "Here is the email. Check it, then press *Approve and send* or *Cancel*."
        self._post_answer(command, answer, placeholder)
        self._ask_approval(command, pending)

    def resume(self, command: Command) -> None:
        """A press on an approval card (Approve, Cancel, Edit, or the Edit modal's submit)."""
        with self._one_read_per_checkpoint():
            self._resume(command)

    def abandon_press(self, command: Command) -> None:
        """For the worker, on a press's last failed delivery (see ApprovalDesk.abandon)."""
        if self._approvals is not None and command.kind == "action":
            self._desk().abandon(command)

    def _resume(self, command: Command) -> None:
        # The press is routed by its action id, looked up server-side: the record names
        # the owner and the conversation, whatever thread the press came from.
        desk = self._desk()
        record = desk.store.get(command.action_value or "") if command.action_value else None
        if record is None:
            self._tell_presser(command, replies.approval_not_pending())
            return
        if not record.owned_by(command.team_id, command.user_id):
            self._tell_presser(command, replies.approval_not_yours(record.user_id))
            return
        link = self._links.require_link(command)
        if link is None:
            return
        context = self._context(command, link.email, self._oauth.credentials(link.tokens), record)
        desk.press(command, record, context, self._graph(), self._config_for(record.conversation_id))

    def _turn(self, command: Command, email: str, credentials: Any) -> tuple[str, list[Interrupt]]:
        with self._one_read_per_checkpoint():
            return self._run_turn(command, self._context(command, email, credentials))

    def _run_turn(self, command: Command, context: AgentContext) -> tuple[str, list[Interrupt]]:
        graph, config = self._graph(), self._config(command)
        # A request still waiting for a press is dropped when the user moves on: the
        # model must see every send it asked for answered before the new message.
        waiting = graph.get_state(config).interrupts
        if waiting:
            graph.invoke(
                Resume(resume={i.id: {"decision": "superseded"} for i in waiting}),
                config,
                context=context,
                durability="exit",
            )
        result = graph.invoke(
            {"messages": [HumanMessage(content=command.text)]}, config, context=context, durability="exit"
        )
        tool_calls = sum(len(getattr(m, "tool_calls", None) or []) for m in this_turn(result["messages"]))
        metrics.add_metric(name="ToolCalls", unit="Count", value=tool_calls)
        pending = _pending(result)
        return ("" if pending else final_answer(result["messages"])), pending

    def _one_read_per_checkpoint(self) -> Any:
        turn = getattr(self._checkpointer, "turn", None)
        return turn() if turn is not None else contextlib.nullcontext()

    def _graph(self) -> Any:
        """The compiled graph, built once per worker: it is the same for every user, whose
        mailbox comes with each run's context (compiling costs ~20 ms)."""
        if self._compiled is None:
            self._compiled = build_graph(
                self._chat_model(), gmail_tools(), self._checkpointer, keep_turns=self._settings.keep_turns
            )
        return self._compiled

    def _config(self, command: Command) -> dict[str, Any]:
        return {
            "configurable": {"thread_id": command.conversation_id},
            "recursion_limit": self._settings.recursion_limit,
        }

    def _context(
        self, command: Command, email: str, credentials: Any, record: ApprovalRecord | None = None
    ) -> AgentContext:
        return AgentContext(
            email=email,
            deadline=time.monotonic() + self._seconds_left() - self._settings.time_margin_seconds,
            mailbox=GmailApiMailbox(
                credentials, self._settings.gmail_api_url, email, timeout=self._settings.gmail_timeout_seconds
            ),
            owner=command.user_id,
            # A press acts in the conversation its record names, not the one it came from.
            conversation_id=record.conversation_id if record else command.conversation_id,
            approval_ttl_seconds=self._settings.approval_ttl_seconds,
            approvals=self._approvals,
            team_id=command.team_id,
            channel_id=record.channel_id if record else command.channel_id,
            settled=self._desk().show if self._approvals is not None else _ignore,
        )

    def _post_answer(self, command: Command, answer: str, placeholder: str | None) -> None:
        if not answer and placeholder is None:
            return
        first, *rest = split_message(to_mrkdwn(answer) or "I have nothing to add.")
        if placeholder is None:
            self._chat.post(command.channel_id, first, thread_ts=command.thread_ts)
        else:
            self._chat.update(command.channel_id, placeholder, first)
        for piece in rest:
            self._chat.post(command.channel_id, piece, thread_ts=command.thread_ts)

    def _ask_approval(self, command: Command, pending: list[Interrupt]) -> None:
        self._desk().ask(command.channel_id, command.thread_ts, pending)

    def _desk(self) -> ApprovalDesk:
        if self._approval_desk is None:
            assert self._approvals is not None, "sending needs the approval records"
            self._approval_desk = ApprovalDesk(
                self._chat,
                self._approvals,
                ttl_seconds=self._settings.approval_ttl_seconds,
                max_send_attempts=self._settings.max_send_attempts,
                answer=self._post_answer_in,
                step=self._send_step,
            )
        return self._approval_desk

    def _post_answer_in(self, channel_id: str, thread_ts: str | None, answer: str) -> None:
        first, *rest = split_message(to_mrkdwn(answer) or "I have nothing to add.")
        for piece in (first, *rest):
            self._chat.post(channel_id, piece, thread_ts=thread_ts)

    def _config_for(self, conversation_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": conversation_id}, "recursion_limit": self._settings.recursion_limit}

    def _tell_presser(self, command: Command, text: str) -> None:
        if command.trigger_id and command.name == "edit_send":
            # An Edit press expects a modal: say it there while the trigger is good.
            from mailroom.agent.approval_card import notice_view

            if self._chat.open_view(command.trigger_id, notice_view(text)):
                return
        self._chat.post_ephemeral(command.channel_id, command.user_id, text, thread_ts=command.thread_ts)

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


def _pending(result: dict[str, Any]) -> list[Interrupt]:
    return list(result.get("__interrupt__") or [])


def _ignore(record: ApprovalRecord) -> None:
    return None
