"""`make bench`: the ingress against a bare HMAC-and-SQS handler, on this machine.

Cold: a fresh interpreter imports the handler module (what a Lambda cold start adds
before the first request), median of several runs. Warm: the handler called in
process with real signed Slack events against moto's server over HTTP, median and
p95 of many calls. Both handlers send to the same FIFO queue, so the ratio is what
Mailroom's parsing, filtering and observability cost on top of the unavoidable.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from infra.local.aws import EmbeddedAws, aws_environment, provision
from infra.local.front import api_gateway_event
from infra.local.lambda_child import LocalLambdaContext
from infra.local.slack_requests import LOCAL_SIGNING_SECRET, message_event, sign
from infra.local.template import ROOT, Template

COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "7"))
WARM_CALLS = int(os.environ.get("BENCH_WARM_CALLS", "300"))

_IMPORT = (
    "import sys,time; sys.path[:0]=sys.argv[1:]; t=time.perf_counter(); import {module}; print(time.perf_counter()-t)"
)


def cold_import_seconds(module: str, paths: list[Path], env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(COLD_RUNS):
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT.format(module=module), *map(str, paths)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(out.stdout.strip()))
    return times


def signed_event() -> dict[str, Any]:
    payload = message_event("hello", event_id=f"Ev{uuid.uuid4().hex[:12]}")
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"} | sign(body, LOCAL_SIGNING_SECRET)
    return api_gateway_event("POST", "/slack/events", headers, body, "bench.execute-api.us-east-1.amazonaws.com")


def warm_call_seconds(handlers: dict[str, Any]) -> dict[str, list[float]]:
    """Call the handlers in turn, so both see the same queue and machine state."""
    context = LocalLambdaContext("bench", "bench", time.time() + 3600, 1024)
    for handler in handlers.values():
        for _ in range(10):  # warm up: clients built, caches filled
            assert handler(signed_event(), context)["statusCode"] == 200
    times: dict[str, list[float]] = {name: [] for name in handlers}
    for _ in range(WARM_CALLS):
        for name, handler in handlers.items():
            event = signed_event()
            started = time.perf_counter()
            response = handler(event, context)
            times[name].append(time.perf_counter() - started)
            assert response["statusCode"] == 200, response
    return times


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def main() -> int:
    aws = EmbeddedAws().start()
    template = Template.load(parameter_overrides={"Stage": "bench"})
    provision(template, aws, stack_name="mailroom-bench")
    env = {name: str(template.resolve(v)) for name, v in template.functions()["IngressFunction"].environment.items()}
    env |= aws.env | {"SLACK_SIGNING_SECRET": LOCAL_SIGNING_SECRET, "POWERTOOLS_TRACE_DISABLED": "true"}
    env |= {"AWS_LAMBDA_FUNCTION_NAME": "bench", "POWERTOOLS_METRICS_DISABLED": "false"}
    child_env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "")} | env

    ingress_paths = [ROOT / "functions/ingress", *template.layer_dirs()]
    cold_ingress = cold_import_seconds("app", ingress_paths, child_env)
    cold_bare = cold_import_seconds("bare_ingress", [Path(__file__).parent], child_env)

    with aws_environment(env):
        os.environ.update(env)
        sys.path[:0] = [str(p) for p in ingress_paths]
        from functions.ingress import app
        from infra.bench import bare_ingress

        # Powertools' JSON logs are written (that is part of the cost) but not shown.
        sys.stdout.flush()
        saved_stdout = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        try:
            warm = warm_call_seconds({"ingress": app.handler, "bare": bare_ingress.handler})
        finally:
            sys.stdout.flush()
            os.dup2(saved_stdout, 1)
        warm_ingress, warm_bare = warm["ingress"], warm["bare"]
    aws.stop()

    rows = [
        ("cold import (median)", statistics.median(cold_ingress), statistics.median(cold_bare)),
        ("warm handler (median)", statistics.median(warm_ingress), statistics.median(warm_bare)),
        (
            "warm handler (p95)",
            statistics.quantiles(warm_ingress, n=20)[-1],
            statistics.quantiles(warm_bare, n=20)[-1],
        ),
    ]
    print(f"\nIngress vs bare HMAC+SQS handler (Python {sys.version.split()[0]}, {os.cpu_count()} cores)")
    print(f"  cold: {COLD_RUNS} fresh interpreters; warm: {WARM_CALLS} signed events to moto's SQS over HTTP\n")
    print(f"  {'measure':<24}{'ingress':>12}{'bare':>12}{'ratio':>9}")
    for name, ours, bare in rows:
        print(f"  {name:<24}{ms(ours):>12}{ms(bare):>12}{ours / bare:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
