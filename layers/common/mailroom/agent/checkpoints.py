"""The DynamoDB checkpointer, reading each checkpoint once per turn.

A turn first looks at the conversation's state (is a send waiting for a press?) and
then runs the graph, which loads the same checkpoint again: three DynamoDB calls and
~30 KB read twice. Within `turn()`, the latest checkpoint read is reused until the
next write; outside it, every read goes to DynamoDB as usual.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple
from langgraph_checkpoint_aws import DynamoDBSaver


class TurnCachedSaver(DynamoDBSaver):
    _turn_cache: dict[tuple[str, str, str], CheckpointTuple | None] | None = None

    @contextmanager
    def turn(self) -> Iterator[None]:
        self._turn_cache = {}
        try:
            yield
        finally:
            self._turn_cache = None

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        cache = self._turn_cache
        configurable = config.get("configurable") or {}
        key = (
            str(configurable.get("thread_id")),
            str(configurable.get("checkpoint_ns", "")),
            str(configurable.get("checkpoint_id", "")),
        )
        if cache is not None and key in cache:
            return copy.deepcopy(cache[key])  # callers own what they are given
        found = super().get_tuple(config)
        if cache is not None:
            cache[key] = copy.deepcopy(found)
        return found

    def put(self, *args: Any, **kwargs: Any) -> RunnableConfig:
        self._forget()
        return super().put(*args, **kwargs)

    def put_writes(self, *args: Any, **kwargs: Any) -> None:
        self._forget()
        super().put_writes(*args, **kwargs)

    def delete_thread(self, *args: Any, **kwargs: Any) -> None:
        self._forget()
        super().delete_thread(*args, **kwargs)

    def _forget(self) -> None:
        if self._turn_cache is not None:
            self._turn_cache.clear()
