"""POST /slack/events and /slack/interactions: verify, parse, queue, ack.

No Powertools Tracer here: the X-Ray SDK would be most of this function's cold start,
and Lambda's active tracing already records the invocation and hands the trace on to
SQS (see mailroom/observability.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailroom.bootstrap import build_ingress
from mailroom.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from mailroom.ingress import Ingress

_ingress: Ingress | None = None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext, ingress: Ingress | None = None) -> dict[str, Any]:
    global _ingress
    if ingress is None:
        ingress = _ingress = _ingress or build_ingress()
    return ingress.handle_api_gateway(event)
