"""`make load`: the load run with its figures (python -m infra.load --help)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from infra.load import check, figures, run_load
from infra.local.stack import LocalStack, StackOptions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--messages", type=int, default=3, help="messages per conversation")
    parser.add_argument("--ingress", type=int, default=4, help="ingress execution environments")
    parser.add_argument("--workers", type=int, default=4, help="worker execution environments (and pollers)")
    parser.add_argument("--deadline", type=float, default=600, help="seconds the queue has to drain")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    log = Path(tempfile.mkdtemp(prefix="mailroom-load-")) / "functions.log"
    options = StackOptions(
        log_path=log,
        retry_delay=1,
        parameters={"ChatRateLimitPerHour": "100000"},
        concurrency={"IngressFunction": args.ingress, "WorkerFunction": args.workers},
    )
    with LocalStack(options) as stack:
        # Warm every environment first, as a steady state would have them.
        from infra.local.slack_requests import message_event, post_event

        for _ in range(args.ingress + args.workers):
            post_event(stack.url, message_event("hello", user="U0WARM", channel="D0WARM"))
        stack.wait_until_drained(timeout=120)
        result = run_load(stack, args.users, args.conversations, args.messages, deadline_seconds=args.deadline)
    numbers = figures(result)
    problems = check(result)
    if args.json:
        print(json.dumps({**numbers, "problems": problems}))
    else:
        print(
            f"load: {numbers['users']} users, {numbers['conversations']} conversations at once, "
            f"{numbers['messages']} messages through {args.ingress} ingress and {args.workers} worker environments"
        )
        print(f"  drained in {numbers['seconds_total']} s: {numbers['messages_per_second']} messages/s end to end")
        print(
            f"  ingress (HTTP, signed event -> 200): p50 {numbers['ingress_p50_ms']} ms, "
            f"p99 {numbers['ingress_p99_ms']} ms, max {numbers['ingress_max_ms']} ms"
        )
        print("  held: every message answered once, each conversation in order" if not problems else "  PROBLEMS:")
        for problem in problems:
            print(f"    - {problem}")
        print(f"  function logs: {log}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
