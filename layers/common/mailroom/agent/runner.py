"""One agent turn for a `chat` command: from the user's words to the reply in Slack."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.types import Command as Resume
from langgraph.types import Interrupt

from mailroom import replies
from mailroom.adapters.gmail_api import GmailApiMailbox
from mailroom.adapters.google_oauth import GoogleOAuth, GrantRevoked
from mailroom.agent.approval_desk import ApprovalDesk
from mailroom.agent.atomic import AtomicSaver
from mailroom.agent.context import AgentContext
from mailroom.agent.graph import build_graph, final_answer, this_turn
from mailroom.agent.sending import Step, no_step
from mailroom.agent.shown_run import run_shown
from mailroom.agent.tools import gmail_tools
from mailroom.approval_record import ApprovalRecord, ApprovalStore
from mailroom.commands import Command
from mailroom.errors import MessageGone
from mailroom.gmail_link import GmailLinkCommands, LinkBroken
from mailroom.observability import logger, metrics
from mailroom.ports import Chat
from mailroom.rate_limit import RateLimiter
from mailroom.reply_once import OnceChat
from mailroom.slack.format import split_message, to_mrkdwn
from mailroom.slack.presenter import THINKING, AgentSurface, TurnView, answer_pieces, feedback_blocks, with_blocks
from mailroom.timeouts import MODEL_CALL_SECONDS

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
    # Kept at the end of the invocation for saving and answering: the turn's model and
    # Gmail calls end this long before the Lambda's own timeout.
    time_margin_seconds: float
    recursion_limit: int = 24
    approval_ttl_seconds: float = 24 * 3600
    # Deliveries of an approving press that may try Gmail (the queue's maxReceiveCount).
    max_send_attempts: int = 4
    gmail_timeout_seconds: float = 20.0


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
        surface: AgentSurface | None = None,
        replies: OnceChat | None = None,
    ):
        # Slack's agent surface (status, stream); None: placeholder and edit only.
        self._surface = surface
        self._approvals = approvals
        self._approval_desk: ApprovalDesk | None = None
        self._send_step = send_step
        self._rate_limiter = rate_limiter
        # What an earlier delivery of the event posted (placeholder, stream, parts).
        self._replies = replies
        # Every graph run saves all or nothing (see AtomicSaver).
        self._saver = AtomicSaver(checkpointer)
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
        # Counted once per Slack event: a redelivery of a counted turn is let through.
        if limiter is not None and not limiter.allow(
            command.team_id, command.user_id, command.event_id, _written_at(command)
        ):
            metrics.add_metric(name="ChatRateLimited", unit="Count", value=1)
            self._chat.post(
                command.channel_id, replies.rate_limited(limiter.minutes_until_reset()), thread_ts=command.thread_ts
            )
            return
        # The agent surface's conversations are threads, and Slack streams only replies:
        # there the answer streams and a status shows each step; elsewhere a placeholder.
        threaded = self._surface is not None and command.thread_ts is not None
        placeholder: str | None = None
        if not threaded:
            # On a redelivery, the one an earlier delivery posted (mailroom.reply_once).
            placeholder = self._post_placeholder(command)
        elif self._replies is not None:
            # A redelivery edits what an earlier one streamed instead of streaming again.
            placeholder = self._replies.earlier_stream()
            if placeholder is not None and self._surface is not None:
                # The dead delivery's stream may still be open: close it before this
                # delivery edits it (or tells a failure in it).
                with contextlib.suppress(Exception):
                    self._surface.stop_stream(command.channel_id, placeholder)
        view = self._view(command, stream=placeholder is None) if threaded else None
        try:
            self._answer(command, link, placeholder, view)
        finally:
            if view is not None:
                view.close()

    def _post_placeholder(self, command: Command) -> str:
        if self._replies is not None:
            return self._replies.post_placeholder(command.channel_id, WORKING, thread_ts=command.thread_ts)
        return self._chat.post(command.channel_id, WORKING, thread_ts=command.thread_ts)

    def _answer(self, command: Command, link: Any, placeholder: str | None, view: TurnView | None) -> None:
        started = time.monotonic()
        try:
            if view is not None:
                view.status(THINKING)
            answer, pending = self._turn(command, link.email, self._oauth.credentials(link.tokens), view)
        except (GrantRevoked, LinkBroken):
            self._links.links.mark_broken(command.team_id, command.user_id)
            if view is not None:
                view.close()
            target = placeholder or (view.stream_ts if view is not None else None)
            if target is not None:
                self._chat.update(command.channel_id, target, replies.link_broken())
            else:
                self._chat.post(command.channel_id, replies.link_broken(), thread_ts=command.thread_ts)
            return
        except Exception:
            # Nothing of the turn was saved (see AtomicSaver); the worker decides what
            # the failure means and tells the user in the placeholder (or streamed message).
            metrics.add_metric(name="AgentFailures", unit="Count", value=1)
            if view is not None and view.stream_ts is not None:
                # Close the stream and take back its unfinished words until a retry answers.
                view.close()
                with contextlib.suppress(Exception):
                    self._chat.update(command.channel_id, view.stream_ts, WORKING)
            raise
        metrics.add_metric(name="AgentTurns", unit="Count", value=1)
        metrics.add_metric(name="AgentLatency", unit="Milliseconds", value=(time.monotonic() - started) * 1000)
        if pending and not answer:
            answer = "Here is the email. Check it, then press *Approve and send* or *Cancel*."
        # The outcome is saved (the checkpoint): only now is the streamed answer final.
        feedback = [] if pending else feedback_blocks(command.event_id)
        if view is not None:
            mark = self._replies.stream_mark() if self._replies is not None else None
            if view.finish(answer, feedback, mark):
                self._post_outcome(command, "", pending, None)
                return
            placeholder = placeholder or view.stream_ts
        still_open = view is not None and (view.stream_ts is None or view.left_open)
        if still_open and self._surface is not None and placeholder is not None:
            # An earlier delivery's stream, or this one whose stop failed, may still be
            # open: close it before the edit.
            with contextlib.suppress(Exception):
                self._surface.stop_stream(command.channel_id, placeholder)
        self._post_outcome(command, answer, pending, placeholder, feedback)

    def _view(self, command: Command, *, stream: bool) -> TurnView:
        assert self._surface is not None and command.thread_ts is not None
        once = self._replies

        def started(ts: str) -> None:
            # Edits of the stream carry this turn's mark (chat.startStream takes none).
            if once is not None:
                once.stream_started(ts)

        return TurnView(
            self._surface,
            channel=command.channel_id,
            thread_ts=command.thread_ts,
            user_id=command.user_id,
            team_id=command.team_id,
            stream=stream,
            on_stream_started=started,
        )

    def _post_outcome(
        self,
        command: Command,
        answer: str,
        pending: list[Interrupt],
        placeholder: str | None,
        feedback: list[dict[str, Any]] | None = None,
    ) -> None:
        """Post the recorded outcome: the placeholder edited into the answer (idempotent),
        then the answer's further messages and the approval cards. On a redelivery the
        chat (mailroom.reply_once) skips those an earlier delivery posted."""
        if answer or placeholder is not None:
            # An empty answer (a refusal, an empty final message) still replaces the
            # placeholder or stream: never "Working on it…" forever.
            self._post_answer(command, answer, placeholder, feedback)
        for waiting in pending:
            self._ask_approval(command, [waiting])

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
        # The press resumes the graph at most once; that run is saved whole or not at all.
        with self._atomic():
            desk.press(command, record, context, self._graph(), self._config_for(record.conversation_id))

    def _turn(
        self, command: Command, email: str, credentials: Any, view: TurnView | None = None
    ) -> tuple[str, list[Interrupt]]:
        with self._one_read_per_checkpoint():
            return self._run_turn(command, self._context(command, email, credentials), view)

    def _run_turn(
        self, command: Command, context: AgentContext, view: TurnView | None = None
    ) -> tuple[str, list[Interrupt]]:
        graph, config = self._graph(), self._config(command)
        state = graph.get_state(config)
        message_id = turn_message_id(command.event_id)
        recorded = recorded_outcome(state.values.get("messages") or [], message_id, list(state.interrupts))
        if recorded is not None:
            # This event's turn ran and was saved; an earlier delivery failed to post it.
            logger.info("turn already ran; posting its recorded outcome")
            return recorded
        if view is not None and not state.values.get("messages"):
            view.title(command.text)  # the thread's first request names it
        # A request still waiting for a press is dropped when the user moves on: the
        # model must see every send it asked for answered before the new message.
        waiting = state.interrupts
        if waiting:
            with self._atomic():
                graph.invoke(
                    Resume(resume={i.id: {"decision": "superseded"} for i in waiting}),
                    config,
                    context=context,
                    durability="exit",
                )
        # Saved only if the run ends (answered, or waiting for a press): a failed run
        # leaves the conversation as it was, so the next message (or a retry) works.
        with self._atomic():
            turn_input = {"messages": [HumanMessage(content=command.text, id=message_id)]}
            if view is None:
                result = graph.invoke(turn_input, config, context=context, durability="exit")
            else:
                result = run_shown(graph, turn_input, config, context, view)
        tool_calls = sum(len(getattr(m, "tool_calls", None) or []) for m in this_turn(result["messages"]))
        metrics.add_metric(name="ToolCalls", unit="Count", value=tool_calls)
        pending = _pending(result)
        return ("" if pending else final_answer(result["messages"])), pending

    def _atomic(self) -> Any:
        """A block whose graph run is saved whole or not at all (one run per block)."""
        self._graph()
        return self._saver.atomic()

    def _one_read_per_checkpoint(self) -> Any:
        turn = getattr(self._checkpointer, "turn", None)
        return turn() if turn is not None else contextlib.nullcontext()

    def _graph(self) -> Any:
        """The compiled graph, built once per worker: it is the same for every user, whose
        mailbox comes with each run's context (compiling costs ~20 ms)."""
        if self._compiled is None:
            self._compiled = build_graph(
                self._chat_model(), gmail_tools(), self._saver, keep_turns=self._settings.keep_turns
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
        # The turn's own calls end by the deadline; the margin after it is for saving
        # the turn and answering in Slack.
        deadline = time.monotonic() + self._seconds_left() - self._settings.time_margin_seconds
        return AgentContext(
            email=email,
            deadline=deadline,
            mailbox=GmailApiMailbox(
                credentials,
                self._settings.gmail_api_url,
                email,
                deadline=deadline,
                timeout=self._settings.gmail_timeout_seconds,
            ),
            owner=command.user_id,
            # A press acts in the conversation its record names, not the one it came from.
            conversation_id=record.conversation_id if record else command.conversation_id,
            approval_ttl_seconds=self._settings.approval_ttl_seconds,
            approvals=self._approvals,
            team_id=command.team_id,
            channel_id=record.channel_id if record else command.channel_id,
            settled=self._desk().show if self._approvals is not None else _ignore,
            turn_id=command.event_id,
        )

    def _post_answer(
        self,
        command: Command,
        answer: str,
        placeholder: str | None,
        feedback: list[dict[str, Any]] | None = None,
    ) -> None:
        """Post `answer` (into the placeholder if there is one); the last message carries
        the `feedback` blocks."""
        if not answer and placeholder is None:
            return
        first, *rest = answer_pieces(answer)
        first_blocks = with_blocks(first, feedback) if feedback and not rest else None
        try:
            if placeholder is not None:
                self._chat.update(command.channel_id, placeholder, first, blocks=first_blocks)
        except MessageGone:  # the user deleted the placeholder: answer anyway
            placeholder = None
        if placeholder is None:
            self._chat.post(command.channel_id, first, thread_ts=command.thread_ts, blocks=first_blocks)
        for index, piece in enumerate(rest):
            blocks = with_blocks(piece, feedback) if feedback and index == len(rest) - 1 else None
            self._chat.post(command.channel_id, piece, thread_ts=command.thread_ts, blocks=blocks)

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
                # Each request's timeout comes from the turn's time left, and the agent
                # retries within it (mailroom.agent.graph); this is only the ceiling.
                timeout=MODEL_CALL_SECONDS,
                max_retries=0,
            )
        return self._model


def _written_at(command: Command) -> float | None:
    """When the user wrote (the message's ts is its Unix time), if the command says."""
    try:
        return float(command.message_ts) if command.message_ts else None
    except ValueError:
        return None


def turn_message_id(event_id: str) -> str:
    """The id of the user's message in the checkpoint: derived from the Slack event, so
    a redelivery can see that its turn already ran."""
    return f"slack-event:{event_id}"


def recorded_outcome(
    messages: Sequence[AnyMessage], message_id: str, interrupts: list[Interrupt]
) -> tuple[str, list[Interrupt]] | None:
    """The saved outcome (answer, approval requests) of the turn that started with the
    message `message_id`, or None if no such turn was saved."""
    starts = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
    found = next((i for i in starts if messages[i].id == message_id), None)
    if found is None:
        return None
    later = [i for i in starts if i > found]
    turn = messages[found : later[0]] if later else messages[found:]
    pending = [] if later else interrupts  # only the latest turn can still be waiting
    return ("" if pending else final_answer(turn)), pending


def _pending(result: dict[str, Any]) -> list[Interrupt]:
    return list(result.get("__interrupt__") or [])


def _ignore(record: ApprovalRecord) -> None:
    return None
