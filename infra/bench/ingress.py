"""`make bench`: the ingress against a bare HMAC-and-SQS handler and a Slack Bolt app.

Cold start to first ack, as Lambda pays it: a fresh interpreter imports the handler
module, then answers one signed Slack event (API Gateway HTTP API, payload 2.0) end to
end against moto's server over HTTP: for Mailroom the signing secret comes from Secrets
Manager, as deployed (the bare handler and Bolt read it from the environment, which
only flatters them). Median of COLD_RUNS rounds, the three variants in turn each round
(who goes first rotates). Warm: the handlers called in process, median and p95.
All three send to the same FIFO queue, so the ratios are what Mailroom's parsing,
filtering and observability cost on top of the unavoidable (bare), and against what the
usual framework for this job costs (Bolt's Lambda adapter, `bolt_ingress.py`).
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

from infra.local.aws import EmbeddedAws, aws_environment, provision
from infra.local.emulators.slack import SlackEmulator
from infra.local.front import api_gateway_event
from infra.local.lambda_child import LocalLambdaContext
from infra.local.slack_requests import LOCAL_SIGNING_SECRET, message_event, sign
from infra.local.template import ROOT, Template

COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "7"))
WARM_CALLS = int(os.environ.get("BENCH_WARM_CALLS", "100"))
WARM_UP_CALLS = 10
BENCH_DIR = Path(__file__).parent
RESULT_PATH = ROOT / ".local/bench-ingress.json"
VARIANTS = ("ingress", "bare", "bolt")

# A fresh interpreter: import the handler, answer the event read from stdin, report.
# The context is a plain object so that nothing of ours is imported before the clock.
_COLD = """
import json, sys, time
sys.path[:0] = sys.argv[2:]
event = json.loads(sys.stdin.read())
class Context:
    function_name = "bench"; memory_limit_in_mb = 1024; aws_request_id = "cold"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    def get_remaining_time_in_millis(self): return 5000
started = time.perf_counter()
module = __import__(sys.argv[1])
imported = time.perf_counter()
response = module.handler(event, Context())
answered = time.perf_counter()
sys.stderr.write(json.dumps({"import": imported - started, "request": answered - imported,
                             "status": response["statusCode"]}) + "\\n")
"""


def cold_starts(variants: dict[str, tuple[str, list[Path], dict[str, str]]]) -> dict[str, dict[str, list[float]]]:
    """Each variant's import and first request in fresh interpreters, in turn each round."""
    times: dict[str, dict[str, list[float]]] = {name: {"import": [], "request": []} for name in variants}
    names = list(variants)
    for round_ in range(COLD_RUNS):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            module, paths, env = variants[name]
            out = subprocess.run(
                [sys.executable, "-c", _COLD, module, *map(str, paths)],
                env=env,
                input=json.dumps(signed_event()),
                capture_output=True,
                text=True,
                check=False,
            )
            lines = out.stderr.strip().splitlines()
            if out.returncode != 0 or not lines:
                raise RuntimeError(f"{name}'s cold start failed:\n{out.stderr[-2000:]}")
            report = json.loads(lines[-1])
            if report["status"] != 200:
                raise RuntimeError(f"{name} answered {report['status']} to a signed event")
            times[name]["import"].append(report["import"])
            times[name]["request"].append(report["request"])
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
    slack = SlackEmulator()  # only Bolt calls it: auth.test, once per container, on its first request
    slack.start()
    template = Template.load(parameter_overrides={"Stage": "bench"})
    provision(template, aws, stack_name="mailroom-bench")
    env = {name: str(template.resolve(v)) for name, v in template.functions()["IngressFunction"].environment.items()}
    # The signing secret lives in Secrets Manager, as deployed; only the baselines get it in the environment.
    aws.client("secretsmanager").put_secret_value(
        SecretId=env["SLACK_SIGNING_SECRET_ARN"],
        SecretString=json.dumps({"SLACK_SIGNING_SECRET": LOCAL_SIGNING_SECRET}),
    )
    env |= aws.env | {"AWS_LAMBDA_FUNCTION_NAME": "bench", "POWERTOOLS_METRICS_DISABLED": "false"}
    base_env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "")} | env
    baseline_env = base_env | {"SLACK_SIGNING_SECRET": LOCAL_SIGNING_SECRET}
    baseline_env |= {"SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": "xoxb-local-test-token"}

    ingress_paths = [ROOT / "functions/ingress", *template.layer_dirs()]
    sqs = aws.client("sqs")

    def queue_depth() -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=env["QUEUE_URL"], AttributeNames=["All"])["Attributes"]
        return sum(int(attributes[k]) for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"))

    before = queue_depth()
    cold = cold_starts(
        {
            "ingress": ("app", ingress_paths, base_env),
            "bare": ("bare_ingress", [BENCH_DIR], baseline_env),
            "bolt": ("bolt_ingress", [BENCH_DIR], baseline_env),
        }
    )
    queued = queue_depth() - before
    if queued != COLD_RUNS * len(VARIANTS):
        raise RuntimeError(f"{queued} messages queued for {COLD_RUNS * len(VARIANTS)} cold requests")

    with aws_environment(baseline_env):
        os.environ.update(baseline_env)
        sys.path[:0] = [str(p) for p in ingress_paths]
        from functions.ingress import app
        from infra.bench import bare_ingress, bolt_ingress

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
    slack.stop()
    aws.stop()

    med = statistics.median
    total = {n: [i + r for i, r in zip(cold[n]["import"], cold[n]["request"], strict=True)] for n in VARIANTS}
    results = {
        "python": sys.version.split()[0],
        "cold_runs": COLD_RUNS,
        "cold_ms": {n: {k: [round(v * 1000, 1) for v in cold[n][k]] for k in cold[n]} for n in VARIANTS},
        "cold_total_median_ms": {n: round(med(total[n]) * 1000, 1) for n in VARIANTS},
        "warm_median_ms": {n: round(med(warm[n]) * 1000, 2) for n in VARIANTS},
    }
    RESULT_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULT_PATH.write_text(json.dumps(results, indent=2) + "\n")

    print(f"\nIngress cold start to first ack (Python {sys.version.split()[0]}, {os.cpu_count()} cores)")
    print(f"  median of {COLD_RUNS} rounds, variants in turn: a fresh interpreter imports the handler, then")
    print("  answers one signed Slack event end to end against moto's server (SQS FIFO over HTTP).")
    print("  Mailroom reads the signing secret from Secrets Manager; bare and Bolt from the environment.\n")
    print(f"  {'variant':<44}{'import':>10}{'first req':>11}{'total':>10}{'vs bare':>9}{'vs bolt':>9}")
    labels = {
        "ingress": "Mailroom (secret from Secrets Manager)",
        "bare": "bare HMAC + boto3 SQS",
        "bolt": "Slack Bolt App + Lambda adapter",
    }
    for n in VARIANTS:
        cells = (med(cold[n]["import"]), med(cold[n]["request"]), med(total[n]))
        ratios = f"{med(total[n]) / med(total['bare']):>8.2f}x{med(total[n]) / med(total['bolt']):>8.2f}x"
        print(f"  {labels[n]:<44}" + "".join(f"{c * 1000:>7.0f} ms" for c in cells) + " " + ratios)
    target = med(total["ingress"]) <= 1.15 * med(total["bare"]) and med(total["ingress"]) < med(total["bolt"])
    print(f"  target (<= 1.15x bare and below Bolt): {'met' if target else 'NOT met'}")
    print(
        f"\n  warm, in process ({WARM_CALLS} signed events each): median "
        + ", ".join(f"{n} {ms(med(warm[n])).strip()}" for n in VARIANTS)
        + "; p95 "
        + ", ".join(f"{n} {ms(p95(warm[n])).strip()}" for n in VARIANTS)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
