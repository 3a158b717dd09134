"""The expiry sweep: a request nobody pressed ends as expired, and its card says so.

Run on a schedule (template.yaml, every 10 minutes), so a card loses its buttons at most
one interval after its expiry without waiting for a press. Each request found in the
sparse index of pending records is moved pending -> expired by a conditional write: a
press that decided it first wins and the sweep leaves it alone. Then its card is
rewritten: best effort, since the record is the truth and any later press on the card
rewrites it again and is told it expired.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mailroom.agent.approval_card import decided_card
from mailroom.approval_record import ApprovalRecord, ApprovalStore, State, StateConflict
from mailroom.errors import describe
from mailroom.observability import logger, metrics
from mailroom.ports import Chat

# Per run: Slack takes about 50 chat.update a minute per workspace; what is left waits
# for the next run (it stays in the index until moved).
MAX_PER_RUN = 200
# Stop starting new records this close to the invocation's end.
TIME_MARGIN_SECONDS = 15.0


class ExpirySweep:
    def __init__(
        self,
        store: ApprovalStore,
        chat: Chat,
        *,
        clock: Callable[[], float] = time.time,
        seconds_left: Callable[[], float] = lambda: 900.0,
        max_per_run: int = MAX_PER_RUN,
    ):
        self._store = store
        self._chat = chat
        self._clock = clock
        self._seconds_left = seconds_left
        self._max = max_per_run

    def run(self) -> int:
        """Expire every pending request past its expiry (up to the per-run bound); how many."""
        expired = 0
        for action_id in self._store.pending_expired(self._clock(), self._max):
            if self._seconds_left() < TIME_MARGIN_SECONDS:
                logger.warning("expiry sweep stopped for time; the next run goes on")
                break
            record = self._expire(action_id)
            if record is not None:
                expired += 1
                self._show(record)
        if expired:
            metrics.add_metric(name="ApprovalsExpired", unit="Count", value=expired)
        logger.info("expiry sweep done", extra={"expired": expired})
        return expired

    def _expire(self, action_id: str) -> ApprovalRecord | None:
        try:
            return self._store.move(
                action_id, State.EXPIRED, now=self._clock(), from_states=frozenset({State.PENDING}), past_expiry=True
            )
        except StateConflict:
            return None  # pressed, moved on or erased meanwhile: whoever won updates the card

    def _show(self, record: ApprovalRecord) -> None:
        if not record.card_ts:
            return  # the card was never posted (or not yet remembered): nothing to rewrite
        text, blocks = decided_card(record, None)
        try:
            self._chat.update(record.channel_id, record.card_ts, text, blocks=blocks)
        except Exception as exc:  # the record is the truth; a later press rewrites the card
            logger.warning("could not rewrite an expired card", extra=describe(exc))
