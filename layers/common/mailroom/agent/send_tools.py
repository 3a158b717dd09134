"""What `send_email` and `send_draft` do: ask the user, then report what the approval
record says became of the request.

The graph stops at `interrupt` until a press (or the user moving on) resumes it, and the
tool then runs again from the top. The tool never sends: the worker sends on the press,
outside the graph, as the approval record allows (`agent/sending.py`). Whether anything
was sent is read from the record, never from LangGraph's resume value: LangGraph keeps a
task's resume values with it (`interrupt()` replays `scratchpad.resume[idx]` before
looking at a new value; see langgraph/types.py and pregel/_algo.py `_scratchpad`), so a
task that failed after an "approve" would replay "approve" on any later resume. The
resume value is used only to carry an edited message's text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from langgraph.config import get_config
from langgraph.errors import GraphInterrupt
from langgraph.types import Interrupt, interrupt

from mailroom.agent import approval_card
from mailroom.agent.context import AgentContext
from mailroom.approval_record import PRESS_FAILED, SENDABLE, ApprovalRecord, ApprovalStore, State, StateConflict
from mailroom.approvals import Kind, PendingSend, action_id_for, message_hash, next_action_id
from mailroom.errors import OutOfTime, TransientError, describe
from mailroom.mail.compose import InvalidMessage, OutgoingMessage, build_message, deterministic_message_id
from mailroom.mail.draft import raw_hash, stamp
from mailroom.mail.draft import view as draft_view
from mailroom.observability import logger, metrics
from mailroom.ports import Mailbox


def action_id(context: AgentContext, tool_call_id: str) -> str:
    # The tools task's checkpoint namespace ("tools:<task id>"): new for each model answer,
    # the same when the task re-runs on resume (see approvals.action_id_for).
    task_path = str(get_config().get("configurable", {}).get("checkpoint_ns", ""))
    return action_id_for(context.conversation_id, task_path, tool_call_id)


def ask_then_send(context: AgentContext, mailbox: Mailbox, base_id: str, first: Callable[[], PendingSend | str]) -> str:
    """Ask (a record and an interrupt per version of the message), then report the outcome.
    An edit or a changed draft ends a request and asks again with the new message."""
    store = context.approvals
    assert store is not None, "sending needs the approval records"
    version, answer, previous = 0, None, None
    while True:
        current_id = next_action_id(base_id, version)
        record = store.get(current_id)
        payload: dict[str, Any] = {"action_id": current_id}
        if record is None:
            made = first() if version == 0 else _follow_up(context, mailbox, previous, answer, current_id)
            if isinstance(made, str):
                return made  # refused before anything was asked
            record = store.create(new_record(context, made))
            payload = made.to_dict()
        # On re-execution this returns the stored answer at once, and `payload` is unused.
        try:
            answer = interrupt(payload)
        except GraphInterrupt as stop:
            if "kind" in payload or record.state != State.PENDING:
                raise
            made = first() if version == 0 else _follow_up(context, mailbox, previous, answer, current_id)
            ask_again(stop, store, record, made)
            answer = None
        record = store.get(current_id) or record
        if record.state == State.PENDING or record.state in SENDABLE:
            shown = _rebuilt(record, first) if record.state == State.SENDING and version == 0 else None
            record = close_undecided(store, mailbox, record, shown)
            context.settled(record)
        if record.state == State.SUPERSEDED and record.reason in ("edited", "draft_changed"):
            previous, version = record, version + 1
            continue
        sent = record.state == State.SENT
        metrics.add_metric(name="SendsApproved" if sent else "SendsNotApproved", unit="Count", value=1)
        return outcome_for_model(record)


def ask_again(stop: GraphInterrupt, store: ApprovalStore, record: ApprovalRecord, made: PendingSend | str) -> None:
    """A request made by a run that was not saved (it failed after asking, before its card
    was posted) stops again with only its id: stop with the whole message instead, so its
    card can be shown. If that is no longer what was recorded (the draft changed
    meanwhile), end the request instead and return."""
    if isinstance(made, PendingSend) and made.message_hash == record.message_hash:
        [asked] = stop.args[0]
        again = dataclasses.replace(made, expires_at=record.expires_at).to_dict()
        raise GraphInterrupt((Interrupt(value=again, id=asked.id),)) from None
    reason = "draft_changed" if record.kind == "send_draft" else "moved_on"
    with contextlib.suppress(StateConflict):
        store.move(
            record.action_id, State.SUPERSEDED, now=time.time(), from_states=frozenset({State.PENDING}), reason=reason
        )


def outcome_for_model(record: ApprovalRecord) -> str:
    """The honest tool result: what became of the request, from the record alone."""
    texts = {
        State.SENT: f"Sent (Gmail id {record.gmail_id}).",
        State.FAILED: f"Not sent: {record.reason}. The user has been told; do not retry unless they ask again.",
        State.CANCELLED: "Not sent: the user pressed Cancel.",
        State.EXPIRED: "Not sent: the approval request expired.",
        State.SUPERSEDED: "Not sent: the user moved on without approving.",
    }
    if record.state == State.CANCELLED and record.reason == PRESS_FAILED:
        return "Not sent: the user's Approve could not be completed and they were told. Do not retry unless they ask."
    if record.state == State.SUPERSEDED and record.reason == "draft_gone":
        return "Not sent: the draft is no longer in Gmail (deleted, or sent from Gmail itself). The user has been told."
    return texts.get(record.state, "Not sent.")


def _rebuilt(record: ApprovalRecord, first: Callable[[], PendingSend | str]) -> PendingSend | None:
    """The email a send in progress was approved as, rebuilt from the tool's own arguments
    (no Gmail write: only send_email, whose message is composed, not stamped), so that its
    lookup can also search by recipient and subject; None if it is not that message."""
    if record.kind != "send_email":
        return None
    try:
        made = first()
    except (TransientError, OutOfTime):
        raise  # Gmail briefly away, or the turn's time is up: settle it on the retry, fully
    except Exception as exc:  # e.g. the replied-to mail is gone: the Message-ID lookup still runs
        logger.warning("could not rebuild the message for its lookup", extra=describe(exc))
        return None
    return made if isinstance(made, PendingSend) and made.message_hash == record.message_hash else None


def close_undecided(
    store: ApprovalStore, mailbox: Mailbox, record: ApprovalRecord, shown: PendingSend | None = None
) -> ApprovalRecord:
    """The graph was resumed while the request was still open (the user moved on): end it
    so that no later press or redelivery can send it. An approved send in progress is
    settled by looking it up in Gmail (by its Message-ID, and when `shown` is the message,
    by its recipient, subject and our header), never by sending."""
    now, since = time.time(), frozenset({record.state})
    try:
        if record.state == State.PENDING:
            to = State.EXPIRED if record.expired_at(now) else State.SUPERSEDED
            return store.move(record.action_id, to, now=now, from_states=since, reason="moved_on")
        recipients = (shown.to + shown.cc + shown.bcc) if shown else ()
        found = mailbox.find_sent(
            deterministic_message_id(record.action_id),
            record.action_id,
            recipients[0] if recipients else None,
            shown.subject if shown else "",
        )
        if found is not None and record.state == State.SENDING:
            return store.move(record.action_id, State.SENT, now=now, from_states=since, gmail_id=found)
        reason = "you moved on before Gmail confirmed the send"
        return store.move(record.action_id, State.FAILED, now=now, from_states=since, reason=reason)
    except StateConflict as conflict:
        return conflict.current or record


def pending_for(
    context: AgentContext, kind: Kind, current_id: str, message: OutgoingMessage, **extra: Any
) -> PendingSend | str:
    """The request for `message`, or why it cannot be asked (too large to show whole)."""
    pending = PendingSend(
        action_id=current_id,
        kind=kind,
        owner=context.owner,
        from_=context.email,
        to=message.to,
        cc=message.cc,
        bcc=message.bcc,
        subject=message.subject,
        body=message.body,
        message_hash=extra.pop("message_hash", None) or message_hash(message),
        expires_at=time.time() + context.approval_ttl_seconds,
        in_reply_to=message.in_reply_to,
        references=message.references,
        thread_id=message.thread_id,
        **extra,
    )
    try:
        approval_card.request_card(pending, context.approval_ttl_seconds / 3600)
    except approval_card.TooLargeToShow as exc:
        return f"Not sent: the message is too large to show in Slack in full ({exc}); nothing was asked or sent."
    return pending


def stamped_draft(
    context: AgentContext, mailbox: Mailbox, draft_id: str, current_id: str, follows: str | None = None
) -> PendingSend | str:
    """Stamp the draft for this request (drafts.update on its raw bytes), then describe
    exactly what Gmail now holds: that, and only that, is what drafts.send will send."""
    raw, thread_id = mailbox.draft_raw(draft_id)
    shown = draft_view(raw)
    if not (shown.to or shown.cc or shown.bcc):
        return "Not sent: the draft has no recipients. Add them in Gmail and ask again."
    mailbox.update_draft_raw(draft_id, stamp(raw, current_id), thread_id)
    raw, thread_id = mailbox.draft_raw(draft_id)
    shown = draft_view(raw)
    message = OutgoingMessage(
        to=shown.to,
        cc=shown.cc,
        bcc=shown.bcc,
        subject=shown.subject,
        body=shown.body,
        in_reply_to=shown.in_reply_to or None,
        references=None,
        thread_id=thread_id,
        message_id=shown.message_id,
    )
    return pending_for(
        context,
        "send_draft",
        current_id,
        message,
        message_hash=raw_hash(raw),
        draft_id=draft_id,
        has_html=shown.has_html,
        attachments=shown.attachments,
        follows=follows,
    )


def _follow_up(
    context: AgentContext, mailbox: Mailbox, previous: Any, answer: Any, current_id: str
) -> PendingSend | str:
    """The request that replaces an edited one, or a draft that changed in Gmail."""
    if previous.reason == "draft_changed":
        return stamped_draft(context, mailbox, str(previous.draft_id), current_id, follows="draft_changed")
    edited = answer.get("message") if isinstance(answer, dict) else None
    if not isinstance(edited, dict):
        return "Nothing was sent: the edited message was lost. Ask again to send it."
    try:
        message = build_message(
            sender=mailbox.address(),
            to=edited.get("to"),
            cc=edited.get("cc"),
            bcc=edited.get("bcc"),
            subject=str(edited.get("subject") or ""),
            body=str(edited.get("body") or ""),
        )
    except InvalidMessage as exc:
        return f"Not sent: the edited message is not valid ({exc})."
    threaded = dataclasses.replace(
        message,
        in_reply_to=edited.get("in_reply_to") or None,
        references=edited.get("references") or None,
        thread_id=edited.get("thread_id") or None,
    )
    return pending_for(context, "send_email", current_id, threaded, follows="edited")


def new_record(context: AgentContext, pending: PendingSend) -> ApprovalRecord:
    """The pending record of a request this tool run asks the owner to approve."""
    return ApprovalRecord(
        action_id=pending.action_id,
        kind=pending.kind,
        team_id=context.team_id,
        user_id=context.owner,
        conversation_id=context.conversation_id,
        channel_id=context.channel_id,
        gmail_address=context.email,
        message_hash=pending.message_hash,
        state=State.PENDING,
        created_at=time.time(),
        expires_at=pending.expires_at,
        draft_id=pending.draft_id,
    )
