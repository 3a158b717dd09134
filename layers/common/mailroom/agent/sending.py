"""Carry out an approved send exactly once, as the approval record allows.

Runs outside the graph, in the press's own delivery: the record, not a LangGraph resume
value, decides. Each delivery of the approving press makes at most one attempt
(`begin_attempt`: approved|sending -> sending, attempts + 1, only for the hash shown and
before the expiry). Before sending it looks the message up in Gmail by its deterministic
Message-ID (then by its X-Mailroom-Action header), so an attempt whose answer was lost (a
timeout, a reset, a 5xx, a crash) is found instead of repeated. Gmail's answer lost on
an attempt is a TransientError: SQS redelivers the press and the next delivery settles
it. Once the attempts are used up the record fails, the user is told, and nothing is
ever sent later.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mailroom.approval_record import ApprovalRecord, ApprovalStore, State, StateConflict
from mailroom.approvals import PendingSend, message_hash
from mailroom.errors import ToolInputError, TransientError
from mailroom.mail.compose import deterministic_message_id
from mailroom.mail.draft import raw_hash
from mailroom.observability import logger, metrics
from mailroom.ports import Mailbox

Step = Callable[[str], None]


def no_step(name: str) -> None:
    """Tests replace this with a hook that crashes the worker at a step boundary."""


class ApprovedSend:
    def __init__(
        self,
        store: ApprovalStore,
        mailbox: Mailbox,
        *,
        max_attempts: int,
        clock: Callable[[], float] = time.time,
        step: Step = no_step,
    ):
        self._store = store
        self._mailbox = mailbox
        self._max_attempts = max_attempts
        self._clock = clock
        self._step = step

    def draft_changed(self, record: ApprovalRecord) -> str | None:
        """Why the draft in Gmail is no longer the one the card showed ("draft_changed", or
        "draft_gone": deleted or sent from Gmail meanwhile), or None if it still is."""
        assert record.draft_id
        try:
            raw, _ = self._mailbox.draft_raw(record.draft_id)
        except ToolInputError:
            return "draft_gone"
        return "draft_changed" if raw_hash(raw) != record.message_hash else None

    def run(self, record: ApprovalRecord, pending: PendingSend | None) -> ApprovalRecord:
        """Settle an approved request: sent (once) or failed with a reason. Raises
        TransientError when Gmail's answer is unknown and a redelivery should settle it."""
        try:
            record = self._store.begin_attempt(
                record.action_id,
                now=self._clock(),
                message_hash=record.message_hash,
                max_attempts=self._max_attempts,
            )
        except StateConflict as conflict:
            current = conflict.current
            if current is None or current.terminal:
                return current or record
            return self._give_up(current, pending, self._why_not(current))
        self._step("attempt_begun")
        if pending is None:
            return self._give_up(record, pending, "the request is no longer open in this conversation")
        shown = pending.message_hash == record.message_hash
        if not shown or (record.kind == "send_email" and message_hash(pending.outgoing()) != record.message_hash):
            return self._give_up(record, pending, "the message is not the one you were shown")
        existing = self._find(record, pending)
        if existing is not None:
            logger.info("send already done, not repeated")
            return self._sent(record, existing)
        self._step("looked_up")
        try:
            gmail_id = self._send(record, pending)
        except TransientError:
            if record.attempts >= self._max_attempts:
                return self._give_up(record, pending, f"Gmail did not accept it after {record.attempts} tries")
            raise
        except ToolInputError as exc:
            return self._move(record, State.FAILED, reason=f"Gmail refused it ({exc})")
        if gmail_id is None:
            return self._move(record, State.FAILED, reason="the draft changed in Gmail after you approved it")
        metrics.add_metric(name="EmailsSent", unit="Count", value=1)
        self._step("sent")
        return self._sent(record, gmail_id)

    def _send(self, record: ApprovalRecord, pending: PendingSend) -> str | None:
        if record.kind == "send_draft":
            assert record.draft_id
            raw, _ = self._mailbox.draft_raw(record.draft_id)
            if raw_hash(raw) != record.message_hash:
                return None
            self._step("draft_checked")
            return self._mailbox.send_draft(record.draft_id)
        return str(self._mailbox.send(pending.outgoing())["id"])

    def _find(self, record: ApprovalRecord, pending: PendingSend | None) -> str | None:
        recipients = (pending.to + pending.cc + pending.bcc) if pending else ()
        return self._mailbox.find_sent(
            deterministic_message_id(record.action_id),
            record.action_id,
            recipients[0] if recipients else None,
            pending.subject if pending else "",
        )

    def _why_not(self, record: ApprovalRecord) -> str:
        if record.reason:  # its tries were stopped (ApprovalDesk.abandon)
            return record.reason
        if record.expired_at(self._clock()):
            return "the request expired before Gmail confirmed the send"
        if record.past_send_window(self._clock()):
            return "it was approved too long ago to be sent now; ask again to send it"
        if record.attempts >= self._max_attempts:
            return f"Gmail did not accept it after {record.attempts} tries"
        return "the message is not the one you were shown"

    def end(self, record: ApprovalRecord, reason: str) -> ApprovalRecord:
        """End a request that must not be attempted at all (no lookup, no send)."""
        if record.state == State.APPROVED and record.expired_at(self._clock()):
            return self._move(record, State.EXPIRED, reason=reason)
        return self._move(record, State.FAILED, reason=reason)

    def _give_up(self, record: ApprovalRecord, pending: PendingSend | None, reason: str) -> ApprovalRecord:
        """End a request that may not be attempted again: sent if an earlier attempt got
        through after all, otherwise expired (never tried) or failed."""
        if record.state == State.SENDING:
            existing = self._find(record, pending)
            if existing is not None:
                return self._sent(record, existing)
        if record.state == State.APPROVED and record.expired_at(self._clock()):
            return self._move(record, State.EXPIRED, reason=reason)
        return self._move(record, State.FAILED, reason=reason)

    def _sent(self, record: ApprovalRecord, gmail_id: str) -> ApprovalRecord:
        return self._move(record, State.SENT, gmail_id=gmail_id)

    def _move(
        self, record: ApprovalRecord, to: State, *, gmail_id: str | None = None, reason: str | None = None
    ) -> ApprovalRecord:
        try:
            since = frozenset({record.state})
            return self._store.move(
                record.action_id, to, now=self._clock(), from_states=since, gmail_id=gmail_id, reason=reason
            )
        except StateConflict as conflict:
            # Another delivery settled it first: its outcome stands.
            return conflict.current or record
