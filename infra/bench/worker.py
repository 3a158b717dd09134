"""`python -m infra.bench.worker`: what the worker costs per command, on this machine.

Everything runs against the local stack (infra/local/stack.py): moto's server
provisioned from template.yaml, the Slack, Google/Gmail and OpenAI emulators, and a
Gmail link made the way a user makes it (`auth`, consent, callback).

1. Cold start, `hello` vs `chat`, in fresh interpreters with the worker's template
   environment. Import only: `import app` (sys.path = functions/worker, the layer)
   vs that plus what the first `chat` imports. First invocation: a fresh worker
   process of the stack (`LocalFunction`) handling one SQS record, end to end, and
   the same process handling a second record of the same kind (warm). A probe
   interpreter handles one record of each kind and lists the third-party packages
   loaded afterwards: the agent's libraries must not be among them after a `hello`.
2. AWS calls per agent turn: this process builds the worker with `build_worker()`
   (environment = the template's, secrets from Secrets Manager as deployed) and feeds
   its handler SQS records; botocore's `BaseClient._make_api_call` is wrapped to
   count every call by service, operation and table (checkpoint items by key kind).
3. Checkpoint size: the items DynamoDBSaver keeps for one conversation, after 5 and
   after 20 turns (sizes by DynamoDB's item-size rules).
4. Agent turn latency: the worker handler's wall time for one `chat` record in this
   process (model and Gmail emulated, DynamoDB and KMS on moto over HTTP), with the
   garbage collector's full collections during those turns. moto and the emulators
   run in this process too, so they share its GIL and heap: a warm worker process of
   the stack answers the same `chat` faster (the "warm invocation" row of 1).

Prints a table and writes the numbers to .local/bench-worker.json; logs (the
functions' and the in-process worker's) go to .local/bench-worker.log.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from infra.local.aws import aws_environment
from infra.local.browser import connect_gmail
from infra.local.emulators.slack import PostedMessage, SlackEmulator
from infra.local.functions import LocalFunction
from infra.local.lambda_child import LocalLambdaContext
from infra.local.poller import sqs_record
from infra.local.slack_requests import LOCAL_DM_CHANNEL, message_event, post_event
from infra.local.stack import LocalStack, StackOptions
from infra.local.template import ROOT
from mailroom.agent.preload import AGENT_MODULES

COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "5"))
THREAD_TURNS = int(os.environ.get("BENCH_THREAD_TURNS", "100"))  # figure 3: one conversation this long
THREAD_CHECKS = (5, 20)  # ... measured after this many turns too
CALL_TURNS = 6  # figure 2: turns in one conversation, the first on a freshly built worker
RESULT_PATH = ROOT / ".local/bench-worker.json"
LOG_PATH = ROOT / ".local/bench-worker.log"
PUBLIC = "https://bench.execute-api.us-east-1.amazonaws.com"

# Answered by the OpenAI emulator's default_mail_script against the seeded mailbox.
PROMPTS = (
    "What did Alice send me this week?",  # search, read_email, summary
    "Draft a reply to Bob saying Thursday works",  # search, read_thread, create_draft, answer
    "Any emails from Carol?",  # search, read_email, summary
    "What did Dave send me?",  # search, read_email (a PDF attachment), summary
)
# What the first `chat` imports on top of `app` (bootstrap imports them lazily); what a
# SnapStart init imports ahead (mailroom/agent/preload.py).
CHAT_IMPORTS = AGENT_MODULES
# None of these may be loaded by a worker that has only handled `hello`.
AGENT_PACKAGES = ("langchain", "langgraph", "googleapiclient", "aws_encryption_sdk", "openai")

_IMPORT = (
    "import sys,time; sys.path[:0]=sys.argv[2:]; t=time.perf_counter(); import {modules}; print(time.perf_counter()-t)"
)

# A fresh interpreter that handles one SQS event (stdin) with the worker's handler and
# reports, on its own stdout, the time taken and the packages loaded.
_PROBE = """
import json, os, sys, time
sys.path[:0] = sys.argv[1].split(os.pathsep)
event = json.loads(sys.stdin.read())
protocol = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
sys.stdout = sys.stderr
started = time.perf_counter()
import app
imported = time.perf_counter()
from lambda_child import LocalLambdaContext
result = app.handler(event, LocalLambdaContext("WorkerFunction", "probe", time.time() + 120, 1024))
handled = time.perf_counter()
counts = {}
for name in list(sys.modules):
    top = name.partition(".")[0]
    if top not in sys.stdlib_module_names and not top.startswith("_") and top not in ("app", "lambda_child"):
        counts[top] = counts.get(top, 0) + 1
protocol.write(json.dumps({
    "result": result, "import_s": imported - started, "handler_s": handled - imported,
    "modules": len(sys.modules), "packages": counts,
}) + "\\n")
"""


class BenchError(RuntimeError):
    """The stack or an emulator did not behave as this benchmark expects."""


# =====================================================================================
# Counting AWS calls
# =====================================================================================


class AwsCalls:
    """Counts every botocore API call made in this process while installed, keyed
    "service Operation target" (target: the table's role, checkpoint items by kind)."""

    def __init__(self, tables: Mapping[str, str]):
        self._tables = dict(tables)  # physical name -> role
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    @contextmanager
    def installed(self) -> Iterator[AwsCalls]:
        from botocore.client import BaseClient

        original: Callable[..., Any] = getattr(BaseClient, "_make_api_call")  # noqa: B009 (private to botocore)
        calls = self

        def counting(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            calls.record(client.meta.service_model.service_name, operation_name, api_params)
            return original(client, operation_name, api_params)

        setattr(BaseClient, "_make_api_call", counting)  # noqa: B010 (a method, not a field)
        try:
            yield self
        finally:
            setattr(BaseClient, "_make_api_call", original)  # noqa: B010

    def record(self, service: str, operation: str, params: Mapping[str, Any]) -> None:
        key = f"{service} {operation}"
        target = self._target(params)
        if target:
            key += f" {target}"
        with self._lock:
            self._counts[key] += 1

    def take(self) -> dict[str, int]:
        """The counts since the last take, and start again."""
        with self._lock:
            counts, self._counts = dict(self._counts), Counter()
        return counts

    def _target(self, params: Mapping[str, Any]) -> str:
        tables = [str(params["TableName"])] if "TableName" in params else list(params.get("RequestItems") or {})
        if not tables:
            return ""
        roles = sorted({self._tables.get(t, t) for t in tables})
        target = "+".join(roles)
        if roles == ["checkpoints"]:
            kind = _checkpoint_item_kind(params)
            if kind:
                target += f" ({kind})"
        return target


def _checkpoint_item_kind(params: Mapping[str, Any]) -> str:
    """CHECKPOINT (metadata), CHUNK (payload) or WRITES: DynamoDBSaver's key prefixes."""
    pk = (params.get("Key") or params.get("Item") or {}).get("PK", {}).get("S")
    if pk is None:
        pk = (params.get("ExpressionAttributeValues") or {}).get(":pk", {}).get("S")
    return str(pk).partition("_")[0] if pk else ""


# =====================================================================================
# DynamoDB item sizes
# =====================================================================================


def item_bytes(item: Mapping[str, Any]) -> int:
    """An item's size by DynamoDB's rules: attribute names plus values (what is billed
    and limited to 400 KB)."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: Mapping[str, Any]) -> int:
    [(kind, data)] = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "B":
        return len(data)
    if kind == "N":
        digits = Decimal(str(data)).normalize().as_tuple().digits
        return (len(digits) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_bytes(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_bytes(v) for k, v in data.items())
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "BS":
        return sum(len(b) for b in data)
    if kind == "NS":
        return sum(_value_bytes({"N": n}) for n in data)
    raise BenchError(f"unknown DynamoDB attribute type {kind}")


@dataclass
class ThreadStorage:
    items: int
    checkpoints: int
    total_bytes: int
    largest_item_bytes: int
    latest_checkpoint_bytes: int  # its metadata item plus its payload item
    latest_payload_bytes: int
    latest_write_units: int  # of its two PutItems, on demand
    payload_bytes: list[int] = field(default_factory=list)  # every checkpoint's payload, oldest first


def thread_storage(dynamodb: Any, table: str, thread_id: str) -> ThreadStorage:
    """What DynamoDBSaver keeps for one thread: checkpoint metadata items
    (PK CHECKPOINT_<thread>), their payloads (CHUNK_<thread>#...) and pending writes
    (WRITES_<thread>#..., CHUNK_<thread>#...#task#idx)."""
    mine: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            pk = item["PK"]["S"]
            if pk == f"CHECKPOINT_{thread_id}" or pk.startswith((f"CHUNK_{thread_id}#", f"WRITES_{thread_id}#")):
                mine.append(item)
    if not mine:
        raise BenchError(
            f"no checkpoint items for thread {thread_id!r} in {table}: did DynamoDBSaver's key scheme change?"
        )
    by_pk = {(i["PK"]["S"], i["SK"]["S"]): i for i in mine}
    checkpoints = sorted((i for i in mine if i["PK"]["S"] == f"CHECKPOINT_{thread_id}"), key=lambda i: i["SK"]["S"])
    payloads = []
    for checkpoint in checkpoints:
        if checkpoint.get("ref_loc", {}).get("S") != "DYNAMODB":
            raise BenchError(f"checkpoint {checkpoint['SK']['S']} is not stored in DynamoDB (offloaded to S3?)")
        chunk = by_pk.get((checkpoint["ref_key"]["S"], "CHUNK"))
        if chunk is None:
            raise BenchError(f"checkpoint {checkpoint['SK']['S']} has no payload item {checkpoint['ref_key']['S']}")
        payloads.append(chunk)
    return ThreadStorage(
        items=len(mine),
        checkpoints=len(checkpoints),
        total_bytes=sum(item_bytes(i) for i in mine),
        largest_item_bytes=max(item_bytes(i) for i in mine),
        latest_checkpoint_bytes=item_bytes(checkpoints[-1]) + item_bytes(payloads[-1]),
        latest_payload_bytes=len(payloads[-1]["payload"]["B"]),
        latest_write_units=write_units(item_bytes(checkpoints[-1])) + write_units(item_bytes(payloads[-1])),
        payload_bytes=[len(p["payload"]["B"]) for p in payloads],
    )


# =====================================================================================
# The stack, a linked user, records for the worker
# =====================================================================================


class Bench:
    def __init__(self, stack: LocalStack):
        if stack.slack is None or stack.google is None or stack.openai is None:
            raise BenchError("the local stack must run with its Slack, Google and OpenAI emulators")
        self.stack = stack
        self.slack: SlackEmulator = stack.slack
        self.queue_arn = stack.physical("MessagesQueue", "Arn")
        self.worker_spec = stack.template.functions()["WorkerFunction"]
        self.worker_env = {
            name: str(stack.template.resolve(value)) for name, value in self.worker_spec.environment.items()
        }
        self.endpoints = {
            "SLACK_API_URL": stack.slack.api_url,
            "GOOGLE_AUTH_URI": stack.google.auth_uri,
            "GOOGLE_TOKEN_URI": stack.google.token_uri,
            "GOOGLE_REVOKE_URI": stack.google.revoke_uri,
            "GMAIL_API_URL": stack.google.gmail_api_url,
            "OPENAI_BASE_URL": stack.openai.base_url,
        }
        # What a LocalFunction of the stack gets: the template's variables, AWS, endpoints.
        self.env = stack.aws.env | self.endpoints | {"POWERTOOLS_TRACE_DISABLED": "true"} | self.worker_env
        self.env |= {"AWS_LAMBDA_FUNCTION_NAME": "WorkerFunction", "POWERTOOLS_METRICS_DISABLED": "false"}
        self.child_env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", ""), "LANG": "C.UTF-8"}
        self.child_env |= self.env
        self.paths = [self.worker_spec.code_dir, *stack.template.layer_dirs()]
        self.last_conversation_id = ""  # the agent's thread id of the last record built

    def link_gmail(self) -> None:
        """`auth`, consent at the emulated Google, the callback: as tests/e2e/test_agent.py."""
        response = post_event(self.stack.url, message_event("auth"))
        if response.status != 200:
            raise BenchError(f"the ingress refused `auth`: HTTP {response.status}")
        self.stack.wait_until_drained(timeout=60)
        prompt = self.slack.messages(channel=LOCAL_DM_CHANNEL)[-1]
        urls = [e["url"] for b in prompt.blocks for e in b.get("elements", []) if "url" in e]
        if len(urls) != 1:
            raise BenchError(f"`auth` did not answer with one Connect button: {prompt.text!r}")
        assert self.stack.google is not None
        connect_gmail(urls[0])  # Sign in with Slack, Google's consent, back to Mailroom
        self.stack.wait_until_drained(timeout=60)
        if "connected as" not in self.slack.messages(channel=LOCAL_DM_CHANNEL)[-1].text:
            raise BenchError("linking Gmail did not end with 'connected as ...' in Slack")

    def record(self, text: str, thread_ts: str | None = None) -> tuple[dict[str, Any], str]:
        """One SQS record of the messages queue for a DM, and its Slack event id."""
        from mailroom.slack.parsing import parse_event_callback

        event_id = f"Ev{uuid.uuid4().hex[:12]}"
        command = parse_event_callback(message_event(text, thread_ts=thread_ts, event_id=event_id), PUBLIC)
        if command is None:
            raise BenchError(f"{text!r} parses to no command")
        self.last_conversation_id = command.conversation_id
        message = {
            "MessageId": uuid.uuid4().hex,
            "ReceiptHandle": f"bench-{uuid.uuid4().hex}",
            "Body": command.model_dump_json(),
            "Attributes": {
                "ApproximateReceiveCount": "1",
                "MessageGroupId": command.conversation_id,
                "MessageDeduplicationId": event_id,
                "SentTimestamp": str(int(time.time() * 1000)),
            },
        }
        return sqs_record(message, self.queue_arn), event_id

    def run(self, handle: Callable[[dict[str, Any]], Any], text: str, thread_ts: str | None = None) -> float:
        """Hand one record to `handle`; check the bot answered it; the handler's seconds."""
        record, event_id = self.record(text, thread_ts)
        before = {m.ts for m in self.slack.messages(channel=LOCAL_DM_CHANNEL)}
        started = time.perf_counter()
        result = handle({"Records": [record]})
        seconds = time.perf_counter() - started
        if result != {"batchItemFailures": []}:
            raise BenchError(f"the worker failed {text!r}: {result}")
        self.check_answer(text, event_id, before)
        return seconds

    def check_answer(self, text: str, event_id: str, before: set[str]) -> PostedMessage:
        from mailroom import replies

        new = [m for m in self.slack.messages(channel=LOCAL_DM_CHANNEL) if m.ts not in before]
        if not new:
            raise BenchError(f"no Slack answer to {text!r}")
        answer = new[0]
        if text == "hello":
            wrong = answer.text != replies.hello()[0]
        else:
            # The agent edits its placeholder into the answer, or (in a thread) streams it;
            # the failure and busy replies quote the event id as their reference.
            refusals = (replies.needs_gmail(), replies.link_broken())
            finished = answer.edits >= 1 or (answer.appends >= 1 and not answer.streaming)
            wrong = not finished or event_id in answer.text or answer.text in refusals
        if wrong:
            raise BenchError(f"{text!r} was not answered as expected: {answer.text[:300]!r} (see {LOG_PATH})")
        return answer


def new_thread() -> str:
    return f"{int(time.time())}.{uuid.uuid4().int % 1_000_000:06d}"


# =====================================================================================
# 1. Cold start
# =====================================================================================


def cold_import_seconds(bench: Bench, variants: Mapping[str, Sequence[str]]) -> dict[str, list[float]]:
    """Each variant's modules imported in a fresh interpreter, the variants in turn each round."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(COLD_RUNS):
        for name, modules in variants.items():
            out = subprocess.run(
                [sys.executable, "-c", _IMPORT.format(modules=", ".join(modules)), "-", *map(str, bench.paths)],
                env=bench.child_env,
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                raise BenchError(f"importing {', '.join(modules)} failed:\n{out.stderr[-2000:]}")
            times[name].append(float(out.stdout.strip()))
    return times


def interpreter_start_seconds(bench: Bench) -> list[float]:
    times = []
    for _ in range(COLD_RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=bench.child_env, check=True)
        times.append(time.perf_counter() - started)
    return times


@dataclass
class FirstInvocations:
    total: list[float] = field(default_factory=list)  # process start, import app, first handler call
    init: list[float] = field(default_factory=list)  # import app, as the child reports it
    warm: list[float] = field(default_factory=list)  # a second record, same process


def first_invocations(bench: Bench, worker: LocalFunction) -> dict[str, FirstInvocations]:
    """Per run: a stopped (cold) worker process handles `hello`, then a second `hello`
    (warm); then the same for `chat`, each chat in a new conversation; then `chat` on a
    worker whose init ran as for a SnapStart snapshot (AWS_LAMBDA_INITIALIZATION_TYPE=
    snap-start) before the clock starts: what a restored worker pays, but for the restore
    itself (Lambda's, not measurable here)."""
    snapshot = worker.variant(AWS_LAMBDA_INITIALIZATION_TYPE="snap-start")
    results = {"hello": FirstInvocations(), "chat": FirstInvocations(), "chat_snapshot": FirstInvocations()}
    for _ in range(COLD_RUNS):
        for kind, text in (("hello", "hello"), ("chat", PROMPTS[0])):
            worker.stop()
            timed = results[kind]
            timed.total.append(bench.run(worker.invoke, text, new_thread() if kind == "chat" else None))
            timed.init.append(worker.last_init_ms / 1000)
            timed.warm.append(bench.run(worker.invoke, text, new_thread() if kind == "chat" else None))
        snapshot.stop()
        snapshot.start()
        timed = results["chat_snapshot"]
        timed.total.append(bench.run(snapshot.invoke, PROMPTS[0], new_thread()))
        timed.init.append(snapshot.last_init_ms / 1000)
        timed.warm.append(bench.run(snapshot.invoke, PROMPTS[0], new_thread()))
    worker.stop()
    snapshot.stop()
    return results


def probe(bench: Bench, text: str) -> dict[str, Any]:
    """A fresh interpreter handles one record; what it loaded."""
    record, _ = bench.record(text, new_thread() if text != "hello" else None)
    paths = os.pathsep.join(str(p) for p in [*bench.paths, ROOT / "infra/local"])
    with LOG_PATH.open("a") as log:
        out = subprocess.run(
            [sys.executable, "-c", _PROBE, paths],
            input=json.dumps({"Records": [record]}),
            env=bench.child_env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            check=False,
        )
    if out.returncode != 0 or not out.stdout.strip():
        raise BenchError(f"the probe failed on {text!r} (exit {out.returncode}); see {LOG_PATH}")
    report: dict[str, Any] = json.loads(out.stdout)
    if report["result"] != {"batchItemFailures": []}:
        raise BenchError(f"the probe's worker failed {text!r}: {report['result']}")
    return report


def agent_packages(packages: Mapping[str, int]) -> list[str]:
    return sorted(p for p in packages if p.startswith(AGENT_PACKAGES))


# =====================================================================================
# 2-4. In process: calls, checkpoint size, latency
# =====================================================================================


@dataclass
class InProcess:
    build_calls: dict[str, int]
    turn_calls: list[dict[str, int]]  # CALL_TURNS turns of one conversation, the first on a new worker
    turn_seconds: list[tuple[str, float]]  # (prompt, seconds) of every turn after a worker's first
    first_turn_seconds: float
    agent_preloaded: list[str]  # agent packages this process had imported before the first turn
    gc_pauses: list[list[tuple[int, float]]]  # (generation, seconds) of each collection, per warm turn
    model_calls: list[int]  # chat.completions requests per turn (after the first)
    storage: dict[int, ThreadStorage]  # the long conversation's, after so many turns


class GcPauses:
    """The garbage collector's pauses in this process, by generation, while installed."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._started))

    @contextmanager
    def installed(self) -> Iterator[GcPauses]:
        gc.callbacks.append(self)
        try:
            yield self
        finally:
            gc.callbacks.remove(self)

    def take(self) -> list[tuple[int, float]]:
        pauses, self.pauses = self.pauses, []
        return pauses


@contextmanager
def quiet_stdout(path: Path) -> Iterator[None]:
    """Powertools writes JSON logs and metrics to stdout: send them to the log file."""
    sys.stdout.flush()
    saved = os.dup(1)
    with path.open("a") as log:
        os.dup2(log.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def in_process(bench: Bench) -> InProcess:
    stack = bench.stack
    assert stack.openai is not None
    roles = {
        stack.physical("TokensTable"): "tokens",
        stack.physical("OAuthStateTable"): "oauth_state",
        stack.physical("IdempotencyTable"): "idempotency",
        stack.physical("CheckpointsTable"): "checkpoints",
        stack.physical("UsageTable"): "usage",
    }
    calls = AwsCalls(roles)
    pauses = GcPauses()
    gc_per_turn: list[list[tuple[int, float]]] = []
    dynamodb = stack.aws.client("dynamodb")
    openai = stack.openai
    context = LocalLambdaContext("WorkerFunction", "bench", time.time() + 3600, bench.worker_spec.memory)
    # The first turn's time includes importing these unless something here already did.
    preloaded = agent_packages(Counter(name.partition(".")[0] for name in sys.modules))

    with aws_environment(bench.env), quiet_stdout(LOG_PATH):
        sys.path[:0] = [str(p) for p in bench.paths if str(p) not in sys.path]
        from functions.worker import app as worker_app
        from mailroom.bootstrap import build_worker

        with calls.installed(), pauses.installed():
            calls.take()
            worker = build_worker()
            build_calls = calls.take()

            def handle(event: dict[str, Any]) -> Any:
                return worker_app.handler(event, context, worker=worker)

            # 2. One conversation of CALL_TURNS turns; the first builds the agent.
            thread = new_thread()
            turn_calls: list[dict[str, int]] = []
            turn_seconds: list[tuple[str, float]] = []
            model_calls: list[int] = []
            first_turn_seconds = 0.0
            for n in range(CALL_TURNS):
                calls.take()
                seen = len(openai.requests)
                prompt = PROMPTS[n % len(PROMPTS)]
                pauses.take()
                seconds = bench.run(handle, prompt, thread)
                turn_calls.append(calls.take())
                if n == 0:
                    first_turn_seconds = seconds
                else:
                    turn_seconds.append((prompt, seconds))
                    model_calls.append(len(openai.requests) - seen)
                    gc_per_turn.append(pauses.take())

            # 3 and 4. One conversation of THREAD_TURNS turns on the warm worker.
            thread = new_thread()
            table = stack.physical("CheckpointsTable")
            storage: dict[int, ThreadStorage] = {}
            for n in range(THREAD_TURNS):
                seen = len(openai.requests)
                prompt = PROMPTS[n % len(PROMPTS)]
                pauses.take()
                turn_seconds.append((prompt, bench.run(handle, prompt, thread)))
                model_calls.append(len(openai.requests) - seen)
                gc_per_turn.append(pauses.take())
                if n + 1 in THREAD_CHECKS:
                    storage[n + 1] = thread_storage(dynamodb, table, bench.last_conversation_id)
            calls.take()
    storage[THREAD_TURNS] = thread_storage(dynamodb, table, bench.last_conversation_id)
    return InProcess(
        build_calls,
        turn_calls,
        turn_seconds,
        first_turn_seconds,
        preloaded,
        gc_per_turn,
        model_calls,
        storage,
    )


# =====================================================================================
# Report
# =====================================================================================


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def kb(size: int) -> str:
    return f"{size / 1024:8.1f} KB"


def spread(values: Sequence[int]) -> str:
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


def p95(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]


def call_rows(build: Mapping[str, int], turns: Sequence[Mapping[str, int]]) -> list[tuple[str, int, int, str]]:
    """(call, at build, first turn, later turns as "n" or "min-max"), AWS services only."""
    keys = sorted({k for counts in [build, *turns] for k in counts})
    rows = [(k, build.get(k, 0), turns[0].get(k, 0), spread([t.get(k, 0) for t in turns[1:]])) for k in keys]
    totals = ("total", sum(build.values()), sum(turns[0].values()), spread([sum(t.values()) for t in turns[1:]]))
    return [*rows, totals]


READS = ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems")
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


def dynamodb_calls(counts: Mapping[str, int], operations: Sequence[str], table: str = "") -> int:
    """DynamoDB calls of these operations among one turn's counts ("dynamodb Op target")."""
    total = 0
    for key, n in counts.items():
        service, operation, *target = key.split(" ", 2)
        if (
            service == "dynamodb"
            and operation in operations
            and (not table or (target and target[0].startswith(table)))
        ):
            total += n
    return total


def write_units(item_size: int) -> int:
    """On-demand write request units of one PutItem of that size (1 per started KB)."""
    return -(-item_size // 1024)


def storage_json(storage: ThreadStorage) -> dict[str, Any]:
    return {
        "items": storage.items,
        "checkpoints": storage.checkpoints,
        "total_bytes": storage.total_bytes,
        "largest_item_bytes": storage.largest_item_bytes,
        "latest_checkpoint_bytes": storage.latest_checkpoint_bytes,
        "latest_payload_bytes": storage.latest_payload_bytes,
        "latest_checkpoint_write_units": storage.latest_write_units,
        "payload_bytes_per_checkpoint": storage.payload_bytes,
    }


def rounded_ms(seconds: Sequence[float]) -> list[float]:
    return [round(s * 1000, 1) for s in seconds]


def main() -> int:
    # Nothing here may reach a real AWS account, whatever this shell has set.
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        os.environ.pop(name, None)
    RESULT_PATH.parent.mkdir(parents=True, exist_ok=True)
    LOG_PATH.write_text("")
    started = time.perf_counter()
    # One bench user asks well over the default 60 questions an hour.
    stack = LocalStack(StackOptions(log_path=LOG_PATH, retry_delay=1, parameters={"ChatRateLimitPerHour": "100000"}))
    try:
        stack.start()
        bench = Bench(stack)
        bench.link_gmail()
        # From here on nothing reads the queue: records go straight to a worker, and
        # the only botocore calls in this process are the in-process worker's.
        assert stack.poller is not None
        stack.poller.stop()
        imports = cold_import_seconds(bench, {"hello": ["app"], "chat": ["app", *CHAT_IMPORTS]})
        import_hello, import_chat = imports["hello"], imports["chat"]
        interpreter = interpreter_start_seconds(bench)
        firsts = first_invocations(bench, stack.functions["WorkerFunction"])
        probes = {"hello": probe(bench, "hello"), "chat": probe(bench, PROMPTS[0])}
        measured = in_process(bench)
    finally:
        stack.stop()
    elapsed = time.perf_counter() - started

    med = statistics.median
    hello_agent = agent_packages(probes["hello"]["packages"])
    chat_agent = agent_packages(probes["chat"]["packages"])
    turns = [seconds for _, seconds in measured.turn_seconds]
    by_prompt = {p: [s for q, s in measured.turn_seconds if q == p] for p in PROMPTS}
    storage = measured.storage
    later = measured.turn_calls[1:]
    dynamodb_per_turn = {
        "reads": spread([dynamodb_calls(t, READS) for t in later]),
        "writes": spread([dynamodb_calls(t, WRITES) for t in later]),
        "checkpoint_reads": spread([dynamodb_calls(t, READS, "checkpoints") for t in later]),
        "checkpoint_writes": spread([dynamodb_calls(t, WRITES, "checkpoints") for t in later]),
    }
    gen2 = [seconds for turn in measured.gc_pauses for generation, seconds in turn if generation == 2]
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "cores": os.cpu_count(),
        "runtime_seconds": round(elapsed, 1),
        "cold_runs": COLD_RUNS,
        "cold": {
            "import_only_ms": {
                "hello": rounded_ms(import_hello),
                "chat": rounded_ms(import_chat),
                "chat_modules": ["app", *CHAT_IMPORTS],
            },
            "interpreter_start_ms": rounded_ms(interpreter),
            "first_invocation_ms": {
                kind: {
                    "total": rounded_ms(timed.total),
                    "init_import_app": rounded_ms(timed.init),
                    "warm_second_record": rounded_ms(timed.warm),
                }
                for kind, timed in firsts.items()
            },
            "probe": {
                kind: {
                    "import_app_ms": round(report["import_s"] * 1000, 1),
                    "first_handler_ms": round(report["handler_s"] * 1000, 1),
                    "modules_loaded": report["modules"],
                    "third_party_packages": report["packages"],
                    "agent_packages": agent_packages(report["packages"]),
                }
                for kind, report in probes.items()
            },
            "hello_loads_agent_libraries": bool(hello_agent),
        },
        "aws_calls": {
            "build_worker": measured.build_calls,
            "per_turn": measured.turn_calls,
            "prompts": [PROMPTS[n % len(PROMPTS)] for n in range(CALL_TURNS)],
            "dynamodb_per_turn_after_the_first": dynamodb_per_turn,
        },
        "checkpoints": {f"after_{turns_}_turns": storage_json(kept) for turns_, kept in storage.items()},
        "latency_ms": {
            "median": round(med(turns) * 1000, 1),
            "p95": round(p95(turns) * 1000, 1),
            "median_by_prompt": {p: round(med(s) * 1000, 1) for p, s in by_prompt.items() if s},
            "warm_turns": [[p, round(s * 1000, 1)] for p, s in measured.turn_seconds],
            "first_turn_of_new_worker": round(measured.first_turn_seconds * 1000, 1),
            "agent_packages_imported_before_first_turn": measured.agent_preloaded,
            "model_calls_per_turn": measured.model_calls,
            "gc_ms_per_turn": [round(sum(s for _, s in turn) * 1000, 1) for turn in measured.gc_pauses],
            "gen2_collections_ms": rounded_ms(gen2),
        },
    }
    RESULT_PATH.write_text(json.dumps(results, indent=2) + "\n")

    line = f"{'':2}{{:<44}}{{:>12}}{{:>12}}{{:>16}}"
    print(
        f"\nWorker: cold start, AWS calls, checkpoints and latency (Python {results['python']}, {os.cpu_count()} cores)"
    )
    print(f"  cold: median of {COLD_RUNS} fresh interpreters with the worker's template environment; the rest")
    print(f"  in process, against moto's server and the emulators over HTTP; {elapsed:.0f} s in all\n")
    print(line.format("cold start (median)", "hello", "chat", "chat, snapshot"))
    h, c, snap = firsts["hello"], firsts["chat"], firsts["chat_snapshot"]
    import_ratio = med(import_chat) / med(import_hello)
    print(line.format("import only (app + what the path imports)", ms(med(import_hello)), ms(med(import_chat)), ""))
    print(f"  {'':44}chat / hello = {import_ratio:.2f}x (target <= 2.50x)")
    print(line.format("first invocation, end to end", ms(med(h.total)), ms(med(c.total)), ms(med(snap.total))))
    print(
        line.format(
            "  init (import app; for a snapshot, not paid)", ms(med(h.init)), ms(med(c.init)), ms(med(snap.init))
        )
    )
    print(
        line.format(
            "  first handler call (+ process start)",
            ms(med(h.total) - med(h.init)),
            ms(med(c.total) - med(c.init)),
            ms(med(snap.total)),
        )
    )
    print(line.format("warm invocation (same process)", ms(med(h.warm)), ms(med(c.warm)), ms(med(snap.warm))))
    print(line.format("  (process start: python -c pass)", ms(med(interpreter)), "", ""))
    print(
        f"  a restored snapshot answers its first chat in {med(snap.total) / med(c.total):.0%} of an on-demand"
        f" worker's time (plus Lambda's restore, not modelled here)"
    )
    hello_modules, chat_modules = probes["hello"]["modules"], probes["chat"]["modules"]
    print(f"  modules loaded after one record: hello {hello_modules}, chat {chat_modules}")
    verdict = "none (ok)" if not hello_agent else "LOADED: " + ", ".join(hello_agent)
    print(f"  agent libraries after hello: {verdict}")
    print(f"  agent libraries after chat: {', '.join(chat_agent) or 'none'}")

    print("\n" + f"{'':2}{'AWS calls per chat turn (one conversation)':<58}{'build':>7}{'turn 1':>8}{'turns 2-6':>11}")
    for name, build, first, later_calls in call_rows(measured.build_calls, measured.turn_calls):
        print(f"{'':2}{name:<58}{build:>7}{first:>8}{later_calls:>11}")
    print(
        f"  DynamoDB per turn (turns 2-6): reads {dynamodb_per_turn['reads']},"
        f" writes {dynamodb_per_turn['writes']} (target <= 4); of which the checkpointer:"
        f" reads {dynamodb_per_turn['checkpoint_reads']}, writes {dynamodb_per_turn['checkpoint_writes']}"
    )

    checks = sorted(storage)
    head = f"{'':2}{'checkpoints of one conversation':<44}" + "".join(f"{f'{n} turns':>12}" for n in checks)
    print("\n" + head)
    rows = [
        ("stored for the conversation", [kb(storage[n].total_bytes) for n in checks]),
        ("latest checkpoint (metadata+payload)", [kb(storage[n].latest_checkpoint_bytes) for n in checks]),
        ("items (checkpoints)", [f"{storage[n].items} ({storage[n].checkpoints})" for n in checks]),
        ("write units of the latest checkpoint", [str(storage[n].latest_write_units) for n in checks]),
    ]
    for name, cells in rows:
        print(f"{'':2}{name:<44}" + "".join(f"{cell:>12}" for cell in cells))

    print("\n" + line.format("agent turn, in process", "median", "p95", "turns"))
    print(line.format("warm worker, all prompts", ms(med(turns)), ms(p95(turns)), len(turns)))
    for prompt, seconds in by_prompt.items():
        if seconds:
            print(line.format(f"  {prompt[:40]}", ms(med(seconds)), ms(p95(seconds)), len(seconds)))
    print(line.format("first turn of a new worker", ms(measured.first_turn_seconds), "", 1))
    if measured.agent_preloaded:
        # The emulators share this process; what they imported the first turn did not pay for.
        print(f"    (imports included, but for {', '.join(measured.agent_preloaded)}: already loaded here)")
    print(f"  model calls per turn: {spread(measured.model_calls)} (median {med(measured.model_calls):g})")
    if gen2:
        print(
            f"  full (gen-2) garbage collections during the warm turns: {len(gen2)}, longest {ms(max(gen2)).strip()}"
            " (this process's heap also holds moto and the emulators)"
        )
    print(f"\n  numbers: {RESULT_PATH.relative_to(ROOT)}; logs: {LOG_PATH.relative_to(ROOT)}")
    if hello_agent:
        print(f"\nFAIL: a worker that handled only `hello` loaded {', '.join(hello_agent)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"\nbench failed: {exc}", file=sys.stderr)
        sys.exit(2)
