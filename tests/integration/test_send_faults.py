"""Approve -> send with a failure injected at every step: exactly one send when the user
approved and Gmail eventually accepts; none after a cancel, an expiry, a supersession or
a failure the user was told about; the card always ends telling the truth."""

from __future__ import annotations

import time
import uuid

import pytest

from infra.local.lambda_child import LocalLambdaContext
from infra.local.slack_requests import LOCAL_DM_CHANNEL
from mailroom.bootstrap import build_worker
from tests.integration.harness import Harness
from tests.integration.send_faults import (
    ADA,
    action_of,
    card,
    cards,
    current,
    deliver,
    has_buttons,
    kill_at,
    press,
    record,
    sends,
    set_record,
    shown,
)


@pytest.fixture
def lambda_context() -> LocalLambdaContext:
    # These tests are about sending, not the time budget: a slow shared machine must not
    # cut a turn short.
    return LocalLambdaContext("test-function", uuid.uuid4().hex, time.time() + 900, 1024)


def ask(harness: Harness, email: bool = False):
    if email:
        harness.say("send an email to bob@example.com about the budget, saying Thursday works")
    else:
        harness.say("Draft a reply to Bob saying Thursday works")
        harness.say("send it")
    return card(harness)


def test_approve_sends_once_and_the_card_says_so(agent: Harness):
    approval = ask(agent)
    assert has_buttons(approval)
    assert deliver(agent, press(approval, "approve_send")) == "ok"
    assert sends(agent) == 1
    final = current(agent, approval)
    stored = record(agent, action_of(approval))
    assert stored["state"] == "sent" and stored["gmail_id"] in shown(final)
    assert not has_buttons(final)


# Each fault on the send call itself, before or after Gmail took the message: the first
# delivery ends unsettled (SQS will redeliver), the redelivery settles it with one send.
SEND_FAULTS = [
    pytest.param("http", 503, False, id="503-before"),
    pytest.param("http", 503, True, id="503-after"),
    pytest.param("http", 429, False, id="429"),
    pytest.param("timeout", 503, False, id="timeout-before"),
    pytest.param("timeout", 503, True, id="timeout-after"),
    pytest.param("reset", 503, False, id="reset-before"),
    pytest.param("reset", 503, True, id="reset-after"),
    # A clean close with no answer: httplib2 (googleapiclient's transport) re-sends any
    # request after that, POST included, which would send twice; sends do not use it.
    pytest.param("hang_up", 503, True, id="hang-up-after"),
]


@pytest.mark.parametrize("email", [False, True], ids=["drafts.send", "messages.send"])
@pytest.mark.parametrize(("kind", "status", "after"), SEND_FAULTS)
def test_a_send_whose_answer_is_lost_is_settled_by_the_redelivery_with_one_send(
    agent: Harness, monkeypatch: pytest.MonkeyPatch, email: bool, kind: str, status: int, after: bool
):
    monkeypatch.setenv("GMAIL_TIMEOUT_SECONDS", "1")
    agent.worker = build_worker()
    assert agent.gmail is not None
    agent.gmail.stall_seconds = 2.0
    approval = ask(agent, email=email)
    approve = press(approval, "approve_send")
    agent.gmail.fail_next("messages.send" if email else "drafts.send", status, kind=kind, after=after)
    assert deliver(agent, approve) == "retry"
    assert sends(agent) == (1 if after else 0)
    assert "Sending" in shown(current(agent, approval)) and not has_buttons(current(agent, approval))
    assert deliver(agent, approve, attempt=2) == "ok"
    assert sends(agent) == 1
    stored = record(agent, action_of(approval))
    assert stored["state"] == "sent"
    assert f"Gmail id `{stored['gmail_id']}`" in shown(current(agent, approval))


def test_the_lookup_failing_too_is_retried_without_sending_twice(agent: Harness):
    assert agent.gmail is not None
    approval = ask(agent)
    approve = press(approval, "approve_send")
    agent.gmail.fail_next("drafts.send", 503, after=True)
    assert deliver(agent, approve) == "retry"
    agent.gmail.fail_next("messages.list", 503, times=4)  # the lookup's own retries run out too
    assert deliver(agent, approve, attempt=2) == "retry"
    assert deliver(agent, approve, attempt=3) == "ok"
    assert sends(agent) == 1
    assert record(agent, action_of(approval))["state"] == "sent"


STEPS = ["decided", "attempt_begun", "looked_up", "draft_checked", "sent", "card_updated", "resumed"]


@pytest.mark.parametrize("step", STEPS)
def test_the_worker_killed_between_any_two_steps_still_sends_exactly_once(agent: Harness, step: str):
    agent.worker = build_worker(send_step=kill_at(step))
    approval = ask(agent)
    approve = press(approval, "approve_send")
    assert deliver(agent, approve) == "killed"
    assert deliver(agent, approve, attempt=2) == "ok"
    assert sends(agent) == 1
    final = current(agent, approval)
    stored = record(agent, action_of(approval))
    assert stored["state"] == "sent" and stored["gmail_id"] in shown(final) and not has_buttons(final)


def test_gmail_refusing_every_try_fails_honestly_and_nothing_is_ever_sent_later(agent: Harness):
    """Told once the tries are used up; afterwards nothing (a new message, a stale Cancel,
    a DLQ redrive of the press) sends the old email, even with Gmail healthy again."""
    assert agent.gmail is not None
    approval = ask(agent)
    approve = press(approval, "approve_send")
    agent.gmail.fail_next("drafts.send", 503, times=4)
    assert [deliver(agent, approve, attempt=n) for n in (1, 2, 3, 4)] == ["retry", "retry", "retry", "ok"]
    assert sends(agent) == 0
    stored = record(agent, action_of(approval))
    assert stored["state"] == "failed" and stored["attempts"] == "4"
    assert "Not sent: Gmail did not accept it after 4 tries" in shown(current(agent, approval))
    # Gmail is fine again; whatever happens next sends nothing.
    agent.say("What did Alice send me this week?")
    assert deliver(agent, press(approval, "cancel_send")) == "ok"
    assert deliver(agent, approve, attempt=1) == "ok"  # the press redriven from the DLQ
    assert sends(agent) == 0
    assert record(agent, action_of(approval))["state"] == "failed"
    assert "Not sent" in shown(current(agent, approval)) and not has_buttons(current(agent, approval))


def test_a_redrive_past_the_expiry_sends_nothing(agent: Harness):
    agent.worker = build_worker(send_step=kill_at("decided"))
    approval = ask(agent)
    approve = press(approval, "approve_send")
    assert deliver(agent, approve) == "killed"
    set_record(agent, action_of(approval), expires_at=1.0)  # days later
    assert deliver(agent, approve, attempt=1) == "ok"
    assert sends(agent) == 0
    assert record(agent, action_of(approval))["state"] == "expired"
    assert "expired" in shown(current(agent, approval)) and not has_buttons(current(agent, approval))


def test_a_decision_another_worker_wrote_first_wins(agent: Harness):
    """The conditional write refuses the second decision: the approve does nothing but say why."""
    approval = ask(agent)
    assert deliver(agent, press(approval, "cancel_send")) == "ok"
    assert deliver(agent, press(approval, "approve_send")) == "ok"
    assert sends(agent) == 0
    told = [m for m in agent.slack.messages(channel=LOCAL_DM_CHANNEL) if m.ephemeral]
    assert told and "it was cancelled" in told[-1].text
    assert "Cancelled" in shown(current(agent, approval))


def test_slack_failing_to_show_the_outcome_is_retried_until_the_card_is_true(agent: Harness):
    approval = ask(agent)
    approve = press(approval, "approve_send")
    agent.slack.fail_next("chat.update", status=500, times=6)  # "Sending…" and the outcome, each with retries
    assert deliver(agent, approve) == "retry"
    assert sends(agent) == 1
    assert has_buttons(current(agent, approval))  # Slack never took the update
    assert deliver(agent, approve, attempt=2) == "ok"
    assert sends(agent) == 1
    assert "sent (Gmail id" in shown(current(agent, approval)) and not has_buttons(current(agent, approval))


def test_slack_failing_to_post_the_card_asks_again_and_the_lost_request_never_sends(agent: Harness):
    agent.say("Draft a reply to Bob saying Thursday works")
    from infra.local.slack_requests import message_event
    from mailroom.slack.parsing import parse_event_callback
    from tests.integration.harness import PUBLIC

    command = parse_event_callback(message_event("send it", event_id="EvCardLost1"), PUBLIC)
    assert command is not None
    agent.slack.fail_next("chat.postMessage", status=500)  # not retried in the client: a post
    assert deliver(agent, command) == "retry"
    assert deliver(agent, command, attempt=2) == "ok"
    approval = card(agent)
    assert deliver(agent, press(approval, "approve_send")) == "ok"
    assert sends(agent) == 1
    assert record(agent, action_of(approval))["state"] == "sent"


def test_a_draft_changed_in_gmail_is_shown_again_and_only_the_new_version_is_sent(agent: Harness):
    assert agent.gmail is not None
    approval = ask(agent)
    [draft] = agent.gmail.drafts(ADA)
    changed = draft.message.raw.replace(b"Thursday works", b"Friday works better")
    agent.gmail.set_draft(ADA, draft.id, changed)
    assert deliver(agent, press(approval, "approve_send")) == "ok"
    assert sends(agent) == 0
    assert "draft changed" in shown(current(agent, approval)) and not has_buttons(current(agent, approval))
    again = card(agent)
    assert again.ts != approval.ts and "Friday works better" in shown(again)
    assert deliver(agent, press(again, "approve_send")) == "ok"
    assert sends(agent) == 1
    assert b"Friday works better" in agent.gmail.sent(ADA)[-1].raw
    assert record(agent, action_of(approval))["state"] == "superseded"


def big_draft(harness: Harness) -> tuple[str, bytes, str]:
    """A 12,000-character reply in the Falcon thread with an HTML part, a Bcc and a PDF."""
    from datetime import UTC, datetime
    from email.message import EmailMessage
    from email.utils import format_datetime

    assert harness.gmail is not None
    [latest, *_] = harness.gmail.search(ADA, 'subject:"Project Falcon kickoff"')
    line = "Thursday works; here are the notes *not bold* <not a link> & more. "
    text = (line * (12_000 // len(line) + 1))[:12_000]
    mail = EmailMessage()
    mail["From"] = ADA
    mail["To"] = "Bob <bob@example.com>"
    mail["Bcc"] = "carol@example.com"
    mail["Subject"] = "Re: Project Falcon kickoff"
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["In-Reply-To"] = str(latest.message_id)
    mail["References"] = str(latest.message_id)
    mail.set_content(text)
    mail.add_alternative(f"<p>{text}</p>", subtype="html")
    mail.add_attachment(
        b"%PDF-1.4\n" + bytes(range(256)) * 40, maintype="application", subtype="pdf", filename="notes.pdf"
    )
    raw = mail.as_bytes()
    draft_id = harness.gmail.add_draft(ADA, raw, thread_id=latest.thread_id)
    return draft_id, raw, latest.thread_id


def test_a_long_draft_is_shown_whole_and_sent_byte_for_byte_in_its_thread(agent: Harness):
    from infra.local.emulators.openai import Call, Rule
    from mailroom.mail.draft import stamp, view

    assert agent.gmail is not None and agent.openai is not None
    draft_id, raw, thread_id = big_draft(agent)
    agent.openai.script.rules.insert(
        0,
        Rule(user=r"send draft (?P<id>r\d+)", call=Call("send_draft", lambda c: {"draft_id": c.group("id")})),
    )
    agent.say(f"send draft {draft_id}")
    approval = card(agent)
    sections = "".join(
        b["text"]["text"] for b in approval.blocks if b.get("type") == "section" and b["text"]["type"] == "plain_text"
    )
    body = view(raw).body
    assert len(body) >= 12_000 and body in sections  # every character, none of it formatted
    assert "Bcc: carol@example.com" in sections and "notes.pdf (10.0 KB)" in sections
    assert "In reply to:" in sections and "HTML version" in sections
    assert all(len(b["text"]["text"]) <= 3000 for b in approval.blocks if b.get("type") == "section")
    assert deliver(agent, press(approval, "approve_send")) == "ok"
    [sent] = agent.gmail.sent(ADA)
    assert sent.raw == stamp(raw, action_of(approval))  # the draft itself, plus the two headers
    assert sent.thread_id == thread_id
    assert agent.gmail.drafts(ADA) == []  # drafts.send consumed it


def test_a_message_too_large_to_show_whole_is_refused_and_never_half_shown(agent: Harness):
    from infra.local.emulators.openai import Call, Rule

    assert agent.openai is not None
    huge = "word " * 40_000  # 200,000 characters: more than 40 sections of 3,000
    agent.openai.script.rules.insert(
        0,
        Rule(
            user=r"send the huge one",
            call=Call("send_email", {"to": "bob@example.com", "subject": "Huge", "body": huge}),
        ),
    )
    agent.say("send the huge one")
    assert cards(agent) == []
    assert sends(agent) == 0
    # The model was told why, in the tool result.
    assert any("too large to show in Slack in full" in str(m) for m in agent.openai.requests[-1]["messages"])


def test_a_model_server_reusing_tool_call_ids_cannot_make_a_second_send_look_like_the_first(agent: Harness):
    assert agent.openai is not None
    agent.openai.reuse_call_ids = True  # every answer's first tool call is "call_0"
    first = ask(agent, email=True)
    assert deliver(agent, press(first, "approve_send")) == "ok"
    agent.say("send an email to carol@example.com about the venue, saying the hall is booked")
    second = card(agent)
    assert second.ts != first.ts and action_of(second) != action_of(first)
    assert "carol@example.com" in shown(second) and has_buttons(second)
    assert sends(agent) == 1  # the second request waits for its own press
    assert deliver(agent, press(second, "approve_send")) == "ok"
    assert sends(agent) == 2


def test_the_model_failing_after_the_send_does_not_send_again(agent: Harness):
    """The graph is resumed after the send; if that fails, the redelivery finds the record
    sent and only closes the request. A later message sends nothing either."""
    assert agent.openai is not None
    approval = ask(agent)
    approve = press(approval, "approve_send")
    agent.openai.fail_next(500, times=8)  # more than one delivery's model tries
    for attempt in range(1, 5):  # redelivered while the model is down: never a second send
        outcome = deliver(agent, approve, attempt=attempt)
        assert sends(agent) == 1
        if outcome == "ok":
            break
    assert outcome == "ok"
    agent.say("What did Alice send me this week?")
    assert sends(agent) == 1
    assert record(agent, action_of(approval))["state"] == "sent"
    assert "sent (Gmail id" in shown(current(agent, approval))


def test_a_request_is_bound_to_the_address_it_was_asked_from(agent: Harness):
    """Gmail relinked to another account before the press: the relink cancels the request
    on its card and erases its record, so the press finds nothing and nothing is sent."""
    approval = ask(agent, email=True)
    agent.google.account_email = "ada.other@example.com"
    assert agent.link()[0] == 200
    assert "linked to another address" in shown(current(agent, approval))
    assert not has_buttons(current(agent, approval))
    assert deliver(agent, press(approval, "approve_send")) == "ok"
    assert sends(agent) == 0
    ddb = agent.deployment.aws.client("dynamodb")
    table = agent.deployment.physical("ApprovalsTable")
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": action_of(approval)}})
    told = [m for m in agent.slack.messages() if m.ephemeral]
    assert told and "no longer waiting" in told[-1].text.lower()


def test_a_bcc_only_send_whose_message_id_was_replaced_is_still_found(agent: Harness):
    """The fallback lookup (our X-Mailroom-Action header) covers Cc- and Bcc-only sends."""
    from infra.local.emulators.openai import Call, Rule

    assert agent.gmail is not None and agent.openai is not None
    quiet = {"to": "", "bcc": "bob@example.com", "subject": "Quietly", "body": "Only Bob, in Bcc."}
    agent.openai.script.rules.insert(0, Rule(user=r"send the quiet one", call=Call("send_email", quiet)))
    agent.say("send the quiet one")
    approval = card(agent)
    approve = press(approval, "approve_send")
    agent.gmail.rewrite_message_ids = True
    agent.gmail.fail_next("messages.send", 503, after=True)
    assert deliver(agent, approve) == "retry"
    assert deliver(agent, approve, attempt=2) == "ok"
    assert sends(agent) == 1
    assert record(agent, action_of(approval))["state"] == "sent"


def test_a_press_is_routed_by_its_action_id_not_by_the_thread_it_came_from(agent: Harness):
    """A press arriving from another thread (a card that became a thread parent, a
    forwarded card) still acts on the conversation its record names."""
    from dataclasses import replace

    approval = ask(agent)
    elsewhere = replace(approval, thread_ts="1799999999.000001")
    assert deliver(agent, press(elsewhere, "approve_send")) == "ok"
    assert sends(agent) == 1
    assert record(agent, action_of(approval))["conversation_id"] == "T0LOCAL:" + approval.channel
    answers = [m for m in agent.slack.messages(channel=approval.channel) if m.text == "Sent." and not m.ephemeral]
    assert answers and answers[-1].thread_ts is None  # the model's answer went to the record's conversation


def test_a_press_given_up_on_before_any_attempt_can_never_be_redriven_into_a_send(agent: Harness):
    """Every delivery failed before reaching Gmail (here: killed right after the decision);
    on the last one the worker gives up and tells the user. A DLQ redrive then sends nothing."""
    from mailroom.adapters.approval_table import DynamoApprovalStore
    from mailroom.adapters.slack_chat import SlackChat, make_web_client
    from mailroom.agent.approval_desk import ApprovalDesk

    agent.worker = build_worker(send_step=kill_at("decided", times=4))
    approval = ask(agent)
    approve = press(approval, "approve_send")
    assert [deliver(agent, approve, attempt=n) for n in (1, 2, 3, 4)] == ["killed"] * 4
    # What the worker does on the last delivery (AgentChat.abandon_press, for issue 10's last-try branch).
    desk = ApprovalDesk(
        SlackChat(make_web_client(agent.slack.bot_token, agent.slack.api_url)),
        DynamoApprovalStore(agent.deployment.physical("ApprovalsTable")),
        ttl_seconds=3600,
        max_send_attempts=4,
        answer=lambda channel, thread, text: None,
    )
    desk.abandon(approve)
    agent.worker = build_worker()
    assert deliver(agent, approve, attempt=1) == "ok"  # redriven from the DLQ
    assert sends(agent) == 0
    assert record(agent, action_of(approval))["state"] == "failed"
    assert "Not sent" in shown(current(agent, approval))


def test_the_workers_last_failed_delivery_ends_an_approved_press_so_no_redrive_sends_it(agent: Harness):
    """The press fails on every delivery before reaching Gmail (a dependency down right
    after the decision); on the last one the worker itself gives up, tells the user and
    ends the request, so the message's later redrive from the DLQ sends nothing."""
    from mailroom.errors import TransientError

    def down_after_deciding(name: str) -> None:
        if name == "decided":
            raise TransientError("a dependency is down")

    agent.worker = build_worker(send_step=down_after_deciding)
    approval = ask(agent)
    approve = press(approval, "approve_send")
    assert [deliver(agent, approve, attempt=n) for n in (1, 2, 3, 4)] == ["retry"] * 4
    assert record(agent, action_of(approval))["state"] == "failed"
    agent.worker = build_worker()
    assert deliver(agent, approve, attempt=1) == "ok"  # redriven from the DLQ
    assert sends(agent) == 0
    assert "Not sent" in shown(current(agent, approval))


def test_an_approval_is_not_acted_on_after_its_send_window(agent: Harness):
    """Killed on every delivery (nothing in the worker could end it), then redriven from
    the DLQ hours later but before the request's expiry: the approval's send window has
    passed, so nothing goes out that long after the press."""
    agent.worker = build_worker(send_step=kill_at("decided"))
    approval = ask(agent)
    approve = press(approval, "approve_send")
    assert deliver(agent, approve) == "killed"
    assert float(record(agent, action_of(approval))["send_by"]) > time.time()
    set_record(agent, action_of(approval), send_by=time.time() - 1)  # hours later
    agent.worker = build_worker()
    assert deliver(agent, approve, attempt=1) == "ok"
    assert sends(agent) == 0
    assert record(agent, action_of(approval))["state"] == "failed"
    assert "approved too long ago" in shown(current(agent, approval))


def submit_edit(harness: Harness, edited: dict[str, str]):
    """The Edit modal (opened by the Edit press) submitted with `edited` typed into it."""
    from infra.local.slack_requests import interaction_body, view_submission
    from mailroom.slack.parsing import parse_interaction
    from tests.integration.harness import PUBLIC

    [view] = [v for v in harness.slack.views().values() if any(b["type"] == "input" for b in v["blocks"])]
    command = parse_interaction(interaction_body(view_submission(view, edited)), PUBLIC)
    assert command is not None
    return command


EDITED = {"to": "bob@example.com", "cc": "", "bcc": "", "subject": "Budget", "body": "Friday instead, sorry."}


@pytest.mark.parametrize("fault", ["card-post-fails", "killed-after-resume"])
def test_an_edit_whose_new_card_was_lost_shows_it_on_the_redelivery(agent: Harness, fault: str):
    """The edited request is made when the graph resumes; if that delivery fails before
    its run is saved (the new card's post refused, the worker killed), the redelivery
    must still show the edited message on a card that can be approved."""
    if fault == "killed-after-resume":
        agent.worker = build_worker(send_step=kill_at("resumed"))
    first = ask(agent, email=True)
    assert deliver(agent, press(first, "edit_send")) == "ok"
    submit = submit_edit(agent, EDITED)
    if fault == "card-post-fails":
        agent.slack.fail_next("chat.postMessage", status=500)  # a post is not retried in the client
        assert deliver(agent, submit) == "retry"
    else:
        assert deliver(agent, submit) == "killed"
    assert deliver(agent, submit, attempt=2) == "ok"
    assert "Replaced by your edited version" in shown(current(agent, first))
    again = card(agent)
    assert again.ts != first.ts and has_buttons(again) and "Friday instead, sorry." in shown(again)
    assert sends(agent) == 0
    assert deliver(agent, press(again, "approve_send")) == "ok"
    assert sends(agent) == 1
    assert b"Friday instead, sorry." in agent.gmail.sent(ADA)[-1].raw  # type: ignore[union-attr]
    assert record(agent, action_of(again))["state"] == "sent"


def test_an_edit_shows_only_the_new_card_not_an_earlier_answer_again(agent: Harness):
    agent.say("What did Alice send me this week?")
    first = ask(agent, email=True)
    assert deliver(agent, press(first, "edit_send")) == "ok"
    before = {m.ts for m in agent.slack.messages(channel=LOCAL_DM_CHANNEL)}
    assert deliver(agent, submit_edit(agent, EDITED)) == "ok"
    new = [m for m in agent.slack.messages(channel=LOCAL_DM_CHANNEL) if m.ts not in before]
    assert [m.ts for m in new] == [card(agent).ts], [m.text[:80] for m in new]


@pytest.mark.parametrize("changed_again", [False, True], ids=["same-draft", "changed-again"])
def test_a_changed_drafts_lost_card_is_shown_on_the_redelivery_as_gmail_now_holds_it(
    agent: Harness, changed_again: bool
):
    """Approve finds the draft changed and asks again; that card's post fails. The
    redelivery shows the draft as Gmail holds it then (changed once more: that version,
    under a new request) and only what the last card showed is sent."""
    assert agent.gmail is not None
    approval = ask(agent)
    [draft] = agent.gmail.drafts(ADA)
    agent.gmail.set_draft(ADA, draft.id, draft.message.raw.replace(b"Thursday works", b"Friday works better"))
    approve = press(approval, "approve_send")
    agent.slack.fail_next("chat.postMessage", status=500)
    assert deliver(agent, approve) == "retry"
    if changed_again:
        [draft] = agent.gmail.drafts(ADA)
        agent.gmail.set_draft(ADA, draft.id, draft.message.raw.replace(b"Friday works better", b"Monday, then"))
    assert deliver(agent, approve, attempt=2) == "ok"
    assert sends(agent) == 0
    again = card(agent)
    wanted = b"Monday, then" if changed_again else b"Friday works better"
    assert again.ts != approval.ts and has_buttons(again) and wanted.decode() in shown(again)
    assert len(cards(agent)) == 1  # the superseded ones have no buttons left
    assert deliver(agent, press(again, "approve_send")) == "ok"
    assert sends(agent) == 1 and wanted in agent.gmail.sent(ADA)[-1].raw


def test_a_press_given_up_on_after_an_attempt_is_redriven_into_a_lookup_never_a_new_send(agent: Harness):
    """The first delivery tried Gmail (refused, nothing sent); every later one failed
    before reaching Gmail, and on the last the user was told it could not be done. A DLQ
    redrive within the hour must not try the send again: it may only look it up."""
    from mailroom.errors import TransientError

    assert agent.gmail is not None
    down = {"on": False}

    def down_after_deciding(name: str) -> None:
        if name == "decided" and down["on"]:
            raise TransientError("a dependency is down")

    agent.worker = build_worker(send_step=down_after_deciding)
    approval = ask(agent)
    approve = press(approval, "approve_send")
    agent.gmail.fail_next("drafts.send", 503)
    assert deliver(agent, approve) == "retry"
    assert record(agent, action_of(approval))["state"] == "sending"
    down["on"] = True
    assert [deliver(agent, approve, attempt=n) for n in (2, 3, 4)] == ["retry"] * 3
    assert "stopped trying" in shown(current(agent, approval))  # no "I will check again in a few minutes"
    down["on"] = False
    assert deliver(agent, approve, attempt=1) == "ok"  # redriven from the DLQ, Gmail healthy
    assert sends(agent) == 0
    assert record(agent, action_of(approval))["state"] == "failed"
    assert "Not sent" in shown(current(agent, approval)) and not has_buttons(current(agent, approval))


def test_a_stopped_send_that_gmail_took_is_settled_by_the_next_message_as_sent(agent: Harness):
    """What the stopped card promises: Gmail took the first try (its answer lost), the
    later deliveries failed and the tries were stopped; the user's next message looks it
    up, finds it, and the card says sent. Nothing is sent again."""
    from mailroom.errors import TransientError

    assert agent.gmail is not None
    down = {"on": False}

    def down_after_deciding(name: str) -> None:
        if name == "decided" and down["on"]:
            raise TransientError("a dependency is down")

    agent.worker = build_worker(send_step=down_after_deciding)
    approval = ask(agent)
    approve = press(approval, "approve_send")
    agent.gmail.fail_next("drafts.send", 503, after=True)
    assert deliver(agent, approve) == "retry"
    down["on"] = True
    assert [deliver(agent, approve, attempt=n) for n in (2, 3, 4)] == ["retry"] * 3
    assert "stopped trying" in shown(current(agent, approval))
    down["on"] = False
    agent.say("What did Alice send me this week?")
    assert sends(agent) == 1
    assert record(agent, action_of(approval))["state"] == "sent"
    assert "sent (Gmail id" in shown(current(agent, approval))


def test_an_edit_press_read_before_a_send_settled_does_not_write_a_stale_state_on_the_card(
    agent: Harness, monkeypatch: pytest.MonkeyPatch
):
    """An Edit press runs in a FIFO group of its own, beside the Approve that may be
    sending: if it read the record while sending and the send then settled, the Edit
    press must not write its stale "Sending…" over the card's true outcome."""
    from mailroom.adapters.approval_table import DynamoApprovalStore

    agent.worker = build_worker(send_step=kill_at("attempt_begun"))
    approval = ask(agent, email=True)
    edit = press(approval, "edit_send")  # pressed while the buttons were still there
    approve = press(approval, "approve_send")
    assert deliver(agent, approve) == "killed"
    stale = DynamoApprovalStore(agent.deployment.physical("ApprovalsTable")).get(action_of(approval))
    assert stale is not None and stale.state == "sending"
    assert deliver(agent, approve, attempt=2) == "ok"
    assert "sent (Gmail id" in shown(current(agent, approval))
    monkeypatch.setattr(DynamoApprovalStore, "get", lambda self, action_id: stale)  # read before the send settled
    assert deliver(agent, edit) == "ok"
    assert "sent (Gmail id" in shown(current(agent, approval))
    assert sends(agent) == 1


def test_a_message_whose_hash_is_not_the_recorded_one_is_never_sent(agent: Harness):
    """The send goes out only for the hash recorded when the card was shown: a message in
    the conversation that no longer hashes to it (here: the record's hash changed) is
    refused after the press, and the card says nothing was sent."""
    approval = ask(agent, email=True)
    set_record(agent, action_of(approval), message_hash="0" * 64)
    assert deliver(agent, press(approval, "approve_send")) == "ok"
    assert sends(agent) == 0
    assert record(agent, action_of(approval))["state"] == "failed"
    assert "Not sent: the message is not the one you were shown" in shown(current(agent, approval))
    assert not has_buttons(current(agent, approval))


def test_a_draft_deleted_in_gmail_before_the_press_is_said_to_be_gone_not_shown_again(agent: Harness):
    assert agent.gmail is not None
    approval = ask(agent)
    [draft] = agent.gmail.drafts(ADA)
    agent.gmail.delete_draft(ADA, draft.id)
    before = {m.ts for m in agent.slack.messages(channel=LOCAL_DM_CHANNEL)}
    assert deliver(agent, press(approval, "approve_send")) == "ok"
    assert sends(agent) == 0
    final = current(agent, approval)
    assert "no longer in Gmail" in shown(final) and "shown below" not in shown(final) and not has_buttons(final)
    assert record(agent, action_of(approval))["reason"] == "draft_gone"
    new = [m for m in agent.slack.messages(channel=LOCAL_DM_CHANNEL) if m.ts not in before]
    assert cards(agent) == [] and not [m for m in new if "failed" in m.text or "Error" in m.text]


def test_a_press_that_hit_a_bug_and_was_told_so_is_never_sent_by_a_later_delivery(agent: Harness):
    """A bug is told at once ("something went wrong") and its message kept for the DLQ.
    The user has heard it failed, so no later delivery or redrive may send it."""

    def bug_after_deciding(name: str) -> None:
        if name == "decided":
            raise KeyError("a bug right after the decision")

    agent.worker = build_worker(send_step=bug_after_deciding)
    approval = ask(agent)
    approve = press(approval, "approve_send")
    assert deliver(agent, approve, attempt=1) == "retry"
    assert "something went wrong" in agent.slack.messages(channel=approval.channel)[-1].text
    agent.worker = build_worker()  # the bug does not strike again (or was fixed, then redriven)
    assert [deliver(agent, approve, attempt=n) for n in (2, 1)] == ["ok", "ok"]
    assert sends(agent) == 0
    assert record(agent, action_of(approval))["state"] == "failed"
    assert "Not sent" in shown(current(agent, approval))


def test_revoke_while_a_send_is_unconfirmed_says_so_on_the_card(agent: Harness):
    """The worker died after Gmail took the send but before it confirmed it; then the user
    revokes. The record is erased (nothing can check it any more), so the card must not
    keep promising to check: it says to look in Sent mail."""
    agent.worker = build_worker(send_step=kill_at("sent"))
    approval = ask(agent)
    assert deliver(agent, press(approval, "approve_send")) == "killed"
    assert record(agent, action_of(approval))["state"] == "sending"
    agent.worker = build_worker()
    agent.say("revoke")
    card_now = shown(current(agent, approval))
    assert "Sent mail" in card_now and "disconnected" in card_now and not has_buttons(current(agent, approval))
    assert sends(agent) == 1


def test_moving_on_while_a_send_with_a_replaced_message_id_is_unconfirmed_still_finds_it(agent: Harness):
    """Gmail took the send but its answer was lost, and the copy's Message-ID was replaced
    on the way. Before the redelivery looks it up, the user writes again: that turn ends
    the request, and must find the copy by our own header too, or it would tell the user
    "not sent" about mail that went out (and they would send it twice)."""
    assert agent.gmail is not None
    approval = ask(agent, email=True)
    approve = press(approval, "approve_send")
    agent.gmail.rewrite_message_ids = True
    agent.gmail.fail_next("messages.send", 503, after=True)
    assert deliver(agent, approve) == "retry"
    assert record(agent, action_of(approval))["state"] == "sending"
    agent.say("thanks, what's unread?")
    assert sends(agent) == 1
    assert record(agent, action_of(approval))["state"] == "sent"
    assert "sent (Gmail id" in shown(current(agent, approval))


def test_an_approve_that_hit_a_bug_before_it_was_recorded_is_never_sent_later(agent: Harness, monkeypatch):
    """The bug strikes before the decision is written: the owner hears it failed, so the
    request ends on its card and the press's next delivery sends nothing."""
    from mailroom.agent.approval_desk import ApprovalDesk

    real, struck = ApprovalDesk._decide, list[bool]()

    def bug_once(self, *args, **kwargs):
        if not struck:
            struck.append(True)
            raise KeyError("a bug before the decision")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ApprovalDesk, "_decide", bug_once)
    approval = ask(agent)
    approve = press(approval, "approve_send")
    assert deliver(agent, approve, attempt=1) == "retry"
    assert deliver(agent, approve, attempt=2) == "ok"
    assert sends(agent) == 0
    assert record(agent, action_of(approval))["state"] == "cancelled"
    card_now = current(agent, approval)
    assert "could not be completed" in shown(card_now) and not has_buttons(card_now)
