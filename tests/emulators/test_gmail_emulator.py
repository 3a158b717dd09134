"""The Gmail mailbox emulator, driven by the real googleapiclient as Mailroom drives Gmail."""

from __future__ import annotations

import base64
import email
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
import requests
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest, MediaInMemoryUpload

from infra.local.emulators import mailbox_seed
from infra.local.emulators.gmail import GmailMailbox, SeededIds
from infra.local.emulators.google import GMAIL_READONLY, MAILROOM_SCOPES, MAILROOM_SCOPES_BEFORE_MODIFY, GoogleEmulator
from infra.local.emulators.mailbox_seed import message_id


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[GoogleEmulator, GmailMailbox]]:
    emulator = GoogleEmulator()
    mailbox = GmailMailbox(emulator)
    emulator.start()
    yield emulator, mailbox
    emulator.stop()


@dataclass
class Account:
    google: GoogleEmulator
    mailbox: GmailMailbox
    email: str
    ids: SeededIds
    gmail: Any

    def names(self, response: dict[str, Any]) -> set[str]:
        by_id = {v: k for k, v in self.ids.message.items()}
        return {by_id.get(m["id"], m["id"]) for m in response.get("messages", [])}

    def search(self, q: str, **kwargs: Any) -> set[str]:
        return self.names(self.gmail.users().messages().list(userId="me", q=q, **kwargs).execute())


def service(google: GoogleEmulator, email_address: str, scopes: tuple[str, ...] = MAILROOM_SCOPES) -> Any:
    token = google.issue_tokens(scopes=scopes, account_email=email_address)["access_token"]
    return build(
        "gmail",
        "v1",
        credentials=Credentials(token),
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": google.gmail_api_url},
    )


def new_account(server: tuple[GoogleEmulator, GmailMailbox]) -> Account:
    google, mailbox = server
    address = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    ids = mailbox.seed(address)
    return Account(google, mailbox, address, ids, service(google, address))


@pytest.fixture(scope="module")
def seeded(server: tuple[GoogleEmulator, GmailMailbox]) -> Account:
    """One seeded account for the tests that only read."""
    return new_account(server)


@pytest.fixture
def ada(server: tuple[GoogleEmulator, GmailMailbox]) -> Account:
    """A fresh seeded account, for tests that send, draft or fail calls."""
    return new_account(server)


def b64decode(data: str) -> bytes:
    return base64.urlsafe_b64decode(data)


def raw_of(msg: EmailMessage) -> str:
    return base64.urlsafe_b64encode(msg.as_bytes()).decode()


def reply_to_thursday(ada: Account, subject: str = "Re: Project Falcon kickoff") -> EmailMessage:
    msg = EmailMessage()
    msg["To"] = "bob@example.com"
    msg["From"] = ada.email
    msg["Subject"] = subject
    msg["In-Reply-To"] = message_id("project_thursday")
    msg["References"] = (
        f"{message_id('project_kickoff')} {message_id('project_reply')} {message_id('project_thursday')}"
    )
    msg.set_content("Thursday works, see you at 10.\n")
    return msg


# -- list and search ---------------------------------------------------------------------
def test_list_is_newest_first_and_leaves_spam_out(seeded: Account) -> None:
    listed = seeded.gmail.users().messages().list(userId="me").execute()
    ids = [m["id"] for m in listed["messages"]]
    dates = [int(seeded.mailbox.message(seeded.email, i).internal_date) for i in ids]
    assert dates == sorted(dates, reverse=True)
    assert seeded.ids.message["spam_offer"] not in ids
    assert listed["resultSizeEstimate"] == len(seeded.ids.message) - 1
    assert all(set(m) == {"id", "threadId"} for m in listed["messages"])
    assert "spam_offer" in seeded.search("", includeSpamTrash=True)


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y/%m/%d")


SEARCHES = [
    ("from:alice", {"alice_note"}),
    ("from:alice@example.com", {"alice_note"}),
    ("from:bob", {"project_kickoff", "project_thursday"}),
    ("from:me", {"project_reply"}),
    ("to:bob in:sent", {"project_reply"}),
    ("cc:ada", {"multipart_alternative"}),
    ("to:team@example.com", {"multipart_alternative"}),
    ("is:unread", {"alice_note", "nested_attachments", "project_thursday", "prompt_injection", "unread_yesterday"}),
    ("is:unread in:spam", {"spam_offer"}),
    ("is:read from:frank", {"read_old"}),
    ("newer_than:7d from:alice", {"alice_note"}),
    (
        "older_than:7d",
        {
            "large_body",
            "read_old",
            "order_receipt",
            "contract_docx",
            "offsite_invite",
            *(f"deal_{n}" for n in range(1, mailbox_seed.NEWSLETTER_COUNT + 1)),
        },
    ),
    (f"before:{_days_ago(20)}", {"read_old"}),
    (f"after:{_days_ago(8)} from:frank", set()),
    (f"after:{_days_ago(2)} from:bob", {"project_thursday"}),
    ('subject:"Falcon kickoff"', {"project_kickoff", "project_reply", "project_thursday"}),
    ("subject:(falcon re)", {"project_reply", "project_thursday"}),
    ('"does Thursday work"', {"project_thursday"}),
    ("thursday", {"project_thursday"}),
    ("from:bob -is:unread", {"project_kickoff"}),
    ("-from:bob subject:falcon", {"project_reply"}),
    ("has:attachment", {"nested_attachments", "order_receipt", "contract_docx", "offsite_invite"}),
    ("filename:pdf", {"nested_attachments", "order_receipt"}),
    ("filename:q3-report.pdf", {"nested_attachments"}),
    ("reunion", {"encoded_subject", "latin1_body"}),  # accents fold, as in Gmail
    ("日本", {"encoded_subject"}),
    ("from:alice OR from:erin", {"alice_note", "unread_yesterday"}),
    ("{from:alice from:erin} is:unread", {"alice_note", "unread_yesterday"}),
    ("category:promotions", {"html_newsletter", *(f"deal_{n}" for n in range(1, mailbox_seed.NEWSLETTER_COUNT + 1))}),
    ("label:important", {"project_thursday"}),
    ("attacker@evil.test", {"prompt_injection"}),
    ("tele", set()),  # whole words only: no match inside "telemetry"
    (mailbox_seed.LARGE_BODY_END.lower(), {"large_body"}),  # the end of a 200 KB body is searched
    (f"rfc822msgid:{message_id('project_reply')}", {"project_reply"}),
    (f"rfc822msgid:{message_id('project_reply').strip('<>')}", {"project_reply"}),
    ("rfc822msgid:<project-reply@elsewhere.test>", set()),
]


@pytest.mark.parametrize(("query", "expected"), SEARCHES)
def test_search(seeded: Account, query: str, expected: set[str]) -> None:
    assert seeded.search(query) == expected


def test_label_ids_filter_and_pagination(seeded: Account) -> None:
    messages = seeded.gmail.users().messages()
    assert seeded.names(messages.list(userId="me", labelIds=["INBOX", "UNREAD"]).execute()) == seeded.search(
        "is:unread"
    )

    pages: list[list[str]] = []
    request = messages.list(userId="me", maxResults=4)
    while request is not None:
        response = request.execute()
        pages.append([m["id"] for m in response.get("messages", [])])
        request = messages.list_next(request, response)
    everything = [m["id"] for m in messages.list(userId="me").execute()["messages"]]
    assert all(len(p) == 4 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 4 and len(pages) > 3
    assert [i for page in pages for i in page] == everything


# -- get ---------------------------------------------------------------------------------
def test_get_full_of_nested_multipart_and_its_attachment(seeded: Account) -> None:
    message_id_ = seeded.ids.message["nested_attachments"]
    got = seeded.gmail.users().messages().get(userId="me", id=message_id_).execute()
    payload = got["payload"]
    assert payload["partId"] == "" and payload["mimeType"] == "multipart/mixed"
    assert [(p["partId"], p["mimeType"], p["filename"]) for p in payload["parts"]] == [
        ("0", "multipart/alternative", ""),
        ("1", "application/pdf", "q3-report.pdf"),
        ("2", "image/png", "chart.png"),
    ]
    alternative = payload["parts"][0]
    assert [p["partId"] for p in alternative["parts"]] == ["0.0", "0.1"]
    assert b64decode(alternative["parts"][0]["body"]["data"]).startswith(b"Hi Ada,")
    assert got["labelIds"] == ["INBOX", "UNREAD", "CATEGORY_PERSONAL"]
    assert got["snippet"].startswith("Hi Ada, The Q3 report is attached")

    pdf_body = payload["parts"][1]["body"]
    assert "data" not in pdf_body and pdf_body["size"] == len(mailbox_seed.report_pdf())
    attachment = (
        seeded.gmail.users()
        .messages()
        .attachments()
        .get(userId="me", messageId=message_id_, id=pdf_body["attachmentId"])
        .execute()
    )
    assert b64decode(attachment["data"]) == mailbox_seed.report_pdf()
    assert attachment["size"] == pdf_body["size"]
    assert mailbox_seed.report_pdf().startswith(b"%PDF-1.4") and b"startxref" in mailbox_seed.report_pdf()


def test_body_data_keeps_its_charset_and_headers_are_decoded(seeded: Account) -> None:
    get = seeded.gmail.users().messages().get
    latin = get(userId="me", id=seeded.ids.message["latin1_body"]).execute()["payload"]
    assert "Voilà le compte rendu".encode("latin-1") in b64decode(latin["body"]["data"])
    encoded = get(userId="me", id=seeded.ids.message["encoded_subject"], format="metadata").execute()
    headers = {h["name"]: h["value"] for h in encoded["payload"]["headers"]}
    assert headers["Subject"] == mailbox_seed.ENCODED_SUBJECT
    assert headers["From"] == f"{mailbox_seed.ENCODED_SENDER} <zoe@example.jp>"
    only = get(
        userId="me", id=seeded.ids.message["alice_note"], format="metadata", metadataHeaders=["subject"]
    ).execute()
    assert only["payload"]["headers"] == [{"name": "Subject", "value": "Notes from Tuesday"}]
    minimal = get(userId="me", id=seeded.ids.message["alice_note"], format="minimal").execute()
    assert "payload" not in minimal and "raw" not in minimal and minimal["sizeEstimate"] > 0


def test_html_only_newsletter_snippet_is_text_and_escaped(seeded: Account) -> None:
    got = seeded.gmail.users().messages().get(userId="me", id=seeded.ids.message["html_newsletter"]).execute()
    assert got["payload"]["mimeType"] == "text/html" and "parts" not in got["payload"]
    assert "<" not in got["snippet"] and "track(" not in got["snippet"]
    assert "Hello Ada &amp; friends" in got["snippet"]  # Gmail escapes its snippets


def test_raw_round_trips_to_the_same_bytes(seeded: Account) -> None:
    def undated(raw: bytes) -> bytes:
        return re.sub(rb"\r\nDate: [^\r]*", b"", raw)

    seeds = {s.name: s.raw for s in mailbox_seed.seed_messages(seeded.email)}
    raws = {}
    for name in ("nested_attachments", "encoded_subject", "large_body"):
        got = seeded.gmail.users().messages().get(userId="me", id=seeded.ids.message[name], format="raw").execute()
        assert "payload" not in got
        raws[name] = b64decode(got["raw"])
        assert undated(raws[name]) == undated(seeds[name])  # the seeded bytes, only the clock differs
    parsed = email.message_from_bytes(raws["nested_attachments"], policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    attachments = {part.get_filename(): part.get_content() for part in parsed.iter_attachments()}
    assert attachments == {"q3-report.pdf": mailbox_seed.report_pdf(), "chart.png": mailbox_seed.chart_png()}
    assert email.message_from_bytes(raws["encoded_subject"], policy=policy.default)["Subject"] == "Réunion — 日本"
    assert len(raws["large_body"]) > 190_000


def test_unknown_and_malformed_ids(seeded: Account) -> None:
    get = seeded.gmail.users().messages().get
    with pytest.raises(HttpError) as missing:
        get(userId="me", id="0123456789abcdef").execute()
    with pytest.raises(HttpError) as malformed:
        get(userId="me", id="not-an-id").execute()
    assert (missing.value.status_code, malformed.value.status_code) == (404, 400)


# -- threads -----------------------------------------------------------------------------
def test_thread_messages_are_in_order(seeded: Account) -> None:
    thread_id = seeded.ids.thread["project_thread"]
    thread = seeded.gmail.users().threads().get(userId="me", id=thread_id).execute()
    order = [seeded.ids.message[n] for n in ("project_kickoff", "project_reply", "project_thursday")]
    assert [m["id"] for m in thread["messages"]] == order
    assert thread_id == order[0]  # Gmail's thread id is its first message's
    assert all(m["threadId"] == thread_id for m in thread["messages"])
    listed = seeded.gmail.users().threads().list(userId="me", q="from:bob").execute()
    assert [t["id"] for t in listed["threads"]] == [thread_id]
    assert "Thursday" in listed["threads"][0]["snippet"]


# -- drafts and sending ------------------------------------------------------------------
def test_reply_draft_then_send(ada: Account) -> None:
    drafts = ada.gmail.users().drafts()
    thread_id = ada.ids.thread["project_thread"]
    before = ada.mailbox.send_count
    draft = drafts.create(
        userId="me", body={"message": {"raw": raw_of(reply_to_thursday(ada)), "threadId": thread_id}}
    ).execute()
    assert draft["message"]["threadId"] == thread_id and draft["message"]["labelIds"] == ["DRAFT"]
    assert [d["id"] for d in drafts.list(userId="me").execute()["drafts"]] == [draft["id"]]
    assert drafts.get(userId="me", id=draft["id"]).execute()["message"]["payload"]["mimeType"] == "text/plain"
    assert ada.search("in:drafts") == {draft["message"]["id"]}

    sent = drafts.send(userId="me", body={"id": draft["id"]}).execute()
    assert sent["labelIds"] == ["SENT"] and sent["threadId"] == thread_id
    assert drafts.list(userId="me").execute() == {"resultSizeEstimate": 0}
    assert ada.mailbox.send_count == before + 1
    assert [m.id for m in ada.mailbox.sent(ada.email)] == [sent["id"]]
    thread = ada.gmail.users().threads().get(userId="me", id=thread_id, format="minimal").execute()
    assert [m["id"] for m in thread["messages"]][-1] == sent["id"]
    assert ada.mailbox.message(ada.email, sent["id"]).message_id  # Gmail adds a Message-ID
    with pytest.raises(HttpError) as gone:
        drafts.send(userId="me", body={"id": draft["id"]}).execute()
    assert gone.value.status_code == 404 and ada.mailbox.send_count == before + 1


def test_draft_update_and_delete(ada: Account) -> None:
    drafts = ada.gmail.users().drafts()
    draft = drafts.create(userId="me", body={"message": {"raw": raw_of(reply_to_thursday(ada))}}).execute()
    changed = reply_to_thursday(ada, subject="Re: Project Falcon kickoff (updated)")
    updated = drafts.update(userId="me", id=draft["id"], body={"message": {"raw": raw_of(changed)}}).execute()
    assert updated["id"] == draft["id"] and updated["message"]["id"] != draft["message"]["id"]
    assert ada.mailbox.drafts(ada.email)[0].message.subject.endswith("(updated)")
    drafts.delete(userId="me", id=draft["id"]).execute()
    assert ada.mailbox.drafts(ada.email) == []


def test_a_reply_whose_subject_does_not_fit_starts_a_new_thread(ada: Account) -> None:
    thread_id = ada.ids.thread["project_thread"]
    off_topic = raw_of(reply_to_thursday(ada, subject="Something else"))
    sent = ada.gmail.users().messages().send(userId="me", body={"raw": off_topic, "threadId": thread_id}).execute()
    assert sent["threadId"] != thread_id


def test_send_keeps_the_chosen_message_id_for_an_exactly_once_check(ada: Account) -> None:
    chosen = f"<mailroom-{uuid.uuid4().hex}@mailroom.test>"
    msg = reply_to_thursday(ada)
    msg["Message-ID"] = chosen
    assert ada.search(f"rfc822msgid:{chosen}") == set()
    sent = (
        ada.gmail.users()
        .messages()
        .send(userId="me", body={"raw": raw_of(msg), "threadId": ada.ids.thread["project_thread"]})
        .execute()
    )
    assert ada.search(f"rfc822msgid:{chosen} in:sent") == {sent["id"]}
    assert sent["threadId"] == ada.ids.thread["project_thread"]
    assert ada.mailbox.message(ada.email, sent["id"]).message_id == chosen


def test_send_refuses_a_message_without_recipients(ada: Account) -> None:
    msg = EmailMessage()
    msg["Subject"] = "nobody"
    msg.set_content("x")
    with pytest.raises(HttpError) as refused:
        ada.gmail.users().messages().send(userId="me", body={"raw": raw_of(msg)}).execute()
    assert refused.value.status_code == 400 and ada.mailbox.sent(ada.email) == []


@pytest.mark.parametrize("with_metadata", [True, False])
def test_media_upload_send(ada: Account, with_metadata: bool) -> None:
    # googleapiclient sends media_body= uploads to https:// whatever api_endpoint says, so it cannot
    # reach a local http emulator itself: replay the exact request it builds.
    raw = reply_to_thursday(ada).as_bytes(policy=policy.SMTP)
    thread_id = ada.ids.thread["project_thread"]
    body = {"threadId": thread_id} if with_metadata else None
    media = MediaInMemoryUpload(raw, mimetype="message/rfc822")
    request = ada.gmail.users().messages().send(userId="me", body=body, media_body=media)
    token = ada.google.issue_tokens(account_email=ada.email)["access_token"]
    headers = dict(request.headers) | {"authorization": f"Bearer {token}"}
    url = request.uri.replace("https://", "http://", 1)
    assert "/upload/gmail/v1/users/me/messages/send" in url
    assert f"uploadType={'multipart' if with_metadata else 'media'}" in url
    answer = requests.post(url, data=request.body, headers=headers, timeout=5)
    assert answer.status_code == 200, answer.text
    stored = ada.mailbox.message(ada.email, answer.json()["id"])
    assert stored.raw.endswith(raw)  # byte for byte, after the Message-ID Gmail added
    assert (stored.thread_id == thread_id) is with_metadata


def test_readonly_token_cannot_send(ada: Account) -> None:
    readonly = service(ada.google, ada.email, scopes=(GMAIL_READONLY,))
    assert readonly.users().messages().list(userId="me", q="from:alice").execute()["resultSizeEstimate"] == 1
    with pytest.raises(HttpError) as denied:
        readonly.users().messages().send(userId="me", body={"raw": raw_of(reply_to_thursday(ada))}).execute()
    assert denied.value.status_code == 403
    assert denied.value.error_details[0]["reason"] == "insufficientPermissions"
    assert ada.mailbox.sent(ada.email) == []


# -- faults ------------------------------------------------------------------------------
def test_injected_429_surfaces_as_http_error_and_nothing_is_sent(ada: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    ada.mailbox.fail_next("gmail.users.messages.send", 429)
    body = {"raw": raw_of(reply_to_thursday(ada))}
    with pytest.raises(HttpError) as limited:
        ada.gmail.users().messages().send(userId="me", body=body).execute()
    assert limited.value.status_code == 429
    assert limited.value.error_details[0]["reason"] == "rateLimitExceeded"
    assert ada.mailbox.sent(ada.email) == []

    # googleapiclient retries it on its own; no wait between tries.
    monkeypatch.setattr("googleapiclient.http.random.random", lambda: 0.0)
    ada.mailbox.fail_next("messages.send", 403, reason="userRateLimitExceeded")
    ada.gmail.users().messages().send(userId="me", body=body).execute(num_retries=1)
    assert len(ada.mailbox.sent(ada.email)) == 1


def test_a_lost_answer_after_the_send_is_found_by_message_id(ada: Account) -> None:
    chosen = f"<lost-{uuid.uuid4().hex}@mailroom.test>"
    msg = reply_to_thursday(ada)
    msg["Message-ID"] = chosen
    ada.mailbox.fail_next("messages.send", 500, after=True)
    with pytest.raises(HttpError) as failed:
        ada.gmail.users().messages().send(userId="me", body={"raw": raw_of(msg)}).execute()
    assert failed.value.status_code == 500
    assert len(ada.search(f"rfc822msgid:{chosen}")) == 1  # it did go out: a retry must not resend


@pytest.mark.parametrize("kind", ["timeout", "reset", "hang_up"])
@pytest.mark.parametrize("after", [False, True])
def test_transport_faults_lose_the_answer_before_or_after_the_send(ada: Account, kind: str, after: bool) -> None:
    import requests

    token = ada.google.issue_tokens(scopes=MAILROOM_SCOPES, account_email=ada.email)["access_token"]
    before = len(ada.mailbox.sent(ada.email))
    ada.mailbox.stall_seconds = 1.0
    ada.mailbox.fail_next("messages.send", kind=kind, after=after)
    with pytest.raises((requests.Timeout, requests.ConnectionError)):
        requests.post(
            f"{ada.google.gmail_api_url}gmail/v1/users/me/messages/send",
            json={"raw": raw_of(reply_to_thursday(ada))},
            headers={"Authorization": f"Bearer {token}"},
            timeout=0.5,
        )
    time.sleep(0.6 if kind == "timeout" else 0)  # the stalled call finishes on the server's side
    assert len(ada.mailbox.sent(ada.email)) == before + (1 if after else 0)


def test_drafts_update_replaces_the_raw_and_drafts_send_sends_it_as_is(ada: Account) -> None:
    drafts = ada.gmail.users().drafts()
    created = drafts.create(userId="me", body={"message": {"raw": raw_of(reply_to_thursday(ada))}}).execute()
    changed = reply_to_thursday(ada)
    changed["X-Mailroom-Action"] = "send-1"
    changed.set_content("changed text")
    body = {"id": created["id"], "message": {"raw": raw_of(changed), "threadId": created["message"]["threadId"]}}
    updated = drafts.update(userId="me", id=created["id"], body=body).execute()
    assert updated["id"] == created["id"] and updated["message"]["id"] != created["message"]["id"]
    raw = b64decode(drafts.get(userId="me", id=created["id"], format="raw").execute()["message"]["raw"])
    assert raw == changed.as_bytes()
    sent = drafts.send(userId="me", body={"id": created["id"]}).execute()
    assert set(sent) >= {"id", "threadId", "labelIds"} and "SENT" in sent["labelIds"]
    assert ada.mailbox.message(ada.email, sent["id"]).raw.endswith(changed.as_bytes())  # + Date, Message-ID
    with pytest.raises(HttpError) as gone:
        drafts.get(userId="me", id=created["id"]).execute()
    assert gone.value.status_code == 404


def test_fail_next_rejects_unknown_methods(ada: Account) -> None:
    with pytest.raises(ValueError, match="not a mailbox method"):
        ada.mailbox.fail_next("gmail.users.messages.sned", 429)


# -- profile, labels, delivery -----------------------------------------------------------
def test_profile_and_labels(seeded: Account) -> None:
    profile = seeded.gmail.users().getProfile(userId="me").execute()
    assert profile["emailAddress"] == seeded.email
    assert profile["messagesTotal"] == len(seeded.ids.message)
    assert profile["threadsTotal"] == len(seeded.ids.thread)
    labels = {label["id"]: label for label in seeded.gmail.users().labels().list(userId="me").execute()["labels"]}
    assert {"INBOX", "SENT", "DRAFT", "UNREAD", "SPAM", "TRASH"} <= set(labels)
    assert labels["INBOX"]["type"] == "system"


def test_an_incoming_reply_joins_the_thread_it_references(ada: Account) -> None:
    reply = EmailMessage()
    reply["From"] = "Bob Stone <bob@example.com>"
    reply["To"] = ada.email
    reply["Subject"] = "RE: Project Falcon kickoff"
    reply["In-Reply-To"] = message_id("project_thursday")
    reply["References"] = message_id("project_thursday")
    reply.set_content("Booked the room.\n")
    new_id = ada.mailbox.add_message(ada.email, reply.as_bytes(policy=policy.SMTP))
    assert ada.mailbox.message(ada.email, new_id).thread_id == ada.ids.thread["project_thread"]
    assert new_id in {
        m["id"] for m in ada.gmail.users().messages().list(userId="me", q="is:unread booked").execute()["messages"]
    }


# -- labels, modify, batch, attachments (issue 13) -----------------------------------------
def test_labels_create_modify_and_batch_modify(ada: Account) -> None:
    labels, messages = ada.gmail.users().labels(), ada.gmail.users().messages()
    created = labels.create(userId="me", body={"name": "Finance"}).execute()
    assert created["id"].startswith("Label_") and created["type"] == "user" and created["name"] == "Finance"
    with pytest.raises(HttpError) as taken:
        labels.create(userId="me", body={"name": "finance"}).execute()
    assert taken.value.status_code == 409
    frank, alice = ada.ids.message["read_old"], ada.ids.message["alice_note"]
    changed = messages.modify(userId="me", id=frank, body={"addLabelIds": [created["id"]]}).execute()
    assert created["id"] in changed["labelIds"] and set(changed) == {"id", "threadId", "labelIds"}
    body = {"ids": [frank, alice], "removeLabelIds": ["INBOX", "UNREAD"]}
    assert messages.batchModify(userId="me", body=body).execute() == ""
    assert ada.search("in:inbox from:frank") == set() and ada.search("is:unread from:alice") == set()
    with pytest.raises(HttpError) as unknown:
        messages.batchModify(userId="me", body={"ids": [frank], "addLabelIds": ["Label_99"]}).execute()
    assert unknown.value.status_code == 400 and "Invalid label" in str(unknown.value.reason)
    assert any(label["name"] == "Finance" for label in labels.list(userId="me").execute()["labels"])


def test_modify_needs_gmail_modify(ada: Account) -> None:
    older = service(ada.google, ada.email, scopes=MAILROOM_SCOPES_BEFORE_MODIFY)
    frank = ada.ids.message["read_old"]
    with pytest.raises(HttpError) as denied:
        older.users().messages().batchModify(userId="me", body={"ids": [frank], "removeLabelIds": ["INBOX"]}).execute()
    assert denied.value.status_code == 403 and denied.value.error_details[0]["reason"] == "insufficientPermissions"
    assert older.users().messages().get(userId="me", id=frank).execute()["id"] == frank  # reading still works


def test_a_batch_request_answers_each_part_in_order_with_gmail_shapes(seeded: Account) -> None:
    messages = seeded.gmail.users().messages()
    answers: dict[str, Any] = {}
    batch = BatchHttpRequest(
        callback=lambda rid, response, exc: answers.__setitem__(rid, exc or response),
        batch_uri=seeded.google.gmail_api_url + "batch/gmail/v1",
    )
    ids = [seeded.ids.message["alice_note"], seeded.ids.message["read_old"], "ffffffffffffffff"]
    for number, gmail_id in enumerate(ids):
        batch.add(messages.get(userId="me", id=gmail_id, format="metadata"), request_id=str(number))
    calls = len(seeded.google.calls)
    batch.execute()
    assert [c["path"] for c in seeded.google.calls[calls:] if not c.get("batched")] == ["/batch/gmail/v1"]
    assert answers["0"]["id"] == ids[0] and answers["1"]["id"] == ids[1] and "payload" in answers["0"]
    assert isinstance(answers["2"], HttpError) and answers["2"].status_code == 404


def test_attachments_of_the_seeded_pdf_docx_and_ics(seeded: Account) -> None:
    messages = seeded.gmail.users().messages()
    for name, filename in (
        ("order_receipt", mailbox_seed.RECEIPT_NAME),
        ("contract_docx", mailbox_seed.CONTRACT_NAME),
        ("offsite_invite", mailbox_seed.INVITE_NAME),
    ):
        full = messages.get(userId="me", id=seeded.ids.message[name]).execute()
        [part] = [p for p in full["payload"]["parts"] if p.get("filename") == filename]
        got = messages.attachments().get(userId="me", messageId=full["id"], id=part["body"]["attachmentId"]).execute()
        assert got["size"] == part["body"]["size"] and len(b64decode(got["data"])) == got["size"]
