"""The agent's tools to read attachments, list drafts, and tidy the inbox (archive, read,
star, labels, Trash) with undo.

A change is remembered for "undo" in its tool message's artifact: the message ids and
which of the touched labels each had before, kept in the (encrypted) checkpoint, never
sent to the model. A change to more than `DIRECT_CHANGE_LIMIT` messages, and anything
that moves mail to Trash, waits for the owner's Approve press like a send does (same
approval records and desk; the record holds ids and a hash, no mail content). Nothing
here ever deletes a message.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, InjectedToolCallId, StructuredTool
from langgraph.prebuilt import InjectedState
from langgraph.types import interrupt
from pydantic import Field

from mailroom.agent import send_tools
from mailroom.agent.context import AgentContext
from mailroom.agent.tools import _run, _untrusted
from mailroom.approval_record import PRESS_FAILED, State, StateConflict
from mailroom.approvals import PendingSend
from mailroom.errors import ToolInputError
from mailroom.mail.attachment_text import MAX_ATTACHMENT_BYTES, describe, extract, kind_of
from mailroom.mail.decode import body_window
from mailroom.ports import Mailbox
from mailroom.timeouts import seconds_left

ATTACHMENT_BUDGET = 8000  # characters of attachment text per call; the rest by offset
DIRECT_CHANGE_LIMIT = 5  # more messages than this wait for an Approve press
MAX_CHANGE = 100  # messages one change may touch (a search is capped here)
CHANGE_KIND = "change_emails"
_ALREADY_DONE = "Already done."
_BINS = {"TRASH", "SPAM"}  # labels that take mail out of sight, to be deleted by Gmail in 30 days

Action = Literal[
    "archive", "move_to_inbox", "mark_read", "mark_unread", "star", "unstar", "label", "unlabel", "trash", "untrash"
]
# action -> (label ids to add, label ids to remove); "label"/"unlabel" use the named label.
_EFFECTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "archive": ((), ("INBOX",)),
    "move_to_inbox": (("INBOX",), ()),
    "mark_read": ((), ("UNREAD",)),
    "mark_unread": (("UNREAD",), ()),
    "star": (("STARRED",), ()),
    "unstar": ((), ("STARRED",)),
    "trash": (("TRASH",), ()),
    "untrash": ((), ("TRASH",)),
}
_DONE = {
    "archive": "Archived",
    "move_to_inbox": "Moved to the inbox",
    "mark_read": "Marked read",
    "mark_unread": "Marked unread",
    "star": "Starred",
    "unstar": "Unstarred",
    "label": "Labelled",
    "unlabel": "Unlabelled",
    "trash": "Moved to Trash (not deleted; Gmail empties Trash after 30 days)",
    "untrash": "Taken out of Trash",
    "undo": "Undone, back into Trash or Spam",  # an undo's card (see undo_last_change)
}


def inbox_tools() -> list[BaseTool]:
    def read_attachment(
        message_id: Annotated[str, Field(description="The message id")],
        attachment: Annotated[int, Field(description="The attachment's number in read_email's list", ge=1)] = 1,
        offset: Annotated[int, Field(description="Character to start from, to read on in a long one", ge=0)] = 0,
    ) -> str:
        """Read the text of an email's attachment: PDF, Word (.docx), calendar (.ics), HTML, CSV or
        plain text. Images and other files are described, not shown. A long text comes in parts:
        the answer says which characters it holds and the offset to read on with."""
        context, mailbox = _run()
        message = mailbox.read(message_id)
        if not 1 <= attachment <= len(message.attachments):
            return (
                f"Message {message_id} has {len(message.attachments)} attachment(s); there is no number {attachment}."
            )
        found = message.attachments[attachment - 1]
        # The file's name and type are the sender's words too: they stay inside the fence.
        name = found.filename
        head = f"Attachment [{attachment}] of message {message_id}"
        if kind_of(found.mime_type, name) == "binary":
            return f"{head}:\n{_untrusted(describe(found.mime_type, name, found.size))}"
        if found.size > MAX_ATTACHMENT_BYTES:
            limit = MAX_ATTACHMENT_BYTES // (1024 * 1024)
            too_large = f"{name} is too large to read here ({found.size // (1024 * 1024)} MB; the limit is {limit} MB)."
            return f"{head}:\n{_untrusted(too_large)}"
        if found.data is not None:
            data = found.data
        elif found.attachment_id:
            data = mailbox.attachment(message_id, found.attachment_id)
        else:
            return f"{head}:\n{_untrusted(f'{name} has no content Gmail can return.')}"
        # Not past the turn's deadline: the answer still needs a model call after this.
        extracted = extract(data, found.mime_type, name, seconds=max(1.0, seconds_left(context.deadline)))
        if not extracted.text:
            return f"{head}:\n{_untrusted(extracted.note or f'{name} has no text.')}"
        text, note = body_window(extracted.text, ATTACHMENT_BUDGET, offset, reader="read_attachment")
        notes = "\n".join(n for n in (note, f"[{extracted.note}]" if extracted.note else "") if n)
        shown = f"{name} ({found.mime_type})\n{text}"
        return f"{head}:\n{_untrusted(shown)}" + (f"\n{notes}" if notes else "")

    def list_drafts(
        query: Annotated[
            str, Field(description="Gmail search within drafts, e.g. 'offsite' or 'to:bob'; empty for all")
        ] = "",
        max_results: Annotated[int, Field(description="How many drafts at most (1-25)", ge=1, le=25)] = 10,
    ) -> str:
        """List the user's Gmail drafts (draft_id, to, subject, date, snippet), newest first. To send one,
        call send_draft with its draft_id (the user approves in Slack first)."""
        _, mailbox = _run()
        drafts = mailbox.list_drafts(query, min(max(max_results, 1), 25))
        if not drafts:
            return f"No drafts match {query!r}." if query else "There are no drafts."
        return _untrusted(json.dumps(drafts, ensure_ascii=False, indent=1))

    def change_emails(
        action: Annotated[Action, Field(description="What to do to the messages")],
        tool_call_id: Annotated[str, InjectedToolCallId],
        message_ids: Annotated[list[str] | None, Field(description="Message ids to change")] = None,
        query: Annotated[str, Field(description="Or a Gmail search; every match is changed")] = "",
        label: Annotated[str, Field(description="For label/unlabel: the label's name (created if new)")] = "",
    ) -> tuple[str, dict[str, Any]]:
        """Tidy the inbox: archive, move_to_inbox, mark_read, mark_unread, star, unstar, label, unlabel,
        trash or untrash messages, given by id or by a search. More than 5 messages, or Trash or Spam, wait for
        the user's Approve in Slack. Nothing is ever deleted. Every change can be undone with undo_last_change."""
        context, mailbox = _run()
        targets = _targets(mailbox, message_ids or [], query)
        if isinstance(targets, str):
            return targets, {}
        ids, more = targets
        effect = _effect(mailbox, action, label)
        if isinstance(effect, str):
            return effect, {}
        add, remove = effect
        action_id = send_tools.action_id(context, tool_call_id)
        to_bin = bool(_BINS & set(add))  # "trash", or the Trash or Spam label put on by name
        asks = len(ids) > DIRECT_CHANGE_LIMIT or to_bin or _asked(context, action_id)
        approval = action_id if asks else None
        if approval is not None:
            refused = _approved(context, mailbox, approval, action, label, ids, more)
            if refused == _ALREADY_DONE:
                # Applied by an earlier run of this call (the press came again) whose note of
                # the labels before is lost: undo must stop here, not reverse an older change.
                return refused, {"change": {"add": list(add), "remove": list(remove), "before": None, "ids": ids}}
            if refused is not None:
                return refused, {}
        before = mailbox.label_ids_of(ids)
        _apply(context, mailbox, approval, [(ids, add, remove)])
        touched = set(add) | set(remove)
        undo = {i: sorted(set(labels) & touched) for i, labels in before.items()}
        what = f"{_DONE[action]}{f' {label!r}' if label else ''}"
        count = f"{len(ids)} message{'s' * (len(ids) != 1)}"
        if more:  # said in the first sentence, so the user hears that the rest are untouched
            count += (
                f" (the newest {len(ids)} only; more may match and were not changed: to reach them, ask with a "
                "search that leaves these out)"
            )
        text = f"{what}: {count}. The user can say 'undo' to reverse it."
        return text, {"change": {"add": list(add), "remove": list(remove), "before": undo}}

    def undo_last_change(
        state: Annotated[dict[str, Any], InjectedState], tool_call_id: Annotated[str, InjectedToolCallId]
    ) -> tuple[str, dict[str, Any]]:
        """Undo the most recent change_emails in this conversation (not yet undone): labels, read state,
        stars, archive and Trash go back to what they were. Putting mail back in Trash or Spam waits
        for the user's Approve in Slack."""
        context, mailbox = _run()
        found = _last_change(state.get("messages") or [])
        if found is None:
            return "There is no change to undo in this conversation.", {}
        call_id, change = found
        # Not marked undone when it cannot be exact: a second "undo" must stop here too,
        # not reverse an older, unrelated change.
        if change["before"] is None:
            why = "it was applied by an earlier attempt of the same request, and the labels before were not kept"
            return _not_exactly(why, change["ids"]), {}
        reversal = _reversal(change)
        if not reversal:  # e.g. a re-run of a change an earlier attempt had applied
            why = "its messages already looked like this when it was noted (an earlier attempt may have applied it)"
            return _not_exactly(why, sorted(change["before"])), {}
        approval = None
        if any(_BINS & set(add) for add, _ in reversal):  # back into Trash or Spam: a press first
            approval = send_tools.action_id(context, tool_call_id)
            ids = sorted({i for group in reversal.values() for i in group})
            refused = _approved(context, mailbox, approval, "undo", "", ids)
            if refused is not None:
                return refused, {"undid": call_id} if refused == _ALREADY_DONE else {}
        _apply(context, mailbox, approval, [(ids, add, remove) for (add, remove), ids in reversal.items()], undo=True)
        count = sum(len(group) for group in reversal.values())
        back = "1 message is" if count == 1 else f"{count} messages are"
        return f"Undone: {back} back as they were.", {"undid": call_id}

    return [
        StructuredTool.from_function(read_attachment),
        StructuredTool.from_function(list_drafts),
        StructuredTool.from_function(change_emails, response_format="content_and_artifact"),
        StructuredTool.from_function(undo_last_change, response_format="content_and_artifact"),
    ]


def _not_exactly(why: str, ids: Sequence[str]) -> str:
    return f"The last change cannot be undone exactly: {why}. Nothing was changed. Its messages: {', '.join(ids)}."


def _apply(
    context: AgentContext,
    mailbox: Mailbox,
    approval: str | None,
    changes: Sequence[tuple[Sequence[str], Sequence[str], Sequence[str]]],
    *,
    undo: bool = False,
) -> None:
    """Apply (ids, labels to add, labels to remove) changes. An approved one is marked
    under way first, done after, and failed if Gmail refuses it, so its card never
    stays at "applying the change…" nor says "not changed" after Gmail was asked."""
    if approval is not None:
        _begin(context, approval)
    try:
        for ids, add, remove in changes:
            mailbox.modify(list(ids), list(add), list(remove))
    except ToolInputError:
        if approval is not None:
            _fail(context, approval, "Gmail refused it")
        raise
    if approval is not None:
        finish_change(context, approval, undo=undo)


def _targets(mailbox: Mailbox, message_ids: Sequence[str], query: str) -> tuple[list[str], bool] | str:
    """The messages to change (at most MAX_CHANGE), and whether more may be named or match."""
    ids = [i.strip() for i in message_ids if i and i.strip()]
    searched = False
    if not ids and query:
        # No more than MAX_CHANGE: a search fetches its results in one Gmail batch, which
        # takes 100 calls at most, so a full page is taken to mean more may match.
        ids, searched = [str(found["id"]) for found in mailbox.search(query, MAX_CHANGE)], True
        if not ids:
            return f"No messages match {query!r}; nothing was changed."
    if not ids:
        return "Say which messages: give message ids or a search query. Nothing was changed."
    unique = list(dict.fromkeys(ids))
    return unique[:MAX_CHANGE], len(unique) > MAX_CHANGE or (searched and len(unique) == MAX_CHANGE)


def _effect(mailbox: Mailbox, action: str, label: str) -> tuple[tuple[str, ...], tuple[str, ...]] | str:
    if action in _EFFECTS:
        return _EFFECTS[action]
    if action not in ("label", "unlabel"):
        return f"Unknown action {action!r}; nothing was changed."
    name = label.strip()
    if not name:
        return "Which label? Nothing was changed."
    known = {n.lower(): i for n, i in mailbox.labels().items()}
    label_id = known.get(name.lower())
    if label_id is None:
        if action == "unlabel":
            return f"There is no label {name!r}; nothing was changed."
        label_id = mailbox.create_label(name)
    return ((label_id,), ()) if action == "label" else ((), (label_id,))


def _reversal(change: dict[str, Any]) -> dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]]:
    """Per message, the labels to put back and take off so it is as before; grouped so
    that messages needing the same reversal take one call."""
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for message_id, had in change["before"].items():
        put_back = tuple(sorted(set(change["remove"]) & set(had)))
        take_off = tuple(sorted(set(change["add"]) - set(had)))
        if put_back or take_off:
            groups.setdefault((put_back, take_off), []).append(message_id)
    return groups


def _last_change(messages: Sequence[Any]) -> tuple[str, dict[str, Any]] | None:
    undone = set()
    for message in reversed(messages):
        if not isinstance(message, ToolMessage) or not isinstance(message.artifact, dict):
            continue
        if "undid" in message.artifact:
            undone.add(message.artifact["undid"])
        elif "change" in message.artifact and message.tool_call_id not in undone:
            return message.tool_call_id, message.artifact["change"]
    return None


# -- approval for bulk changes and Trash ------------------------------------------------


def _asked(context: AgentContext, action_id: str) -> bool:
    """Whether this call already asked for a press: its re-run (after the press, or after
    the user moved on) is decided by that record, even if fewer messages match by now."""
    return context.approvals is not None and context.approvals.get(action_id) is not None


def _approved(
    context: AgentContext, mailbox: Mailbox, action_id: str, action: str, label: str, ids: list[str], more: bool = False
) -> str | None:
    """Ask the owner to approve the change (a card listing it) and wait; None once approved
    (the caller then applies it), else why nothing changed."""
    store = context.approvals
    if store is None:
        return "This change needs the user's approval, which is not available here; nothing was changed."
    spec_hash = hashlib.sha256(json.dumps([action, label, ids]).encode()).hexdigest()
    record = store.get(action_id)
    payload: dict[str, Any] = {"action_id": action_id}
    if record is None:
        pending = _pending_change(context, mailbox, action_id, action, label, ids, spec_hash, more)
        record = store.create(send_tools.new_record(context, pending))
        payload = pending.to_dict()
    interrupt(payload)
    record = store.get(action_id) or record
    now = time.time()
    try:
        if record.state == State.PENDING:
            to = State.EXPIRED if record.expired_at(now) else State.SUPERSEDED
            record = store.move(action_id, to, now=now, from_states=frozenset({State.PENDING}), reason="moved_on")
            context.settled(record)
        elif record.state in (State.APPROVED, State.SENDING):
            if record.message_hash != spec_hash:
                _fail(context, action_id, "the messages it named changed before it could be applied; ask again")
                return "Nothing was changed: the messages matching it changed since the card was shown."
            return None
    except StateConflict as conflict:
        record = conflict.current or record
        if record.state in (State.APPROVED, State.SENDING):
            return None
    if record.state == State.CANCELLED and record.reason == PRESS_FAILED:
        return "Nothing was changed: the user's Approve could not be completed and they were told."
    texts = {
        State.CANCELLED: "Nothing was changed: the user pressed Cancel.",
        State.EXPIRED: "Nothing was changed: the approval request expired.",
        State.SUPERSEDED: "Nothing was changed: the user moved on without approving.",
        State.SENT: _ALREADY_DONE,
    }
    return texts.get(record.state, "Nothing was changed.")


def _begin(context: AgentContext, action_id: str) -> None:
    """Mark an approved change as under way before Gmail is asked: a failure from here on
    cannot tell whether it was applied, so it must not be ended as "not changed"."""
    store = context.approvals
    if store is None:
        return
    with contextlib.suppress(StateConflict):  # already under way (a re-run), or decided otherwise
        store.move(action_id, State.SENDING, now=time.time(), from_states=frozenset({State.APPROVED}))


def finish_change(context: AgentContext, action_id: str, undo: bool = False) -> None:
    """Mark an approved change done on its record and card (after it was applied); an
    undo's card does not offer "undo" (undos are not undone)."""
    store = context.approvals
    record = store.get(action_id) if store is not None else None
    if store is None or record is None or record.kind != CHANGE_KIND:
        return
    now = time.time()
    try:
        if record.state == State.APPROVED:
            record = store.move(action_id, State.SENDING, now=now, from_states=frozenset({State.APPROVED}))
        if record.state == State.SENDING:
            reason = "undo" if undo else None
            record = store.move(action_id, State.SENT, now=now, from_states=frozenset({State.SENDING}), reason=reason)
    except StateConflict:
        return
    context.settled(record)


def _fail(context: AgentContext, action_id: str, reason: str) -> None:
    """End an approved change that was not applied, on its record and card."""
    store = context.approvals
    if store is None:
        return
    try:
        record = store.move(
            action_id,
            State.FAILED,
            now=time.time(),
            from_states=frozenset({State.APPROVED, State.SENDING}),
            reason=reason,
        )
    except StateConflict:
        return
    context.settled(record)


def _pending_change(
    context: AgentContext,
    mailbox: Mailbox,
    action_id: str,
    action: str,
    label: str,
    ids: list[str],
    spec: str,
    more: bool = False,
) -> PendingSend:
    """The card's content: what will change, and on which messages (sender and subject)."""
    what = f"{_DONE[action]}{f' {label!r}' if label else ''}".split(" (")[0]
    # Each line cut short: 100 whole subjects (any length a sender likes) could need more
    # Slack blocks than one card holds.
    lines = [
        f"\u2022 {_short(s['from'], 80)} \u2014 {_short(s['subject'] or '(no subject)', 120)} ({_short(s['date'], 40)})"
        for s in mailbox.summaries(ids)
    ]
    if more:
        lines.append(f"Only these {len(ids)} change; more may match (ask with a search that leaves these out).")
    return PendingSend(
        action_id=action_id,
        kind="change_emails",
        owner=context.owner,
        from_=context.email,
        to=(),
        cc=(),
        bcc=(),
        subject=f"{what}: {len(ids)} message{'s' * (len(ids) != 1)}",
        body="\n".join(lines),
        message_hash=spec,
        expires_at=time.time() + context.approval_ttl_seconds,
        follows="undo" if action == "undo" else None,
    )


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"
