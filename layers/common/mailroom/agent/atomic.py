"""A graph run either saves all it did or nothing: a checkpointer that holds the run's
writes until the caller says the run finished.

LangGraph saves a failed run too: with `durability="exit"` its loop writes the last
checkpoint and the pending writes on the way out of an exception, so a model call
whose tool then raised stays in memory without its result, and every later request is
refused ("tool calls without responses"). Inside `atomic()`, `put` and `put_writes`
are kept in memory; leaving the block normally (the run ended or stopped at an
interrupt) stores them, pending writes first and the checkpoint last, so the checkpoint
is the commit point; leaving it by an exception drops them and the conversation stays
as it was before the run.

Everything else (reads, versions, serde) is the wrapped saver's; outside `atomic()`
writes go straight through.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.base import CheckpointTuple as CheckpointTuple


class _Held:
    """The writes held for the current run. Shared by any shallow copy LangGraph makes
    of the saver (it clones checkpointers to attach a serde allowlist)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = False
        self.writes: list[tuple[RunnableConfig, Sequence[tuple[str, Any]], str, str]] = []
        self.checkpoints: list[tuple[RunnableConfig, Checkpoint, CheckpointMetadata, ChannelVersions]] = []


class AtomicSaver(BaseCheckpointSaver[Any]):
    def __init__(self, inner: BaseCheckpointSaver[Any]):
        super().__init__(serde=inner.serde)
        self.inner = inner
        self._held = _Held()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        held = self._held
        with held.lock:
            if held.active:
                raise RuntimeError("atomic() does not nest")
            held.active, held.writes, held.checkpoints = True, [], []
        try:
            yield
        except BaseException:
            with held.lock:
                held.active, held.writes, held.checkpoints = False, [], []
            raise
        with held.lock:
            writes, checkpoints = held.writes, held.checkpoints
            held.active, held.writes, held.checkpoints = False, [], []
        for config, task_writes, task_id, task_path in writes:
            self.inner.put_writes(config, task_writes, task_id, task_path)
        for config, checkpoint, metadata, versions in checkpoints:
            self.inner.put(config, checkpoint, metadata, versions)

    # ------------------------------------------------------------------ writes, held

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        held = self._held
        with held.lock:
            if held.active:
                held.checkpoints.append((config, checkpoint, metadata, new_versions))
                configurable = config.get("configurable") or {}
                return {
                    "configurable": {
                        "thread_id": configurable.get("thread_id"),
                        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
                        "checkpoint_id": checkpoint["id"],
                    }
                }
        return self.inner.put(config, checkpoint, metadata, new_versions)

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        held = self._held
        with held.lock:
            if held.active:
                held.writes.append((config, list(writes), task_id, task_path))
                return
        self.inner.put_writes(config, writes, task_id, task_path)

    # ------------------------------------------------------------------ the rest, passed on

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.inner.get_tuple(config)

    def list(self, config: RunnableConfig | None, **kwargs: Any) -> Iterator[CheckpointTuple]:
        return self.inner.list(config, **kwargs)

    def delete_thread(self, thread_id: str) -> None:
        self.inner.delete_thread(thread_id)

    def get_next_version(self, current: Any, channel: None) -> Any:
        return self.inner.get_next_version(current, channel)

    def with_allowlist(self, extra_allowlist: Any) -> AtomicSaver:
        inner = self.inner.with_allowlist(extra_allowlist)
        if inner is self.inner:
            return self
        clone = copy.copy(self)  # shares what is held: the graph may hold the clone
        clone.inner, clone.serde = inner, inner.serde
        return clone
