"""GET /auth/callback: Google's redirect after the user's consent."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from mailroom.http import HttpResponse
from mailroom.observability import logger, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    page = "<!doctype html><title>Mailroom</title><p>Linking Gmail is not available in this version yet.</p>"
    return HttpResponse(501, page, "text/html; charset=utf-8").to_api_gateway()
