"""Fire a function's `Schedule` events as EventBridge does: the same event shape
(events/worker/scheduled.json), at the template's rate, one invocation at a time.
`fire()` runs one tick now (tests, and `make dev` users who do not want to wait)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from infra.local.functions import LocalFunction
from infra.local.template import ScheduleSource

log = logging.getLogger("mailroom.local.schedule")


def scheduled_event(rule_name: str, when: float | None = None, event_id: str | None = None) -> dict[str, Any]:
    """The event an EventBridge rule's `rate(...)` schedule sends its target."""
    at = datetime.fromtimestamp(time.time() if when is None else when, UTC)
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{rule_name}"],
        "detail": {},
    }


class Schedule:
    def __init__(self, source: ScheduleSource, function: LocalFunction):
        self.source = source
        self._function = function
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"Schedule-{source.name}", daemon=True)

    def start(self) -> Schedule:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def fire(self) -> Any:
        """One tick now; the function's result (an invocation error is raised)."""
        return self._function.invoke(scheduled_event(f"{self.source.function}{self.source.name}"))

    def _run(self) -> None:
        while not self._stopping.wait(self.source.seconds):
            try:
                self.fire()
            except Exception:
                log.exception("scheduled invocation failed")  # EventBridge would retry; the next tick does
