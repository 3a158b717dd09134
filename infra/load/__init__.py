"""Load through the local stack: many users, many conversations at once, over HTTP.

Each conversation (a Slack thread in one user's DM) sends its messages one after the
other, as a person does; all conversations run at once. Every message is a signed
Slack event POSTed to the local front (API Gateway's stand-in) and goes the whole way:
ingress processes, SQS FIFO on moto's server, pollers, worker processes, the Slack
emulator. Loopback only; bounded by `deadline_seconds`.

`check(result)` lists what went wrong (a message lost or answered twice, a
conversation processed out of order or two of its messages at once, anything
dead-lettered); `figures(result)` gives throughput and the ingress's latencies.
Run with figures: `make load` (python -m infra.load).
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from infra.local.slack_requests import LOCAL_TEAM_ID, message_event, post_event
from infra.local.stack import LocalStack

COMMANDS = ("hello", "status")  # answered by the worker without the model: the path, not the agent


@dataclass
class Sent:
    conversation: str  # the FIFO group: team:channel:thread
    channel: str
    thread_ts: str
    event_id: str
    status: int
    seconds: float


@dataclass
class LoadResult:
    users: int
    conversations: int
    messages_per_conversation: int
    sent: list[Sent] = field(default_factory=list)
    started: float = 0.0
    sent_by: float = 0.0
    drained_by: float = 0.0
    replies: dict[tuple[str, str], int] = field(default_factory=dict)  # (channel, thread) -> bot replies
    order: dict[str, list[str]] = field(default_factory=dict)  # group -> event ids in processing order
    overlaps: list[str] = field(default_factory=list)  # groups with two records running at once
    dead_letters: int = 0
    timed_out: bool = False
    per_environment: list[int] = field(default_factory=list)  # records each poller/worker environment ran

    @property
    def messages(self) -> int:
        return len(self.sent)


def run_load(
    stack: LocalStack,
    users: int = 50,
    conversations: int = 200,
    messages_per_conversation: int = 3,
    senders: int = 200,
    deadline_seconds: float = 600,
) -> LoadResult:
    assert stack.slack is not None
    result = LoadResult(users, conversations, messages_per_conversation)
    lock = threading.Lock()
    run = f"{int(time.time()) % 1_000_000:06d}"
    plan = []
    for c in range(conversations):
        user = f"U0LOAD{c % users:04d}"
        channel = f"D0LOAD{c % users:04d}"
        plan.append((user, channel, f"{1_790_000_000 + c}.{run}"))

    def deliver(payload: dict, retry_num: int | None) -> tuple[int, float]:
        """(HTTP status, seconds) of one delivery; a client timeout is status 0."""
        started = time.perf_counter()
        try:
            answer = post_event(stack.url, payload, retry_num=retry_num)
        except OSError:  # timed out or refused: Slack would retry
            return 0, time.perf_counter() - started
        return answer.status, answer.seconds

    def converse(user: str, channel: str, thread_ts: str) -> None:
        for n in range(messages_per_conversation):
            payload = message_event(COMMANDS[n % len(COMMANDS)], user=user, channel=channel, thread_ts=thread_ts)
            status, seconds = deliver(payload, None)
            retries = 0
            while status != 200 and retries < 3:  # as Slack retries an unacknowledged event
                retries += 1
                status, _ = deliver(payload, retries)
            sent = Sent(
                f"{LOCAL_TEAM_ID}:{channel}:{thread_ts}", channel, thread_ts, payload["event_id"], status, seconds
            )
            with lock:
                result.sent.append(sent)

    journal_start = [len(p.journal) for p in stack.pollers]
    result.started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(senders, conversations)) as pool:
        for future in [pool.submit(converse, *p) for p in plan]:
            future.result()
    result.sent_by = time.perf_counter()
    deadline = time.monotonic() + deadline_seconds
    try:
        stack.wait_until_drained(timeout=max(1.0, deadline - time.monotonic()))
    except AssertionError:
        result.timed_out = True
    result.drained_by = time.perf_counter()

    threads = {(s.channel, s.thread_ts) for s in result.sent}
    for message in stack.slack.messages():
        key = (message.channel, str(message.thread_ts))
        if key in threads:
            result.replies[key] = result.replies.get(key, 0) + 1
    result.per_environment = [len(p.journal) - start for p, start in zip(stack.pollers, journal_start, strict=True)]
    runs = sorted(
        (r for p, start in zip(stack.pollers, journal_start, strict=True) for r in p.journal[start:]),
        key=lambda r: r.started,
    )
    by_group: dict[str, list] = defaultdict(list)
    for record in runs:
        by_group[record.group].append(record)
    for group, records in by_group.items():
        result.order[group] = [r.deduplication_id for r in records if not r.failed]
        for earlier, later in itertools.pairwise(records):
            if later.batch != earlier.batch and later.started < earlier.finished:
                result.overlaps.append(group)
    sqs = stack.aws.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=stack.physical("MessagesDeadLetterQueue"), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    result.dead_letters = int(attributes["ApproximateNumberOfMessages"])
    return result


def check(result: LoadResult) -> list[str]:
    """Everything that went wrong; empty when the load held."""
    problems: list[str] = []
    if result.timed_out:
        problems.append("the queue did not drain before the deadline")
    refused = [s for s in result.sent if s.status != 200]
    if refused:
        problems.append(f"{len(refused)} messages never acknowledged by the ingress")
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for s in result.sent:
        expected[(s.channel, s.thread_ts)] += 1
    wrong = {k: (result.replies.get(k, 0), n) for k, n in expected.items() if result.replies.get(k, 0) != n}
    if wrong:
        sample = list(wrong.items())[:5]
        problems.append(f"{len(wrong)} conversations without exactly one reply per message (got, sent): {sample}")
    sent_order: dict[str, list[str]] = defaultdict(list)
    for s in result.sent:  # `sent` is appended in each conversation's own order
        sent_order[s.conversation].append(s.event_id)
    out_of_order = [g for g, ids in sent_order.items() if result.order.get(g) != ids]
    if out_of_order:
        problems.append(f"{len(out_of_order)} conversations not processed in the order sent: {out_of_order[:3]}")
    if result.overlaps:
        problems.append(f"{len(set(result.overlaps))} conversations had two messages processed at once")
    if result.dead_letters:
        problems.append(f"{result.dead_letters} messages dead-lettered")
    return problems


def figures(result: LoadResult) -> dict[str, float]:
    latencies = sorted(s.seconds * 1000 for s in result.sent)
    elapsed = result.drained_by - result.started
    return {
        "users": result.users,
        "conversations": result.conversations,
        "messages": result.messages,
        "seconds_total": round(elapsed, 2),
        "messages_per_second": round(result.messages / elapsed, 1) if elapsed else 0.0,
        "ingress_p50_ms": round(statistics.median(latencies), 1) if latencies else 0.0,
        "ingress_p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1)
        if latencies
        else 0.0,
        "ingress_max_ms": round(latencies[-1], 1) if latencies else 0.0,
    }
