"""Feedback on answers: a 👍 or 👎 press on the buttons under an answer.

One small DynamoDB item per (team, user, answer) in the usage table: who pressed, in
which conversation, on which answer (the turn's Slack event id), up or down, when.
The latest press wins (the item is overwritten). No mail content, no answer text.
Each press is also counted in metrics (AnswerFeedbackUp / AnswerFeedbackDown), so a
deployer sees answer quality without reading anything of the user's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from mailroom.adapters.aws import LazyClient, quick_config
from mailroom.commands import Command
from mailroom.observability import logger, metrics

Vote = Literal["up", "down"]
# Kept for a quarter: long enough to read trends, short enough not to pile up.
FEEDBACK_TTL_SECONDS = 90 * 24 * 3600


@dataclass(frozen=True)
class Feedback:
    team_id: str
    user_id: str
    conversation_id: str
    answer_id: str
    vote: Vote


def parse_feedback(command: Command) -> Feedback | None:
    """The press's vote and answer from the button's value (`up:<answer id>`)."""
    vote, _, answer_id = (command.action_value or "").partition(":")
    if vote not in ("up", "down") or not answer_id:
        return None
    return Feedback(command.team_id, command.user_id, command.conversation_id, answer_id, vote)  # type: ignore[arg-type]


class FeedbackRecords:
    def __init__(self, table_name: str, client: Any | None = None, clock: Callable[[], float] = time.time):
        self._table_name = table_name
        self._dynamodb = LazyClient("dynamodb", client, config=quick_config())
        self._clock = clock

    def record(self, feedback: Feedback) -> None:
        now = int(self._clock())
        # An update, not a put: the worker's role has no PutItem on the usage table.
        self._dynamodb().update_item(
            TableName=self._table_name,
            Key={"pk": {"S": f"feedback#{feedback.team_id}:{feedback.user_id}:{feedback.answer_id}"}},
            UpdateExpression=(
                "SET team_id = :team, user_id = :user, conversation_id = :conversation, answer_id = :answer, "
                "vote = :vote, pressed_at = :now, expires_at = :expires"
            ),
            ExpressionAttributeValues={
                ":team": {"S": feedback.team_id},
                ":user": {"S": feedback.user_id},
                ":conversation": {"S": feedback.conversation_id},
                ":answer": {"S": feedback.answer_id},
                ":vote": {"S": feedback.vote},
                ":now": {"N": str(now)},
                ":expires": {"N": str(now + FEEDBACK_TTL_SECONDS)},
            },
        )

    def get(self, team_id: str, user_id: str, answer_id: str) -> dict[str, str] | None:
        item = (
            self._dynamodb()
            .get_item(
                TableName=self._table_name,
                Key={"pk": {"S": f"feedback#{team_id}:{user_id}:{answer_id}"}},
                ConsistentRead=True,
            )
            .get("Item")
        )
        return {k: next(iter(v.values())) for k, v in item.items()} if item else None


def take_feedback(records: FeedbackRecords, command: Command) -> None:
    feedback = parse_feedback(command)
    if feedback is None:
        logger.warning("feedback press without a vote")
        return
    records.record(feedback)
    metrics.add_metric(name=f"AnswerFeedback{feedback.vote.title()}", unit="Count", value=1)
