"""Attachments as text: each kind read, and bad files answered in words, never raised."""

from __future__ import annotations

import io
import zipfile

from pypdf import PdfReader, PdfWriter

from infra.local.emulators import mailbox_seed
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
