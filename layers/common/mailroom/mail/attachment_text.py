"""The readable text of an attachment: PDF, plain text, CSV, HTML, calendar (.ics) and Word
(.docx). Anything else (images, archives, other binaries) is described, never inlined.

Nothing here raises on a bad file: an encrypted, broken or unsupported attachment gives
a sentence that says so, which the agent passes on. The caller pages the text.
"""

from __future__ import annotations

import io
import logging
import re
import time
import zipfile
from dataclasses import dataclass
from typing import Any

from mailroom.mail.decode import decode_bytes, html_to_text

# pypdf logs each oddity of a file (with its bytes at times): only errors, never content.
logging.getLogger("pypdf").setLevel(logging.ERROR)

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # bigger ones are refused before they are downloaded
_MAX_PDF_PAGES = 300
# A few KB of PDF can inflate to pages that take minutes to parse: a page with more drawing
# commands than this is left out, and reading stops at the time budget (the turn has 120 s).
_MAX_PAGE_DRAWING_BYTES = 4 * 1024 * 1024
_PDF_SECONDS = 20.0
_clock = time.monotonic
_MAX_XML_BYTES = 20 * 1024 * 1024  # a .docx's document.xml, unzipped (no zip bombs)
_WORD = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_CHARSET = re.compile(r"charset\s*=\s*\"?([\w.:-]+)", re.IGNORECASE)


@dataclass(frozen=True)
class AttachmentText:
    text: str  # the extracted text ("" when there is none)
    note: str = ""  # why there is no text, or what was left out


def kind_of(mime_type: str, filename: str) -> str:
    """'pdf', 'docx', 'ics', 'html', 'text' or 'binary', from the name first (senders often
    label every attachment application/octet-stream), then the MIME type."""
    name, mime = filename.lower(), mime_type.lower().split(";", 1)[0].strip()
    by_name = {".pdf": "pdf", ".docx": "docx", ".ics": "ics", ".htm": "html", ".html": "html"}
    for suffix, kind in by_name.items():
        if name.endswith(suffix):
            return kind
    if name.endswith((".txt", ".csv", ".tsv", ".log", ".md", ".json", ".xml", ".eml")):
        return "text"
    if mime == "application/pdf":
        return "pdf"
    if mime == "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
        return "docx"
    if mime == "text/calendar":
        return "ics"
    if mime == "text/html":
        return "html"
    if mime.startswith("text/") or mime in ("application/json", "application/csv", "application/xml"):
        return "text"
    return "binary"


def extract(data: bytes, mime_type: str, filename: str, seconds: float = _PDF_SECONDS) -> AttachmentText:
    """The text; a PDF is read for `seconds` at most (never more than `_PDF_SECONDS`)."""
    kind = kind_of(mime_type, filename)
    try:
        if kind == "pdf":
            return _pdf(data, min(seconds, _PDF_SECONDS))
        if kind == "docx":
            return _docx(data)
        charset = _CHARSET.search(mime_type)
        text = decode_bytes(data, charset.group(1) if charset else None)
        if kind == "ics":
            return _calendar(text)
        if kind == "html":
            return AttachmentText(html_to_text(text))
        if kind == "text":
            return AttachmentText(text)
    except Exception as exc:  # a broken file is an answer, not a crash
        return AttachmentText("", f"{filename} could not be read: it looks damaged ({type(exc).__name__}).")
    return AttachmentText("", describe(mime_type, filename, len(data)))


def describe(mime_type: str, filename: str, size: int) -> str:
    what = "an image" if mime_type.lower().startswith("image/") else f"a {mime_type} file"
    return f"{filename} is {what} ({size} bytes); its content cannot be read as text, so it is not shown."


class _OutOfTime(Exception):
    pass


def _pdf(data: bytes, seconds: float) -> AttachmentText:
    from pypdf import PdfReader  # imported on use: only a PDF needs it
    from pypdf.errors import PdfReadError

    stop = _clock() + seconds

    def in_time(*_: Any) -> None:  # called by pypdf before each drawing command
        if _clock() > stop:
            raise _OutOfTime

    texts: list[str] = []
    left_out: list[str] = []
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            return AttachmentText("", "The PDF is password-protected, so its text cannot be read.")
        pages = reader.pages
        for number in range(1, min(len(pages), _MAX_PDF_PAGES) + 1):
            page = pages[number - 1]
            drawing = page.get_contents()
            if drawing is not None and len(drawing.get_data()) > _MAX_PAGE_DRAWING_BYTES:
                texts.append("")
                left_out.append(f"page {number} was left out: it holds too much drawing to read")
                continue
            try:
                in_time()
                texts.append((page.extract_text(visitor_operand_before=in_time) or "").strip())
            except _OutOfTime:
                left_out.append(f"reading stopped at page {number} of {len(pages)}: the rest takes too long to read")
                break
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        return AttachmentText("", f"The PDF could not be read: it looks damaged ({type(exc).__name__}).")
    except Exception as exc:  # pypdf raises NotImplementedError for some encryption, and more
        if "crypt" in str(exc).lower() or "password" in str(exc).lower():
            return AttachmentText("", "The PDF is encrypted, so its text cannot be read.")
        return AttachmentText("", f"The PDF could not be read ({type(exc).__name__}).")
    text = "\n\n".join(f"[page {n}]\n{t}" for n, t in enumerate(texts, start=1) if t)
    if len(pages) > _MAX_PDF_PAGES and len(texts) == _MAX_PDF_PAGES:
        left_out.append(f"only the first {_MAX_PDF_PAGES} of {len(pages)} pages were read")
    if not text and left_out:
        return AttachmentText("", f"The PDF takes too long to read ({'; '.join(left_out)}), so no text is shown.")
    if not text:
        return AttachmentText("", "The PDF has no text layer (it is probably scanned images), so nothing to read.")
    return AttachmentText(text, "; ".join(left_out))


def _docx(data: bytes) -> AttachmentText:
    """Paragraphs of word/document.xml (tables row by row, cells separated by ' | ')."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if "EncryptedPackage" in archive.namelist():
                return AttachmentText("", "The Word document is password-protected, so its text cannot be read.")
            info = archive.getinfo("word/document.xml")
            if info.file_size > _MAX_XML_BYTES:
                return AttachmentText("", "The Word document is too large to read.")
            xml = archive.read(info)
    except (zipfile.BadZipFile, KeyError):
        if data.startswith(b"\xd0\xcf\x11\xe0"):  # an OLE file: encrypted .docx, or an old .doc
            return AttachmentText("", "The Word document is encrypted or in the old .doc format; it cannot be read.")
        return AttachmentText("", "The Word document could not be read: it looks damaged.")
    from defusedxml import ElementTree as SafeTree  # refuses entity expansion and DTDs (XML bombs)
    from defusedxml.common import DefusedXmlException

    lines: list[str] = []
    # Block by block, each dropped once read: a whole tree of millions of tiny elements
    # (a few KB zipped) would take hundreds of MB.
    path: list[Any] = []
    try:
        for event, element in SafeTree.iterparse(io.BytesIO(xml), events=("start", "end"), forbid_dtd=True):
            if event == "start":
                path.append(element)
                continue
            path.pop()
            if len(path) != 2 or path[1].tag != f"{_WORD}body":
                continue
            if element.tag == f"{_WORD}p":
                lines.append(_paragraph(element))
            elif element.tag == f"{_WORD}tbl":
                for row in element.iter(f"{_WORD}tr"):
                    cells = [" ".join(_paragraph(p) for p in c.iter(f"{_WORD}p")) for c in row.iter(f"{_WORD}tc")]
                    lines.append(" | ".join(cells))
            path[1].remove(element)
    except (DefusedXmlException, SafeTree.ParseError):
        return AttachmentText("", "The Word document could not be read: its XML is damaged or unsafe.")
    return AttachmentText(re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip())


def _paragraph(element: Any) -> str:  # an ElementTree element
    parts = []
    for node in element.iter():
        if node.tag == f"{_WORD}t" and node.text:
            parts.append(node.text)
        elif node.tag == f"{_WORD}tab":
            parts.append("\t")
        elif node.tag in (f"{_WORD}br", f"{_WORD}cr"):
            parts.append("\n")
    return "".join(parts)


_ICS_FIELDS = {
    "SUMMARY": "Event",
    "DTSTART": "Starts",
    "DTEND": "Ends",
    "LOCATION": "Where",
    "ORGANIZER": "Organizer",
    "ATTENDEE": "Attendee",
    "RRULE": "Repeats",
    "STATUS": "Status",
    "DESCRIPTION": "Details",
}


def _calendar(text: str) -> AttachmentText:
    """The events of an iCalendar file (RFC 5545), one block each, fields in plain words."""
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    events: list[list[str]] = []
    method = ""
    current: list[str] | None = None
    for line in unfolded.splitlines():
        name, _, value = line.partition(":")
        key, _, params = name.partition(";")
        key = key.upper()
        if key == "METHOD":
            method = value.strip()
        elif key == "BEGIN" and value.strip().upper() == "VEVENT":
            current = []
        elif key == "END" and value.strip().upper() == "VEVENT" and current is not None:
            events.append(current)
            current = None
        elif current is not None and key in _ICS_FIELDS:
            shown = value.replace("\\n", "\n").replace("\\N", "\n").replace("\\,", ",").replace("\\;", ";")
            if key in ("ORGANIZER", "ATTENDEE"):
                cn = re.search(r"CN=\"?([^\";:]+)", params, re.IGNORECASE)
                address = re.sub(r"(?i)^mailto:", "", shown)
                shown = f"{cn.group(1)} <{address}>" if cn else address
            elif key in ("DTSTART", "DTEND"):
                zone = re.search(r"TZID=([^;:]+)", params, re.IGNORECASE)
                shown = _ics_time(shown) + (f" ({zone.group(1)})" if zone else "")
            current.append(f"{_ICS_FIELDS[key]}: {shown}")
    if not events:
        return AttachmentText("", "The calendar file holds no events.")
    head = {"REQUEST": "An invitation", "CANCEL": "A cancellation", "REPLY": "A reply to an invitation"}
    intro = head.get(method.upper(), "A calendar file") + f" with {len(events)} event{'s' * (len(events) != 1)}:"
    return AttachmentText(intro + "\n\n" + "\n\n".join("\n".join(e) for e in events))


def _ics_time(value: str) -> str:
    found = re.fullmatch(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})?(Z?))?", value.strip())
    if not found:
        return value
    year, month, day, hour, minute, _, utc = found.groups()
    date = f"{year}-{month}-{day}"
    return date if hour is None else f"{date} {hour}:{minute}" + (" UTC" if utc else "")
