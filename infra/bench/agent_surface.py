"""`python -m infra.bench.agent_surface`: how soon a user sees the agent at work.

Over the local stack (moto's server, the Slack, Google/Gmail and OpenAI emulators, the
functions in their own processes), a linked user asks in an agent thread; measured from
the moment the queue poller hands the message to the worker function:

- first visible status: the first non-empty assistant.threads.setStatus Slack received;
- first streamed token: the first stream call (chat.startStream/appendStream) that carried
  the answer's words (the reply may start earlier with a step's task card).

Cold: a fresh worker process (the function was stopped before the message). Warm: the
same process again. The model is the scripted emulator, so this is Mailroom's own
latency (imports, DynamoDB, Gmail and Slack calls), not a model's.

Prints a table and writes .local/bench-agent-surface.json.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from infra.local.browser import connect_gmail
from infra.local.slack_requests import LOCAL_DM_CHANNEL, message_event, post_event
from infra.local.stack import LocalStack, StackOptions
from infra.local.template import ROOT

RUNS = int(os.environ.get("BENCH_SURFACE_RUNS", "3"))
QUESTION = "What did Alice send me this week?"  # search, read, summary (default mail script)
RESULT_PATH = ROOT / ".local/bench-agent-surface.json"
LOG_PATH = ROOT / ".local/bench-agent-surface.log"


def link(stack: LocalStack) -> None:
    assert stack.slack is not None
    post_event(stack.url, message_event("auth"))
    stack.wait_until_drained()
    prompt = stack.slack.messages(channel=LOCAL_DM_CHANNEL)[-1]
    [url] = [e["url"] for b in prompt.blocks for e in b.get("elements", []) if "url" in e]
    status, _ = connect_gmail(url)
    if status != 200:
        raise RuntimeError(f"linking Gmail failed: HTTP {status}")
    stack.wait_until_drained()


def one_turn(stack: LocalStack, thread_ts: str) -> dict[str, float]:
    """Milliseconds from hand-over to the first status and to the first streamed token."""
    assert stack.slack is not None and stack.poller is not None
    stack.slack.reset()
    handed_before = len(stack.poller.handed_over)
    if post_event(stack.url, message_event(QUESTION, thread_ts=thread_ts)).status != 200:
        raise RuntimeError("the ingress refused the message")
    stack.wait_until_drained(timeout=120)
    handed = stack.poller.handed_over[handed_before]
    statuses = [c for c in stack.slack.calls("assistant.threads.setStatus") if c["args"].get("status")]
    streams = [c for c in stack.slack.calls() if c["ok"] and _carries_words(c)]
    if not statuses or not streams:
        raise RuntimeError("no status or no stream: is the agent surface on?")
    total = max(c["ts"] for c in stack.slack.calls())
    return {
        "first_status_ms": (statuses[0]["ts"] - handed) * 1000,
        "first_token_ms": (streams[0]["ts"] - handed) * 1000,
        "last_call_ms": (total - handed) * 1000,
    }


def _carries_words(call: dict[str, Any]) -> bool:
    if call["method"] not in ("chat.startStream", "chat.appendStream"):
        return False
    chunks = call["args"].get("chunks") or []
    return bool(call["args"].get("markdown_text")) or any(c.get("type") == "markdown_text" for c in chunks)


def main() -> int:
    results: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    with LocalStack(StackOptions(log_path=LOG_PATH)) as stack:
        link(stack)
        worker = stack.functions["WorkerFunction"]
        for run in range(RUNS):
            worker.stop()  # the next message starts a fresh worker process
            results["cold"].append(one_turn(stack, f"1795300{run:03d}.000100"))
            results["warm"].append(one_turn(stack, f"1795300{run:03d}.000200"))
    print(f"\nAgent surface: after the queue hands the message over (median of {RUNS}; emulated model)")
    print(f"  {'worker':<8}{'first status':>16}{'first token':>16}{'last Slack call':>18}")
    summary: dict[str, dict[str, float]] = {}
    for kind, turns in results.items():
        summary[kind] = {key: statistics.median(t[key] for t in turns) for key in turns[0]}
        row = summary[kind]
        print(
            f"  {kind:<8}{row['first_status_ms']:>13.0f} ms{row['first_token_ms']:>13.0f} ms"
            f"{row['last_call_ms']:>15.0f} ms"
        )
    Path(RESULT_PATH).parent.mkdir(parents=True, exist_ok=True)
    Path(RESULT_PATH).write_text(json.dumps({"runs": results, "median": summary, "measured_at": time.time()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
