"""The one place that creates the Powertools Logger, Tracer and Metrics.

Every function imports these instances, so log keys, the service name and the metric
namespace stay the same across ingress, worker and callback.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="mailroom")
tracer = Tracer(service="mailroom")
metrics = Metrics(namespace="Mailroom", service="mailroom")
