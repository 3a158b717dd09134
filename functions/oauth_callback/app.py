"""GET /auth/callback: Google's redirect after the user's consent."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mailroom.bootstrap import build_oauth_callback
from mailroom.http import HttpRequest
from mailroom.oauth_callback import OAuthCallback
from mailroom.observability import logger, metrics, tracer

_callback: OAuthCallback | None = None


@logger.inject_lambda_context(clear_state=True, correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext, callback: OAuthCallback | None = None) -> dict[str, Any]:
    global _callback
    if callback is None:
        callback = _callback = _callback or build_oauth_callback()
    return callback.handle(HttpRequest.from_api_gateway(event), reference=context.aws_request_id).to_api_gateway()
