"""Load, the correctness half (the figures are `make load`): many conversations at
once through the local stack over HTTP, several ingress and worker environments;
nothing lost, nothing answered twice, each conversation in order, none processed
two messages at once. No wall-clock assertions."""

from __future__ import annotations

import pytest

from infra.load import check, run_load
from infra.local.stack import LocalStack, StackOptions

pytestmark = pytest.mark.e2e


def test_many_conversations_at_once_each_in_order_nothing_lost(tmp_path_factory: pytest.TempPathFactory):
    options = StackOptions(
        log_path=tmp_path_factory.mktemp("load") / "functions.log",
        retry_delay=1,
        name="load",
        concurrency={"IngressFunction": 2, "WorkerFunction": 2},
    )
    with LocalStack(options) as stack:
        result = run_load(stack, users=10, conversations=30, messages_per_conversation=3, senders=30)
    assert result.messages == 90
    assert check(result) == []
    assert len(result.order) == 30
    # Both worker environments took part: conversations really ran side by side.
    assert len(result.per_environment) == 2 and all(result.per_environment)
