"""Gmail message resources as text an LLM can read.

`readable_message` takes a `users.messages.get` resource, either format=full (a tree of
MIME parts whose bodies Gmail has already transfer-decoded and base64url-encoded) or
format=raw (the whole RFC 822 message, base64url-encoded). Both are first turned into
the same small part tree, so they read identically. From that tree it picks the text a
person would see: text/plain over HTML within multipart/alternative, the root of a
multipart/related, every inline text part of a multipart/mixed, and a summary for
attached messages. Attachments are listed, never inlined.

Nothing here raises on a malformed message: bad base64, unknown charsets, broken HTML
and missing bodies all still give a (possibly empty) readable message.

Email text is data: it is shown to the agent, never obeyed.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.utils import format_datetime
from html.parser import HTMLParser
from typing import Any

__all__ = [
    "Attachment",
    "ReadableMessage",
    "body_window",
    "condense_thread",
    "html_to_text",
    "readable_message",
    "render_for_agent",
    "strip_quoted",
    "summary_line",
]


@dataclass(frozen=True)
class Attachment:
    filename: str
    mime_type: str
    size: int  # bytes, as Gmail reports them (after transfer decoding)
    attachment_id: str | None  # for users.messages.attachments.get; None when read from format=raw
    # The bytes when the resource carried them (format=raw, or a small part Gmail inlined).
    data: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class ReadableMessage:
    id: str
    thread_id: str
    from_: str
    to: str
    cc: str
    subject: str
    date: str
    message_id: str
    in_reply_to: str
    references: str
    unread: bool
    labels: tuple[str, ...]
    snippet: str
    body: str
    attachments: tuple[Attachment, ...]
    truncated: bool
    reply_to: str = ""  # decoded Reply-To header, where a reply goes by default
    body_length: int = 0  # characters of readable body before the cut (== len(body) when not truncated)
    body_note: str = ""  # what of the body is shown and how to read the rest ("" when all of it)


# --------------------------------------------------------------------------- parts

_MAX_DEPTH = 30  # MIME nesting deeper than this is ignored (no recursion bombs)
_MAX_HTML_CHARS = 2_000_000  # HTML beyond this is not parsed (Lambda time); the cut is reported
_EMBEDDED_BODY_BUDGET = 1500  # characters of an attached message's body shown in its summary


@dataclass
class _Part:
    mime_type: str
    headers: list[tuple[str, str]]
    filename: str
    data: bytes | None
    attachment_id: str | None
    size: int
    children: list[_Part] = field(default_factory=list)
    charset: str | None = None
    disposition: str = ""
    content_type_params: dict[str, str] = field(default_factory=dict)
    content_id: str = ""

    def header(self, name: str) -> str:
        return _first_header(self.headers, name)

    @property
    def is_attachment_like(self) -> bool:
        return bool(self.filename) or self.disposition == "attachment"


def _first_header(headers: Iterable[tuple[str, str]], name: str) -> str:
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return ""


_FOLD = re.compile(r"\r?\n(?=[ \t])")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ESCAPED_BYTE = re.compile(r"[\udc80-\udcff]")


def _unfold(value: str) -> str:
    return _FOLD.sub("", value)


def _fix_surrogates(text: str) -> str:
    """Lone surrogates (from surrogateescape'd 8-bit headers, or garbage) become real text."""
    if not _SURROGATE.search(text):
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8")
    except UnicodeError:
        pass
    text = _ESCAPED_BYTE.sub(lambda m: bytes([ord(m.group()) - 0xDC00]).decode("cp1252", "replace"), text)
    return _SURROGATE.sub("\ufffd", text)


def _b64url_decode(data: str) -> bytes:
    """Gmail's base64url, with or without padding (and tolerating standard base64 and whitespace)."""
    cleaned = re.sub(r"[\s=]", "", data)
    if len(cleaned) % 4 == 1:  # one dangling character cannot carry a byte
        cleaned = cleaned[:-1]
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.urlsafe_b64decode(cleaned)
    except (binascii.Error, ValueError):
        return b""


def _content_meta(headers: Sequence[tuple[str, str]]) -> tuple[str, str | None, str, dict[str, str], str]:
    """(filename, charset, disposition, content-type params, content-id) from a part's headers."""
    probe = Message()
    content_type = _first_header(headers, "Content-Type")
    disposition = _first_header(headers, "Content-Disposition")
    if content_type:
        probe["Content-Type"] = _unfold(content_type)
    if disposition:
        probe["Content-Disposition"] = _unfold(disposition)
    filename = ""
    charset: str | None = None
    params: dict[str, str] = {}
    try:
        filename = probe.get_filename() or ""
        charset = probe.get_content_charset()
        for key, value in probe.get_params(header="Content-Type") or []:
            params[key.lower()] = value if isinstance(value, str) else str(value)
    # A malformed parameter only costs us the parameter.
    except Exception:  # noqa: S110  # nosec B110
        pass
    disposition_type = disposition.split(";", 1)[0].strip().lower() if disposition else ""
    content_id = _unfold(_first_header(headers, "Content-ID")).strip()
    return _decode_words(filename).strip(), charset, disposition_type, params, content_id


def _from_gmail(part: Mapping[str, Any], depth: int = 0) -> _Part:
    headers: list[tuple[str, str]] = []
    for header in part.get("headers") or []:
        if isinstance(header, Mapping):
            headers.append((str(header.get("name") or ""), str(header.get("value") or "")))
    filename, charset, disposition, params, content_id = _content_meta(headers)
    mime_type = str(part.get("mimeType") or "").strip().lower()
    if not mime_type:
        content_type = _first_header(headers, "Content-Type").split(";", 1)[0].strip().lower()
        mime_type = content_type if "/" in content_type else "text/plain"
    body_field = part.get("body")
    body: Mapping[str, Any] = body_field if isinstance(body_field, Mapping) else {}
    raw_data = body.get("data")
    data = _b64url_decode(raw_data) if isinstance(raw_data, str) else None
    attachment_id = body.get("attachmentId")
    try:
        size = int(body.get("size") or 0)
    except (TypeError, ValueError):
        size = 0
    if not size and data:
        size = len(data)
    children: list[_Part] = []
    if depth < _MAX_DEPTH:
        children = [_from_gmail(child, depth + 1) for child in part.get("parts") or [] if isinstance(child, Mapping)]
    if mime_type == "message/rfc822" and not children and data:
        # Some messages carry the attached message as data rather than as a parsed sub-tree.
        children = [_from_email(_parse_bytes(data), depth + 1)]
    return _Part(
        mime_type=mime_type,
        headers=headers,
        filename=str(part.get("filename") or "") or filename,
        data=data,
        attachment_id=str(attachment_id) if attachment_id else None,
        size=size,
        children=children,
        charset=charset,
        disposition=disposition,
        content_type_params=params,
        content_id=content_id,
    )


def _parse_bytes(raw: bytes) -> Message:
    return BytesParser(policy=policy.default).parsebytes(raw)


def _from_email(msg: Message, depth: int = 0) -> _Part:
    headers = [(str(name), _unfold(str(value))) for name, value in msg.raw_items()]
    filename, charset, disposition, params, content_id = _content_meta(headers)
    mime_type = msg.get_content_type().lower()
    children: list[_Part] = []
    data: bytes | None = None
    payload: Any = None
    if msg.is_multipart():
        payload = msg.get_payload()
        if depth < _MAX_DEPTH and isinstance(payload, list):
            children = [_from_email(child, depth + 1) for child in payload if isinstance(child, Message)]
    else:
        try:
            decoded = msg.get_payload(decode=True)
        except Exception:
            decoded = None
        data = decoded if isinstance(decoded, bytes) else None
    size = len(data) if data else 0
    if mime_type == "message/rfc822" and children:
        attached = payload[0] if isinstance(payload, list) and payload else None
        try:
            size = len(attached.as_bytes()) if isinstance(attached, Message) else 0
        except Exception:
            size = 0
    return _Part(
        mime_type=mime_type,
        headers=headers,
        filename=filename,
        data=data,
        attachment_id=None,
        size=size,
        children=children,
        charset=charset,
        disposition=disposition,
        content_type_params=params,
        content_id=content_id,
    )


def _root_part(resource: Mapping[str, Any]) -> _Part | None:
    raw = resource.get("raw")
    if isinstance(raw, str) and raw:
        return _from_email(_parse_bytes(_b64url_decode(raw)))
    payload = resource.get("payload")
    if isinstance(payload, Mapping):
        return _from_gmail(payload)
    return None


# --------------------------------------------------------------------------- charsets and headers

_LATIN1_ALIASES = {"iso8859-1"}


def _codec_for(charset: str | None) -> str | None:
    """A text codec name for a declared charset, or None when unknown or not a text encoding."""
    if not charset:
        return None
    name = charset.strip().strip("\"'").lower()
    if name in {"unknown-8bit", "x-unknown", "unknown", "default"}:
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in {"unicode-escape", "raw-unicode-escape"}:
        return None
    if info.name in _LATIN1_ALIASES:
        return "cp1252"  # what every mail client actually means by it (the C1 range as curly quotes etc.)
    return info.name


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text from bytes in any (or no, or a wrong) charset; never raises.

    The declared charset first, then UTF-8. Bytes valid in neither are read with the
    declared charset (or UTF-8) replacing the odd bad byte, unless bad bytes are common,
    which means the charset is wrong: then Windows-1252 / Latin-1, which read any byte.
    """
    codec = _codec_for(charset)
    for candidate in (codec, "utf-8"):
        if candidate:
            try:
                return data.decode(candidate)
            except (UnicodeDecodeError, LookupError):
                pass
    try:
        lenient = data.decode(codec or "utf-8", "replace")
    except (UnicodeDecodeError, LookupError):
        lenient = ""
    if lenient and lenient.count("\ufffd") <= len(lenient) // 200:
        return lenient
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _decode_words(value: str) -> str:
    """RFC 2047 encoded words to text, tolerant of unknown charsets."""
    value = _fix_surrogates(value)
    if "=?" not in value:
        return value
    try:
        pieces = decode_header(value)
    except Exception:
        return value
    out: list[str] = []
    for piece, charset in pieces:
        if not isinstance(piece, bytes):
            out.append(piece)
        elif charset is None:  # the unencoded stretches come back as raw-unicode-escape bytes
            try:
                out.append(piece.decode("raw-unicode-escape"))
            except UnicodeDecodeError:
                out.append(piece.decode("latin-1"))
        else:
            out.append(decode_bytes(piece, charset))
    return "".join(out)


_RAW_HEADERS = {"message-id", "in-reply-to", "references"}


def _display_header(name: str, raw: str) -> str:
    """A header value fit for display: unfolded, RFC 2047 decoded, addresses formatted."""
    value = _fix_surrogates(_unfold(raw)).strip()
    if not value or name.lower() in _RAW_HEADERS:
        return value
    try:
        decoded = str(policy.default.header_factory(name, value))
    except Exception:
        decoded = _decode_words(value)
    return _clean_inline(_fix_surrogates(decoded))


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_INVISIBLE = re.compile(r"[\u00ad\u034f\u200b-\u200d\u2060\ufeff]")


def _clean_inline(text: str) -> str:
    text = _INVISIBLE.sub("", _CONTROL.sub("", text))
    return " ".join(text.split())


# --------------------------------------------------------------------------- HTML to text

_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
)
_SKIP = frozenset({"script", "style", "head", "title", "template", "svg", "xml"})
_BLOCK = frozenset(
    {
        "address",
        "article",
        "aside",
        "caption",
        "center",
        "dd",
        "details",
        "dialog",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "header",
        "hgroup",
        "legend",
        "main",
        "nav",
        "section",
        "summary",
    }
)
_PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6"})
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|mso-hide\s*:\s*all", re.IGNORECASE)
# Private-use stand-ins for whitespace that must survive collapsing (<pre> text, list indents).
_KEEP_NL = "\ue000"
_KEEP_SP = "\ue001"
_WS = re.compile(r"[ \t\r\n\f\v\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")


def _tidy_lines(text: str) -> str:
    """Collapse whitespace per line, drop empty runs of lines; keeps the private-use markers."""
    text = _INVISIBLE.sub("", _CONTROL.sub("", text))
    lines = [_WS.sub(" ", line).strip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def _restore_markers(text: str) -> str:
    return text.replace(_KEEP_NL, "\n").replace(_KEEP_SP, " ")


@dataclass(eq=False)
class _Frame:
    kind: str  # "root" | "link" | "cell" | "quote"
    parts: list[str] = field(default_factory=list)
    href: str = ""
    table: _Table | None = None

    def text(self) -> str:
        return "".join(self.parts)

    def trailing_newlines(self, enough: int) -> int:
        """Line breaks already ending the frame (`enough` when it holds no text yet)."""
        count = 0
        for part in reversed(self.parts):
            for char in reversed(part):
                if char == "\n":
                    count += 1
                    if count >= enough:
                        return count
                elif not char.isspace():
                    return count
        return enough


@dataclass(eq=False)
class _Table:
    row: list[str] = field(default_factory=list)
    cell: _Frame | None = None


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._frames: list[_Frame] = [_Frame("root")]
        self._tables: list[_Table] = []
        self._lists: list[list[int | str]] = []  # [kind, counter]
        self._skip_tag: str | None = None
        self._skip_depth = 0
        self._pre = 0

    # -- output helpers
    def _emit(self, text: str) -> None:
        self._frames[-1].parts.append(text)

    def _newline(self, count: int = 1) -> None:
        """End the current line (count=1) or paragraph (count=2), unless that is already done."""
        frame = self._frames[-1]
        missing = count - frame.trailing_newlines(count)
        if missing > 0:
            frame.parts.append("\n" * missing)

    def _finish_top(self) -> None:
        frame = self._frames.pop()
        raw = frame.text()
        if frame.kind == "link":
            self._emit(_render_link(" ".join(_restore_markers(raw).split()), frame.href))
        elif frame.kind == "quote":
            body = _tidy_lines(raw)
            if body:
                quoted = "\n".join(f"> {line}" if line else ">" for line in body.split("\n"))
                self._newline()
                self._emit(quoted)
                self._newline()
        elif frame.kind == "cell" and frame.table is not None:
            frame.table.row.append(_tidy_lines(raw))
            frame.table.cell = None
        else:  # pragma: no cover - the root frame is never finished
            self._emit(raw)

    def _close_frame(self, frame: _Frame) -> None:
        if not any(open_frame is frame for open_frame in self._frames[1:]):
            return
        while self._frames[-1] is not frame:
            self._finish_top()
        self._finish_top()

    def _innermost(self, kind: str) -> _Frame | None:
        for frame in reversed(self._frames[1:]):
            if frame.kind == kind:
                return frame
        return None

    def _flush_row(self, table: _Table) -> None:
        if table.cell is not None:
            self._close_frame(table.cell)
        cells = [cell for cell in table.row if cell.strip()]
        table.row = []
        if not cells:
            return
        # Layout tables hold whole blocks per cell; data tables hold one line per cell.
        joined = "\n".join(cells) if any("\n" in cell for cell in cells) else " | ".join(cells)
        self._newline()
        self._emit(joined)
        self._newline()

    def _close_table(self) -> None:
        if not self._tables:
            return
        table = self._tables[-1]
        self._flush_row(table)
        self._tables.pop()
        self._newline(2)

    # -- parser callbacks
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth += 1
            elif tag == "body" and self._skip_tag in {"head", "title"}:
                self._skip_tag = None  # an unclosed <head> ends where the body starts
            return
        attributes = {key: value or "" for key, value in attrs}
        if tag in _SKIP or (tag not in _VOID and _HIDDEN_STYLE.search(attributes.get("style", ""))):
            self._skip_tag, self._skip_depth = tag, 1
            return
        if tag in _BLOCK:
            self._newline()
        elif tag in _PARAGRAPH:
            self._newline(2)
        elif tag == "br":
            self._emit("\n")
        elif tag == "hr":
            self._newline()
            self._emit("-----")
            self._newline()
        elif tag == "pre":
            self._newline(2)
            self._pre += 1
        elif tag in {"ul", "ol", "menu", "dir"}:
            self._newline()
            self._lists.append([tag, 0])
        elif tag == "li":
            self._newline()
            depth = max(len(self._lists), 1)
            bullet = "- "
            if self._lists and self._lists[-1][0] == "ol":
                count = int(self._lists[-1][1]) + 1
                self._lists[-1][1] = count
                bullet = f"{count}. "
            self._emit(_KEEP_SP * 2 * (depth - 1) + bullet)
        elif tag == "blockquote":
            self._newline()
            self._frames.append(_Frame("quote"))
        elif tag == "a":
            href = attributes.get("href", "").strip()
            unclosed = self._innermost("link")
            if unclosed is not None:  # links do not nest: a new one ends the last
                self._close_frame(unclosed)
            self._frames.append(_Frame("link", href=href))
        elif tag == "img":
            alt = " ".join(attributes.get("alt", "").split())
            if alt and self._innermost("link") is not None:
                self._emit(f" {alt} ")
        elif tag == "table":
            self._newline(2)
            self._tables.append(_Table())
        elif tag == "tr":
            if not self._tables:
                self._tables.append(_Table())
            self._flush_row(self._tables[-1])
        elif tag in {"td", "th"}:
            if not self._tables:
                self._tables.append(_Table())
            table = self._tables[-1]
            if table.cell is not None:
                self._close_frame(table.cell)
            cell = _Frame("cell", table=table)
            table.cell = cell
            self._frames.append(cell)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            self.handle_starttag(tag, attrs)
        # <div/> and the like in XHTML mail: open and close at once, which renders nothing of note.
        elif self._skip_tag is None and tag not in _SKIP:
            self.handle_starttag(tag, attrs)
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth -= 1
                if self._skip_depth <= 0:
                    self._skip_tag = None
            return
        if tag in _BLOCK or tag == "li":
            self._newline()
        elif tag in _PARAGRAPH:
            self._newline(2)
        elif tag == "pre":
            self._pre = max(self._pre - 1, 0)
            self._newline(2)
        elif tag in {"ul", "ol", "menu", "dir"}:
            if self._lists:
                self._lists.pop()
            self._newline()
        elif tag == "blockquote":
            quote = self._innermost("quote")
            if quote is not None:
                self._close_frame(quote)
        elif tag == "a":
            link = self._innermost("link")
            if link is not None:
                self._close_frame(link)
        elif tag in {"td", "th"}:
            open_cell = self._tables[-1].cell if self._tables else None
            if open_cell is not None:
                self._close_frame(open_cell)
        elif tag == "tr":
            if self._tables:
                self._flush_row(self._tables[-1])
        elif tag == "table":
            self._close_table()

    def handle_data(self, data: str) -> None:
        if self._skip_tag is not None or not data:
            return
        data = data.replace(_KEEP_NL, "").replace(_KEEP_SP, "")
        if self._pre:
            data = data.replace("\r\n", "\n").replace("\t", "    ")
            self._emit(data.replace("\n", _KEEP_NL).replace(" ", _KEEP_SP))
        else:
            self._emit(_WS.sub(" ", data))

    def result(self) -> str:
        while len(self._frames) > 1:
            self._finish_top()
        while self._tables:
            self._close_table()
        while len(self._frames) > 1:
            self._finish_top()
        return _restore_markers(_tidy_lines(self._frames[0].text()))


def _render_link(text: str, href: str) -> str:
    if not href or href.startswith("#") or href.lower().startswith(("javascript:", "data:", "cid:")):
        return text
    target = href
    if href.lower().startswith("mailto:"):
        target = href[7:].split("?", 1)[0]
    if not text:
        return ""  # image-only and empty links: the URL alone is noise
    bare = re.sub(r"^[a-z]+://", "", target, flags=re.IGNORECASE).rstrip("/").lower()
    shown = re.sub(r"^[a-z]+://", "", text, flags=re.IGNORECASE).rstrip("/").lower()
    if not target or shown == bare or bare in shown:
        return text
    return f"{text} ({target})"


def html_to_text(markup: str) -> str:
    """Readable text from HTML: blocks on their own lines, links as "text (url)", lists as "- ",
    table rows with " | ", entities unescaped, scripts, styles and hidden elements dropped."""
    parser = _HtmlText()
    try:
        parser.feed(markup)
        parser.close()
        return parser.result()
    except Exception:
        # html.parser is lenient, but never let a pathological document cost the whole message.
        text = re.sub(r"(?is)<(script|style|head)\b.*?</\1\s*>", " ", markup)
        text = re.sub(r"(?i)<br\s*/?>|</(p|div|tr|li|h[1-6])\s*>", "\n", text)
        text = re.sub(r"<[^>]*>", " ", text)
        return _tidy_lines(html.unescape(text))


# --------------------------------------------------------------------------- plain text

_HTML_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_\-:.]+)""", re.IGNORECASE)


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: a line ending in a space continues on the next line."""
    out: list[str] = []
    pending: str | None = None
    pending_depth = -1
    for line in text.split("\n"):
        stripped = line.lstrip(">")
        depth = len(line) - len(stripped)
        if stripped.startswith(" "):
            stripped = stripped[1:]  # space-stuffing
        if pending is not None and depth == pending_depth:
            pending += stripped
        else:
            if pending is not None:
                out.append(">" * pending_depth + (" " if pending_depth else "") + pending)
            pending, pending_depth = stripped, depth
        if pending.endswith(" ") and pending != "-- ":
            if delsp:
                pending = pending[:-1]
            continue
        out.append(">" * depth + (" " if depth else "") + pending)
        pending = None
    if pending is not None:
        out.append(">" * pending_depth + (" " if pending_depth else "") + pending)
    return "\n".join(out)


def _plain_to_text(text: str, params: Mapping[str, str]) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if params.get("format", "").lower() == "flowed":
        text = _unflow(text, params.get("delsp", "").lower() == "yes")
    text = _INVISIBLE.sub("", _CONTROL.sub("", text)).replace("\t", "    ")
    text = "\n".join(line if line == "-- " else line.rstrip() for line in text.split("\n"))  # keep sig dashes
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def _text_of(part: _Part) -> str:
    if part.data is None:
        if part.attachment_id or part.size:
            return f"[{part.mime_type} part of {_human_size(part.size)} not included in the message resource]"
        return ""
    if part.mime_type == "text/html":
        charset = part.charset
        if not charset:
            found = _HTML_META_CHARSET.search(part.data[:4096])
            charset = found.group(1).decode("ascii") if found else None
        markup = decode_bytes(part.data, charset)
        cut = len(markup) > _MAX_HTML_CHARS
        text = html_to_text(markup[:_MAX_HTML_CHARS])
        if cut:
            text += f"\n[HTML beyond {_MAX_HTML_CHARS} characters was not read]"
        return text
    return _plain_to_text(decode_bytes(part.data, part.charset), part.content_type_params)


# --------------------------------------------------------------------------- choosing the body


def _is_inline_text(part: _Part) -> bool:
    return part.mime_type in {"text/plain", "text/html"} and not part.is_attachment_like


def _body_chunks(part: _Part, depth: int = 0) -> list[str]:
    if depth > _MAX_DEPTH:
        return []
    kind = part.mime_type
    if kind.startswith("multipart/"):
        if kind == "multipart/alternative":
            return _alternative_chunks(part, depth)
        if kind == "multipart/related":
            root = _related_root(part)
            return _body_chunks(root, depth + 1) if root is not None else []
        chunks: list[str] = []
        for child in part.children:
            chunks.extend(_body_chunks(child, depth + 1))
        return chunks
    if kind == "message/rfc822":
        return [_embedded_summary(part, depth)]
    if _is_inline_text(part):
        text = _text_of(part)
        return [text] if text.strip() else []
    return []


def _alternative_chunks(part: _Part, depth: int) -> list[str]:
    def rank(child: _Part) -> int:
        if child.mime_type == "text/plain":
            return 0
        if child.mime_type.startswith("multipart/"):
            return 1
        if child.mime_type == "text/html":
            return 2
        return 9

    for child in sorted(part.children, key=rank):  # stable: equal ranks keep their order
        if rank(child) == 9 or child.is_attachment_like:
            continue
        chunks = _body_chunks(child, depth + 1)
        if any(chunk.strip() for chunk in chunks):
            return chunks
    return []


def _related_root(part: _Part) -> _Part | None:
    if not part.children:
        return None
    start = part.content_type_params.get("start", "").strip()
    if start:
        for child in part.children:
            if child.content_id == start:
                return child
    return part.children[0]


def _collect_attachments(part: _Part, out: list[Attachment], depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        return
    if part.mime_type.startswith("multipart/"):
        for child in part.children:
            _collect_attachments(child, out, depth + 1)
        return
    if part.is_attachment_like:
        name = _clean_inline(part.filename)
        if not name and part.mime_type == "message/rfc822" and part.children:
            subject = _display_header("Subject", part.children[0].header("Subject"))
            name = f"{subject or 'message'}.eml"
        name = name or "(unnamed)"
        size = part.size or (len(part.data) if part.data else 0)
        out.append(
            Attachment(
                filename=name, mime_type=part.mime_type, size=size, attachment_id=part.attachment_id, data=part.data
            )
        )
    # An attached message's own attachments belong to it: they are named in its summary instead.


def _embedded_summary(part: _Part, depth: int) -> str:
    label = f" {_clean_inline(part.filename)}" if part.filename else ""
    inner = part.children[0] if part.children else None
    if inner is None:
        return f"[Attached message{label} ({_human_size(part.size)}), not included in the message resource]"
    lines = [f"---------- Attached message{label} ----------"]
    for name in ("From", "To", "Cc", "Date", "Subject"):
        value = _display_header(name, inner.header(name))
        if value:
            lines.append(f"{name}: {value}")
    inner_attachments: list[Attachment] = []
    _collect_attachments(inner, inner_attachments)
    if inner_attachments:
        lines.append("Attachments: " + ", ".join(_describe_attachment(a) for a in inner_attachments))
    body = "\n\n".join(_body_chunks(inner, depth + 1)).strip()
    if body:
        cut = _cut(body, _EMBEDDED_BODY_BUDGET)
        lines.append("")
        lines.append(cut)
        if len(cut) < len(body):
            lines.append(f"[... attached message cut at {len(cut)} of {len(body)} characters]")
    lines.append("---------- End of attached message ----------")
    return "\n".join(lines)


# --------------------------------------------------------------------------- cutting


def _cut(text: str, budget: int) -> str:
    """At most `budget` characters of `text`, ending at a line or word boundary near the budget if one is close."""
    if len(text) <= budget:
        return text
    if budget <= 0:
        return ""
    line_window = min(400, max(budget // 10, 1))
    word_window = min(100, max(budget // 10, 1))
    cut = text.rfind("\n", budget - line_window, budget + 1)
    if cut <= 0:
        cut = text.rfind(" ", budget - word_window, budget + 1)
    if cut <= 0:
        cut = budget
        # Never leave a combining mark or the second half of a surrogate pair on the far side.
        while cut > 0 and (unicodedata.combining(text[cut]) or "\udc00" <= text[cut] <= "\udfff"):
            cut -= 1
    return text[:cut].rstrip()


_MARKER_ROOM = 160  # characters kept for the line that names the skipped part
_TAIL_SHARE = 3  # a cut body keeps its last third: logs, the latest reply and signs of trouble end there


def body_window(text: str, budget: int, offset: int = 0, *, reader: str = "read_email") -> tuple[str, str]:
    """The part of `text` to show within `budget` characters, and a note saying exactly what
    was left out and how to read it (empty when all of it is shown).

    From the start (offset 0) a long text keeps its head and its tail and names the skipped
    characters; from an offset it shows the characters from there on and says where to go on.
    """
    total, budget = len(text), max(budget, 200)
    offset = max(offset, 0)
    if offset >= total and offset:
        return "", f"[offset {offset} is past the end: the text has {total} characters]"
    if offset:
        piece = _cut(text[offset:], budget)
        end = offset + len(piece)
        after = f"; {reader} with offset={end} reads on" if end < total else "; that is the end"
        return piece, f"[characters {offset}-{end} of {total}{after}]"
    if total <= budget:
        return text, ""
    room = budget - _MARKER_ROOM
    head = _cut(text, room - room // _TAIL_SHARE)
    tail_start = max(total - room // _TAIL_SHARE, len(head))
    for boundary in ("\n", " "):  # the tail starts on a whole line, else a whole word
        found = text.find(boundary, tail_start, min(tail_start + 400, total))
        if found != -1:
            tail_start = found + 1
            break
    skipped = f"characters {len(head)}-{tail_start} of {total} ({tail_start - len(head)} characters)"
    marker = f"[... {skipped} skipped; {reader} with offset={len(head)} reads them ...]"
    return f"{head}\n{marker}\n{text[tail_start:]}", f"[long text: head and tail shown, {skipped} skipped]"


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _describe_attachment(attachment: Attachment) -> str:
    return f"{attachment.filename} ({_human_size(attachment.size)})"


def _list_attachment(number: int, attachment: Attachment) -> str:
    return f"  [{number}] {attachment.filename} ({attachment.mime_type}, {_human_size(attachment.size)})"


# --------------------------------------------------------------------------- the public API


def _internal_date(resource: Mapping[str, Any]) -> str:
    try:
        millis = int(resource.get("internalDate") or 0)
    except (TypeError, ValueError):
        return ""
    if millis <= 0:
        return ""
    try:
        return format_datetime(datetime.fromtimestamp(millis / 1000, tz=UTC))
    except (OverflowError, OSError, ValueError):
        return ""


def _labels(resource: Mapping[str, Any]) -> tuple[str, ...]:
    labels = resource.get("labelIds") or []
    return tuple(str(label) for label in labels) if isinstance(labels, list | tuple) else ()


def _snippet(resource: Mapping[str, Any]) -> str:
    # Gmail's snippet is HTML-escaped ("It&#39;s"), so unescape it.
    return _clean_inline(html.unescape(str(resource.get("snippet") or "")))


def _top_headers(resource: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Top-level headers only, without decoding any body (for summary lines)."""
    raw = resource.get("raw")
    if isinstance(raw, str) and raw:
        parsed = BytesParser(policy=policy.default).parsebytes(_b64url_decode(raw), headersonly=True)
        return [(str(name), _unfold(str(value))) for name, value in parsed.raw_items()]
    payload = resource.get("payload")
    if not isinstance(payload, Mapping):
        return []
    return [
        (str(h.get("name") or ""), str(h.get("value") or ""))
        for h in payload.get("headers") or []
        if isinstance(h, Mapping)
    ]


def readable_message(resource: Mapping[str, Any], *, body_budget: int = 8000, offset: int = 0) -> ReadableMessage:
    """A Gmail message resource (format=full or format=raw) as readable text: the body within
    `body_budget` characters (head and tail of a long one, or the part from `offset`)."""
    try:
        root = _root_part(resource)
    except Exception:
        root = None  # a message too broken to parse still has ids, labels and a snippet
    headers = root.headers if root is not None else _safe_top_headers(resource)

    def header(name: str) -> str:
        return _display_header(name, _first_header(headers, name))

    body = ""
    attachments: list[Attachment] = []
    if root is not None:
        body = "\n\n".join(chunk.strip("\n") for chunk in _body_chunks(root)).strip()
        _collect_attachments(root, attachments)
    body = _fix_surrogates(body)
    full_length = len(body)
    cut, note = body_window(body, body_budget, offset) if body else ("", "")
    labels = _labels(resource)
    return ReadableMessage(
        id=str(resource.get("id") or ""),
        thread_id=str(resource.get("threadId") or ""),
        from_=header("From"),
        to=header("To"),
        cc=header("Cc"),
        subject=header("Subject"),
        date=header("Date") or _internal_date(resource),
        message_id=header("Message-ID"),
        in_reply_to=header("In-Reply-To"),
        references=" ".join(header("References").split()),
        unread="UNREAD" in labels,
        labels=labels,
        snippet=_snippet(resource),
        body=cut,
        attachments=tuple(attachments),
        truncated=bool(note),
        reply_to=header("Reply-To"),
        body_length=full_length,
        body_note=note,
    )


def _safe_top_headers(resource: Mapping[str, Any]) -> list[tuple[str, str]]:
    try:
        return _top_headers(resource)
    except Exception:
        return []


def summary_line(resource_or_readable: Mapping[str, Any] | ReadableMessage) -> dict[str, Any]:
    """One search result: id, thread_id, from, to, subject, date, snippet, unread.

    Takes a ReadableMessage or a resource in any format (metadata is enough); never decodes bodies.
    """
    if isinstance(resource_or_readable, ReadableMessage):
        m = resource_or_readable
        return {
            "id": m.id,
            "thread_id": m.thread_id,
            "from": m.from_,
            "to": m.to,
            "subject": m.subject,
            "date": m.date,
            "snippet": m.snippet,
            "unread": m.unread,
        }
    resource = resource_or_readable
    headers = _safe_top_headers(resource)

    def header(name: str) -> str:
        return _display_header(name, _first_header(headers, name))

    return {
        "id": str(resource.get("id") or ""),
        "thread_id": str(resource.get("threadId") or ""),
        "from": header("From"),
        "to": header("To"),
        "subject": header("Subject"),
        "date": header("Date") or _internal_date(resource),
        "snippet": _snippet(resource),
        "unread": "UNREAD" in _labels(resource),
    }


def _cut_note(message: ReadableMessage) -> str:
    return message.body_note or f"[... body cut at {len(message.body)} of {message.body_length} characters]"


def render_for_agent(message: ReadableMessage) -> str:
    """The message as the compact text block the agent reads."""
    lines = [f"id: {message.id}   thread: {message.thread_id}" + ("   (unread)" if message.unread else "")]
    lines.append(f"From: {message.from_}")
    if message.reply_to and message.reply_to != message.from_:
        lines.append(f"Reply-To: {message.reply_to}")
    lines.append(f"To: {message.to}")
    if message.cc:
        lines.append(f"Cc: {message.cc}")
    lines.append(f"Date: {message.date}")
    lines.append(f"Subject: {message.subject}")
    if message.attachments:
        lines.append("Attachments (read_attachment with the message id and the number reads one):")
        lines.extend(_list_attachment(n, a) for n, a in enumerate(message.attachments, start=1))
    lines.append("")
    if message.body:
        lines.append(message.body)
    elif message.snippet:
        lines.append(f"(no readable body; Gmail's snippet: {message.snippet})")
    else:
        lines.append("(no readable body)")
    if message.truncated:
        lines.append(_cut_note(message))
    return "\n".join(lines)


# --------------------------------------------------------------------------- threads

_ATTRIBUTION = re.compile(
    r"^\s*(?:On\b.{0,300}\bwrote|Le\b.{0,300}\ba [ée]crit|Am\b.{0,300}\bschrieb.{0,100}|El\b.{0,300}\bescribi[óo]"
    r"|Il\b.{0,300}\bha scritto|Op\b.{0,300}\bschreef|Den\b.{0,300}\bskrev|Em\b.{0,300}\bescreveu)\s*:\s*$",
    re.IGNORECASE | re.DOTALL,
)
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine)\s*-{2,}\s*$", re.IGNORECASE
)


def _starts_outlook_header(lines: Sequence[str], index: int) -> bool:
    """Outlook's reply header: "From: ..." followed shortly by "Sent: ..." (and To/Subject)."""
    if not re.match(r"^\s*\**(From|De|Von):", lines[index]):
        return False
    following = " ".join(lines[index + 1 : index + 5])
    return bool(re.search(r"\b(Sent|Envoyé|Gesendet):", following))


def strip_quoted(text: str) -> str:
    """The new text of a reply: quoted lines (">"), their "On ... wrote:" line, and Outlook-style
    quoted originals removed. Returns "" when the message is nothing but quotes."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith(">"):
            i += 1
            continue
        if _ORIGINAL_MESSAGE.match(line) or (i > 0 and _starts_outlook_header(lines, i)):
            break
        attribution_end = 0
        for span in (1, 2, 3):
            candidate = " ".join(part.strip() for part in lines[i : i + span])
            if len(candidate) <= 400 and _ATTRIBUTION.match(candidate):
                following = i + span
                while following < len(lines) and not lines[following].strip():
                    following += 1
                if following >= len(lines) or lines[following].lstrip().startswith(">"):
                    attribution_end = following
                break
        if attribution_end:
            i = attribution_end
            continue
        out.append(line)
        i += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


_SHORTENED = " [...]"


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    if limit <= len(_SHORTENED):
        return ""
    return _cut(text, limit - len(_SHORTENED)) + _SHORTENED


def _water_level(lengths: Sequence[int], available: int) -> int:
    """The largest per-item cap c with sum(min(length, c)) <= available."""
    remaining, count = available, len(lengths)
    for length in sorted(lengths):
        share = remaining // count if count else 0
        if length > share:
            return share
        remaining -= length
        count -= 1
    return max(lengths, default=0)


_SUBJECT_PREFIXES = re.compile(r"^(?:\s*(?:re|fwd?|aw|wg|sv|vs|tr|antw)\s*(?:\[\d+\])?\s*:)+\s*", re.IGNORECASE)


def _thread_head(message: ReadableMessage, number: int, total: int, show_subject: bool) -> str:
    # The id lets the agent reply to (or read in full) a message of the thread.
    head = [f"[{number}/{total}] id: {message.id} | From: {message.from_} | Date: {message.date}"]
    if show_subject:
        head.append(f"Subject: {message.subject}")
    if message.attachments:
        head.append("Attachments: " + ", ".join(_describe_attachment(a) for a in message.attachments))
    return "\n".join(head)


def condense_thread(messages: Sequence[ReadableMessage], *, budget: int = 12000) -> str:
    """The thread in order, within `budget` characters: quoted text stripped from every message,
    the newest messages in full, older ones shortened (and the oldest left out when even their
    headers would crowd the rest: headers may take at most half a tight budget)."""
    if not messages or budget <= 0:
        return ""
    total = len(messages)
    topics = [_SUBJECT_PREFIXES.sub("", m.subject).strip().lower() for m in messages]
    bodies: list[str] = []
    for message in messages:
        new_text = strip_quoted(message.body)
        if not new_text:
            new_text = "(only quoted text)" if message.body.strip() else "(no readable body)"
        elif message.truncated:
            new_text += f"\n{_cut_note(message)}"
        bodies.append(new_text)

    separator = "\n\n"

    def layout(first: int) -> tuple[list[str], str, int]:
        """Headers of messages first.. (the subject shown first and whenever it changes), the
        omission line, and the characters all that takes besides the bodies."""
        heads = [
            _thread_head(messages[i], i + 1, total, i == first or topics[i] != topics[i - 1])
            for i in range(first, total)
        ]
        omitted = f"[{first} earlier messages not shown]" if first else ""
        fixed = sum(len(head) + 1 for head in heads) + len(separator) * (len(heads) - 1)
        if omitted:
            fixed += len(omitted) + len(separator)
        return heads, omitted, fixed

    first_kept = 0
    heads, omitted, fixed = layout(0)
    if fixed + sum(len(body) for body in bodies) > budget:
        while first_kept < total - 1 and fixed > budget // 2:
            first_kept += 1
            heads, omitted, fixed = layout(first_kept)
    kept = range(first_kept, total)

    available = max(budget - fixed, 0)
    lengths = [len(bodies[i]) for i in kept]
    allowed: dict[int, int] = {}
    if sum(lengths) <= available:
        allowed = {i: len(bodies[i]) for i in kept}
    else:
        # Older messages are guaranteed a short excerpt from at most half of the room; then,
        # newest first, each message takes what it needs of the rest.
        short_cap = min(400, _water_level(lengths[:-1], available // 2))
        reserve = {i: min(len(bodies[i]), short_cap) for i in kept}
        used = 0
        for i in reversed(kept):
            older = sum(reserve[j] for j in kept if j < i)
            allow = max(available - used - older, 0)
            allowed[i] = min(len(bodies[i]), allow)
            used += allowed[i]

    blocks = [omitted] if omitted else []
    for head, i in zip(heads, kept, strict=True):
        blocks.append(f"{head}\n{_shorten(bodies[i], allowed[i])}".rstrip())
    result = separator.join(blocks)
    return result if len(result) <= budget else _cut(result, budget)
