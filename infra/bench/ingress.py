"""`make bench`: the ingress against a bare HMAC-and-SQS handler and a Slack Bolt app.

Cold: a fresh interpreter imports the handler module (what a Lambda cold start adds
before the first request), median of several runs. Warm: the handler called in
process with real signed Slack events (API Gateway HTTP API, payload 2.0) against
moto's server over HTTP, median and p95 of many calls. All three handlers send to the
same FIFO queue and are called in turn (cold runs too), so the ratios are what
Mailroom's parsing, filtering and observability cost on top of the unavoidable (bare),
and against what the usual framework for this job costs (Bolt's Lambda adapter,
`bolt_ingress.py`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from infra.local.aws import EmbeddedAws, aws_environment, provision
from infra.local.emulators.slack import SlackEmulator
from infra.local.front import api_gateway_event
from infra.local.lambda_child import LocalLambdaContext
from infra.local.slack_requests import LOCAL_SIGNING_SECRET, message_event, sign
from infra.local.template import ROOT, Template

COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "7"))
WARM_CALLS = int(os.environ.get("BENCH_WARM_CALLS", "300"))
WARM_UP_CALLS = 10
BENCH_DIR = Path(__file__).parent

_IMPORT = (
    "import sys,time; sys.path[:0]=sys.argv[1:]; t=time.perf_counter(); import {module}; print(time.perf_counter()-t)"
)


def cold_import_seconds(modules: dict[str, tuple[str, list[Path]]], env: dict[str, str]) -> dict[str, list[float]]:
    """Import each handler module in a fresh interpreter, the handlers in turn each round."""
    times: dict[str, list[float]] = {name: [] for name in modules}
    for _ in range(COLD_RUNS):
        for name, (module, paths) in modules.items():
            out = subprocess.run(
                [sys.executable, "-c", _IMPORT.format(module=module), *map(str, paths)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            times[name].append(float(out.stdout.strip()))
    return times


def signed_event() -> dict[str, Any]:
    payload = message_event("hello", event_id=f"Ev{uuid.uuid4().hex[:12]}")
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"} | sign(body, LOCAL_SIGNING_SECRET)
    return api_gateway_event("POST", "/slack/events", headers, body, "bench.execute-api.us-east-1.amazonaws.com")


def warm_call_seconds(handlers: dict[str, Any], queue_depth: Callable[[], int]) -> dict[str, list[float]]:
    """Call the handlers in turn (rotating who goes first), so all see the same queue and
    machine state. Each must answer 200 and queue exactly one message per event."""
    context = LocalLambdaContext("bench", "bench", time.time() + 3600, 1024)
    for name, handler in handlers.items():
        before = queue_depth()
        for _ in range(WARM_UP_CALLS):  # warm up: clients built, caches filled
            response = handler(signed_event(), context)
            assert response["statusCode"] == 200, (name, response)
        queued = queue_depth() - before
        assert queued == WARM_UP_CALLS, f"{name} queued {queued} messages for {WARM_UP_CALLS} events"
    names = list(handlers)
    times: dict[str, list[float]] = {name: [] for name in handlers}
    before = queue_depth()
    for call in range(WARM_CALLS):
        shift = call % len(names)
        for name in names[shift:] + names[:shift]:
            event = signed_event()
            started = time.perf_counter()
            response = handlers[name](event, context)
            times[name].append(time.perf_counter() - started)
            assert response["statusCode"] == 200, (name, response)
    queued = queue_depth() - before
    assert queued == WARM_CALLS * len(handlers), f"{queued} messages queued for {WARM_CALLS * len(handlers)} events"
    return times


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


def main() -> int:
    aws = EmbeddedAws().start()
    slack = SlackEmulator()  # only Bolt calls it: auth.test, once, in its warm-up
    slack.start()
    template = Template.load(parameter_overrides={"Stage": "bench"})
    provision(template, aws, stack_name="mailroom-bench")
    env = {name: str(template.resolve(v)) for name, v in template.functions()["IngressFunction"].environment.items()}
    env |= aws.env | {"SLACK_SIGNING_SECRET": LOCAL_SIGNING_SECRET, "POWERTOOLS_TRACE_DISABLED": "true"}
    env |= {"AWS_LAMBDA_FUNCTION_NAME": "bench", "POWERTOOLS_METRICS_DISABLED": "false"}
    env |= {"SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": "xoxb-local-test-token"}
    child_env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "")} | env

    ingress_paths = [ROOT / "functions/ingress", *template.layer_dirs()]
    cold = cold_import_seconds(
        {
            "ingress": ("app", ingress_paths),
            "bare": ("bare_ingress", [BENCH_DIR]),
            "bolt": ("bolt_ingress", [BENCH_DIR]),
        },
        child_env,
    )

    with aws_environment(env):
        os.environ.update(env)
        sys.path[:0] = [str(p) for p in ingress_paths]
        from functions.ingress import app
        from infra.bench import bare_ingress, bolt_ingress

        sqs = boto3.client("sqs")

        def queue_depth() -> int:
            attributes = sqs.get_queue_attributes(QueueUrl=env["QUEUE_URL"], AttributeNames=["All"])["Attributes"]
            return sum(
                int(attributes[k]) for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
            )

        # Powertools' JSON logs are written (that is part of the cost) but not shown.
        sys.stdout.flush()
        saved_stdout = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        try:
            warm = warm_call_seconds(
                {"ingress": app.handler, "bare": bare_ingress.handler, "bolt": bolt_ingress.handler}, queue_depth
            )
        finally:
            sys.stdout.flush()
            os.dup2(saved_stdout, 1)
        auth_tests = len(slack.calls("auth.test"))
    slack.stop()
    aws.stop()

    rows: list[tuple[str, Callable[[list[float]], float], dict[str, list[float]]]] = [
        ("cold import (median)", statistics.median, cold),
        ("warm handler (median)", statistics.median, warm),
        ("warm handler (p95)", p95, warm),
    ]
    print(f"\nIngress vs bare HMAC+SQS handler vs Slack Bolt (Python {sys.version.split()[0]}, {os.cpu_count()} cores)")
    print(f"  cold: {COLD_RUNS} fresh interpreters each; warm: {WARM_CALLS} signed events each to moto's SQS over HTTP")
    print(f"  Bolt's auth.test (kept for the container's life) ran in its warm-up; calls: {auth_tests}\n")
    print(f"  {'measure':<24}{'ingress':>12}{'bare':>12}{'bolt':>12}{'vs bare':>9}{'vs bolt':>9}")
    for name, stat, samples in rows:
        ours, bare, bolt = (stat(samples[n]) for n in ("ingress", "bare", "bolt"))
        print(f"  {name:<24}{ms(ours):>12}{ms(bare):>12}{ms(bolt):>12}{ours / bare:>8.2f}x{ours / bolt:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
