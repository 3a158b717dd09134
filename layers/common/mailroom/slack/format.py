"""Model output (Markdown) to Slack mrkdwn, cut into messages Slack accepts."""

from __future__ import annotations

import re

# Slack truncates a message's text at 40,000 characters and renders long ones poorly;
# answers are split at paragraph or line boundaries well below that.
MESSAGE_LIMIT = 3500

_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.M)
_BULLET = re.compile(r"^(\s*)[-*+]\s+", re.M)


def to_mrkdwn(markdown: str) -> str:
    """Convert the Markdown a model writes into Slack's mrkdwn, leaving code alone."""
    parts = re.split(r"(```.*?```|`[^`\n]+`)", markdown, flags=re.S)
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 1:  # code span or block
            out.append(part)
            continue
        part = part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        part = _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", part)
        part = _HEADING.sub(lambda m: f"*{m.group(1)}*", part)
        part = _BOLD.sub(lambda m: f"*{m.group(1) or m.group(2)}*", part)
        part = _BULLET.sub(lambda m: f"{m.group(1)}• ", part)
        out.append(part)
    return "".join(out).strip()


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut `text` into pieces of at most `limit` characters, preferring paragraph, then
    line, then word boundaries."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), 0) or max(window.rfind("\n"), 0) or max(window.rfind(" "), 0) or limit
        if cut < limit // 2:  # no good boundary: cut at a space near the limit, or hard
            cut = window.rfind(" ") if window.rfind(" ") > limit // 2 else limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces or [""]
