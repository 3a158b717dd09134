"""Approval cards and presses: post the card, carry out a press, keep the card true.

A press is one SQS delivery. Its order of work, each step safe to repeat on redelivery:
decide (one conditional write: pending -> approved | cancelled | expired | superseded),
send if approved (`ApprovedSend`: at most one Gmail attempt per delivery, looked up
first), write the outcome on the card, then resume the graph with the record's state so
the waiting tool returns an honest result and the model answers. A redelivery of the
deciding press (same event id) picks up where the last one stopped; any other press on
a decided request only says why nothing happens and rewrites the card to the truth.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from langchain_core.messages import ToolMessage
from langgraph.types import Command as Resume
from langgraph.types import Interrupt

from mailroom import approvals, replies
from mailroom.agent import approval_card
from mailroom.agent.context import AgentContext
from mailroom.agent.graph import final_answer
from mailroom.agent.sending import ApprovedSend, Step, no_step
from mailroom.approval_record import PRESS_FAILED, SENDABLE, ApprovalRecord, ApprovalStore, State, StateConflict
from mailroom.approvals import PendingSend
from mailroom.commands import Command
from mailroom.errors import TransientError
from mailroom.mail.compose import InvalidMessage, build_message
from mailroom.observability import logger, metrics
from mailroom.ports import Chat

Answer = Callable[[str, str | None, str], None]


class ApprovalDesk:
    def __init__(
        self,
        chat: Chat,
        store: ApprovalStore,
        *,
        ttl_seconds: float,
        max_send_attempts: int,
        answer: Answer,
        step: Step = no_step,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self._chat = chat
        self._hours = ttl_seconds / 3600
        self._max_attempts = max_send_attempts
        self._answer = answer
        self._step = step
        self._clock = clock

    # -- cards ---------------------------------------------------------------------------
    def ask(self, channel_id: str, thread_ts: str | None, waiting: list[Interrupt]) -> None:
        """Post a card for each request the graph stopped at, and remember where it is."""
        for item in waiting:
            pending = _pending(item.value)
            record = self.store.get(pending.action_id) if pending else None
            if pending is None or record is None or record.state != State.PENDING:
                logger.warning("interrupt without an open request")
                continue
            text, blocks = approval_card.request_card(pending, self._hours)
            ts = self._chat.post(channel_id, text, thread_ts=thread_ts, blocks=blocks)
            metrics.add_metric(name="ApprovalsRequested", unit="Count", value=1)
            with contextlib.suppress(StateConflict):  # decided meanwhile: that press updates the card
                self.store.set_card(pending.action_id, ts)

    def show(
        self,
        record: ApprovalRecord,
        pending: PendingSend | None = None,
        ts: str | None = None,
        strict: bool = False,
        unconfirmed: bool = False,
    ) -> None:
        """Write the record's state on its card (buttons gone). With `strict`, a Slack
        failure is raised so the press is redelivered until the card tells the truth."""
        where = record.card_ts or ts
        if not where:
            return
        text, blocks = approval_card.decided_card(record, pending, unconfirmed)
        try:
            self._chat.update(record.channel_id, where, text, blocks=blocks)
        except Exception:
            if strict:
                raise
            logger.warning("could not update an approval card", extra={"state": record.state.value})

    # -- presses -------------------------------------------------------------------------
    def press(self, command: Command, record: ApprovalRecord, context: AgentContext, graph: Any, config: Any) -> None:
        assert context.mailbox is not None
        sender = ApprovedSend(
            self.store, context.mailbox, max_attempts=self._max_attempts, clock=self._clock, step=self._step
        )
        state = graph.get_state(config)
        waiting = _waiting(state, record.action_id)
        # The answer to this press is what the run adds, never an earlier turn's answer.
        before = {m.id for m in state.values.get("messages") or []}
        pending = _pending(waiting.value) if waiting is not None else None
        card_ts = command.message_ts if command.channel_id == record.channel_id else None
        redelivery = record.decided_by == command.event_id
        if record.state != State.PENDING and not redelivery:
            # An Edit press runs beside the other presses (its own FIFO group): what it read
            # may be stale by now, so only the serialised presses rewrite the card.
            if command.name != approvals.EDIT:
                self.show(record, pending, card_ts)
            self._tell(command, replies.approval_already(record.state.value))
            return
        if command.name == approvals.EDIT:
            self._open_editor(command, record, pending)
            return
        resume_value: dict[str, Any] = {}
        if record.state == State.PENDING:
            if command.name == approvals.EDIT_SUBMIT:
                edited = self._edited(command, pending)
                if isinstance(edited, str):
                    self._tell(command, replies.approval_edit_invalid(edited))
                    return
                resume_value["message"] = edited
            decided = self._decide(command, record, sender, card_ts, context.email)
            if decided is None:
                return
            record = decided
        elif command.name == approvals.EDIT_SUBMIT:
            resume_value["message"] = self._edited(command, pending)
        self._step("decided")
        if record.state in SENDABLE and not _same_address(record.gmail_address, context.email):
            # Bound to the address it was asked from: never sent from another account.
            record = sender.end(record, "Gmail is now linked to another address")
        # An approved inbox change is applied by its tool when the graph resumes, not sent here.
        if record.state in SENDABLE and record.kind != "change_emails":
            self.show(record, pending, card_ts)  # "Sending…": the outcome below is the update that must land
            try:
                record = sender.run(record, pending)
            except TransientError:
                self.show(self.store.get(record.action_id) or record, pending, card_ts, unconfirmed=True)
                raise
        self.show(record, pending, card_ts, strict=True)
        self._step("card_updated")
        if waiting is None:
            return  # the graph moved on already (an earlier delivery resumed it)
        resume_value["state"] = record.state.value
        result = graph.invoke(Resume(resume={waiting.id: resume_value}), config, context=context, durability="exit")
        self._step("resumed")
        thread_ts = _thread_of(record.conversation_id)
        answer = final_answer(_after_last_tool([m for m in result["messages"] if m.id not in before]))
        if answer:
            self._answer(record.channel_id, thread_ts, answer)
        self.ask(record.channel_id, thread_ts, list(result.get("__interrupt__") or []))

    def _decide(
        self, command: Command, record: ApprovalRecord, sender: ApprovedSend, card_ts: str | None, context_email: str
    ) -> ApprovalRecord | None:
        """The one conditional write that decides the request, or None (told why)."""
        now, event = self._clock(), command.event_id

        def move(to: State, *, unexpired: bool = False, reason: str | None = None) -> ApprovalRecord:
            return self.store.move(
                record.action_id,
                to,
                now=now,
                from_states=frozenset({State.PENDING}),
                unexpired=unexpired,
                decided_by=event,
                reason=reason,
            )

        try:
            if command.name == approvals.CANCEL:
                return move(State.CANCELLED)
            if not _same_address(record.gmail_address, context_email):
                return move(State.SUPERSEDED, reason="relinked")
            if record.expired_at(now):
                return move(State.EXPIRED)
            if command.name == approvals.EDIT_SUBMIT:
                return move(State.SUPERSEDED, reason="edited")
            changed = sender.draft_changed(record) if record.kind == "send_draft" else None
            if changed:
                return move(State.SUPERSEDED, reason=changed)
            return move(State.APPROVED, unexpired=True)
        except StateConflict as conflict:
            current = conflict.current
            if current is not None and current.decided_by == event:
                return current
            if current is not None and current.state == State.PENDING:  # expired between the check and the write
                return self._decide(command, current, sender, card_ts, context_email)
            if current is not None:
                self.show(current, None, card_ts)
                self._tell(command, replies.approval_already(current.state.value))
            return None

    def abandon(self, command: Command) -> None:
        """The press failed and its user was told (the worker calls this on a bug, and on
        the last delivery of any other failure): nothing may be sent later. A request approved
        but never attempted ends as failed; one that reached Gmail (whose answer may have
        been lost) keeps its state but has its attempts used up, so that a redrive or the
        next message only looks it up in Gmail and settles it, never sends it."""
        record = self.store.get(command.action_value or "") if command.action_value else None
        if record is None:
            return
        # An Approve that failed before it was recorded: the owner heard it failed, so no
        # redelivery may still approve it. It ends; they can ask again.
        undecided = record.state == State.PENDING and command.name == approvals.APPROVE
        if undecided and record.owned_by(command.team_id, command.user_id):
            with contextlib.suppress(StateConflict):
                pending = frozenset({State.PENDING})
                ended = self.store.move(
                    record.action_id, State.CANCELLED, now=self._clock(), from_states=pending, reason=PRESS_FAILED
                )
                self.show(ended)
            return
        if record.decided_by != command.event_id:
            return
        why = "Mailroom could not finish it (the reason is in the chat)"
        try:
            if record.state == State.SENDING:
                record = self.store.stop_attempts(record.action_id, max_attempts=self._max_attempts, reason=why)
            elif record.state == State.APPROVED:
                approved, now = frozenset({State.APPROVED}), self._clock()
                record = self.store.move(record.action_id, State.FAILED, now=now, from_states=approved, reason=why)
            else:
                return
        except StateConflict:
            return
        self.show(record)

    # -- editing -------------------------------------------------------------------------
    def _open_editor(self, command: Command, record: ApprovalRecord, pending: PendingSend | None) -> None:
        """Open the Edit modal with the press's trigger id. Slack takes a trigger for 3 s
        only; the press reaches the worker through SQS in its own FIFO group (it never waits
        behind a turn), so it is usually in time, and when it is not the user is told to
        press again: the ingress, which only holds the signing secret, cannot open it."""
        if pending is None or pending.kind != "send_email":
            view = approval_card.edit_unavailable_view()
        else:
            where = {"action_id": record.action_id, "channel": record.channel_id}
            where["thread_ts"] = _thread_of(record.conversation_id) or ""
            view = approval_card.edit_view(pending, json.dumps(where))
        if not command.trigger_id or not self._chat.open_view(command.trigger_id, view):
            metrics.add_metric(name="EditorTooLate", unit="Count", value=1)
            self._chat.post_ephemeral(
                command.channel_id, command.user_id, replies.editor_too_late(), thread_ts=command.thread_ts
            )

    def _edited(self, command: Command, pending: PendingSend | None) -> dict[str, Any] | str:
        form = command.form or {}
        if pending is None:
            return "the request is no longer open"
        try:
            message = build_message(
                sender=None,
                to=form.get("to", ""),
                cc=form.get("cc", ""),
                bcc=form.get("bcc", ""),
                subject=form.get("subject", ""),
                body=form.get("body", ""),
            )
        except InvalidMessage as exc:
            return str(exc)
        return {
            "to": list(message.to),
            "cc": list(message.cc),
            "bcc": list(message.bcc),
            "subject": message.subject,
            "body": message.body,
            "in_reply_to": pending.in_reply_to,
            "references": pending.references,
            "thread_id": pending.thread_id,
        }

    def _tell(self, command: Command, text: str) -> None:
        # An Edit press expects a modal: say it there while the trigger is good.
        edit_press = command.name == approvals.EDIT and command.trigger_id
        if edit_press and self._chat.open_view(str(command.trigger_id), approval_card.notice_view(text)):
            return
        self._chat.post_ephemeral(command.channel_id, command.user_id, text, thread_ts=command.thread_ts)


def _same_address(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


def _pending(value: Any) -> PendingSend | None:
    try:
        return PendingSend.from_dict(value) if isinstance(value, dict) else None
    except TypeError:
        return None  # a payload without the message (see send_tools.ask_then_send)


def _waiting(state: Any, action_id: str) -> Interrupt | None:
    for item in state.interrupts:
        if isinstance(item.value, dict) and item.value.get("action_id") == action_id:
            return item
    return None


def _thread_of(conversation_id: str) -> str | None:
    parts = conversation_id.split(":", 2)
    return parts[2] if len(parts) == 3 else None


def _after_last_tool(messages: Any) -> Any:
    """After a resume the answer is whatever the model said after the last tool result."""
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], ToolMessage):
            return messages[index + 1 :]
    return []
