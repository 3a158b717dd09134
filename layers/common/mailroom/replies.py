"""What the bot says: texts and Block Kit for each answer, in one place."""

from __future__ import annotations

from typing import Any

Blocks = list[dict[str, Any]]

COMMANDS_HELP = (
    "*Commands*\n"
    "• `hello`: this message\n"
    "• `auth`: connect your Gmail account\n"
    "• `status`: which Gmail account is connected\n"
    "• `revoke`: disconnect Gmail and delete your stored tokens\n"
    "• anything else (or `chat <text>`): ask the mail agent"
)

EXAMPLES = (
    "*Try*\n"
    "• _What did Alice send me this week?_\n"
    "• _Summarise my unread mail from today_\n"
    "• _Draft a reply to the last mail from Bob saying Thursday works_"
)


def hello() -> tuple[str, Blocks]:
    intro = (
        "Hi! I'm Mailroom, your email agent. I can search and read your Gmail, draft replies, "
        "and send mail once you press *Approve*. Nothing is ever sent without your say-so."
    )
    blocks: Blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": intro}},
        {"type": "section", "text": {"type": "mrkdwn", "text": COMMANDS_HELP}},
        {"type": "section", "text": {"type": "mrkdwn", "text": EXAMPLES}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "Start with `auth` to connect Gmail."}]},
    ]
    return f"{intro}\n\n{COMMANDS_HELP}\n\n{EXAMPLES}", blocks


def not_ready(command: str) -> str:
    return (
        f"`{command}` is not available in this version of Mailroom yet. "
        "For now I can answer `hello`; the rest is on its way."
    )


def failure(reference: str) -> str:
    return (
        "Sorry, something went wrong on my side and I could not finish that. "
        f"Please try again in a moment. If it keeps happening, give your admin this reference: `{reference}`"
    )


def busy(reference: str) -> str:
    return (
        "Sorry, a service I depend on is not answering right now, so I could not finish that. "
        f"Please try again in a few minutes. Reference: `{reference}`"
    )
