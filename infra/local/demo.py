"""`make demo`: one Slack conversation through the whole local stack, printed.

Everything is real but the outside world: the ingress, worker and callback run in
their own processes against moto's server (provisioned from template.yaml) and talk
to emulators of Slack and Google over HTTP through their real client libraries.
"""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

from infra.local.emulators.slack import PostedMessage, SlackEmulator
from infra.local.slack_requests import LOCAL_DM_CHANNEL, message_event, post_event
from infra.local.stack import LocalStack, StackOptions

LOG_PATH = Path(".local/demo.log")


def say(text: str) -> None:
    print(text, flush=True)


def show_reply(message: PostedMessage) -> None:
    where = f"thread {message.thread_ts}" if message.thread_ts else "DM"
    say(f"  bot ({where}):")
    for line in message.text.splitlines() or [""]:
        say(textwrap.indent(textwrap.fill(line, 88) if line else "", "    │ "))


def user_says(stack: LocalStack, slack: SlackEmulator, text: str, expect: int = 1) -> list[PostedMessage]:
    before = len(slack.messages(channel=LOCAL_DM_CHANNEL))
    say(f"\n> ada: {text}")
    answer = post_event(stack.url, message_event(text))
    say(f"  ingress: HTTP {answer.status} in {answer.seconds * 1000:.0f} ms")
    if answer.status != 200:
        raise SystemExit(f"the ingress refused the message: {answer.status} {answer.body}")
    replies = slack.wait_for_messages(before + expect, channel=LOCAL_DM_CHANNEL, timeout=60)[before:]
    for reply in replies:
        show_reply(reply)
    return replies


def main() -> int:
    say("Starting Mailroom locally: moto server + Slack and Google emulators + 3 function processes")
    started = time.perf_counter()
    with LocalStack(StackOptions(log_path=LOG_PATH)) as stack:
        assert stack.slack is not None
        say(f"  API front  {stack.url}  (POST /slack/events, POST /slack/interactions, GET /auth/callback)")
        say(f"  AWS        {stack.aws.endpoint_url}  (tables, FIFO queue + DLQ, KMS key, secret from template.yaml)")
        say(f"  Slack API  {stack.slack.api_url}")
        say(f"  ready in {time.perf_counter() - started:.1f} s; function logs in {LOG_PATH}")

        user_says(stack, stack.slack, "hello")

        stack.wait_until_drained()
        say("\nDone: each message went Slack -> ingress -> SQS FIFO -> worker -> Slack.")
        say(f"  queue depth now: {stack.queue_depth()}, dead letters: {stack.queue_depth('MessagesDeadLetterQueue')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
