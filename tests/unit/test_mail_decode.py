import base64
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

from mailroom.mail.decode import (
    Attachment,
    ReadableMessage,
    condense_thread,
    html_to_text,
    readable_message,
    render_for_agent,
    strip_quoted,
    summary_line,
)
from tests.unit.gmail_payload import b64url, full_resource, metadata_resource, raw_resource, to_payload

PDF_BYTES = b"%PDF-1.4\n" + bytes(range(256)) * 48  # 12 KB of binary, like a real PDF

HTML_NEWSLETTER = """<!DOCTYPE html>
<html><head><title>Weekly</title><style>.x { color: red; }</style></head>
<body>
<div style="display:none;max-height:0">Preview text the reader never sees</div>
<h1>Order&nbsp;summary</h1>
<p>Fish &amp; Chips &copy; 2024 &mdash; &lt;not a tag&gt; &#8364;5</p>
<script type="text/javascript">alert("steal cookies");</script>
<table>
  <tr><th>Item</th><th>Qty</th><th>Price</th></tr>
  <tr><td>Widget</td><td>3</td><td>&euro;9.99</td></tr>
  <tr><td>Gadget</td><td>1</td><td>&euro;4.50</td></tr>
</table>
<p>Track it on <a href="https://shop.example.com/track?id=42&amp;x=1">our   site</a>.</p>
<ul><li>Free returns</li><li>Fast
   delivery</li></ul>
</body></html>"""


def simple(body: str = "Hello there.", **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.get("From", "Alice Example <alice@example.com>")
    msg["To"] = headers.get("To", "Me <me@example.com>")
    msg["Subject"] = headers.get("Subject", "Lunch?")
    msg["Date"] = headers.get("Date", "Mon, 01 Jan 2024 10:00:00 +0000")
    msg["Message-ID"] = headers.get("Message_ID", "<lunch-1@example.com>")
    msg.set_content(body)
    return msg


def mixed_with_pdf() -> EmailMessage:
    msg = simple("The report is attached.\n\nSee page 3.")
    msg.add_alternative("<p>The report is <b>attached</b> (HTML version).</p>", subtype="html")
    msg.add_attachment(PDF_BYTES, maintype="application", subtype="pdf", filename="Q3 report.pdf")
    return msg


# --------------------------------------------------------------------------- HTML


def test_html_only_message_is_turned_into_readable_text() -> None:
    msg = simple()
    msg.set_content(HTML_NEWSLETTER, subtype="html")
    body = readable_message(full_resource(msg)).body

    assert "Order summary" in body
    assert "Fish & Chips © 2024 — <not a tag> €5" in body
    assert "Item | Qty | Price" in body
    assert "Widget | 3 | €9.99" in body
    assert "Gadget | 1 | €4.50" in body
    assert "our site (https://shop.example.com/track?id=42&x=1)" in body
    assert "- Free returns\n- Fast delivery" in body
    assert "alert" not in body and "steal" not in body
    assert "color: red" not in body and "Weekly" not in body
    assert "Preview text" not in body
    assert "<" not in body.replace("<not a tag>", "")  # no markup left


def test_html_blocks_become_lines_and_paragraphs() -> None:
    text = html_to_text("<div>one</div><div>two</div><p>three</p>four<br>five<br/><br/>six")
    assert text == "one\ntwo\n\nthree\n\nfour\nfive\n\nsix"


def test_html_links() -> None:
    text = html_to_text(
        '<a href="https://example.com">https://example.com</a> '
        '<a href="mailto:bob@example.com">bob@example.com</a> '
        '<a href="mailto:bob@example.com?subject=hi">write to Bob</a> '
        '<a href="javascript:void(0)">menu</a> '
        '<a href="https://t.example/abc"><img src="x.png"></a> '
        '<a href="https://t.example/btn"><img src="b.png" alt="Confirm"></a>'
    )
    assert text == (
        "https://example.com bob@example.com write to Bob (bob@example.com) menu Confirm (https://t.example/btn)"
    )


def test_html_lists_nest_and_number() -> None:
    text = html_to_text("<ol><li>first<ul><li>a</li><li>b</li></ul></li><li>second</li></ol>")
    assert text == "1. first\n  - a\n  - b\n2. second"


def test_html_pre_keeps_whitespace_and_blockquote_is_quoted() -> None:
    text = html_to_text("<p>Code:</p><pre>def f():\n    return 1</pre><blockquote><p>old</p><p>older</p></blockquote>")
    assert "def f():\n    return 1" in text
    assert "> old\n>\n> older" in text


def test_layout_tables_do_not_become_pipe_soup() -> None:
    html = (
        "<table><tr><td><table><tr><td><p>Hello Ann,</p><p>Your invoice is ready.</p></td></tr></table></td>"
        "<td></td></tr></table>"
    )
    text = html_to_text(html)
    assert "|" not in text
    assert "Hello Ann,\n\nYour invoice is ready." in text


@pytest.mark.parametrize(
    "markup",
    [
        "<table><tr><td>unclosed cell<td>another",
        "<a href='x'>never closed <b>bold",
        "<div style='display:none'>hidden <p>and never closed",
        "<![if !mso]><p>conditional</p><![endif]>",
        "<p>&#xffffff; &bogus; &#0;</p>",
        "</td></tr></table></a></blockquote>stray closers",
        "<" * 1000,
    ],
)
def test_broken_html_never_raises(markup: str) -> None:
    assert isinstance(html_to_text(markup), str)


def test_unclosed_head_does_not_swallow_the_body() -> None:
    assert html_to_text("<html><head><meta charset=utf-8><body><p>Visible</p>") == "Visible"


# --------------------------------------------------------------------------- charsets


def test_iso_8859_1_quoted_printable_body_is_decoded_by_its_declared_charset() -> None:
    msg = simple()
    msg.set_content("Café crème à la française, Zürich, señor", charset="iso-8859-1", cte="quoted-printable")
    resource = full_resource(msg)
    part_bytes = base64.urlsafe_b64decode(resource["payload"]["body"]["data"] + "==")
    assert part_bytes == "Café crème à la française, Zürich, señor\n".encode("latin-1")  # Gmail gives decoded bytes

    assert readable_message(resource).body == "Café crème à la française, Zürich, señor"
    assert readable_message(raw_resource(msg)).body == "Café crème à la française, Zürich, señor"


def test_windows_1252_bytes_declared_as_iso_8859_1_read_as_curly_quotes() -> None:
    resource = {
        "id": "m1",
        "payload": {
            "mimeType": "text/plain",
            "headers": [{"name": "Content-Type", "value": "text/plain; charset=ISO-8859-1"}],
            "body": {"size": 14, "data": b64url(b"\x93quoted\x94 \x80")},
        },
    }
    assert readable_message(resource).body == "\u201cquoted\u201d \u20ac"


@pytest.mark.parametrize("charset", ["x-no-such-charset", "base64", "rot13", "unicode-escape", "", "utf-8"])
def test_unknown_or_invalid_charset_falls_back_to_utf8_without_raising(charset: str) -> None:
    payload = {
        "mimeType": "text/plain",
        "headers": [{"name": "Content-Type", "value": f'text/plain; charset="{charset}"'}],
        "body": {"size": 9, "data": b64url("naïve ☃".encode())},
    }
    assert readable_message({"id": "m1", "payload": payload}).body == "naïve ☃"


def test_bytes_invalid_in_every_guess_still_decode() -> None:
    payload = {
        "mimeType": "text/plain",
        "headers": [{"name": "Content-Type", "value": "text/plain; charset=utf-8"}],
        "body": {"size": 6, "data": b64url(b"caf\xe9 \xff")},
    }
    assert readable_message({"id": "m1", "payload": payload}).body == "café ÿ"


def test_raw_message_with_undeclared_8bit_and_bogus_charset_does_not_raise() -> None:
    raw = (
        b"From: =?x-bogus?Q?Jos=E9?= <jose@example.com>\r\n"
        b"Subject: caf\xc3\xa9 8-bit header\r\n"
        b"Content-Type: text/plain; charset=klingon\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        b"r\xc3\xa9sum\xc3\xa9\r\n"
    )
    message = readable_message({"id": "m1", "raw": b64url(raw)})
    assert message.subject == "café 8-bit header"
    assert message.body == "résumé"
    assert "jose@example.com" in message.from_


def test_html_charset_from_meta_when_the_part_declares_none() -> None:
    markup = '<html><head><meta charset="windows-1251"></head><body><p>Привет</p></body></html>'
    payload = {
        "mimeType": "text/html",
        "headers": [{"name": "Content-Type", "value": "text/html"}],
        "body": {"data": b64url(markup.encode("cp1251"))},
    }
    assert readable_message({"id": "m1", "payload": payload}).body == "Привет"


# --------------------------------------------------------------------------- structure


def test_mixed_alternative_with_pdf_prefers_plain_text_and_lists_the_attachment() -> None:
    message = readable_message(full_resource(mixed_with_pdf()))

    assert message.body == "The report is attached.\n\nSee page 3."
    assert "HTML version" not in message.body
    assert "PDF" not in message.body
    assert message.attachments == (
        Attachment(
            filename="Q3 report.pdf", mime_type="application/pdf", size=len(PDF_BYTES), attachment_id="ANGjdJ-att-1"
        ),
    )
    rendered = render_for_agent(message)
    assert "[1] Q3 report.pdf (application/pdf, 12 KB)" in rendered


def test_alternative_falls_back_to_html_when_plain_part_is_empty() -> None:
    msg = simple("   \n")
    msg.add_alternative("<p>Only the <i>HTML</i> has words.</p>", subtype="html")
    assert readable_message(full_resource(msg)).body == "Only the HTML has words."


def test_related_html_with_inline_image_counts_only_named_images_as_attachments() -> None:
    msg = simple("plain")
    msg.clear_content()
    msg.set_content("<p>Logo: <img src='cid:logo'> and photo</p>", subtype="html")
    msg.add_related(b"\x89PNG logo", maintype="image", subtype="png", cid="<logo>")
    msg.add_related(b"\x89PNG photo", maintype="image", subtype="png", cid="<photo>", filename="photo.png")
    message = readable_message(full_resource(msg))

    assert message.body == "Logo: and photo"
    assert [a.filename for a in message.attachments] == ["photo.png"]
    assert message.attachments[0].size == len(b"\x89PNG photo")


def test_text_file_attachment_is_listed_not_inlined() -> None:
    msg = simple("see notes")
    msg.add_attachment("secret notes body", filename="notes.txt")
    message = readable_message(full_resource(msg))
    assert message.body == "see notes"
    assert [(a.filename, a.mime_type) for a in message.attachments] == [("notes.txt", "text/plain")]


def test_multiple_inline_text_parts_of_a_mixed_message_are_all_read() -> None:
    msg = MIMEMultipart("mixed")
    msg["Subject"] = "parts"
    msg.attach(MIMEText("first part", "plain", "utf-8"))
    msg.attach(MIMEApplication(b"\x00\x01", "octet-stream", Name="blob.bin"))
    msg.attach(MIMEText("<p>second part</p>", "html", "utf-8"))
    message = readable_message(full_resource(msg))
    assert message.body == "first part\n\nsecond part"
    assert [a.filename for a in message.attachments] == ["blob.bin"]


def test_attached_message_rfc822_is_summarised() -> None:
    inner = simple("Original text of the forwarded mail.", From="Bob <bob@example.org>", Subject="Budget 2024")
    inner.add_attachment(b"xlsx", maintype="application", subtype="vnd.ms-excel", filename="budget.xls")
    outer = simple("FYI, see below.")
    outer.add_attachment(inner)

    for resource in (full_resource(outer), raw_resource(outer)):
        message = readable_message(resource)
        assert message.body.startswith("FYI, see below.\n\n---------- Attached message ----------")
        assert "From: Bob <bob@example.org>" in message.body
        assert "Subject: Budget 2024" in message.body
        assert "Attachments: budget.xls (4 bytes)" in message.body
        assert "Original text of the forwarded mail." in message.body
        assert message.attachments[0].filename == "Budget 2024.eml"
        assert message.attachments[0].mime_type == "message/rfc822"
        # The attached message's own attachment belongs to it, not to the outer message.
        assert all(a.filename != "budget.xls" for a in message.attachments)


def test_format_flowed_lines_are_joined() -> None:
    raw = (
        b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n"
        b"This is a long paragraph that \r\nwas wrapped by the sender.\r\n\r\nNext paragraph.\r\n"
    )
    assert readable_message({"raw": b64url(raw)}).body == (
        "This is a long paragraph that was wrapped by the sender.\n\nNext paragraph."
    )


# --------------------------------------------------------------------------- headers


def test_rfc2047_subject_and_from_are_decoded_utf8_and_latin1() -> None:
    msg = simple(From="Zoë Ångström <zoe@example.com>", Subject="Réunion — café ☕")
    resource = full_resource(msg)
    raw_headers = {h["name"]: h["value"] for h in resource["payload"]["headers"]}
    assert raw_headers["Subject"].startswith("=?utf-8?")  # Gmail hands the encoded words over as sent

    message = readable_message(resource)
    assert message.subject == "Réunion — café ☕"
    assert message.from_ == "Zoë Ångström <zoe@example.com>"

    resource["payload"]["headers"] = [
        {"name": "From", "value": "=?ISO-8859-1?Q?Fran=E7ois_M=FCller?= <fm@example.fr>"},
        {"name": "Subject", "value": "=?iso-8859-1?B?Q2Fm6SBjcuhtZQ==?= et =?UTF-8?Q?th=C3=A9?="},
        {"name": "To", "value": '"Doe, John" <john@example.com>, =?utf-8?q?J=C3=BCrgen?= <j@example.de>'},
    ]
    message = readable_message(resource)
    assert message.from_ == "François Müller <fm@example.fr>"
    assert message.subject == "Café crème et thé"
    assert message.to == '"Doe, John" <john@example.com>, Jürgen <j@example.de>'


def test_header_values_gmail_already_decoded_are_taken_as_they_are() -> None:
    resource = full_resource(simple())
    resource["payload"]["headers"] = [
        {"name": "from", "value": "Łukasz Żółw <lukasz@example.pl>"},
        {"name": "SUBJECT", "value": "Spotkanie\u00a0 w   środę"},
    ]
    message = readable_message(resource)
    assert message.from_ == "Łukasz Żółw <lukasz@example.pl>"  # header names match case-insensitively
    assert message.subject == "Spotkanie w środę"


def test_threading_headers_are_kept_raw_and_flags_come_from_labels() -> None:
    msg = simple()
    msg["In-Reply-To"] = "<root@example.com>"
    msg["References"] = "<root@example.com> <second@example.com>"
    msg["Reply-To"] = "List <list@example.com>"
    resource = full_resource(msg, labels=("INBOX", "UNREAD", "IMPORTANT"), snippet="It&#39;s lunch")
    for header in resource["payload"]["headers"]:
        if header["name"] == "References":  # as if folded on the wire and handed over unfolded-badly
            header["value"] = "<root@example.com>\r\n <second@example.com>"
    message = readable_message(resource)

    assert message.message_id == "<lunch-1@example.com>"
    assert message.in_reply_to == "<root@example.com>"
    assert message.references == "<root@example.com> <second@example.com>"
    assert message.reply_to == "List <list@example.com>"
    assert message.unread is True
    assert message.labels == ("INBOX", "UNREAD", "IMPORTANT")
    assert message.snippet == "It's lunch"
    assert message.id == "18c0ffee00000001" and message.thread_id == "18c0ffee00000000"

    read = readable_message(full_resource(msg, labels=("INBOX",)))
    assert read.unread is False


def test_date_falls_back_to_internal_date() -> None:
    msg = simple()
    del msg["Date"]
    assert readable_message(full_resource(msg)).date == "Mon, 01 Jan 2024 10:00:00 +0000"


# --------------------------------------------------------------------------- budget


def test_long_body_keeps_head_and_tail_on_line_boundaries_and_names_the_skipped_part() -> None:
    lines = [f"Line {i:05d}: " + "lorem ipsum dolor sit amet " * 3 for i in range(2500)]
    text = "\n".join(line.rstrip() for line in lines)
    assert len(text) > 200_000
    message = readable_message(full_resource(simple(text)), body_budget=8000)

    assert message.truncated is True
    assert 7000 < len(message.body) <= 8000
    head, marker, tail = message.body.split("\n[", 1)[0], *message.body.split("\n[", 1)[1].split("]\n", 1)
    assert text.startswith(head) and text[len(head)] == "\n"  # the head ends where a line ends
    assert text.endswith(tail) and text[-len(tail) - 1] == "\n"  # the tail starts on a whole line
    assert tail.endswith("Line 02499: lorem ipsum dolor sit amet lorem ipsum dolor sit amet lorem ipsum dolor sit amet")
    skipped = f"characters {len(head)}-{len(text) - len(tail)} of {len(text)}"
    assert skipped in marker and f"offset={len(head)}" in marker
    assert message.body_length == len(text)
    assert skipped in render_for_agent(message).splitlines()[-1]


def test_an_offset_reads_any_part_and_says_where_to_go_on() -> None:
    text = "".join(f"row {i:06d}\n" for i in range(30_000))
    middle = readable_message(full_resource(simple(text)), body_budget=2000, offset=100_000)
    assert text[100_000:].startswith(middle.body)
    end = 100_000 + len(middle.body)
    assert (
        middle.body_note == f"[characters 100000-{end} of {len(text.strip())}; read_email with offset={end} reads on]"
    )
    last = readable_message(full_resource(simple(text)), body_budget=2000, offset=len(text.strip()) - 50)
    assert last.body.endswith("row 029999") and "that is the end" in last.body_note
    past = readable_message(full_resource(simple(text)), body_budget=2000, offset=10**7)
    assert past.body == "" and "past the end" in past.body_note


def test_long_body_without_newlines_is_cut_at_a_space() -> None:
    text = "word " * 50_000
    message = readable_message(full_resource(simple(text)), body_budget=1000)
    assert message.truncated and len(message.body) <= 1000
    assert message.body.startswith("word") and message.body.endswith("word")
    assert "skipped" in message.body


def test_body_within_budget_is_not_truncated() -> None:
    message = readable_message(full_resource(simple("short")), body_budget=8000)
    assert message.truncated is False
    assert "[... body cut" not in render_for_agent(message)


# --------------------------------------------------------------------------- odd Gmail payloads


def test_missing_body_data_gives_an_empty_body_not_an_error() -> None:
    resource = full_resource(simple("gone"))
    del resource["payload"]["body"]["data"]
    resource["payload"]["body"]["size"] = 0
    message = readable_message(resource)
    assert message.body == ""
    assert "(no readable body; Gmail's snippet: gone)" in render_for_agent(message)

    resource["payload"]["body"] = {"size": 5000, "attachmentId": "ANGjdJ-big"}
    assert "not included in the message resource" in readable_message(resource).body

    for empty in ({"id": "m"}, {"id": "m", "payload": None}, {"id": "m", "payload": {"parts": [None, 7]}}):
        assert readable_message(empty).body == ""


def test_base64url_without_padding_and_with_url_alphabet() -> None:
    data = "résumé ÿ? ~~ ok?".encode()  # bytes whose base64 uses both - and _ and needs padding
    encoded = b64url(data)
    assert "-" in encoded and "_" in encoded and not encoded.endswith("=") and len(encoded) % 4
    body: dict[str, object] = {"size": len(data), "data": encoded}
    payload = {
        "mimeType": "text/plain",
        "headers": [{"name": "Content-Type", "value": "text/plain; charset=utf-8"}],
        "body": body,
    }
    assert readable_message({"payload": payload}).body == "résumé ÿ? ~~ ok?"
    body["data"] = encoded + "=" * (-len(encoded) % 4)  # and padded, as some responses are
    assert readable_message({"payload": payload}).body == "résumé ÿ? ~~ ok?"
    body["data"] = "!!!not base64!!!="
    assert isinstance(readable_message({"payload": payload}).body, str)


def test_raw_and_full_formats_read_the_same() -> None:
    msg = mixed_with_pdf()
    msg.replace_header("Subject", "Ünïcode — report")
    full = readable_message(full_resource(msg))
    raw = readable_message(raw_resource(msg))

    assert raw.body == full.body == "The report is attached.\n\nSee page 3."
    assert (raw.from_, raw.to, raw.subject, raw.date, raw.message_id) == (
        full.from_,
        full.to,
        full.subject,
        full.date,
        full.message_id,
    )
    assert [(a.filename, a.mime_type, a.size) for a in raw.attachments] == [
        (a.filename, a.mime_type, a.size) for a in full.attachments
    ]
    assert raw.attachments[0].attachment_id is None and full.attachments[0].attachment_id is not None


def test_payload_helper_numbers_parts_like_gmail() -> None:
    payload = to_payload(mixed_with_pdf())
    assert payload["partId"] == ""
    assert [p["partId"] for p in payload["parts"]] == ["0", "1"]
    assert [p["partId"] for p in payload["parts"][0]["parts"]] == ["0.0", "0.1"]
    assert payload["parts"][1]["body"].keys() == {"attachmentId", "size"}


# --------------------------------------------------------------------------- summaries


def test_summary_line_from_metadata_resource_and_from_readable() -> None:
    msg = simple(Subject="=?utf-8?q?Caf=C3=A9?= plans")
    meta = metadata_resource(msg, snippet="Shall we &amp; when?")
    line = summary_line(meta)
    assert line == {
        "id": "18c0ffee00000001",
        "thread_id": "18c0ffee00000000",
        "from": "Alice Example <alice@example.com>",
        "to": "Me <me@example.com>",
        "subject": "Café plans",
        "date": "Mon, 01 Jan 2024 10:00:00 +0000",
        "snippet": "Shall we & when?",
        "unread": True,
    }
    assert summary_line(readable_message(full_resource(msg, snippet="Shall we &amp; when?"))) == line
    assert summary_line(raw_resource(msg, snippet="Shall we &amp; when?")) == line


def test_render_for_agent_shows_headers_then_body() -> None:
    msg = simple("Body text.")
    msg["Cc"] = "Carol <carol@example.com>"
    rendered = render_for_agent(readable_message(full_resource(msg)))
    assert rendered.splitlines() == [
        "id: 18c0ffee00000001   thread: 18c0ffee00000000   (unread)",
        "From: Alice Example <alice@example.com>",
        "To: Me <me@example.com>",
        "Cc: Carol <carol@example.com>",
        "Date: Mon, 01 Jan 2024 10:00:00 +0000",
        "Subject: Lunch?",
        "",
        "Body text.",
    ]


# --------------------------------------------------------------------------- threads


def thread_message(index: int, body: str, sender: str = "Alice <alice@example.com>") -> ReadableMessage:
    return ReadableMessage(
        id=f"m{index}",
        thread_id="t1",
        from_=sender,
        to="Bob <bob@example.com>",
        cc="",
        subject="Re: Plan" if index else "Plan",
        date=f"Mon, 0{index + 1} Jan 2024 10:00:00 +0000",
        message_id=f"<m{index}@example.com>",
        in_reply_to="",
        references="",
        unread=False,
        labels=(),
        snippet="",
        body=body,
        attachments=(),
        truncated=False,
    )


def test_strip_quoted_removes_gmail_and_outlook_quotes() -> None:
    gmail = (
        "Sounds good, see you then.\n\nOn Mon, Jan 1, 2024 at 10:00 AM Alice Example <\nalice@example.com> wrote:\n\n"
        "> Shall we meet at noon?\n> \n>> older\n"
    )
    assert strip_quoted(gmail) == "Sounds good, see you then."
    outlook = "Thanks!\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\nTo: Alice\nSubject: x\n\nold text"
    assert strip_quoted(outlook) == "Thanks!"
    outlook_web = "Noted.\n\nFrom: Bob <bob@example.com>\nSent: Monday, January 1, 2024 10:00\nTo: Alice\n\nold"
    assert strip_quoted(outlook_web) == "Noted."
    french = "D'accord.\n\nLe lun. 1 janv. 2024 à 10:00, Alice <a@example.com> a écrit :\n> Salut"
    assert strip_quoted(french) == "D'accord."
    # Text that merely mentions "wrote:" is kept when no quote follows.
    assert strip_quoted("On Monday she wrote:\nthe plan is fine") == "On Monday she wrote:\nthe plan is fine"


def test_condense_thread_strips_quotes_and_keeps_order() -> None:
    messages = [
        thread_message(0, "Shall we meet at noon?"),
        thread_message(
            1, "Yes, noon works.\n\nOn Mon, Jan 1, 2024 Alice wrote:\n> Shall we meet at noon?", "Bob <b@x.org>"
        ),
        thread_message(2, "Great, booked.\n\n> Yes, noon works.\n>> Shall we meet at noon?"),
    ]
    text = condense_thread(messages)
    assert text.index("[1/3]") < text.index("[2/3]") < text.index("[3/3]")
    assert text.count("Shall we meet at noon?") == 1
    assert text.count("Yes, noon works.") == 1
    assert "Great, booked." in text
    assert text.count("Subject: ") == 1  # "Re: Plan" is the same topic as "Plan"
    assert not any(line.startswith(">") for line in text.splitlines())
    assert "wrote:" not in text


def test_condense_thread_keeps_the_newest_in_full_and_shortens_older_within_budget() -> None:
    long_text = "\n".join(f"Paragraph {i}: " + "words " * 30 for i in range(60))  # about 12 KB each
    messages = [thread_message(i, f"Message {i} start.\n{long_text}") for i in range(5)]
    newest = "Newest reply: the short answer is yes."
    messages.append(thread_message(5, newest))
    messages.append(thread_message(6, "Final: " + "ok " * 1000))

    text = condense_thread(messages, budget=12000)
    assert len(text) <= 12000
    assert "Final: " + "ok " * 999 + "ok" in text  # newest in full
    assert newest in text  # short recent one in full too
    for i in range(5):
        assert f"Message {i} start." in text  # every older message is still represented
    assert text.count("[...]") == 5


@pytest.mark.parametrize("budget", [50, 300, 1000, 5000])
def test_condense_thread_never_exceeds_the_budget(budget: int) -> None:
    messages = [thread_message(i % 9, "x " * 3000) for i in range(40)]
    text = condense_thread(messages, budget=budget)
    assert 0 < len(text) <= budget
    assert "[40/40]" in text  # the newest is always there
    if budget <= 1000:
        assert "earlier messages not shown" in text
    if budget >= 300:  # (below that, not even the newest message's header fits whole)
        blocks = text.split("\n\n")
        shown = [block.count("x ") for block in blocks if block.startswith("[") and "/40]" in block]
        assert shown[-1] == max(shown) > 0  # the newest gets the most room, and every kept one some


def test_condense_thread_fits_everything_when_it_can() -> None:
    messages = [thread_message(i, f"body {i}") for i in range(3)]
    text = condense_thread(messages, budget=12000)
    assert "[...]" not in text and all(f"body {i}" in text for i in range(3))
    assert condense_thread([]) == ""
