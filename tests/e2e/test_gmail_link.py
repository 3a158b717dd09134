"""Linking Gmail over the whole local stack: auth -> consent -> callback -> status ->
revoke -> status, through the real clients against the Google emulator."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

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


def browse(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (the local front)
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_link_status_revoke_status(stack: LocalStack):
    assert stack.google is not None and stack.slack is not None
    assert "not connected" in say(stack, "status").text

    prompt = say(stack, "auth")
    assert prompt.ephemeral and prompt.user == "U0ADA"
    url = button_url(prompt)
    assert url.startswith(stack.google.auth_uri)
    assert "code_challenge_method=S256" in url and "access_type=offline" in url

    callback = stack.google.consent(url)
    assert callback.startswith(f"{stack.url}/auth/callback?")
    status, html = browse(callback)
    assert status == 200 and "Gmail connected" in html
    assert "connected as *ada@example.com*" in stack.slack.wait_for_messages(2, channel=LOCAL_DM_CHANNEL)[-1].text

    rows = stack.scan("TokensTable")
    assert [r["email"]["S"] for r in rows] == ["ada@example.com"]
    assert all(token not in repr(rows) for token in stack.google.live_refresh_tokens())

    status_reply = say(stack, "status").text
    assert "ada@example.com" in status_reply and "read, compose, send" in status_reply

    # The same consent link again: refused, and nothing changes.
    status, html = browse(callback)
    assert status == 400 and "expired or was already used" in html

    assert "Disconnected *ada@example.com*" in say(stack, "revoke").text
    assert stack.google.live_refresh_tokens() == set()
    assert stack.scan("TokensTable") == []
    assert "not connected" in say(stack, "status").text


def test_chat_without_a_link_says_how_to_link(stack: LocalStack):
    assert "send `auth`" in say(stack, "what did Alice send me?").text
