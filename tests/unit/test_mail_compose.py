import base64
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from mailroom.mail.compose import (
    MAX_RECIPIENTS,
    InvalidMessage,
    OutgoingMessage,
    build_message,
    deterministic_message_id,
    gmail_message,
    parse_addresses,
    reply_subject,
    to_raw,
)
from mailroom.mail.decode import ReadableMessage, readable_message
from tests.unit.gmail_payload import full_resource

ME = "Me Myself <me@example.com>"


def decode_raw(raw: str) -> EmailMessage:
    assert "+" not in raw and "/" not in raw  # base64url, not base64
    parsed = BytesParser(policy=policy.default).parsebytes(base64.urlsafe_b64decode(raw))
    assert isinstance(parsed, EmailMessage)
    return parsed


def original(**overrides: str) -> ReadableMessage:
    fields: dict = {
        "id": "18c0ffee00000001",
        "thread_id": "18c0ffee00000000",
        "from_": "Alice Example <alice@example.com>",
        "to": ME,
        "cc": "",
        "subject": "Quarterly numbers",
        "date": "Mon, 01 Jan 2024 10:00:00 +0000",
        "message_id": "<q3-2@mail.example.com>",
        "in_reply_to": "<q3-1@mail.example.com>",
        "references": "<q3-0@mail.example.com> <q3-1@mail.example.com>",
        "unread": True,
        "labels": ("INBOX",),
        "snippet": "",
        "body": "Can you check the numbers?",
        "attachments": (),
        "truncated": False,
    }
    fields.update(overrides)
    return ReadableMessage(**fields)


# --------------------------------------------------------------------------- addresses


def test_parse_addresses_normalises_and_dedupes() -> None:
    assert parse_addresses("a@x.com, Bob <b@Y.ORG>") == ("a@x.com", "Bob <b@y.org>")
    assert parse_addresses(["a@x.com", '"Doe, John" <john@example.com>', "A@X.com"]) == (
        "a@x.com",
        '"Doe, John" <john@example.com>',
    )
    assert parse_addresses("José Núñez <jose@exämple.com>") == ("José Núñez <jose@xn--exmple-cua.com>",)
    assert parse_addresses("a@x.com; b@y.org") == ("a@x.com", "b@y.org")
    assert parse_addresses("  a@x.com ,") == ("a@x.com",)
    assert parse_addresses(None) == () and parse_addresses("") == () and parse_addresses([]) == ()


@pytest.mark.parametrize(
    "value",
    [
        "not an address",
        "alice",
        "alice@",
        "@example.com",
        "alice@localhost",
        "alice@example..com",
        "alice@-example.com",
        "alice@exa mple.com",
        "alice @example.com",
        "alice@example.com (comment) extra",
        "a@b@example.com",
        "a@example.com b@example.com",
        "Doe, John <john@example.com>",
        '"a b"@example.com',
        "alice@[127.0.0.1]",
        "alice@example.123",
        "a@x.com, , b@y.org",
        ["a@x.com", ""],
        ["a@x.com", 42],
        42,
        "x" * 65 + "@example.com",
    ],
)
def test_parse_addresses_rejects_what_is_not_an_address(value: object) -> None:
    with pytest.raises(InvalidMessage):
        parse_addresses(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        "victim@example.com\r\nBcc: evil@x.com",
        "victim@example.com\nBcc: evil@x.com",
        "Victim\r\nBcc: evil@x.com <victim@example.com>",
        "victim@example.com\rBcc: evil@x.com",
        "victim@example.com\u2028Bcc: evil@x.com",
        "victim@example.com\x85Bcc: evil@x.com",
        "victim@example.com\x00",
        ["ok@example.com", "x@example.com\r\nBcc: evil@x.com"],
    ],
)
def test_parse_addresses_rejects_header_injection(value: str | list[str]) -> None:
    with pytest.raises(InvalidMessage, match="line breaks"):
        parse_addresses(value)


def test_parse_addresses_caps_recipients() -> None:
    many = [f"user{i}@example.com" for i in range(MAX_RECIPIENTS)]
    assert len(parse_addresses(many)) == MAX_RECIPIENTS
    with pytest.raises(InvalidMessage, match="more than 100"):
        parse_addresses([*many, "one.more@example.com"])


# --------------------------------------------------------------------------- building


def test_build_message_validates_and_keeps_fields() -> None:
    message = build_message(
        sender=ME,
        to="alice@example.com",
        cc=["Carol <carol@example.com>"],
        bcc="audit@example.com",
        subject="  Hello  ",
        body="Line one\r\nLine two\rLine three",
    )
    assert message == OutgoingMessage(
        to=("alice@example.com",),
        cc=("Carol <carol@example.com>",),
        bcc=("audit@example.com",),
        subject="Hello",
        body="Line one\nLine two\nLine three",
        in_reply_to=None,
        references=None,
        thread_id=None,
        message_id=None,
    )


@pytest.mark.parametrize(
    "subject",
    [
        "Hello\r\nBcc: evil@x.com",
        "Hello\nBcc: evil@x.com",
        "Hello\rBcc: evil@x.com",
        "Hello\u2029Bcc: evil@x.com",
        "Hello\x0bBcc: evil@x.com",
        "Hello\x00",
    ],
)
def test_subject_header_injection_is_rejected(subject: str) -> None:
    with pytest.raises(InvalidMessage, match="subject"):
        build_message(sender=None, to="a@x.com", subject=subject, body="hi")


@pytest.mark.parametrize("field", ["to", "cc", "bcc"])
def test_recipient_header_injection_is_rejected(field: str) -> None:
    kwargs = {"to": "a@x.com", field: "b@y.com\r\nBcc: evil@x.com"}
    with pytest.raises(InvalidMessage):
        build_message(sender=None, subject="hi", body="hi", **kwargs)  # type: ignore[arg-type]


def test_sender_is_validated() -> None:
    with pytest.raises(InvalidMessage, match="sender"):
        build_message(sender="a@x.com, b@y.com", to="c@z.com", subject="s", body="b")
    with pytest.raises(InvalidMessage):
        build_message(sender="me@example.com\r\nX-Evil: 1", to="c@z.com", subject="s", body="b")


def test_message_needs_a_recipient_and_a_sane_subject() -> None:
    with pytest.raises(InvalidMessage, match="at least one recipient"):
        build_message(sender=None, to="", subject="s", body="b")
    with pytest.raises(InvalidMessage, match="998"):
        build_message(sender=None, to="a@x.com", subject="x" * 999, body="b")
    assert build_message(sender=None, to="a@x.com", subject="x" * 998, body="b").subject == "x" * 998
    assert build_message(sender=None, to=None, bcc="a@x.com", subject="", body="").bcc == ("a@x.com",)
    with pytest.raises(InvalidMessage, match="more than 100"):
        build_message(
            sender=None,
            to=[f"t{i}@x.com" for i in range(60)],
            cc=[f"c{i}@x.com" for i in range(41)],
            subject="s",
            body="b",
        )


def test_message_id_must_look_like_one() -> None:
    good = deterministic_message_id("action-1")
    assert build_message(sender=None, to="a@x.com", subject="s", body="b", message_id=good).message_id == good
    for bad in ("no-brackets@x.com", "<a b@x.com>", "<abc>", "<a@x.com>\r\nBcc: evil@x.com"):
        with pytest.raises(InvalidMessage, match="Message-ID"):
            build_message(sender=None, to="a@x.com", subject="s", body="b", message_id=bad)


# --------------------------------------------------------------------------- replies


def test_reply_threads_with_in_reply_to_references_and_re_subject() -> None:
    reply = build_message(sender=ME, to=None, subject="", body="Checked, all fine.", reply_to=original())
    assert reply.subject == "Re: Quarterly numbers"
    assert reply.in_reply_to == "<q3-2@mail.example.com>"
    assert reply.references == "<q3-0@mail.example.com> <q3-1@mail.example.com> <q3-2@mail.example.com>"
    assert reply.thread_id == "18c0ffee00000000"
    assert reply.to == ("Alice Example <alice@example.com>",)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Quarterly numbers", "Re: Quarterly numbers"),
        ("Re: Quarterly numbers", "Re: Quarterly numbers"),
        ("RE: Quarterly numbers", "RE: Quarterly numbers"),
        ("re: Quarterly numbers", "re: Quarterly numbers"),
        ("Re[2]: Quarterly numbers", "Re[2]: Quarterly numbers"),
        ("Fwd: Quarterly numbers", "Re: Fwd: Quarterly numbers"),
        ("Regarding numbers", "Re: Regarding numbers"),
        ("", "Re:"),
    ],
)
def test_reply_subject_is_not_doubled(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected
    reply = build_message(sender=None, to="a@x.com", subject="", body="b", reply_to=original(subject=subject))
    assert reply.subject == expected


def test_reply_with_a_new_subject_keeps_it_and_prefixes_it() -> None:
    reply = build_message(sender=None, to=None, subject="Numbers, again", body="b", reply_to=original())
    assert reply.subject == "Re: Numbers, again"


def test_reply_defaults_to_reply_to_header_then_sender() -> None:
    with_reply_to = original(reply_to="Numbers List <numbers@lists.example.com>")
    assert build_message(sender=ME, to=None, subject="", body="b", reply_to=with_reply_to).to == (
        "Numbers List <numbers@lists.example.com>",
    )
    explicit = build_message(sender=ME, to="carol@example.com", subject="", body="b", reply_to=with_reply_to)
    assert explicit.to == ("carol@example.com",)


def test_reply_to_own_message_goes_to_its_recipients() -> None:
    own = original(from_="Me Myself <ME@example.com>", to="Alice <alice@example.com>, bob@example.com")
    reply = build_message(sender="me@example.com", to=None, subject="", body="ping", reply_to=own)
    assert reply.to == ("Alice <alice@example.com>", "bob@example.com")


def test_reply_without_message_id_or_references() -> None:
    reply = build_message(sender=None, to=None, subject="", body="b", reply_to=original(message_id="", references=""))
    assert reply.in_reply_to is None and reply.references is None
    bare = build_message(sender=None, to=None, subject="", body="b", reply_to=original(message_id="abc@x.com"))
    assert bare.in_reply_to == "<abc@x.com>"


def test_reply_to_a_decoded_gmail_message() -> None:
    msg = EmailMessage()
    msg["From"] = "Zoë Ångström <zoe@example.com>"
    msg["To"] = ME
    msg["Subject"] = "Déjeuner ?"
    msg["Message-ID"] = "<dej-1@example.com>"
    msg.set_content("On mange où ?")
    reply = build_message(sender=ME, to=None, subject="", body="Ici.", reply_to=readable_message(full_resource(msg)))
    assert reply.to == ("Zoë Ångström <zoe@example.com>",)
    assert reply.subject == "Re: Déjeuner ?"
    assert reply.in_reply_to == reply.references == "<dej-1@example.com>"
    assert reply.thread_id == "18c0ffee00000000"


# --------------------------------------------------------------------------- raw


def test_to_raw_decodes_back_to_the_same_headers_and_body() -> None:
    message_id = deterministic_message_id("pending-action-123")
    reply = build_message(
        sender=ME,
        to=["Zoë Ångström <zoe@example.com>", '"Doe, John" <john@example.com>'],
        cc="carol@example.com",
        bcc="audit@example.com",
        subject="",
        body="Hello Zoë,\n\nLes chiffres sont bons. ✓\n\n-- \nMe",
        reply_to=original(),
        message_id=message_id,
    )
    parsed = decode_raw(to_raw(reply, sender=ME))

    assert parsed["From"] == ME
    assert parsed["To"] == 'Zoë Ångström <zoe@example.com>, "Doe, John" <john@example.com>'
    assert [a.addr_spec for a in parsed["To"].addresses] == ["zoe@example.com", "john@example.com"]
    assert parsed["Cc"] == "carol@example.com"
    assert parsed["Bcc"] == "audit@example.com"
    assert parsed["Subject"] == "Re: Quarterly numbers"
    assert parsed["Message-ID"] == message_id
    assert parsed["In-Reply-To"] == "<q3-2@mail.example.com>"
    # (folded on the wire when long, as RFC 5322 allows)
    assert parsed["References"].split() == [
        "<q3-0@mail.example.com>",
        "<q3-1@mail.example.com>",
        "<q3-2@mail.example.com>",
    ]
    assert parsed["Date"].datetime is not None
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content_charset() == "utf-8"
    assert parsed.get_content().replace("\r\n", "\n") == "Hello Zoë,\n\nLes chiffres sont bons. ✓\n\n-- \nMe\n"

    # And what the agent would read back from Gmail's raw format:
    readback = readable_message({"id": "x", "raw": to_raw(reply, sender=ME)})
    assert readback.body == "Hello Zoë,\n\nLes chiffres sont bons. ✓\n\n-- \nMe"
    assert readback.to == 'Zoë Ångström <zoe@example.com>, "Doe, John" <john@example.com>'
    assert readback.subject == "Re: Quarterly numbers"
    assert readback.message_id == message_id


def test_non_ascii_subject_round_trips_encoded() -> None:
    subject = "Réunion à 15h — 会议 ✓"
    message = build_message(sender=None, to="a@x.com", subject=subject, body="b")
    raw_bytes = base64.urlsafe_b64decode(to_raw(message))
    header_block = raw_bytes.split(b"\r\n\r\n", 1)[0]
    assert header_block.isascii()  # RFC 2047 encoded words, no raw 8-bit headers
    assert b"=?utf-8?" in header_block
    assert decode_raw(to_raw(message))["Subject"] == subject


def test_body_is_never_sent_as_raw_8bit_and_long_lines_survive() -> None:
    body = "ünïcödé " * 200 + "\nend"
    raw_bytes = base64.urlsafe_b64decode(to_raw(build_message(sender=None, to="a@x.com", subject="s", body=body)))
    assert raw_bytes.isascii()
    assert all(len(line) <= 998 for line in raw_bytes.split(b"\r\n"))
    content = decode_raw(to_raw(build_message(sender=None, to="a@x.com", subject="s", body=body))).get_content()
    assert content.replace("\r\n", "\n") == body + "\n"  # MIME's canonical text form has CRLF line ends


def test_to_raw_without_sender_or_message_id_leaves_them_to_gmail() -> None:
    parsed = decode_raw(to_raw(build_message(sender=None, to="a@x.com", subject="s", body="b")))
    assert parsed["From"] is None
    assert parsed["Message-ID"] is None
    assert parsed["In-Reply-To"] is None and parsed["References"] is None


def test_to_raw_revalidates_a_hand_made_outgoing_message() -> None:
    forged = OutgoingMessage(
        to=("a@x.com",),
        cc=(),
        bcc=(),
        subject="hi\r\nBcc: evil@x.com",
        body="b",
        in_reply_to=None,
        references=None,
        thread_id=None,
        message_id=None,
    )
    with pytest.raises(InvalidMessage):
        to_raw(forged)
    with pytest.raises(InvalidMessage):
        to_raw(forged.__class__(**{**forged.__dict__, "subject": "ok", "to": ("a@x.com\nBcc: evil@x.com",)}))
    with pytest.raises(InvalidMessage):
        to_raw(forged.__class__(**{**forged.__dict__, "subject": "ok", "references": "<a@x.com>\r\nBcc: e@x.com"}))


def test_lone_surrogates_in_a_body_do_not_break_encoding() -> None:
    message = build_message(sender=None, to="a@x.com", subject="s", body="bad \udcff char")
    assert message.body == "bad \ufffd char"
    assert decode_raw(to_raw(message)).get_content().strip() == "bad \ufffd char"


def test_gmail_message_carries_thread_id_for_replies() -> None:
    reply = build_message(sender=None, to=None, subject="", body="b", reply_to=original())
    body = gmail_message(reply)
    assert body["threadId"] == "18c0ffee00000000"
    assert decode_raw(body["raw"])["In-Reply-To"] == "<q3-2@mail.example.com>"
    fresh = gmail_message(build_message(sender=None, to="a@x.com", subject="s", body="b"))
    assert set(fresh) == {"raw"}


# --------------------------------------------------------------------------- message ids


def test_deterministic_message_id_is_stable_and_differs_per_seed() -> None:
    first = deterministic_message_id("pending-action-123")
    assert first == deterministic_message_id("pending-action-123")
    assert first != deterministic_message_id("pending-action-124")
    assert first.startswith("<") and first.endswith("@mailroom.local>")
    local = first[1:].split("@")[0]
    assert len(local) == 32 and all(c in "0123456789abcdef" for c in local)
    assert deterministic_message_id("pending-action-123", "mail.example.com").endswith("@mail.example.com>")
    assert deterministic_message_id("\udcff odd seed").startswith("<")
    with pytest.raises(InvalidMessage):
        deterministic_message_id("seed", "bad domain\r\n")
