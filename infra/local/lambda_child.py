"""One warm Lambda execution environment, as a child process of the local stack.

Started with the function's environment (from template.yaml) and its code and layers
on sys.path, as Lambda has /var/task and /opt/python. Reads one JSON invocation per
line on stdin and answers one JSON line on the original stdout; the function's own
output (Powertools' JSON logs and metrics) goes to stderr, as to CloudWatch.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class LocalLambdaContext:
    """The attributes of Lambda's context object that Powertools and handlers use."""

    def __init__(self, function_name: str, request_id: str, deadline: float, memory: int):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = memory
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed by the function lands on stderr
    sys.stdout = sys.stderr
    code_dir, layer_dirs, handler_path, memory = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    sys.path[:0] = [code_dir, *filter(None, layer_dirs.split(os.pathsep))]
    module_name, function_name = handler_path.rsplit(".", 1)
    started = time.perf_counter()
    handler = getattr(importlib.import_module(module_name), function_name)
    protocol.write(json.dumps({"ready": True, "init_ms": (time.perf_counter() - started) * 1000}) + "\n")

    name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
    for line in sys.stdin:
        request = json.loads(line)
        context = LocalLambdaContext(name, request["request_id"], request["deadline"], memory)
        answer: dict[str, Any]
        try:
            answer = {"result": handler(request["event"], context)}
        except Exception as exc:
            traceback.print_exc()
            answer = {"error": {"errorType": type(exc).__name__, "errorMessage": str(exc)}}
        protocol.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
