"""The time a turn may spend, and each outgoing call's share of it.

A turn has a deadline (a `time.monotonic()` value): the invocation's end minus a margin
kept for saving and answering. Every model and Gmail call gets a timeout that ends by
the deadline (and no longer than the call's own cap), and none starts with less than
`MIN_CALL_SECONDS` left: the turn stops with `OutOfTime` instead, in time to say so.
"""

from __future__ import annotations

import time

from mailroom.errors import OutOfTime

# Below this, a call could not do useful work before the deadline: do not start it.
MIN_CALL_SECONDS = 2.0
# One model request (the client's own retries are off; the agent retries within budget).
MODEL_CALL_SECONDS = 30.0
MODEL_ATTEMPTS = 3
# One Gmail request's socket timeout; googleapiclient's retries each get their own,
# so none outlasts the deadline.
GMAIL_CALL_SECONDS = 20.0


def seconds_left(deadline: float) -> float:
    return deadline - time.monotonic()


def call_timeout(deadline: float, cap: float) -> float:
    """The timeout for a call starting now: at most `cap`, ending by the deadline."""
    left = seconds_left(deadline)
    if left < MIN_CALL_SECONDS:
        raise OutOfTime("the turn's time budget is spent")
    return min(cap, left)
