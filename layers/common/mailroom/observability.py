"""The one place that creates the Powertools Logger, Tracer and Metrics.

Every function imports these instances, so log keys, the service name and the metric
namespace stay the same across ingress, worker and callback.

The Tracer is made on first use (`from mailroom.observability import tracer`): it loads
the X-Ray SDK, two thirds of the ingress's cold start, and the ingress does without it.
Lambda's active tracing still records the ingress's segment, and botocore passes the
trace header (`_X_AMZN_TRACE_ID`) on with each call, so SQS carries the trace on to the
worker, where the Tracer adds DynamoDB, KMS and HTTP subsegments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.tracing import Tracer

    tracer: Tracer

logger = Logger(service="mailroom")
metrics = Metrics(namespace="Mailroom", service="mailroom")


def __getattr__(name: str) -> Any:
    if name == "tracer":
        from aws_lambda_powertools.tracing import Tracer

        globals()["tracer"] = made = Tracer(service="mailroom")
        return made
    raise AttributeError(name)
