"""Run each function of the template as Lambda would: its own process and environment.

A `LocalFunction` keeps one warm child process (see lambda_child.py) and sends it one
invocation at a time. Like Lambda it enforces the function's timeout (the process is
killed and the next call starts cold) and reports an unhandled exception as an
invocation error rather than a result.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from infra.local.template import FunctionSpec

CHILD = Path(__file__).with_name("lambda_child.py")


class InvocationError(RuntimeError):
    """The function raised, timed out or crashed (Lambda's "Unhandled" error)."""

    def __init__(self, error_type: str, message: str):
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type


class LocalFunction:
    def __init__(
        self,
        spec: FunctionSpec,
        environment: Mapping[str, str],
        layer_dirs: list[Path],
        log: IO[str] | None = None,
    ):
        self.spec = spec
        self.name = spec.logical_id
        self._environment = dict(environment)
        self._layer_dirs = layer_dirs
        self._log = log
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self.cold_starts = 0
        self.kills = 0
        self.invocations = 0
        self.last_init_ms = 0.0

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:  # one execution environment serves one request at a time
            self.invocations += 1
            process = self._process or self._start()
            deadline = time.time() + self.spec.timeout
            request = {"event": event, "request_id": str(uuid.uuid4()), "deadline": deadline}
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(json.dumps(request) + "\n")
                process.stdin.flush()
            except BrokenPipeError:
                self._discard()
                raise InvocationError("Runtime.ExitError", "the function process exited") from None
            line = _readline(process.stdout, deadline)
            if line is None:
                self._discard()
                raise InvocationError("Sandbox.Timedout", f"task timed out after {self.spec.timeout} s")
            answer = json.loads(line)
            if "error" in answer:
                raise InvocationError(answer["error"]["errorType"], answer["error"]["errorMessage"])
            return answer["result"]

    def _start(self) -> subprocess.Popen[str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", str(Path.home())),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory),
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "LAMBDA_TASK_ROOT": str(self.spec.code_dir),
            **self._environment,
        }
        process = subprocess.Popen(
            [
                sys.executable,
                str(CHILD),
                str(self.spec.code_dir),
                os.pathsep.join(str(d) for d in self._layer_dirs),
                self.spec.handler,
                str(self.spec.memory),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else None,
            text=True,
            env=env,
        )
        assert process.stdout is not None
        ready = _readline(process.stdout, time.time() + 60)
        if ready is None:
            process.kill()
            raise InvocationError("Runtime.InitError", f"{self.name} did not start")
        self.last_init_ms = float(json.loads(ready)["init_ms"])
        self.cold_starts += 1
        self._process = process
        return process

    def start(self) -> None:
        """Start the execution environment (init) now, ahead of the first invocation."""
        with self._lock:
            if self._process is None:
                self._start()

    def variant(self, **environment: str) -> LocalFunction:
        """The same function with some variables changed (e.g. SnapStart's init type)."""
        return LocalFunction(self.spec, self._environment | environment, self._layer_dirs, self._log)

    def _discard(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    @property
    def busy(self) -> bool:
        """True while an invocation runs."""
        return self._lock.locked()

    def kill(self) -> None:
        """Kill the execution environment now, even mid-invocation (a crash, an OOM, a
        Lambda timeout): the invocation fails and the next one starts cold. Safe from
        any thread, without the invocation lock."""
        process = self._process
        if process is not None:
            process.kill()
            self.kills += 1

    def stop(self) -> None:
        with self._lock:
            if self._process is not None:
                assert self._process.stdin is not None
                self._process.stdin.close()
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                self._process = None


def _readline(stream: IO[str], deadline: float) -> str | None:
    """Read one line, or None if the deadline passes or the process ends first."""
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(max(0.0, deadline - time.time()))
    if reader.is_alive() or not result or not result[0]:
        return None
    return result[0]


class FunctionPool:
    """Up to `size` warm execution environments of one function, as Lambda scales out
    under concurrent requests: each invocation takes an idle environment (starting one
    if none is idle and the pool is not full) and gives it back."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: Mapping[str, str],
        layer_dirs: list[Path],
        log: IO[str] | None = None,
        size: int = 2,
    ):
        self.spec = spec
        self.name = spec.logical_id
        self.members = [LocalFunction(spec, environment, layer_dirs, log) for _ in range(size)]
        self._idle: queue.Queue[LocalFunction] = queue.Queue()
        for member in self.members:
            self._idle.put(member)

    def invoke(self, event: dict[str, Any]) -> Any:
        member = self._idle.get()
        try:
            return member.invoke(event)
        finally:
            self._idle.put(member)

    @property
    def busy(self) -> bool:
        return any(m.busy for m in self.members)

    @property
    def invocations(self) -> int:
        return sum(m.invocations for m in self.members)

    @property
    def cold_starts(self) -> int:
        return sum(m.cold_starts for m in self.members)

    def kill(self) -> None:
        for member in self.members:
            member.kill()

    def stop(self) -> None:
        for member in self.members:
            member.stop()
