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


def unknown_command(command: str) -> str:
    return f"I don't know how to do `{command}`. Send `hello` to see what I can do."


def failure(reference: str) -> str:
    return (
        "Sorry, something went wrong on my side and I could not finish that. "
        f"Please try again in a moment. If it keeps happening, give your admin this reference: `{reference}`"
    )


def busy(reference: str, service: str | None = None) -> str:
    """`service` names what was down when known ("Gmail"), so the user knows what failed."""
    return (
        f"Sorry, {service or 'a service I depend on'} is not answering right now, so I could not finish that. "
        f"Please try again in a few minutes. Reference: `{reference}`"
    )


def _scope_list(scopes: tuple[str, ...]) -> str:
    from mailroom.google import SCOPE_NAMES

    return ", ".join(SCOPE_NAMES.get(s, s.rsplit("/", 1)[-1]) for s in scopes)


def connect_gmail(url: str, replacing: str | None) -> tuple[str, Blocks]:
    lead = (
        f"You're connected as *{replacing}*; connecting again replaces that link."
        if replacing
        else "Connect your Gmail so I can search, read and draft mail for you."
    )
    detail = (
        "You'll sign in with Slack first (so the link works for you alone), then Google will ask you to allow "
        "Mailroom to *read*, *compose* and *send* mail. Nothing is sent without your Approve. "
        "The button works once, for 10 minutes."
    )
    blocks: Blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{lead}\n{detail}"}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "connect_gmail",
                    "text": {"type": "plain_text", "text": "Connect Gmail"},
                    "style": "primary",
                    "url": url,
                }
            ],
        },
    ]
    return f"{lead} Use the Connect Gmail button (valid for 10 minutes).", blocks


def status_linked(email: str, since: str, scopes: tuple[str, ...]) -> str:
    from mailroom.google import GMAIL_SCOPES

    text = f"Gmail is connected as *{email}* since {since}, with permission to {_scope_list(scopes)}."
    missing = tuple(s for s in GMAIL_SCOPES if s not in scopes)
    if missing:
        text += (
            f"\nThis link was made before Mailroom could {_scope_list(missing)}; reading, drafting and sending "
            "keep working. Send `auth` to link Gmail again and allow it."
        )
    return text


def needs_relink() -> str:
    """A tool's answer when Gmail refuses a call for a permission an older link lacks."""
    return (
        "Not done: this Gmail link was made before Mailroom could tidy the inbox (labels, archive, read state). "
        "Tell the user to send `auth` to link Gmail again; reading, drafting and sending keep working meanwhile."
    )


def status_not_linked() -> str:
    return "Gmail is not connected. Send `auth` to connect it."


def link_broken() -> str:
    return "Your Gmail link no longer works: access was revoked at Google or has expired. Send `auth` to connect again."


def revoked(email: str, google_revoked: bool) -> str:
    at_google = "revoked Mailroom's access at Google" if google_revoked else "Google had already revoked access"
    return (
        f"Disconnected *{email}*: {at_google}, and your stored tokens are deleted, with our conversations "
        "and any send still waiting for your Approve."
    )


def revoked_unreadable() -> str:
    return (
        "Disconnected: your stored Gmail link could not be read any more, so I deleted it. "
        "To be sure Google forgets Mailroom too, remove it at https://myaccount.google.com/permissions."
    )


def nothing_to_revoke() -> str:
    return "Gmail is not connected, so there is nothing to revoke."


def needs_gmail() -> str:
    return "To use the mail agent, connect Gmail first: send `auth`."


def conversation_not_yours() -> str:
    return "This conversation belongs to someone else, so I can't continue it for you. Write to me in our own DM."


def link_opened_by_someone_else() -> str:
    return (
        "Your Connect Gmail link was opened by a different Slack account, so it connected nothing and no longer "
        "works. Send `auth` for a new one, and keep it to yourself."
    )


def link_finished_elsewhere() -> str:
    return (
        "A Connect Gmail link of yours reached Google's page without your Slack sign-in in that browser, so it "
        "connected nothing and no longer works. Send `auth` for a new one."
    )


def linked(email: str) -> str:
    return f"Gmail connected as *{email}*. Ask me about your mail, e.g. _what came in today?_"


def link_declined() -> str:
    return "Gmail was not connected: access was declined on Google's page. Send `auth` to try again."


def link_missing_scopes(missing: tuple[str, ...]) -> str:
    return (
        f"Gmail was not connected: Mailroom needs permission to {_scope_list(missing)} as well. "
        "Send `auth` and leave every box ticked on Google's page."
    )


def link_failed(reference: str) -> str:
    return (
        "Gmail was not connected: Google did not accept the sign-in. "
        f"Send `auth` to try again. Reference: `{reference}`"
    )


def dm_only() -> str:
    return "Your mail is private, so I only work with it in our direct messages: open a DM with me and ask there."


def approval_not_pending() -> str:
    return "This request is no longer waiting for a decision (it was already decided, replaced or expired)."


def approval_not_yours(owner: str) -> str:
    return f"Only <@{owner}>, who asked for this email, can approve or cancel it."


def approval_already(state: str) -> str:
    what = {
        "approved": "it was already approved and is being sent",
        "sending": "it was already approved and is being sent",
        "sent": "it was already sent",
        "failed": "it could not be sent, and you were told why",
        "cancelled": "it was cancelled",
        "expired": "it expired",
        "superseded": "it was replaced or dropped when you moved on",
    }.get(state, "it was already decided")
    return f"This request is no longer waiting for a decision: {what}. Nothing more will happen from this card."


def editor_too_late() -> str:
    return (
        "Slack gives me 3 seconds to open the editor and I took longer this time. "
        "Press *Edit* again: it opens at once now that I am awake."
    )


def approval_edit_invalid(problem: str) -> str:
    return f"Your edit was not applied ({problem}). The card above still waits for your decision."


def rate_limited(minutes: int) -> str:
    return (
        "You have asked me a lot in a short time, so I am pausing to keep costs in check. "
        f"Please try again in about {minutes} minute{'s' if minutes != 1 else ''}."
    )


def cannot_do(reference: str) -> str:
    return (
        "Sorry, I could not do that, and trying again the same way will not help. "
        f"Try asking differently. Reference: `{reference}`"
    )
