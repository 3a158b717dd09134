"""Composition roots: build each function's object graph from its settings.

Handlers call these once per execution environment (lazily, on the first request) and
reuse the result while warm. Tests call them too, or build the objects themselves
with other adapters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailroom.secrets import SecretStore
from mailroom.settings import IngressSettings, WorkerSettings

if TYPE_CHECKING:
    from mailroom.ingress import Ingress
    from mailroom.worker import Worker


def build_ingress(settings: IngressSettings | None = None) -> Ingress:
    from mailroom.adapters.sqs_queue import SqsQueue
    from mailroom.ingress import Ingress

    settings = settings or IngressSettings.from_environment()
    return Ingress(settings, SecretStore(settings), SqsQueue(settings.queue_url))


def build_worker(settings: WorkerSettings | None = None) -> Worker:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from mailroom.adapters.slack_chat import SlackChat, make_web_client
    from mailroom.worker import CommandRouter, Worker

    settings = settings or WorkerSettings.from_environment()
    secrets = SecretStore(settings)
    chat = SlackChat(make_web_client(secrets.get("SLACK_BOT_TOKEN"), settings.slack_api_url))
    return Worker(
        chat,
        CommandRouter(chat),
        DynamoDBPersistenceLayer(table_name=settings.idempotency_table),
        idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
        max_receive_count=settings.queue_max_receive_count,
    )
