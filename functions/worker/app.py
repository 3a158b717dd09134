"""SQS FIFO batch: run each queued Slack command once and answer in Slack."""

import random
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mailroom.bootstrap import build_worker
from mailroom.observability import logger, metrics, tracer
from mailroom.worker import Worker

_worker: Worker | None = None

try:  # Lambda's runtime hooks, present where SnapStart can restore this function
    from snapshot_restore_py import register_after_restore
except ImportError:  # pragma: no cover - outside Lambda
    register_after_restore = None

if register_after_restore is not None:
    # A snapshot is taken after init, which builds no clients and reads no secrets
    # (they are made on first use); only a random state seeded at init must differ
    # between restored copies.
    register_after_restore(random.seed)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext, worker: Worker | None = None) -> dict[str, Any]:
    global _worker
    if worker is None:
        worker = _worker = _worker or build_worker()
    return worker.handle_batch(event, context)
