"""SlackChat.open_view against the Slack emulator through slack-sdk: a trigger id is
good once, for 3 seconds (the Edit press path)."""

from __future__ import annotations

import time

from infra.local.emulators.slack import SlackEmulator
from mailroom.adapters.slack_chat import SlackChat, make_web_client

MODAL = {"type": "modal", "title": {"type": "plain_text", "text": "Edit email"}, "blocks": []}


def test_a_press_delivered_again_after_its_modal_opened_counts_it_opened(slack: SlackEmulator):
    """The worker opened the modal, then crashed (or lost Slack's answer): the
    redelivery's views.open finds the trigger exchanged, and must not ask the user to
    press Edit again with the modal open in front of them."""
    chat = SlackChat(make_web_client(slack.bot_token, slack.api_url))
    trigger = f"{int(time.time() * 1000)}.1.abc"
    assert chat.open_view(trigger, MODAL)
    assert chat.open_view(trigger, MODAL)
    assert len(slack.views()) == 1


def test_a_press_that_came_too_late_is_not_opened(slack: SlackEmulator):
    chat = SlackChat(make_web_client(slack.bot_token, slack.api_url))
    assert not chat.open_view(f"{int((time.time() - 4) * 1000)}.2.abc", MODAL)
    assert slack.views() == {}


def test_a_post_that_failed_ambiguously_is_not_retried_in_process_but_an_edit_is(slack: SlackEmulator):
    """A 5xx on chat.postMessage may come after Slack made the message: retrying in the
    client could post it twice, so it fails to the worker (whose redelivery reads the DM
    back first). chat.update is idempotent and retried; a 429 is a refusal, retried."""
    from mailroom.errors import TransientError

    chat = SlackChat(make_web_client(slack.bot_token, slack.api_url))
    slack.fail_next("chat.postMessage", status=500)
    try:
        chat.post("D0ADA", "hello")
        raise AssertionError("the post should have failed to the caller")
    except TransientError:
        pass
    assert len(slack.calls("chat.postMessage")) == 1, "no second post from the client's retries"

    ts = chat.post("D0ADA", "hello")
    slack.fail_next("chat.update", status=500)
    chat.update("D0ADA", ts, "hello again")
    assert len(slack.calls("chat.update")) == 2
    slack.fail_next("chat.postMessage", retry_after=1)
    chat.post("D0ADA", "rate limited, then posted")
    assert [m.text for m in slack.messages(channel="D0ADA")] == ["hello again", "rate limited, then posted"]
