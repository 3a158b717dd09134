"""POST /slack/events and /slack/interactions: verify, parse, queue, ack."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mailroom.bootstrap import build_ingress
from mailroom.ingress import Ingress
from mailroom.observability import logger, metrics, tracer

_ingress: Ingress | None = None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext, ingress: Ingress | None = None) -> dict[str, Any]:
    global _ingress
    if ingress is None:
        ingress = _ingress = _ingress or build_ingress()
    return ingress.handle_api_gateway(event)
