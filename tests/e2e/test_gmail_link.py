"""Linking Gmail over the whole local stack: auth -> consent -> callback -> status ->
revoke -> status, through the real clients against the Google emulator."""

from __future__ import annotations

import pytest

from infra.local.browser import Browser
from infra.local.emulators.slack import PostedMessage
from infra.local.slack_requests import LOCAL_DM_CHANNEL, message_event, post_event
from infra.local.stack import LocalStack

pytestmark = pytest.mark.e2e


def say(stack: LocalStack, text: str) -> PostedMessage:
    assert stack.slack is not None
    before = len(stack.slack.messages(channel=LOCAL_DM_CHANNEL))
    assert post_event(stack.url, message_event(text)).status == 200
    return stack.slack.wait_for_messages(before + 1, channel=LOCAL_DM_CHANNEL, timeout=30)[before]


def button_url(message: PostedMessage) -> str:
    [url] = [e["url"] for b in message.blocks for e in b.get("elements", []) if "url" in e]
    return str(url)


def test_link_status_revoke_status(stack: LocalStack):
    assert stack.google is not None and stack.slack is not None
    assert "not connected" in say(stack, "status").text

    prompt = say(stack, "auth")
    assert prompt.ephemeral and prompt.user == "U0ADA"
    url = button_url(prompt)
    assert url.startswith(f"{stack.url}/auth/start?state=")

    # The browser: Mailroom's page -> Sign in with Slack (as ada) -> Google's consent -> back.
    browser = Browser()
    status, html = browser.open(url)
    assert status == 200 and "Gmail connected" in html
    # The Gmail address, and the Slack user (the emulator names U0ADA "U0Ada").
    assert "ada@example.com for U0Ada in Slack" in html
    [google] = [c for c in stack.slack.calls() if c["method"] == "openid.connect.userInfo"]
    assert google["ok"]
    assert "connected as *ada@example.com*" in stack.slack.wait_for_messages(2, channel=LOCAL_DM_CHANNEL)[-1].text

    rows = stack.scan("TokensTable")
    assert [r["email"]["S"] for r in rows] == ["ada@example.com"]
    assert all(token not in repr(rows) for token in stack.google.live_refresh_tokens())

    status_reply = say(stack, "status").text
    assert "ada@example.com" in status_reply and "read, compose, send" in status_reply

    # The same link again: refused, and nothing changes.
    status, html = browser.open(url)
    assert status == 400 and "expired or was already used" in html

    assert "Disconnected *ada@example.com*" in say(stack, "revoke").text
    assert stack.google.live_refresh_tokens() == set()
    assert stack.scan("TokensTable") == []
    assert "not connected" in say(stack, "status").text


def test_chat_without_a_link_says_how_to_link(stack: LocalStack):
    assert "send `auth`" in say(stack, "what did Alice send me?").text


def test_a_forwarded_connect_link_links_nothing(stack: LocalStack):
    """ada's button, opened by grace (signed in to Slack as herself): nothing is linked,
    the link is spent, and ada hears about it."""
    assert stack.slack is not None
    url = button_url(say(stack, "auth"))
    stack.slack.sign_in_as("U0GRACE")
    try:
        status, html = Browser().open(url)
    finally:
        stack.slack.sign_in_as("U0ADA")
    assert status == 403 and "belongs to someone else" in html
    assert stack.scan("TokensTable") == []
    assert "opened by a different Slack account" in stack.slack.messages(channel=LOCAL_DM_CHANNEL)[-1].text
    assert Browser().open(url)[0] == 400  # spent, even for ada
