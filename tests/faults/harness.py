"""The fault matrix's parts: the flows a user goes through, the steps of each flow where
a dependency is called, the kinds of fault, and the invariants every case must keep.

A *step* is one call a flow makes to one dependency (DynamoDB PutItem of the
checkpoint, Gmail messages.send, Slack chat.update, ...). A *fault* is what happens to
that call: an error, throttling, a timeout, a reset connection, or the function's
process killed at that call (`kill`) or right after the call took effect
(`kill-after`). Transient faults are an *outage*: every matching call fails until the
invocation that met it has ended, then the dependency is back (so SQS's redelivery,
or Slack's retry for the ingress, meets a working dependency).

Invariants, per case (see `check_invariants`):
- the message ends answered, or in the DLQ with the user told its reference;
- answered once: no duplicate answer, no "Working on it" placeholder left behind;
- no mail sent twice, none sent without the press;
- the next message in the same conversation is answered normally.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.local.browser import connect_gmail
from infra.local.emulators.base import Emulator
from infra.local.emulators.slack import PostedMessage
from infra.local.faults import ERROR_CODE, THROTTLE_CODE
from infra.local.slack_requests import (
    LOCAL_DM_CHANNEL,
    HttpAnswer,
    message_event,
    post_event,
)
from infra.local.stack import LocalStack

KINDS = ("error", "throttle", "timeout", "reset", "kill", "kill-after")
HOLD_SECONDS = 2.0  # how long a timeout fault holds a call
WORKING = "Working on it"
FAILURE_WORDS = ("went wrong", "Reference", "reference", "not answering")
ALICE_QUESTION = "What did Alice send me this week?"


@dataclass(frozen=True)
class Step:
    flow: str  # hello, status, auth, callback, revoke, chat, send
    dependency: str  # dynamodb, sqs, kms, secretsmanager, slack, google-token, gmail, openai
    target: str  # the AWS operation, or the HTTP path (prefix) at the emulator
    method: str | None = None  # HTTP method at the emulator
    function: str = "WorkerFunction"  # whose call it is (who is killed)
    skip: int = 0  # let this many matching calls through first (e.g. the idempotency PutItem)
    note: str = ""
    # AWS only: the fault hits only calls whose request body holds this text (an index,
    # a key prefix), so it breaks the named call whatever else uses the same operation.
    body_has: str | None = None
    label: str = ""  # names which call of that operation, in the id (e.g. "by-owner")
    # A call whose failure the product absorbs (a status line, suggested prompts): the
    # turn must still be answered, and an opening must end quietly, never in the DLQ.
    cosmetic: bool = False

    @property
    def id(self) -> str:
        name = self.target.rsplit("/", 1)[-1] if "/" in self.target else self.target
        where = {INGRESS: "@ingress", CALLBACK: "@callback"}.get(self.function, "")
        which = f".{self.label}" if self.label else ""
        return f"{self.flow}-{self.dependency}-{name}{which}{'+' + str(self.skip) if self.skip else ''}{where}"

    @property
    def is_aws(self) -> bool:
        return self.dependency in ("dynamodb", "sqs", "kms", "secretsmanager")


INGRESS, CALLBACK = "IngressFunction", "OAuthCallbackFunction"
STEPS: tuple[Step, ...] = (
    # hello: no link needed
    Step("hello", "sqs", "SendMessage", function=INGRESS),
    Step("hello", "secretsmanager", "GetSecretValue", function=INGRESS, note="cold ingress"),
    Step("hello", "secretsmanager", "GetSecretValue", function="WorkerFunction", note="cold worker"),
    Step("hello", "dynamodb", "PutItem", note="idempotency record"),
    Step("hello", "dynamodb", "UpdateItem", note="idempotency result"),
    Step("hello", "slack", "/api/chat.postMessage", "POST"),
    # status
    Step("status", "dynamodb", "GetItem", skip=0, note="token row"),
    Step("status", "kms", "Decrypt"),
    Step("status", "slack", "/api/chat.postMessage", "POST"),
    # auth and Google's redirect back
    Step("auth", "dynamodb", "PutItem", skip=1, note="oauth state"),
    Step("auth", "slack", "/api/chat.postEphemeral", "POST"),
    Step("callback", "dynamodb", "DeleteItem", function=CALLBACK, note="state consumed"),
    Step("callback", "google-token", "/token", "POST", function=CALLBACK),
    Step("callback", "gmail", "/gmail/v1/users/me/profile", "GET", function=CALLBACK),
    Step("callback", "kms", "GenerateDataKey", function=CALLBACK),
    Step("callback", "dynamodb", "PutItem", function=CALLBACK, note="token row"),
    Step("callback", "slack", "/api/chat.postMessage", "POST", function=CALLBACK),
    # revoke
    Step("revoke", "kms", "Decrypt"),
    Step("revoke", "google-token", "/revoke", "POST"),
    Step("revoke", "dynamodb", "DeleteItem"),
    Step("revoke", "slack", "/api/chat.postMessage", "POST"),
    # a chat turn
    Step("chat", "sqs", "SendMessage", function=INGRESS),
    Step("chat", "dynamodb", "Query", note="checkpoint read"),
    Step("chat", "dynamodb", "BatchWriteItem", note="checkpoint write (one batch per saved turn)"),
    Step("chat", "kms", "Decrypt"),
    Step("chat", "google-token", "/token", "POST", note="access token refresh"),
    Step("chat", "gmail", "/gmail/v1/users/me/messages", "GET"),
    Step("chat", "openai", "/v1/chat/completions", "POST"),
    Step("chat", "openai", "/v1/chat/completions", "POST", skip=1, note="after a tool call"),
    # In a thread (the agent surface) the answer streams as the reply to the question.
    Step("chat", "slack", "/api/chat.startStream", "POST", note="the answer's stream"),
    Step("chat", "slack", "/api/chat.stopStream", "POST", note="the answer's end"),
    # approve -> send
    Step("send", "sqs", "SendMessage", function=INGRESS),
    Step("send", "dynamodb", "GetItem", skip=1),
    Step("send", "kms", "Decrypt"),
    Step("send", "gmail", "/gmail/v1/users/me/drafts/send", "POST", note="a draft is sent as itself"),
    Step("send", "gmail", "/gmail/v1/users/me/messages", "GET", note="the already-sent lookup"),
    Step("send", "openai", "/v1/chat/completions", "POST"),
    Step("send", "slack", "/api/chat.update", "POST"),
    # the approval record's conditional writes: the decision, the attempt, the outcome
    Step("send", "dynamodb", "UpdateItem", body_has="send_by = :send_by", label="decide"),
    Step("send", "dynamodb", "UpdateItem", body_has="ADD attempts :one", label="attempt"),
    Step("send", "dynamodb", "UpdateItem", body_has="gmail_id = :gmail_id", label="sent"),
    # -- calls added since the matrix was first written (flows in tests/faults/flows.py) --
    # a chat turn: the conversation's ownership claim (forget.ThreadIndex.claim: the owner
    # and the user's thread index in one transaction), and the status lines (cosmetic: the
    # turn must still answer)
    Step("chat", "dynamodb", "TransactWriteItems", note="ownership claim"),
    Step("chat", "slack", "/api/assistant.threads.setStatus", "POST", cosmetic=True),
    # a search with several results: their metadata in one Gmail batch request
    Step("search", "gmail", "/batch", "POST", note="search_emails' metadata batch"),
    # reading an attachment (read_attachment: messages.attachments.get)
    Step("read", "gmail", "/gmail/v1/users/me/messages/*/attachments", "GET"),
    # tidying: label emails under a new label (labels.create, then messages.batchModify)
    Step("tidy", "gmail", "/gmail/v1/users/me/labels", "POST", note="labels.create"),
    Step("tidy", "gmail", "/gmail/v1/users/me/messages/batchModify", "POST"),
    # Edit on an approval card: the worker opens the modal with the press's trigger id
    Step("edit", "slack", "/api/views.open", "POST"),
    # opening the DM (app_home_opened): suggested prompts, cosmetic
    Step("open", "slack", "/api/assistant.threads.setSuggestedPrompts", "POST", cosmetic=True),
    # a 👍 under an answer (feedback.FeedbackRecords.record)
    Step("feedback", "dynamodb", "UpdateItem", body_has="feedback#", label="feedback"),
    # revoke while a request waits for a press: the approvals' by-owner index, to cancel it
    Step("forget", "dynamodb", "Query", body_has='"by-owner"', label="by-owner"),
    # the scheduled expiry sweep (approval_sweep): the sparse pending-by-expiry index
    Step("sweep", "dynamodb", "Query", body_has='"pending-by-expiry"', label="pending-by-expiry"),
)


# -- the stack -------------------------------------------------------------------------
class FaultStack:
    """One local stack for a module of cases, with helpers to set up, break and check."""

    def __init__(self, stack: LocalStack):
        self.stack = stack
        self._case = 0

    @property
    def slack(self):
        assert self.stack.slack is not None
        return self.stack.slack

    @property
    def google(self):
        assert self.stack.google is not None
        return self.stack.google

    @property
    def gmail(self):
        assert self.stack.gmail is not None
        return self.stack.gmail

    @property
    def openai(self):
        assert self.stack.openai is not None
        return self.stack.openai

    @property
    def proxy(self):
        assert self.stack.aws_faults is not None
        return self.stack.aws_faults

    def emulator_for(self, dependency: str) -> Emulator:
        # Gmail is served by the Google emulator (GmailMailbox only adds the mailbox).
        return {"slack": self.slack, "google-token": self.google, "gmail": self.google, "openai": self.openai}[
            dependency
        ]

    def clear_faults(self) -> None:
        self.proxy.clear()
        for emulator in (self.slack, self.google, self.openai):
            emulator.clear_faults()
        with self.openai.lock:
            self.openai._faults.clear()

    def new_thread(self) -> str:
        self._case += 1
        return f"{1_800_000_000 + int(time.time()) % 100_000}.{self._case:06d}"

    def reset(self) -> None:
        self.stack.wait_until_drained(timeout=120)
        self.clear_faults()
        self.dead_letters()  # empty the DLQ: each case reads only its own

    # -- what the user sees --------------------------------------------------------------
    def thread(self, thread_ts: str) -> list[PostedMessage]:
        return self.slack.messages(channel=LOCAL_DM_CHANNEL, thread_ts=thread_ts)

    def say(self, text: str, thread_ts: str) -> tuple[dict[str, Any], HttpAnswer]:
        payload = message_event(text, thread_ts=thread_ts)
        return payload, post_event(self.stack.url, payload)

    def dead_letters(self) -> list[str]:
        """Bodies of the messages in the DLQ now; they are removed."""
        sqs = self.stack.aws.client("sqs")
        url = self.stack.physical("MessagesDeadLetterQueue")
        bodies: list[str] = []
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return bodies
            bodies += [m["Body"] for m in batch]
            sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
            )

    # -- setting up ----------------------------------------------------------------------
    def linked(self) -> bool:
        """ada's link is stored, marked working, and its grant is alive at Google (an
        earlier case may have broken or revoked it)."""
        rows = self.stack.scan("TokensTable")
        healthy = [r for r in rows if r.get("status", {}).get("S") == "linked"]
        return bool(healthy) and bool(self.google.live_refresh_tokens())

    def forget_link(self) -> None:
        """Delete stored links directly: setting up a case, not part of what is tested."""
        ddb = self.stack.aws.client("dynamodb")
        table = self.stack.physical("TokensTable")
        schema = ddb.describe_table(TableName=table)["Table"]["KeySchema"]
        keys = [k["AttributeName"] for k in schema]
        for row in self.stack.scan("TokensTable"):
            ddb.delete_item(TableName=table, Key={k: row[k] for k in keys})

    def link(self) -> None:
        """Link ada's Gmail (auth, consent, callback) in a thread of its own."""
        self.forget_link()
        thread = self.new_thread()
        self.say("auth", thread)
        self.stack.wait_until_drained(timeout=60)
        status, _ = connect_gmail(auth_url(self.thread(thread)))
        assert status == 200, "linking failed while setting up a case"
        self.stack.wait_until_drained(timeout=60)

    def approval_card(self, thread_ts: str) -> PostedMessage:
        self.say("Draft a reply to Bob saying Thursday works", thread_ts)
        self.stack.wait_until_drained(timeout=60)
        self.say("send it", thread_ts)
        self.stack.wait_until_drained(timeout=60)
        cards = [m for m in self.thread(thread_ts) if is_card(m)]
        assert len(cards) == 1, "setting up a case: no approval card"
        return cards[0]

    # -- breaking ------------------------------------------------------------------------
    def arm(self, step: Step, kind: str) -> Callable[[], int]:
        """Set the fault; returns a function telling how many times it fired so far."""
        function = self.stack.functions[step.function]
        one_shot = kind in ("kill", "kill-after")
        times = 1 if one_shot else 10_000
        if step.is_aws:
            service = step.dependency
            options: dict[str, Any] = {"times": times, "skip": step.skip, "body_contains": step.body_has}
            if kind == "error":
                options |= {"kind": "error", "code": ERROR_CODE[service]}
            elif kind == "throttle":
                options |= {"kind": "error", "code": THROTTLE_CODE[service]}
            elif kind == "timeout":
                options |= {"kind": "timeout", "seconds": HOLD_SECONDS}
            elif kind == "reset":
                options |= {"kind": "reset"}
            else:  # the process dies at the call (or right after it took effect)
                options |= {"kind": "reset", "on_match": function.kill, "after": kind == "kill-after"}
            fault = self.proxy.fail(service, step.target, **options)
            return lambda: fault.fired
        emulator = self.emulator_for(step.dependency)
        common: dict[str, Any] = {"method": step.method, "times": times, "skip": step.skip}
        if kind == "error":
            transport = emulator.add_fault("status", step.target, status=503, body=error_body(step, 503), **common)
        elif kind == "throttle":
            headers = {"Retry-After": "1"}
            transport = emulator.add_fault("status", step.target, status=429, body=error_body(step, 429), **common)
            transport.headers = headers
        elif kind == "timeout":
            transport = emulator.add_fault("timeout", step.target, seconds=HOLD_SECONDS, **common)
        elif kind == "reset":
            transport = emulator.add_fault("reset", step.target, **common)
        else:  # the process dies at the call (or right after it took effect)
            transport = emulator.add_fault(
                "reset", step.target, on_match=function.kill, after=kind == "kill-after", **common
            )
        return lambda: transport.fired

    def end_outage_after_first_hit(self, fired: Callable[[], int], function: str, timeout: float = 60) -> bool:
        """Wait until the fault fired and the invocation that met it ended; then clear
        every fault (the dependency is back). False if the step was never reached."""
        deadline = time.monotonic() + timeout
        worker = self.stack.functions[function]
        # Until it fires, or the message was done with (drained) without reaching the step.
        while fired() == 0 and time.monotonic() < deadline:
            if self.stack.is_drained() and not worker.busy and fired() == 0:
                break
            time.sleep(0.02)
        reached = fired() > 0
        while worker.busy and time.monotonic() < deadline:
            time.sleep(0.02)
        self.clear_faults()
        return reached


def error_body(step: Step, status: int) -> dict[str, Any]:
    """The error body each service answers with, so its client reads it as it would."""
    if step.dependency == "slack":
        return {"ok": False, "error": "ratelimited" if status == 429 else "service_unavailable"}
    if step.dependency == "openai":
        kind = "rate_limit_exceeded" if status == 429 else "server_error"
        return {"error": {"message": "injected", "type": kind, "param": None, "code": kind}}
    if step.dependency == "google-token":
        return {"error": "temporarily_unavailable" if status == 429 else "internal_failure"}
    reason = "rateLimitExceeded" if status == 429 else "backendError"
    return {"error": {"code": status, "message": "injected", "errors": [{"reason": reason, "domain": "global"}]}}


# -- reading what happened ----------------------------------------------------------------
def is_card(message: PostedMessage) -> bool:
    return any(b.get("block_id") == "approval" for b in message.blocks)


def auth_url(messages: list[PostedMessage]) -> str:
    urls = [e["url"] for m in messages for b in m.blocks for e in b.get("elements", []) if "url" in e]
    assert urls, "no Connect Gmail button"
    return str(urls[-1])


ANSWERED: dict[str, Callable[[PostedMessage], bool]] = {
    "hello": lambda m: "revoke" in m.text and "auth" in m.text,
    "status": lambda m: "ada@example.com" in m.text or "not connected" in m.text,
    "auth": lambda m: m.ephemeral and any("url" in e for b in m.blocks for e in b.get("elements", [])),
    "revoke": lambda m: "Disconnected" in m.text or "Nothing to disconnect" in m.text or "not connected" in m.text,
    # Any finished answer: while Gmail or the model is down, a tool error may become a
    # tool message the model explains; the follow-up (next_message_works) must then
    # really answer about Alice.
    "chat": lambda m: bool(m.text.strip()) and WORKING not in m.text,
    "send": lambda m: "Approved by" in m.text,
}


def told(messages: list[PostedMessage], reference: str) -> bool:
    return any(reference in m.text for m in messages)
