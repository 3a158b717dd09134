"""SQS FIFO batch: run each queued Slack command once and answer in Slack. The
scheduled tick (EventBridge, template.yaml) ends approval requests that expired unpressed."""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING, Any

from mailroom.bootstrap import build_worker
from mailroom.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from mailroom.worker import Worker

_worker: Worker | None = None

# Init for a SnapStart snapshot: load the agent now, so that a restored worker answers
# its first `chat` without importing it. On-demand init stays light for `hello`.
if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
    from mailroom.agent.preload import preload_agent

    preload_agent()

try:  # Lambda's runtime hooks, present where SnapStart can restore this function
    from snapshot_restore_py import register_after_restore
except ImportError:  # pragma: no cover - outside Lambda
    register_after_restore = None

if register_after_restore is not None:
    # The snapshot holds no clients, secrets or connections (they are made on first
    # use); only a random state seeded at init must differ between restored copies.
    register_after_restore(random.seed)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext, worker: Worker | None = None) -> dict[str, Any]:
    global _worker
    if worker is None:
        worker = _worker = _worker or build_worker()
    if event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event":
        return worker.handle_schedule(context)
    return worker.handle_batch(event, context)
