"""Attachments as text: each kind read, and bad files answered in words, never raised."""

from __future__ import annotations

import io
import itertools
import tracemalloc
import zipfile

import pytest
from pypdf import PdfReader, PdfWriter

from infra.local.emulators import mailbox_seed
from mailroom.mail import attachment_text
from mailroom.mail.attachment_text import extract, kind_of

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def test_pdf_text_by_page() -> None:
    read = extract(mailbox_seed.text_pdf(["Invoice 12", "Total: 9.99 EUR"]), "application/pdf", "a.pdf")
    assert read.text == "[page 1]\nInvoice 12\nTotal: 9.99 EUR"


def test_an_encrypted_pdf_is_said_so() -> None:
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(mailbox_seed.text_pdf(["secret"]))))
    writer.encrypt("hunter2")
    buffer = io.BytesIO()
    writer.write(buffer)
    read = extract(buffer.getvalue(), "application/pdf", "locked.pdf")
    assert read.text == "" and "password" in read.note


def test_broken_files_get_a_clear_answer() -> None:
    assert "damaged" in extract(b"%PDF-1.4 nonsense", "application/pdf", "x.pdf").note
    assert "damaged" in extract(b"PK\x03\x04 broken", DOCX, "x.docx").note
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64
    assert "encrypted or in the old .doc format" in extract(ole, DOCX, "x.docx").note


def test_docx_paragraphs_and_table_rows() -> None:
    read = extract(mailbox_seed.contract_docx(), DOCX, "c.docx")
    assert "Term | 12 months" in read.text and read.text.endswith(mailbox_seed.CONTRACT_CLAUSE)


def test_a_docx_without_a_document_part_is_damaged() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("other.xml", "<x/>")
    assert "damaged" in extract(buffer.getvalue(), "application/octet-stream", "c.docx").note


def test_calendar_invitation_in_plain_words() -> None:
    ics = mailbox_seed.invite_ics("carol@example.com", "ada@example.com").encode()
    read = extract(ics, "text/calendar; method=REQUEST", "invite.ics")
    assert read.text.startswith("An invitation with 1 event:")
    assert "Starts: 2026-12-10 09:00 UTC" in read.text and f"Where: {mailbox_seed.INVITE_LOCATION}" in read.text
    assert "Organizer: Carol Chen <carol@example.com>" in read.text


def test_text_csv_html_and_images() -> None:
    assert extract(b"a,b\n1,2\n", "text/csv", "t.csv").text == "a,b\n1,2\n"
    assert extract("caf\xe9".encode("latin-1"), "text/plain; charset=iso-8859-1", "t.txt").text == "caf\xe9"
    assert "Hello" in extract(b"<p>Hello <b>there</b></p>", "text/html", "p.html").text
    image = extract(mailbox_seed.chart_png(), "image/png", "chart.png")
    assert image.text == "" and "an image" in image.note
    assert kind_of("application/octet-stream", "report.PDF") == "pdf"


def _pages(*pages: bytes) -> bytes:
    writer = PdfWriter()
    for page in pages:
        writer.append(PdfReader(io.BytesIO(page)))
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_a_page_with_too_much_drawing_is_skipped_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    # A few KB of PDF can inflate one page's content stream to 75 MB (pypdf's own limit),
    # which takes minutes to parse: such a page is left out, the others are read.
    heavy = mailbox_seed.text_pdf([f"row {n}" for n in range(2000)])
    monkeypatch.setattr(attachment_text, "_MAX_PAGE_DRAWING_BYTES", 10_000)
    read = extract(_pages(mailbox_seed.text_pdf(["Total: 9.99 EUR"]), heavy), "application/pdf", "a.pdf")
    assert "Total: 9.99 EUR" in read.text and "row 1999" not in read.text
    assert "page 2" in read.note


def test_reading_a_pdf_stops_at_its_time_budget_even_inside_a_page(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = itertools.count()  # a clock that moves one second each time it is read
    monkeypatch.setattr(attachment_text, "_clock", lambda: float(next(ticks)))
    monkeypatch.setattr(attachment_text, "_PDF_SECONDS", 50.0)
    slow = mailbox_seed.text_pdf([f"row {n}" for n in range(2000)])  # 4,000 operators on one page
    read = extract(_pages(slow, mailbox_seed.text_pdf(["Total: 9.99 EUR"])), "application/pdf", "slow.pdf")
    assert next(ticks) < 100  # stopped at the budget, not after every operator
    assert read.text == "" and "too long" in read.note
    # With less time left in the turn than the budget, the turn's time is the budget.
    start = next(ticks)
    read = extract(_pages(slow), "application/pdf", "slow.pdf", seconds=10.0)
    assert next(ticks) - start < 30 and "too long" in read.note


def test_a_docx_of_millions_of_tiny_elements_is_read_in_bounded_memory() -> None:
    # 20 KB of zip can hold 20 MB of '<a/>': held as one tree that is ~500 MB of objects.
    # The body is read block by block instead, so memory stays near the XML's own size.
    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    last = "<w:p><w:r><w:t>The end.</w:t></w:r></w:p>"
    xml = f"<w:document {w}><w:body>{'<a/>' * 500_000}{last}</w:body></w:document>".encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", xml)
    data = buffer.getvalue()
    tracemalloc.start()
    try:
        read = extract(data, DOCX, "tiny.docx")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read.text.endswith("The end.")
    # Read whole, the tree alone is ~23x the XML (46 MB here); read by block, ~4x, plus
    # whatever other threads of the test session allocate meanwhile (tracemalloc sees all).
    assert peak < 10 * len(xml), f"{peak} bytes at the peak for {len(xml)} bytes of XML"


def test_a_docx_with_entity_definitions_is_refused_not_expanded() -> None:
    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    laughs = '<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    xml = f"{laughs}<w:document {w}><w:body><w:p><w:r><w:t>&b;</w:t></w:r></w:p></w:body></w:document>"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", xml)
    read = extract(buffer.getvalue(), DOCX, "laughs.docx")
    assert read.text == "" and "unsafe" in read.note
