"""The flows added to the matrix after its first version: a search with several results,
reading an attachment, tidying
(a new label), Edit on an approval card, opening the DM, a feedback press, revoke while
a request waits for a press, and the scheduled expiry sweep.

Each sets itself up in a new thread, breaks one call (harness.Step, harness.KINDS),
lets the stack do what it does (SQS redelivery; for the sweep, the next scheduled tick)
and checks the matrix's invariants with `check_outcome`: answered, or in the DLQ with
the user told its reference; answered once; no placeholder left; no mail sent; the next
message in the conversation works.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from infra.local.emulators import mailbox_seed
from infra.local.emulators.slack import PostedMessage
from infra.local.slack_requests import (
    LOCAL_DM_CHANNEL,
    app_home_opened_event,
    block_action,
    feedback_press,
    post_event,
    post_interaction,
)
from tests.faults.harness import ALICE_QUESTION, ANSWERED, WORKING, FaultStack, Step, is_card, told

SEARCH_QUESTION = "What did Bob send me this week?"  # two emails: their metadata in one batch
READ_QUESTION = "What does the PDF receipt attached to my order say?"
COMPOSE = "send an email to bob@example.com about lunch, saying see you at noon"
EDIT_AGAIN = "Press *Edit* again"


def run_flow_case(faults: FaultStack, step: Step, kind: str) -> None:
    if step.flow != "open" and not faults.linked():
        faults.link()
    FLOWS[step.flow](faults, step, kind)


# -- the flows ----------------------------------------------------------------------------
def search_case(faults: FaultStack, step: Step, kind: str) -> None:
    thread = faults.new_thread()
    _said_case(faults, step, kind, thread, SEARCH_QUESTION, lambda m: "Falcon" in m.text and WORKING not in m.text)


def read_case(faults: FaultStack, step: Step, kind: str) -> None:
    thread = faults.new_thread()
    _said_case(faults, step, kind, thread, READ_QUESTION, lambda m: mailbox_seed.RECEIPT_TOTAL in m.text)


def tidy_case(faults: FaultStack, step: Step, kind: str) -> None:
    thread = faults.new_thread()
    label = f"Fault {thread.rsplit('.', 1)[-1]}"  # new each case: labels.create runs every time
    _said_case(faults, step, kind, thread, f"Label the emails from frank as {label}", lambda m: "Labelled" in m.text)
    frank = faults.gmail.search("ada@example.com", "from:frank")
    label_ids = {i for i, name in faults.gmail.labels("ada@example.com").items() if name == label}
    assert len(label_ids) == 1, f"label {label!r} created {len(label_ids)} times"
    assert all(label_ids <= set(m.label_ids) for m in frank), "the answer says labelled, Gmail says otherwise"


def edit_case(faults: FaultStack, step: Step, kind: str) -> None:
    """Edit on a composed email's card: the modal opens, or the user is asked to press
    Edit again (Slack takes a trigger id for 3 s only). The request stays pending."""
    thread = faults.new_thread()
    card = _card(faults, thread, COMPOSE)
    views_before = set(faults.slack.views())
    before = _before(faults, thread)
    fired = faults.arm(step, kind)
    press = _press(faults, card, "edit_send")
    _end_outage(faults, step, fired)
    opened = [v for i, v in faults.slack.views().items() if i not in views_before and _is_editor(v)]

    def answered(m: PostedMessage) -> bool:
        return m.ephemeral and EDIT_AGAIN in m.text

    extra = [f"modal {v['id']}" for v in opened]
    check_outcome(faults, step, thread, press, answered, before, extra_answers=extra)
    assert is_card(_current(faults, card)), "an Edit press decided the request"
    next_message_works(faults, thread)


def open_case(faults: FaultStack, step: Step, kind: str) -> None:
    """Opening the DM sets the suggested prompts; their failure is cosmetic: the opening
    ends quietly (nothing told, nothing in the DLQ), and the next opening sets them."""
    started = time.time()
    before = _before(faults, None)
    fired = faults.arm(step, kind)
    payload = app_home_opened_event()
    assert post_event(faults.stack.url, payload).status == 200
    _end_outage(faults, step, fired)
    reference = str(payload["event_id"])
    messages = [m for m in faults.slack.messages(channel=LOCAL_DM_CHANNEL) if m.ts not in before.seen]
    dead = [b for b in faults.dead_letters() if reference in b]
    outcome = f"prompts={_prompts_set(faults, started)} dlq={len(dead)} posted={[m.text[:80] for m in messages]}"
    # Set twice (a crash right after Slack took them) is invisible: they replace themselves.
    assert not dead and not messages, f"a cosmetic failure failed the opening: {outcome}"
    again = time.time()
    assert post_event(faults.stack.url, app_home_opened_event()).status == 200
    faults.stack.wait_until_drained(timeout=60)
    assert _prompts_set(faults, again) == 1, "the next opening did not set the prompts"


def feedback_case(faults: FaultStack, step: Step, kind: str) -> None:
    """A 👍 under an answer is recorded (once, the latest press winning), or the press
    ends in the DLQ with the user told."""
    thread = faults.new_thread()
    faults.say(ALICE_QUESTION, thread)
    faults.stack.wait_until_drained(timeout=60)
    [answer] = [m for m in faults.thread(thread) if any(b.get("type") == "context_actions" for b in m.blocks)]
    [buttons] = [b for b in answer.blocks if b["type"] == "context_actions"]
    value = str(buttons["elements"][0]["positive_button"]["value"])
    before = _before(faults, thread)
    fired = faults.arm(step, kind)
    press = feedback_press(value, message_ts=answer.ts, thread_ts=thread)
    assert post_interaction(faults.stack.url, press).status == 200
    reference = _reference(press)
    _end_outage(faults, step, fired)
    answer_id = value.partition(":")[2]
    votes = [
        f"vote {i['vote']['S']}"
        for i in faults.stack.scan("UsageTable")
        if i["pk"]["S"].startswith("feedback#") and i.get("answer_id", {}).get("S") == answer_id
    ]
    check_outcome(faults, step, thread, reference, lambda m: False, before, extra_answers=votes)
    assert votes in ([], ["vote up"]), f"feedback recorded as {votes}"
    next_message_works(faults, thread)


def forget_case(faults: FaultStack, step: Step, kind: str) -> None:
    """`revoke` while a send waits for a press: the user is answered, the request ends
    (its card says so, buttons gone) and no record of it is left."""
    thread = faults.new_thread()
    card = faults.approval_card(thread)
    before = _before(faults, thread)
    fired = faults.arm(step, kind)
    payload, _ = faults.say("revoke", thread)
    _end_outage(faults, step, fired)
    check_outcome(
        faults, step, thread, str(payload["event_id"]), lambda m: m.ts != card.ts and ANSWERED["revoke"](m), before
    )
    left = [r for r in faults.stack.scan("ApprovalsTable") if r.get("owner", {}).get("S", "").endswith("#U0ADA")]
    assert not left, f"revoked, but {len(left)} approval record(s) of the user are left: {[_state(r) for r in left]}"
    assert not is_card(_current(faults, card)), "revoked, but the card still asks for a press"
    faults.say("status", thread)
    faults.stack.wait_until_drained(timeout=60)
    assert any(ANSWERED["status"](m) for m in faults.thread(thread)[-1:]), "the next message was not answered"


def sweep_case(faults: FaultStack, step: Step, kind: str) -> None:
    """A request past its expiry: the tick that meets the fault may fail (EventBridge
    logs it); the next tick expires it and rewrites its card. Nothing is sent."""
    thread = faults.new_thread()
    card = faults.approval_card(thread)
    action_id = _action_of(card)
    faults.stack.aws.client("dynamodb").update_item(  # a day going by: setting up, not tested
        TableName=faults.stack.physical("ApprovalsTable"),
        Key={"pk": {"S": action_id}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": repr(time.time() - 1)}},
    )
    sent_before = faults.gmail.send_count
    fired = faults.arm(step, kind)
    with contextlib.suppress(Exception):  # a failed tick is the case under test; the next one must do it
        faults.stack.fire_schedule("WorkerFunction")
    assert fired() > 0, f"step not reached: {step}"
    faults.clear_faults()
    faults.stack.fire_schedule("WorkerFunction")  # the next tick, the dependency back
    shown = _current(faults, card)
    [record] = [r for r in faults.stack.scan("ApprovalsTable") if r["pk"]["S"] == action_id]
    assert _state(record) == "expired", f"the request is {_state(record)} after the next tick"
    assert not is_card(shown) and "expired" in shown.text, f"the card does not say it expired: {shown.text[:120]}"
    assert faults.gmail.send_count == sent_before, "mail sent without a press"
    _press(faults, shown, "approve_send", value=action_id)  # a late press on the old card
    faults.stack.wait_until_drained(timeout=60)
    assert faults.gmail.send_count == sent_before, "a press after the expiry sent mail"
    next_message_works(faults, thread)


FLOWS: dict[str, Callable[[FaultStack, Step, str], None]] = {
    "search": search_case,
    "read": read_case,
    "tidy": tidy_case,
    "edit": edit_case,
    "open": open_case,
    "feedback": feedback_case,
    "forget": forget_case,
    "sweep": sweep_case,
}


# -- the invariants -------------------------------------------------------------------------
class Before:
    def __init__(self, faults: FaultStack, thread: str | None):
        channel = faults.slack.messages(channel=LOCAL_DM_CHANNEL, thread_ts=thread)
        self.seen = {m.ts: m.edits for m in channel}
        self.sent = faults.gmail.send_count


def _before(faults: FaultStack, thread: str | None) -> Before:
    return Before(faults, thread)


def check_outcome(
    faults: FaultStack,
    step: Step,
    thread: str,
    reference: str,
    answered: Callable[[PostedMessage], bool],
    before: Before,
    extra_answers: list[str] | None = None,
) -> None:
    """The message ends answered (a message `answered` accepts, or one of `extra_answers`:
    a modal, a recorded vote), or in the DLQ with the user told `reference`; once; no
    placeholder left; no mail sent. Cosmetic steps must end answered."""
    changed = [m for m in faults.thread(thread) if before.seen.get(m.ts) != m.edits]
    dead = [b for b in faults.dead_letters() if reference in b]
    answers = [m.text[:80] for m in changed if answered(m) and reference not in m.text] + list(extra_answers or [])
    was_told = told(changed, reference)
    outcome = f"answers={answers} told={was_told} dlq={len(dead)} messages={[m.text[:100] for m in changed]}"
    assert answers or (was_told and dead), f"message lost or the user not told: {outcome}"
    assert len(answers) <= 1, f"answered more than once: {outcome}"
    assert not (step.cosmetic and not answers), f"a cosmetic failure failed the turn: {outcome}"
    assert not [m for m in changed if WORKING in m.text], f"a placeholder was left behind: {outcome}"
    assert faults.gmail.send_count == before.sent, "mail sent without a press"


def next_message_works(faults: FaultStack, thread: str) -> None:
    seen = {m.ts for m in faults.thread(thread)}
    faults.say(ALICE_QUESTION, thread)
    faults.stack.wait_until_drained(timeout=120)
    new = [m for m in faults.thread(thread) if m.ts not in seen]
    good = [m for m in new if "Alice" in m.text and WORKING not in m.text and "Reference" not in m.text]
    assert good, f"the next message in the conversation was not answered: {[m.text[:120] for m in new]}"


# -- helpers ----------------------------------------------------------------------------------
def _said_case(
    faults: FaultStack, step: Step, kind: str, thread: str, text: str, answered: Callable[[PostedMessage], bool]
) -> None:
    before = _before(faults, thread)
    fired = faults.arm(step, kind)
    payload, answer = faults.say(text, thread)
    assert answer.status == 200
    _end_outage(faults, step, fired)
    check_outcome(faults, step, thread, str(payload["event_id"]), answered, before)
    next_message_works(faults, thread)


def _end_outage(faults: FaultStack, step: Step, fired: Callable[[], int]) -> None:
    assert faults.end_outage_after_first_hit(fired, step.function), f"step not reached: {step}"
    faults.stack.wait_until_drained(timeout=120)


def _card(faults: FaultStack, thread: str, text: str) -> PostedMessage:
    faults.say(text, thread)
    faults.stack.wait_until_drained(timeout=60)
    cards = [m for m in faults.thread(thread) if is_card(m)]
    assert len(cards) == 1, "setting up a case: no approval card"
    return cards[0]


def _current(faults: FaultStack, card: PostedMessage) -> PostedMessage:
    [now] = [m for m in faults.thread(str(card.thread_ts)) if m.ts == card.ts]
    return now


def _action_of(card: PostedMessage) -> str:
    [value] = {e["value"] for b in card.blocks for e in b.get("elements", []) if "value" in e}
    return str(value)


def _press(faults: FaultStack, card: PostedMessage, action: str, value: str | None = None) -> str:
    payload = block_action(action, value or _action_of(card), message_ts=card.ts, thread_ts=card.thread_ts)
    assert post_interaction(faults.stack.url, payload).status == 200
    return _reference(payload)


def _reference(press: dict[str, Any]) -> str:
    from tests.faults.test_matrix import _press_reference

    return _press_reference(press)


def _is_editor(view: dict[str, Any]) -> bool:
    return any(b.get("type") == "input" for b in view.get("blocks", []))


def _prompts_set(faults: FaultStack, since: float) -> int:
    """Suggested prompts set for the DM itself (no thread) since `since`."""
    calls = faults.slack.calls("assistant.threads.setSuggestedPrompts")
    return len([c for c in calls if c["ok"] and c["ts"] >= since and not c["args"].get("thread_ts")])


def _state(record: dict[str, Any]) -> str:
    return str(record.get("state", {}).get("S"))
