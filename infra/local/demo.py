"""`make demo`: one Slack conversation through the whole local stack, printed.

Everything is real but the outside world: the ingress, worker and callback run in
their own processes against moto's server (provisioned from template.yaml) and talk
to emulators of Slack and Google over HTTP through their real client libraries.
"""

from __future__ import annotations

import os
import re
import sys
import textwrap
import time
from html import unescape
from pathlib import Path
from typing import Any

from infra.local.browser import connect_gmail
from infra.local.emulators.slack import PostedMessage, SlackEmulator
from infra.local.slack_requests import (
    LOCAL_DM_CHANNEL,
    app_home_opened_event,
    block_action,
    message_event,
    post_event,
    post_interaction,
    view_submission,
)
from infra.local.stack import LocalStack, StackOptions

LOG_PATH = Path(".local/demo.log")


def say(text: str) -> None:
    print(text, flush=True)


def show_reply(message: PostedMessage) -> None:
    where = f"thread {message.thread_ts}" if message.thread_ts else "DM"
    if message.ephemeral:
        where += ", only ada sees this"
    say(f"  bot ({where}):")
    for line in unescape(message.text).splitlines() or [""]:  # as Slack shows &lt; and &gt;
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


def agent_says(stack: LocalStack, slack: SlackEmulator, text: str) -> None:
    """A chat turn: the bot posts a placeholder at once and edits it into the answer."""
    before = {m.ts for m in slack.messages(channel=LOCAL_DM_CHANNEL)}
    say(f"\n> ada: {text}")
    started = time.perf_counter()
    answer = post_event(stack.url, message_event(text))
    if answer.status != 200:
        raise SystemExit(f"the ingress refused the message: {answer.status} {answer.body}")
    stack.wait_until_drained(timeout=120)
    new = [m for m in slack.messages(channel=LOCAL_DM_CHANNEL) if m.ts not in before]
    if not new:
        raise SystemExit("the bot did not answer")
    say(f"  (answered in {time.perf_counter() - started:.1f} s; placeholder edited {new[0].edits}x)")
    for reply in new:
        show_reply(reply)


def opens_the_dm(stack: LocalStack, slack: SlackEmulator) -> None:
    """ada opens the bot's DM (Messages tab): the suggested prompts Slack shows her."""
    say("\n  ada opens the Mailroom DM")
    post_event(stack.url, app_home_opened_event())
    stack.wait_until_drained()
    prompts = slack.suggested_prompts(LOCAL_DM_CHANNEL)
    if prompts is None:
        say("  (no suggested prompts)")
        return
    say(f"  suggested prompts ({prompts['title']}): " + " | ".join(p["title"] for p in prompts["prompts"]))


def agent_says_in_thread(stack: LocalStack, slack: SlackEmulator, text: str, thread_ts: str) -> None:
    """A turn in an agent thread, printed as Slack shows it: the status line of each step
    and the answer's stream as it arrives, then the feedback buttons under it."""
    say(f"\n> ada (agent thread {thread_ts}): {text}")
    seen = len(slack.calls())
    started, wall_started = time.perf_counter(), time.time()
    if post_event(stack.url, message_event(text, thread_ts=thread_ts)).status != 200:
        raise SystemExit("the ingress refused the message")
    deadline, next_check = started + 120, 0.0
    while time.perf_counter() < deadline:
        calls = slack.calls()
        for call in calls[seen:]:
            show_live(call, wall_started)
        seen = len(calls)
        if time.perf_counter() > next_check:
            next_check = time.perf_counter() + 0.5
            answered = [m for m in slack.messages(LOCAL_DM_CHANNEL, thread_ts) if not m.streaming]
            if answered and stack.queue_depth() == 0:
                break
        time.sleep(0.02)
    else:
        raise SystemExit("the bot did not answer")
    for message in slack.messages(LOCAL_DM_CHANNEL, thread_ts):
        show_reply(message)
        if any(b.get("type") == "context_actions" for b in message.blocks):
            say("    └ [👍] [👎]  (feedback buttons)")


def show_live(call: dict[str, Any], wall_started: float) -> None:
    at = f"+{call['ts'] - wall_started:4.1f}s"  # since ada pressed Enter
    args = call["args"]
    if call["method"] == "assistant.threads.setStatus":
        status = args.get("status") or ""
        say(f"  {at} status: {'(cleared)' if not status else 'Mailroom ' + status}")
    elif call["method"] == "assistant.threads.setTitle":
        say(f"  {at} thread title: {args.get('title')}")
    elif call["method"] in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
        pieces = [c.get("text", "") for c in args.get("chunks") or [] if c.get("type") == "markdown_text"]
        words = "".join(pieces) + str(args.get("markdown_text") or "")
        verb = call["method"].removeprefix("chat.")
        outcome = "" if call["ok"] else f"  -> {call['error']}"
        tasks = [c for c in args.get("chunks") or [] if c.get("type") == "task_update"]
        if words or not tasks or outcome:
            say(f"  {at} {verb}: {words!r}{outcome}")
        for task in tasks:  # a tool step's card in the reply
            say(f"  {at} {verb}: task card “{task.get('title')}” {task.get('status')}")
    elif call["method"] == "chat.update":
        say(f"  {at} chat.update (the whole answer, in place)")


def approve_in_slack(stack: LocalStack, slack: SlackEmulator) -> None:
    """ada presses Approve on the request the bot posted; the send happens exactly once."""
    [request] = [
        m for m in slack.messages(channel=LOCAL_DM_CHANNEL) if any(b.get("block_id") == "approval" for b in m.blocks)
    ]
    [value] = {e["value"] for b in request.blocks for e in b.get("elements", []) if "value" in e}
    say("\n  ada presses *Approve and send*")
    answer = post_interaction(stack.url, block_action("approve_send", value, message_ts=request.ts))
    say(f"  ingress: HTTP {answer.status} in {answer.seconds * 1000:.0f} ms")
    stack.wait_until_drained(timeout=60)
    [decided] = [m for m in slack.messages(channel=LOCAL_DM_CHANNEL) if m.ts == request.ts]
    show_reply(decided)
    if stack.gmail is not None:
        for sent in stack.gmail.sent("ada@example.com")[-1:]:
            mail = sent.email
            say(
                f"  Gmail sent {sent.id}: to {mail['To']}, subject {mail['Subject']!r}, Message-ID {mail['Message-ID']}"
            )
        say(f"  messages sent through Gmail in this demo: {stack.gmail.send_count}")


def edit_in_slack(stack: LocalStack, slack: SlackEmulator, changes: dict[str, str]) -> None:
    """ada presses Edit: the worker checks the press and opens a modal prefilled with the
    message (views.open, within the trigger's 3 s); she changes it and submits, which
    replaces the request with a new card."""
    [request] = [
        m for m in slack.messages(channel=LOCAL_DM_CHANNEL) if any(b.get("block_id") == "approval" for b in m.blocks)
    ]
    [value] = {e["value"] for b in request.blocks for e in b.get("elements", []) if "value" in e}
    say("\n  ada presses *Edit*")
    answer = post_interaction(stack.url, block_action("edit_send", value, message_ts=request.ts))
    say(f"  ingress: HTTP {answer.status} in {answer.seconds * 1000:.0f} ms")
    stack.wait_until_drained(timeout=60)
    [view] = [v for v in slack.views().values() if any(b.get("type") == "input" for b in v["blocks"])]
    say("  worker: views.open with the press's trigger id (Slack takes it for 3 s)")
    form = {b["block_id"]: b["element"].get("initial_value") or "" for b in view["blocks"] if b["type"] == "input"}
    say(f"  modal prefilled: to {form['to']!r}, subject {form['subject']!r}, body {form['body'][:60]!r}…")
    form |= changes
    say(f"  ada changes {', '.join(changes)} and presses *{view['submit']['text']}*")
    answer = post_interaction(stack.url, view_submission(view, form))
    say(f"  ingress: HTTP {answer.status}")
    stack.wait_until_drained(timeout=60)
    [old] = [m for m in slack.messages(channel=LOCAL_DM_CHANNEL) if m.ts == request.ts]
    show_reply(old)
    [new] = [
        m for m in slack.messages(channel=LOCAL_DM_CHANNEL) if any(b.get("block_id") == "approval" for b in m.blocks)
    ]
    show_card(new)


def read_and_tidy(stack: LocalStack, slack: SlackEmulator) -> None:
    """An attachment read as text, then an archive and its undo, with Gmail's labels shown."""
    agent_says(stack, slack, "What does the PDF receipt attached to my order say?")

    def inbox_of_frank() -> str:
        if stack.gmail is None:
            return ""
        found = stack.gmail.search("ada@example.com", "from:frank")
        return ", ".join(f"{m.id} labels {m.label_ids}" for m in found)

    agent_says(stack, slack, "Archive the emails from frank")
    say(f"  Gmail now: {inbox_of_frank()}")
    agent_says(stack, slack, "undo that")
    say(f"  Gmail now: {inbox_of_frank()}")


def show_card(message: PostedMessage) -> None:
    say("  bot (DM): an approval card")
    for block in message.blocks:
        text = (block.get("text") or {}).get("text") or " ".join(
            e.get("text", {}).get("text", "") if isinstance(e.get("text"), dict) else str(e.get("text", ""))
            for e in block.get("elements", [])
        )
        for line in str(text).splitlines():
            say(textwrap.indent(textwrap.fill(line, 88) if line else "", "    │ "))


def button_url(message: PostedMessage) -> str:
    for block in message.blocks:
        for element in block.get("elements", []):
            if element.get("url"):
                return str(element["url"])
    raise SystemExit("the bot's message has no link button")


def open_in_browser(stack: LocalStack, url: str) -> str:
    """Do what the user's browser does: Mailroom's page, Sign in with Slack (the
    emulated browser is signed in as ada), Google's consent, back to Mailroom."""
    _, html = connect_gmail(url)
    title = re.search(r"<h1>(.*?)</h1>", html, re.S)
    return unescape(title.group(1)) if title else html[:80]


def main() -> int:
    say("Starting Mailroom locally: moto server + Slack and Google emulators + 3 function processes")
    started = time.perf_counter()
    # With a real OpenAI key in the environment the agent uses the real model.
    real_model = {"OPENAI_API_KEY": os.environ["OPENAI_API_KEY"]} if os.environ.get("OPENAI_API_KEY") else {}
    with LocalStack(StackOptions(log_path=LOG_PATH, secrets=real_model)) as stack:
        assert stack.slack is not None
        say(f"  API front  {stack.url}  (POST /slack/events, POST /slack/interactions, GET /auth/*)")
        say(f"  AWS        {stack.aws.endpoint_url}  (tables, FIFO queue + DLQ, KMS keys, secrets from template.yaml)")
        say(f"  Slack API  {stack.slack.api_url}")
        say(f"  ready in {time.perf_counter() - started:.1f} s; function logs in {LOG_PATH}")

        user_says(stack, stack.slack, "hello")
        user_says(stack, stack.slack, "status")
        [prompt] = user_says(stack, stack.slack, "auth")
        say("\n  ada presses Connect Gmail, signs in with Slack, allows access on Google's page (emulated)")
        before = len(stack.slack.messages(channel=LOCAL_DM_CHANNEL))
        page = open_in_browser(stack, button_url(prompt))
        say(f"  browser: {page}")
        for reply in stack.slack.wait_for_messages(before + 1, channel=LOCAL_DM_CHANNEL, timeout=30)[before:]:
            show_reply(reply)
        user_says(stack, stack.slack, "status")
        opens_the_dm(stack, stack.slack)

        model = "OpenAI (OPENAI_API_KEY is set)" if stack.openai is None else "scripted emulator"
        say(f"\n  the agent's model: {model}")
        agent_says(stack, stack.slack, "What did Alice send me this week?")
        agent_says(stack, stack.slack, "Draft a reply saying Thursday works")
        if stack.gmail is not None:
            for draft in stack.gmail.drafts("ada@example.com"):
                mail = draft.message.email
                say(f"  Gmail draft {draft.id}: to {mail['To']}, subject {mail['Subject']!r}")
                say(f"    in Gmail thread {draft.message.thread_id}")
        agent_says(stack, stack.slack, "send it")
        approve_in_slack(stack, stack.slack)
        agent_says(stack, stack.slack, "send an email to bob@example.com about lunch, saying see you at noon")
        edit_in_slack(stack, stack.slack, {"subject": "Lunch on Friday", "body": "See you at one on Friday instead."})
        approve_in_slack(stack, stack.slack)
        agent_says(stack, stack.slack, "What did Bob send me this week?")
        read_and_tidy(stack, stack.slack)
        say("\n  In Slack's agent surface each conversation is a thread: status lines, a streamed answer")
        agent_says_in_thread(stack, stack.slack, "What did Alice send me this week?", "1795200000.000100")

        user_says(stack, stack.slack, "revoke")
        user_says(stack, stack.slack, "status")

        stack.wait_until_drained()
        say("\nDone: each message went Slack -> ingress -> SQS FIFO -> worker -> Slack.")
        say(f"  queue depth now: {stack.queue_depth()}, dead letters: {stack.queue_depth('MessagesDeadLetterQueue')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
