"""Gmail mailboxes for `GoogleEmulator`: messages, threads, drafts, labels, search and faults.

`GmailMailbox(emulator)` registers Gmail API v1 methods on the emulator's router, with the
verbs, paths and scopes of googleapiclient's discovery document, so the real client works
against it unchanged. Resources are shaped as Gmail shapes them:

- ids are 16 hex digits (time-ordered, as Gmail's are); a thread's id is its first message's;
- `payload` is the MIME tree (partId "", "0", "0.1", ...); a leaf's `body.data` is the
  base64url of its transfer-decoded bytes in their own charset; parts with a filename carry
  `body.attachmentId` and `size` instead, fetched with `messages.attachments.get`;
- header values have RFC 2047 encoded words decoded; `snippet` is HTML-escaped, as Gmail's is;
- sending keeps the client's Message-ID (or adds one), labels the copy SENT, and joins
  `threadId` only when the Subject matches the thread's and In-Reply-To/References name one
  of its messages, which is what Gmail documents; otherwise it starts a new thread.

Search (`q`) follows Gmail's syntax: see `search()`. Words match whole words, case- and
accent-insensitively, as Gmail does. Dates in after:/before: are read as UTC.

Test hooks: `seed`, `add_message`, `sent`, `drafts`, `message`, `send_count` and
`fail_next` (Google's JSON error shape, a timeout or a connection reset, each before or
after the call took effect).
"""

from __future__ import annotations

import base64
import functools
import html
import itertools
import json
import re
import secrets
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses
from html.parser import HTMLParser
from typing import Any

from infra.local.emulators import mailbox_seed
from infra.local.emulators.base import Request, Response
from infra.local.emulators.google import GmailCaller, GmailHandler, GoogleEmulator, _api_error, gmail_method_spec

SYSTEM_LABELS = (
    "CHAT",
    "SENT",
    "INBOX",
    "IMPORTANT",
    "TRASH",
    "DRAFT",
    "SPAM",
    "CATEGORY_FORUMS",
    "CATEGORY_UPDATES",
    "CATEGORY_PERSONAL",
    "CATEGORY_PROMOTIONS",
    "CATEGORY_SOCIAL",
    "STARRED",
    "UNREAD",
)
MAX_RESULTS = 500  # Gmail caps list pages here
SNIPPET_LENGTH = 200
_HIDDEN_LABELS = {"CHAT", "SPAM", "TRASH", "DRAFT"}
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_REASON_MESSAGES = {
    "rateLimitExceeded": "Rate Limit Exceeded",
    "userRateLimitExceeded": "User Rate Limit Exceeded",
    "dailyLimitExceeded": "Daily Limit Exceeded",
    "quotaExceeded": "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'.",
    "backendError": "Backend Error",
    "internalError": "Internal error encountered.",
}
_DEFAULT_REASON = {403: "userRateLimitExceeded", 429: "rateLimitExceeded", 500: "backendError", 503: "backendError"}
_NOT_FOUND = "Requested entity was not found."
_RAW_REQUIRED = "'raw' RFC822 payload message string or uploading message via /upload/* URL required"
_ID_RE = re.compile(r"^[0-9a-f]{1,16}$")
_REPLY_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|sv|wg)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


@dataclass
class StoredMessage:
    """One message in a mailbox: its exact RFC 822 bytes and Gmail's metadata."""

    id: str
    thread_id: str
    raw: bytes
    label_ids: list[str]
    internal_date: int  # epoch ms
    history_id: int

    @functools.cached_property
    def email(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.raw)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def header(self, name: str) -> str | None:
        """A header's value with encoded words decoded, or None."""
        raw = self.email.get(name)
        return None if raw is None else str(raw)

    @property
    def message_id(self) -> str | None:
        value = self.email.get("Message-ID")
        return None if value is None else str(value).strip()

    @property
    def subject(self) -> str:
        return self.header("Subject") or ""

    @functools.cached_property
    def snippet(self) -> str:
        return _snippet(self)

    @functools.cached_property
    def index(self) -> _Index:
        return _Index.of(self)


@dataclass
class StoredDraft:
    id: str
    message: StoredMessage


@dataclass(frozen=True)
class SeededIds:
    """Ids of seeded messages and threads by their names in `mailbox_seed`."""

    message: dict[str, str]
    thread: dict[str, str]


@dataclass
class _Account:
    email: str
    messages: dict[str, StoredMessage] = field(default_factory=dict)
    drafts: dict[str, StoredDraft] = field(default_factory=dict)
    sent: list[StoredMessage] = field(default_factory=list)
    history_id: int = 1000
    user_labels: dict[str, str] = field(default_factory=dict)  # label id ("Label_1") -> name

    def bump(self) -> int:
        self.history_id += 1
        return self.history_id

    def thread(self, thread_id: str) -> list[StoredMessage]:
        found = [m for m in self.messages.values() if m.thread_id == thread_id]
        return sorted(found, key=lambda m: (m.internal_date, m.id))


@dataclass
class _Fault:
    status: int
    reason: str
    after: bool
    # "http": Google's error JSON; "timeout": no answer until after the client gave up;
    # "reset": the connection is reset without an answer.
    kind: str = "http"


class GmailMailbox:
    """Per-account mailboxes served through GoogleEmulator's Gmail router."""

    def __init__(self, emulator: GoogleEmulator):
        self.emulator = emulator
        self.send_count = 0
        # Gmail insists the Subject and In-Reply-To/References fit the thread a send names.
        self.strict_threading = True
        # Gmail's API is believed to keep a client's Message-ID, but its SMTP side is known
        # to replace it; with this on, sends get a Gmail-made one (the original moves to
        # X-Google-Original-Message-ID), so exactly-once code cannot rely on it alone.
        self.rewrite_message_ids = False
        # How long a "timeout" fault holds its answer (above the client's timeout).
        self.stall_seconds = 2.0
        self._lock = threading.RLock()
        self._accounts: dict[str, _Account] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._counter = itertools.count(secrets.randbelow(1 << 12))
        self._methods: set[str] = set()
        handlers: dict[str, GmailHandler] = {
            "gmail.users.messages.list": self._list_messages,
            "gmail.users.messages.get": self._get_message,
            "gmail.users.messages.attachments.get": self._get_attachment,
            "gmail.users.messages.send": self._send_message,
            "gmail.users.threads.list": self._list_threads,
            "gmail.users.threads.get": self._get_thread,
            "gmail.users.drafts.create": self._create_draft,
            "gmail.users.drafts.list": self._list_drafts,
            "gmail.users.drafts.get": self._get_draft,
            "gmail.users.drafts.update": self._update_draft,
            "gmail.users.drafts.delete": self._delete_draft,
            "gmail.users.drafts.send": self._send_draft,
            "gmail.users.labels.list": self._list_labels,
            "gmail.users.labels.create": self._create_label,
            "gmail.users.messages.modify": self._modify_message,
            "gmail.users.messages.batchModify": self._batch_modify,
        }
        for method_id, handler in handlers.items():
            wrapped = self._faulty(method_id, handler)
            emulator.add_gmail_method(method_id, wrapped)
            self._methods.add(method_id)
            if method_id.endswith(("messages.send", "drafts.create", "drafts.update", "drafts.send")):
                # googleapiclient posts media_body= uploads here (uploadType=media or multipart).
                verb, path, scopes = gmail_method_spec(method_id)
                emulator.add_gmail_route(verb, f"upload/{path}", wrapped, scopes, method_id)
        # getProfile is the emulator's own handler; it asks this hook for the counts.
        emulator.mailbox_stats = self.mailbox_stats  # type: ignore[method-assign]

    # -- test helpers ---------------------------------------------------------------------
    def seed(self, account_email: str | None = None) -> SeededIds:
        """Load `mailbox_seed`'s messages into an account (once per account)."""
        account_email = account_email or self.emulator.account_email
        messages: dict[str, str] = {}
        threads: dict[str, str] = {}
        for seed in mailbox_seed.seed_messages(account_email, now=self.emulator.clock()):
            message_id = self.add_message(
                account_email,
                seed.raw,
                label_ids=seed.label_ids,
                thread_id=threads.get(seed.thread),
                internal_date=seed.internal_date,
            )
            messages[seed.name] = message_id
            threads.setdefault(seed.thread, message_id)
        return SeededIds(messages, threads)

    def labels(self, account_email: str) -> dict[str, str]:
        """The account's created labels: id -> name."""
        with self._lock:
            return dict(self._account(account_email).user_labels)

    def seed_drafts(self, account_email: str | None = None) -> dict[str, str]:
        """Add `mailbox_seed`'s drafts (written in Gmail, not by Mailroom): name -> draft id."""
        account_email = account_email or self.emulator.account_email
        return {
            "offsite_draft": self.add_draft(account_email, mailbox_seed.offsite_draft(account_email)),
            "lunch_draft": self.add_draft(account_email, mailbox_seed.lunch_draft(account_email)),
        }

    def add_message(
        self,
        account_email: str,
        raw: bytes,
        *,
        label_ids: Iterable[str] = ("INBOX", "UNREAD"),
        thread_id: str | None = None,
        internal_date: int | None = None,
    ) -> str:
        """Deliver `raw` into a mailbox as if received; threads by References when no thread_id is given."""
        when = internal_date if internal_date is not None else self._now_ms()
        with self._lock:
            account = self._account(account_email)
            message = self._store(account, raw, list(label_ids), when, thread_id)
            if thread_id is None:
                message.thread_id = self._incoming_thread(account, message) or message.id
            return message.id

    def add_draft(self, account_email: str, raw: bytes, thread_id: str | None = None) -> str:
        """Store `raw` as a draft (as if written in Gmail); returns the draft id."""
        with self._lock:
            account = self._account(account_email)
            draft = StoredDraft(f"r{secrets.randbelow(10**19):019d}", self._draft_message(account, raw, thread_id))
            account.drafts[draft.id] = draft
            return draft.id

    def set_draft(self, account_email: str, draft_id: str, raw: bytes) -> None:
        """Change a draft's content (as if edited in Gmail): same draft id, a new message id."""
        with self._lock:
            account = self._account(account_email)
            draft = account.drafts[draft_id]
            thread_id = draft.message.thread_id if draft.message.thread_id != draft.message.id else None
            account.messages.pop(draft.message.id, None)
            draft.message = self._draft_message(account, raw, thread_id)

    def delete_draft(self, account_email: str, draft_id: str) -> None:
        """Delete a draft (as if deleted in Gmail)."""
        with self._lock:
            account = self._account(account_email)
            draft = account.drafts.pop(draft_id)
            account.messages.pop(draft.message.id, None)

    def sent(self, account_email: str) -> list[StoredMessage]:
        """Messages sent through messages.send or drafts.send, oldest first."""
        with self._lock:
            return list(self._account(account_email).sent)

    def drafts(self, account_email: str) -> list[StoredDraft]:
        with self._lock:
            return list(self._account(account_email).drafts.values())

    def message(self, account_email: str, message_id: str) -> StoredMessage:
        with self._lock:
            return self._account(account_email).messages[message_id]

    def fail_next(
        self,
        method_id: str,
        status: int = 503,
        times: int = 1,
        reason: str | None = None,
        *,
        after: bool = False,
        kind: str = "http",
    ) -> None:
        """Answer the next `times` calls of `method_id` with Google's error JSON.

        `reason` defaults by status (429 rateLimitExceeded, 403 userRateLimitExceeded, 5xx
        backendError). With `after=True` the call takes effect first and only its answer is
        lost, as when a send succeeds but the connection drops.

        `kind="timeout"` holds the answer for `stall_seconds` (set it above the client's
        timeout); `kind="reset"` resets the connection without answering; `kind="hang_up"`
        closes it cleanly without answering. Either way,
        with `after=True` the call has taken effect, otherwise it has not.
        """
        if kind not in ("http", "timeout", "reset", "hang_up"):
            raise ValueError(f"not a fault kind: {kind}")
        if not method_id.startswith("gmail."):
            method_id = f"gmail.users.{method_id}"
        if method_id not in self._methods:
            raise ValueError(f"not a mailbox method: {method_id}")
        fault = _Fault(status, reason or _DEFAULT_REASON.get(status, "backendError"), after, kind)
        with self._lock:
            self._faults.setdefault(method_id, deque()).extend(fault for _ in range(times))

    def clear_faults(self) -> None:
        """Forget the faults not yet taken (a test whose call count varies by fault kind)."""
        with self._lock:
            self._faults.clear()

    def mailbox_stats(self, account_email: str) -> tuple[int, int, str]:
        """(messagesTotal, threadsTotal, historyId) for getProfile."""
        with self._lock:
            account = self._account(account_email)
            threads = {m.thread_id for m in account.messages.values()}
            return len(account.messages), len(threads), str(account.history_id)

    def search(self, account_email: str, q: str, *, include_spam_trash: bool = False) -> list[StoredMessage]:
        """Messages matching Gmail query `q`, newest first.

        Supported: from: to: cc: bcc: subject: filename: deliveredto: list: (whole words;
        from:me), is:unread|read|starred|important, in:inbox|sent|drafts|spam|trash|anywhere,
        label:, category:, has:attachment|userlabels|nouserlabels, newer_than:/older_than:
        (Nd, Nm, Ny), after:/before:/newer:/older: (YYYY/MM/DD or epoch seconds),
        larger:/smaller: (10K, 2M), rfc822msgid: (exact), "quoted phrases", plain words,
        OR and {a b} (binding tighter than AND, as in Gmail), AND, - negation, (grouping),
        and op:(a b) / op:"a b" forms. Unknown operators are searched as text.
        """
        with self._lock:
            messages = list(self._account(account_email).messages.values())
        return _search(messages, q, (), include_spam_trash, account_email, self.emulator.clock())

    # -- plumbing -------------------------------------------------------------------------
    def _account(self, account_email: str) -> _Account:
        key = account_email.lower()
        with self._lock:
            if key not in self._accounts:
                self._accounts[key] = _Account(account_email)
            return self._accounts[key]

    def _now_ms(self) -> int:
        return int(self.emulator.clock() * 1000)

    def _new_id(self, when_ms: int) -> str:
        # Gmail ids are hex with the time in the high bits, so they sort roughly by date.
        return f"{(when_ms << 20) | (next(self._counter) & 0xFFFFF):016x}"[-16:]

    def _store(
        self, account: _Account, raw: bytes, label_ids: list[str], when_ms: int, thread_id: str | None
    ) -> StoredMessage:
        message_id = self._new_id(when_ms)
        while message_id in account.messages:
            message_id = self._new_id(when_ms)
        labels = list(dict.fromkeys(label_ids))
        message = StoredMessage(message_id, thread_id or message_id, raw, labels, when_ms, account.bump())
        account.messages[message_id] = message
        return message

    @staticmethod
    def _incoming_thread(account: _Account, message: StoredMessage) -> str | None:
        """Gmail threads received mail by References/In-Reply-To and a matching subject."""
        refs = set(_message_ids(message.header("References")) + _message_ids(message.header("In-Reply-To")))
        subject = _base_subject(message.subject)
        for other in sorted(account.messages.values(), key=lambda m: m.internal_date, reverse=True):
            if other is not message and other.message_id in refs and _base_subject(other.subject) == subject:
                return other.thread_id
        return None

    def _reply_thread(self, account: _Account, raw_message: StoredMessage, thread_id: str | None) -> str | None:
        """The thread an outgoing message joins: `thread_id` if the headers fit it, else a new one."""
        if not thread_id:
            return None
        thread = account.thread(thread_id)
        if not self.strict_threading:
            return thread_id
        refs = set(_message_ids(raw_message.header("References")) + _message_ids(raw_message.header("In-Reply-To")))
        subject_fits = _base_subject(raw_message.subject) == _base_subject(thread[0].subject)
        refs_fit = any(m.message_id in refs for m in thread)
        return thread_id if subject_fits and refs_fit else None

    def _faulty(self, method_id: str, handler: GmailHandler) -> GmailHandler:
        def serve(request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
            with self._lock:
                queue = self._faults.get(method_id)
                fault = queue.popleft() if queue else None
            if fault is not None and not fault.after:
                return self._transport_fault(fault)
            response = handler(request, caller, params)
            return self._transport_fault(fault) if fault is not None else response

        return serve

    def _transport_fault(self, fault: _Fault) -> Response:
        if fault.kind == "timeout":
            time.sleep(self.stall_seconds)  # the client has given up by now; this answer goes nowhere
        response = _fault_response(fault)
        response.reset = fault.kind == "reset"
        response.hang_up = fault.kind == "hang_up"
        return response

    # -- messages -------------------------------------------------------------------------
    def _list_messages(self, request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        page = _Paging.of(request)
        if isinstance(page, Response):
            return page
        with self._lock:
            messages = list(self._account(caller.account_email).messages.values())
        found = _search(
            messages,
            request.arg("q") or "",
            request.query.get("labelIds", []),
            _flag(request.arg("includeSpamTrash")),
            caller.account_email,
            self.emulator.clock(),
        )
        return page.answer("messages", [{"id": m.id, "threadId": m.thread_id} for m in found])

    def _get_message(self, request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        fmt = request.arg("format") or "full"
        if fmt not in ("full", "metadata", "minimal", "raw"):
            return _bad_request(f"Invalid value at 'format' ({fmt})")
        message = self._find(caller, params["id"])
        if isinstance(message, Response):
            return message
        return Response(200, _message_json(message, fmt, request.query.get("metadataHeaders", [])))

    def _get_attachment(self, request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        message = self._find(caller, params["messageId"])
        if isinstance(message, Response):
            return message
        for part_id, part in _walk(message.email):
            if _is_attachment(part) and _attachment_id(message.id, part_id) == params["id"]:
                data = _part_bytes(part)
                return Response(200, {"size": len(data), "data": _b64(data)})
        return _api_error(400, "INVALID_ARGUMENT", "Invalid attachment token", "invalidArgument")

    def _send_message(self, request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        body = _message_body(request)
        if isinstance(body, Response):
            return body
        raw, thread_id = body
        with self._lock:
            account = self._account(caller.account_email)
            problem = self._check_thread(account, thread_id)
            if problem is not None:
                return problem
            sent = self._deliver(account, raw, thread_id)
            if isinstance(sent, Response):
                return sent
        return Response(200, {"id": sent.id, "threadId": sent.thread_id, "labelIds": sent.label_ids})

    def _deliver(
        self, account: _Account, raw: bytes, thread_id: str | None, reuse_id: str | None = None
    ) -> StoredMessage | Response:
        """Store an outgoing message as SENT; a Response if Gmail would refuse it."""
        parsed = _probe(raw)
        recipients = [addr for _, addr in getaddresses(_all(parsed, "To", "Cc", "Bcc")) if "@" in addr]
        if not recipients:
            return _bad_request("Recipient address required")
        raw = _complete_headers(raw, parsed, account.email, self.emulator.clock())
        if self.rewrite_message_ids:
            raw = _replace_message_id(raw)
        labels = ["SENT"]
        if account.email.lower() in (r.lower() for r in recipients):
            labels += ["INBOX", "UNREAD"]  # a message to oneself also arrives
        when = self._now_ms()
        thread = self._reply_thread(account, parsed, thread_id)
        if reuse_id is not None:
            account.messages.pop(reuse_id, None)
            message = StoredMessage(reuse_id, thread or reuse_id, raw, labels, when, account.bump())
            account.messages[reuse_id] = message
        else:
            message = self._store(account, raw, labels, when, thread)
        account.sent.append(message)
        self.send_count += 1
        return message

    def _check_thread(self, account: _Account, thread_id: str | None) -> Response | None:
        if thread_id is None:
            return None
        if not _ID_RE.match(thread_id):
            return _bad_request("Invalid thread_id value")
        if not account.thread(thread_id):
            return _api_error(404, "NOT_FOUND", _NOT_FOUND, "notFound")
        return None

    def _find(self, caller: GmailCaller, message_id: str) -> StoredMessage | Response:
        if not _ID_RE.match(message_id):
            return _bad_request("Invalid id value")
        with self._lock:
            message = self._account(caller.account_email).messages.get(message_id)
        return message or _api_error(404, "NOT_FOUND", _NOT_FOUND, "notFound")

    # -- threads --------------------------------------------------------------------------
    def _list_threads(self, request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        page = _Paging.of(request)
        if isinstance(page, Response):
            return page
        with self._lock:
            account = self._account(caller.account_email)
            messages = list(account.messages.values())
            found = _search(
                messages,
                request.arg("q") or "",
                request.query.get("labelIds", []),
                _flag(request.arg("includeSpamTrash")),
                caller.account_email,
                self.emulator.clock(),
            )
            # A thread matches when any of its messages does; threads sort by their newest message.
            thread_ids = list(dict.fromkeys(m.thread_id for m in found))
            latest = {t: account.thread(t)[-1] for t in thread_ids}
        thread_ids.sort(key=lambda t: (latest[t].internal_date, latest[t].id), reverse=True)
        items = [{"id": t, "snippet": latest[t].snippet, "historyId": str(latest[t].history_id)} for t in thread_ids]
        return page.answer("threads", items)

    def _get_thread(self, request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        fmt = request.arg("format") or "full"
        if fmt not in ("full", "metadata", "minimal"):
            return _bad_request(f"Invalid value at 'format' ({fmt})")
        if not _ID_RE.match(params["id"]):
            return _bad_request("Invalid id value")
        with self._lock:
            messages = self._account(caller.account_email).thread(params["id"])
        if not messages:
            return _api_error(404, "NOT_FOUND", _NOT_FOUND, "notFound")
        wanted = request.query.get("metadataHeaders", [])
        return Response(
            200,
            {
                "id": params["id"],
                "historyId": str(max(m.history_id for m in messages)),
                "messages": [_message_json(m, fmt, wanted) for m in messages],
            },
        )

    # -- drafts ---------------------------------------------------------------------------
    def _create_draft(self, request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        body = _message_body(request, draft=True)
        if isinstance(body, Response):
            return body
        raw, thread_id = body
        with self._lock:
            account = self._account(caller.account_email)
            problem = self._check_thread(account, thread_id)
            if problem is not None:
                return problem
            draft = StoredDraft(f"r{secrets.randbelow(10**19):019d}", self._draft_message(account, raw, thread_id))
            account.drafts[draft.id] = draft
        return Response(200, _draft_json(draft))

    def _draft_message(self, account: _Account, raw: bytes, thread_id: str | None) -> StoredMessage:
        thread = self._reply_thread(account, _probe(raw), thread_id)
        return self._store(account, raw, ["DRAFT"], self._now_ms(), thread)

    def _list_drafts(self, request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        page = _Paging.of(request)
        if isinstance(page, Response):
            return page
        with self._lock:
            drafts = list(self._account(caller.account_email).drafts.values())
        by_message = {d.message.id: d for d in drafts}
        found = _search(
            [d.message for d in drafts],
            request.arg("q") or "",
            (),
            _flag(request.arg("includeSpamTrash")),
            caller.account_email,
            self.emulator.clock(),
        )
        items = [
            {"id": by_message[m.id].id, "message": {"id": m.id, "threadId": m.thread_id}}
            for m in found
            if m.id in by_message
        ]
        return page.answer("drafts", items)

    def _get_draft(self, request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        fmt = request.arg("format") or "full"
        if fmt not in ("full", "metadata", "minimal", "raw"):
            return _bad_request(f"Invalid value at 'format' ({fmt})")
        with self._lock:
            draft = self._account(caller.account_email).drafts.get(params["id"])
        if draft is None:
            return _api_error(404, "NOT_FOUND", _NOT_FOUND, "notFound")
        return Response(200, {"id": draft.id, "message": _message_json(draft.message, fmt, [])})

    def _update_draft(self, request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        body = _message_body(request, draft=True)
        if isinstance(body, Response):
            return body
        raw, thread_id = body
        with self._lock:
            account = self._account(caller.account_email)
            draft = account.drafts.get(params["id"])
            if draft is None:
                return _api_error(404, "NOT_FOUND", _NOT_FOUND, "notFound")
            problem = self._check_thread(account, thread_id)
            if problem is not None:
                return problem
            if thread_id is not None and not [m for m in account.thread(thread_id) if m.id != draft.message.id]:
                thread_id = None  # the draft's own one-message thread goes with its message
            # Gmail replaces the draft's message: same draft id, a new message id.
            account.messages.pop(draft.message.id, None)
            draft.message = self._draft_message(account, raw, thread_id)
        return Response(200, _draft_json(draft))

    def _delete_draft(self, request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        with self._lock:
            account = self._account(caller.account_email)
            draft = account.drafts.pop(params["id"], None)
            if draft is None:
                return _api_error(404, "NOT_FOUND", _NOT_FOUND, "notFound")
            account.messages.pop(draft.message.id, None)
            account.bump()
        return Response(204, b"")

    def _send_draft(self, request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        try:
            envelope = _envelope(request)
        except ValueError as exc:
            return _bad_request(str(exc))
        draft_id = envelope.get("id")
        if not isinstance(draft_id, str) or not draft_id:
            return _bad_request("Invalid draft")
        with self._lock:
            account = self._account(caller.account_email)
            draft = account.drafts.get(draft_id)
            if draft is None:
                return _api_error(404, "NOT_FOUND", _NOT_FOUND, "notFound")
            raw, thread_id = draft.message.raw, draft.message.thread_id
            if envelope.get("raw"):  # drafts.send may replace the draft's content in the same call
                raw, thread_id = envelope["raw"], envelope.get("threadId") or thread_id
            sent = self._deliver(account, raw, thread_id, reuse_id=draft.message.id)
            if isinstance(sent, Response):
                return sent
            del account.drafts[draft_id]
        return Response(200, {"id": sent.id, "threadId": sent.thread_id, "labelIds": sent.label_ids})

    # -- labels ---------------------------------------------------------------------------
    def _list_labels(self, request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        labels: list[dict[str, Any]] = []
        for label in SYSTEM_LABELS:
            entry: dict[str, Any] = {"id": label, "name": label, "type": "system"}
            if label in _HIDDEN_LABELS:
                entry.update(messageListVisibility="hide", labelListVisibility="labelHide")
            labels.append(entry)
        with self._lock:
            account = self._account(caller.account_email)
            used = {label for m in account.messages.values() for label in m.label_ids}
            created = dict(account.user_labels)
        for label_id, name in created.items():
            labels.append(_user_label(label_id, name))
        for label in sorted(used - set(SYSTEM_LABELS) - set(created)):
            labels.append({"id": label, "name": label, "type": "user"})
        return Response(200, {"labels": labels})

    def _create_label(self, request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        try:
            body = _json_object(request.body)
        except ValueError as exc:
            return _bad_request(str(exc))
        name = str(body.get("name") or "").strip()
        if not name:
            return _bad_request("Invalid label name")
        with self._lock:
            account = self._account(caller.account_email)
            taken = {n.lower() for n in account.user_labels.values()} | {s.lower() for s in SYSTEM_LABELS}
            if name.lower() in taken:
                return _api_error(409, "ALREADY_EXISTS", "Label name exists or conflicts", "failedPrecondition")
            label_id = f"Label_{len(account.user_labels) + 1}"
            account.user_labels[label_id] = name
        return Response(200, _user_label(label_id, name))

    def _modify_message(self, request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        try:
            body = _json_object(request.body)
        except ValueError as exc:
            return _bad_request(str(exc))
        message = self._find(caller, params["id"])
        if isinstance(message, Response):
            return message
        problem = self._relabel(caller.account_email, [message.id], body)
        if problem is not None:
            return problem
        return Response(200, {"id": message.id, "threadId": message.thread_id, "labelIds": message.label_ids})

    def _batch_modify(self, request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        try:
            body = _json_object(request.body)
        except ValueError as exc:
            return _bad_request(str(exc))
        ids = body.get("ids")
        if not isinstance(ids, list) or not ids:
            return _bad_request("ids must be specified")
        if len(ids) > 1000:
            return _bad_request("Too many ids: at most 1000")
        problem = self._relabel(caller.account_email, [str(i) for i in ids], body)
        return problem if problem is not None else Response(204, b"")

    def _relabel(self, account_email: str, ids: list[str], body: dict[str, Any]) -> Response | None:
        """Add then remove label ids on messages, as messages.modify/batchModify do; ids of
        messages that do not exist are skipped (Gmail's batchModify ignores them too)."""
        add = [str(i) for i in body.get("addLabelIds") or []]
        remove = [str(i) for i in body.get("removeLabelIds") or []]
        with self._lock:
            account = self._account(account_email)
            known = set(SYSTEM_LABELS) | set(account.user_labels)
            known |= {label for m in account.messages.values() for label in m.label_ids}
            for label in add + remove:
                if label not in known or (label in ("DRAFT", "SENT") and label in add):
                    return _bad_request(f"Invalid label: {label}")
            for message_id in ids:
                message = account.messages.get(message_id)
                if message is None or not _ID_RE.match(message_id):
                    continue
                labels = [x for x in message.label_ids if x not in remove]
                labels += [x for x in add if x not in labels and x not in remove]
                message.label_ids = labels
            account.bump()
        return None


# -- request parsing ---------------------------------------------------------------------
@dataclass(frozen=True)
class _Paging:
    offset: int
    size: int

    @classmethod
    def of(cls, request: Request) -> _Paging | Response:
        try:
            size = int(request.arg("maxResults") or 100)
        except ValueError:
            return _bad_request("Invalid value for maxResults")
        token = request.arg("pageToken")
        offset = 0
        if token:
            if not token.isdigit():
                return _bad_request("Invalid pageToken")
            offset = int(token)
        return cls(offset, max(1, min(size, MAX_RESULTS)))

    def answer(self, key: str, items: list[dict[str, Any]]) -> Response:
        body: dict[str, Any] = {}
        page = items[self.offset : self.offset + self.size]
        if page:  # Gmail leaves the list out when it is empty
            body[key] = page
        if self.offset + self.size < len(items):
            body["nextPageToken"] = f"{self.offset + self.size:020d}"
        body["resultSizeEstimate"] = len(items)
        return Response(200, body)


def _user_label(label_id: str, name: str) -> dict[str, Any]:
    return {
        "id": label_id,
        "name": name,
        "type": "user",
        "messageListVisibility": "show",
        "labelListVisibility": "labelShow",
    }


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _bad_request(message: str) -> Response:
    return _api_error(400, "INVALID_ARGUMENT", message, "invalidArgument")


def _fault_response(fault: _Fault) -> Response:
    message = _REASON_MESSAGES.get(fault.reason, fault.reason)
    return _api_error(fault.status, _STATUS.get(fault.status, "UNKNOWN"), message, fault.reason)


def _envelope(request: Request) -> dict[str, Any]:
    """A send/draft body as {"raw": bytes | None, "threadId", "id"}, from JSON or an /upload/ request."""
    content_type = request.headers.get("content-type", "")
    upload = request.path.startswith("/upload/")
    if upload and request.arg("uploadType") == "media":
        return {"raw": request.body}
    if upload and content_type.startswith("multipart/related"):
        metadata, media = _split_related(request.body, content_type)
        envelope = _json_object(metadata)
        return _flatten(envelope) | {"raw": media}
    return _flatten(_json_object(request.body))


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data or b"{}")
    except ValueError:
        raise ValueError("Invalid JSON payload received.") from None
    if not isinstance(value, dict):
        raise ValueError("Invalid JSON payload received.")
    return value


def _flatten(body: dict[str, Any]) -> dict[str, Any]:
    # messages.send takes a Message; drafts take {"id", "message": Message}.
    message: dict[str, Any] = body["message"] if isinstance(body.get("message"), dict) else body
    raw = message.get("raw")
    if raw is not None and not isinstance(raw, str):
        raise ValueError("Invalid value at 'message.raw' (TYPE_BYTES)")
    decoded = _unb64(raw) if isinstance(raw, str) else None
    return {"raw": decoded, "threadId": message.get("threadId"), "id": body.get("id")}


def _message_body(request: Request, draft: bool = False) -> tuple[bytes, str | None] | Response:
    try:
        envelope = _envelope(request)
    except ValueError as exc:
        return _bad_request(str(exc))
    raw = envelope.get("raw")
    if not raw:
        return _bad_request("Invalid draft" if draft and raw is None else _RAW_REQUIRED)
    thread_id = envelope.get("threadId")
    return raw, thread_id if isinstance(thread_id, str) and thread_id else None


def _split_related(body: bytes, content_type: str) -> tuple[bytes, bytes]:
    """The JSON metadata and the media of a multipart/related upload, byte for byte."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise ValueError("multipart upload without a boundary")
    delimiter = b"--" + match.group(1).encode()
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n").removeprefix(b"\n")
        head_end = min((i for i in (chunk.find(b"\r\n\r\n"), chunk.find(b"\n\n")) if i >= 0), default=-1)
        if head_end < 0:
            raise ValueError("malformed multipart upload")
        content = chunk[head_end:].removeprefix(b"\r\n\r\n").removeprefix(b"\n\n")
        # The line break before the next delimiter belongs to the delimiter.
        parts.append(content.removesuffix(b"\r\n") if content.endswith(b"\r\n") else content.removesuffix(b"\n"))
    if len(parts) != 2:
        raise ValueError("multipart upload needs metadata and media")
    return parts[0], parts[1]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    # Gmail takes base64url with or without padding (and tolerates the standard alphabet).
    cleaned = re.sub(r"\s+", "", text).replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except ValueError:
        raise ValueError("Invalid value at 'message.raw' (TYPE_BYTES), Base64 decoding failed") from None


def _all(message: StoredMessage, *names: str) -> list[str]:
    return [str(value) for name in names for value in message.email.get_all(name, [])]


def _complete_headers(raw: bytes, parsed: StoredMessage, account_email: str, now: float) -> bytes:
    """Add the From, Date and Message-ID Gmail fills in when a sent message lacks them."""
    missing = []
    if parsed.email.get("From") is None:
        missing.append(f"From: {account_email}")
    if parsed.email.get("Date") is None:
        missing.append(f"Date: {format_datetime(datetime.fromtimestamp(now, UTC))}")
    if not parsed.message_id:
        missing.append(f"Message-ID: <CA+{secrets.token_urlsafe(24)}@mail.gmail.com>")
    if not missing:
        return raw
    newline = b"\r\n" if raw.split(b"\n", 1)[0].endswith(b"\r") else b"\n"
    return newline.join(line.encode() for line in missing) + newline + raw


# -- resource shapes ---------------------------------------------------------------------
def _message_json(message: StoredMessage, fmt: str, metadata_headers: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"id": message.id, "threadId": message.thread_id}
    if message.label_ids:
        body["labelIds"] = list(message.label_ids)
    body["snippet"] = message.snippet
    if fmt == "full":
        body["payload"] = _part_json(message.email, "", message.id)
    elif fmt == "metadata":
        wanted = {h.lower() for h in metadata_headers}
        headers = [h for h in _headers(message.email) if not wanted or h["name"].lower() in wanted]
        body["payload"] = {"mimeType": message.email.get_content_type(), "headers": headers}
    elif fmt == "raw":
        body["raw"] = _b64(message.raw)
    body["sizeEstimate"] = len(message.raw)
    body["historyId"] = str(message.history_id)
    body["internalDate"] = str(message.internal_date)
    return body


def _draft_json(draft: StoredDraft) -> dict[str, Any]:
    message = draft.message
    return {"id": draft.id, "message": {"id": message.id, "threadId": message.thread_id, "labelIds": ["DRAFT"]}}


def _part_json(part: Message, part_id: str, message_id: str) -> dict[str, Any]:
    node: dict[str, Any] = {
        "partId": part_id,
        "mimeType": part.get_content_type(),
        "filename": part.get_filename() or "",
        "headers": _headers(part),
    }
    if part.get_content_maintype() == "multipart":
        node["body"] = {"size": 0}
        children = part.get_payload()
        if isinstance(children, list):
            prefix = f"{part_id}." if part_id else ""
            node["parts"] = [_part_json(child, f"{prefix}{i}", message_id) for i, child in enumerate(children)]
        return node
    data = _part_bytes(part)
    if _is_attachment(part):
        node["body"] = {"attachmentId": _attachment_id(message_id, part_id), "size": len(data)}
    elif data:
        node["body"] = {"size": len(data), "data": _b64(data)}
    else:
        node["body"] = {"size": 0}
    return node


def _headers(part: Message) -> list[dict[str, str]]:
    return [{"name": name, "value": _decode_header(value)} for name, value in part.raw_items()]


def _decode_header(value: Any) -> str:
    text = re.sub(r"\r?\n(?=[ \t])", "", str(value)).strip()
    if "=?" not in text:
        return text
    try:
        return str(make_header(decode_header(text)))
    except (LookupError, ValueError, UnicodeDecodeError):
        return text


def _walk(part: Message, part_id: str = "") -> Iterable[tuple[str, Message]]:
    yield part_id, part
    if part.get_content_maintype() == "multipart":
        children = part.get_payload()
        if isinstance(children, list):
            prefix = f"{part_id}." if part_id else ""
            for i, child in enumerate(children):
                yield from _walk(child, f"{prefix}{i}")


def _is_attachment(part: Message) -> bool:
    if part.get_content_maintype() == "multipart":
        return False
    return bool(part.get_filename()) or part.get_content_disposition() == "attachment"


def _attachment_id(message_id: str, part_id: str) -> str:
    # Opaque and long like Gmail's; stable so a test can fetch what a get returned.
    digest = base64.urlsafe_b64encode(f"{message_id}:{part_id}".encode()).decode().rstrip("=")
    return f"ANGjdJ{digest}"


def _part_bytes(part: Message) -> bytes:
    """The part's content after Content-Transfer-Encoding, in its own charset."""
    if part.get_content_maintype() == "message":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return inner[0].as_bytes(policy=policy.SMTP)
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _part_text(part: Message) -> str:
    data = _part_bytes(part)
    charset = part.get_content_charset() or "us-ascii"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _message_text(message: StoredMessage) -> str:
    """The readable text: the first text/plain part, else the first HTML part made text."""
    texts: dict[str, str] = {}
    for _, part in _walk(message.email):
        subtype = part.get_content_subtype()
        if part.get_content_maintype() == "text" and subtype in ("plain", "html") and not _is_attachment(part):
            texts.setdefault(subtype, _part_text(part))
    return texts.get("plain") or _html_text(texts.get("html", ""))


def _probe(raw: bytes) -> StoredMessage:
    """An unstored message, to read the headers of something about to be stored."""
    return StoredMessage("", "", raw, [], 0, 0)


def _snippet(message: StoredMessage) -> str:
    text = " ".join(_message_text(message).split())
    if len(text) > SNIPPET_LENGTH:
        text = text[:SNIPPET_LENGTH].rsplit(" ", 1)[0]
    # Gmail's snippets are HTML-escaped (&#39; for apostrophes).
    return html.escape(text, quote=True).replace("&#x27;", "&#39;")


class _HtmlText(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "title"})
    _BLOCK = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "table", "ul", "ol", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BLOCK:
            self.out.append("\n")
        elif tag in ("td", "th"):
            self.out.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self._BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(data)


def _html_text(markup: str) -> str:
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return "".join(parser.out)


# -- search ------------------------------------------------------------------------------
def _fold(text: str) -> str:
    """Casefolded, accents stripped: Gmail matches "reunion" to "Réunion"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _words(text: str) -> str:
    """Text as ' word word ' for whole-word and phrase matching by substring."""
    return " " + " ".join(re.findall(r"\w+", _fold(text))) + " "


def _message_ids(value: str | None) -> list[str]:
    return re.findall(r"<[^<>\s]+>", value or "")


def _base_subject(subject: str) -> str:
    return " ".join(_REPLY_PREFIX.sub("", subject).split()).casefold()


@dataclass(frozen=True)
class _Index:
    """What search looks at in one message, computed once."""

    fields: dict[str, str]
    filenames: tuple[str, ...]
    message_id: str
    size: int

    @classmethod
    def of(cls, message: StoredMessage) -> _Index:
        email = message.email
        filenames = tuple(part.get_filename() or "" for _, part in _walk(email) if _is_attachment(part))
        texts = [
            _part_text(p) for _, p in _walk(email) if p.get_content_type() == "text/plain" and not _is_attachment(p)
        ]
        texts += [
            _html_text(_part_text(p))
            for _, p in _walk(email)
            if p.get_content_type() == "text/html" and not _is_attachment(p)
        ]
        fields = {
            "from": _words(" ".join(_all(message, "From", "Sender"))),
            "to": _words(" ".join(_all(message, "To", "Cc", "Bcc"))),
            "cc": _words(" ".join(_all(message, "Cc"))),
            "bcc": _words(" ".join(_all(message, "Bcc"))),
            "subject": _words(message.subject),
            "deliveredto": _words(" ".join(_all(message, "Delivered-To", "To"))),
            "list": _words(" ".join(_all(message, "List-Id", "List-Post"))),
            "filename": _words(" ".join(filenames)),
            "body": _words("\n".join(texts)),
        }
        return cls(fields, filenames, (message.message_id or "").strip("<> "), len(message.raw))


@dataclass(frozen=True)
class _Term:
    op: str  # "" for free text
    value: str


@dataclass(frozen=True)
class _Not:
    node: _Node


@dataclass(frozen=True)
class _All:
    nodes: tuple[_Node, ...]


@dataclass(frozen=True)
class _Any:
    nodes: tuple[_Node, ...]


_Node = _Term | _Not | _All | _Any
_TEXT_OPS = frozenset({"from", "to", "cc", "bcc", "subject", "filename", "deliveredto", "list"})
_OPERATORS = _TEXT_OPS | {
    "is",
    "in",
    "label",
    "category",
    "has",
    "newer_than",
    "older_than",
    "after",
    "before",
    "newer",
    "older",
    "larger",
    "smaller",
    "size",
    "rfc822msgid",
}
_TOKEN_RE = re.compile(r'\s*(?:(?P<open>[({])|(?P<close>[)}])|(?P<quote>"[^"]*"?)|(?P<word>[^\s(){}"]+))')


@dataclass
class _Token:
    kind: str
    text: str
    start: int
    end: int


class _QueryParser:
    """Gmail's query grammar: terms AND-ed by default; OR and {..} bind tighter; - negates."""

    def __init__(self, query: str):
        self.tokens = [
            _Token(m.lastgroup or "", m.group(m.lastgroup or 0), m.start(m.lastgroup or 0), m.end())
            for m in _TOKEN_RE.finditer(query)
            if m.lastgroup
        ]
        self.pos = 0

    def parse(self) -> _Node:
        nodes = []
        while self.pos < len(self.tokens):
            if self._peek("close"):
                self.pos += 1  # a stray ')' is ignored, as Gmail does
                continue
            nodes.append(self._conjunction(""))
        return _All(tuple(nodes))

    def _peek(self, kind: str, text: str | None = None) -> bool:
        if self.pos >= len(self.tokens):
            return False
        token = self.tokens[self.pos]
        return token.kind == kind and (text is None or token.text == text)

    def _conjunction(self, op: str) -> _Node:
        nodes = []
        while self.pos < len(self.tokens) and not self._peek("close"):
            if self._peek("word", "AND"):
                self.pos += 1
                continue
            nodes.append(self._disjunction(op))
        return nodes[0] if len(nodes) == 1 else _All(tuple(nodes))

    def _disjunction(self, op: str) -> _Node:
        nodes = [self._unary(op)]
        while self._peek("word", "OR") and self.pos + 1 < len(self.tokens):
            self.pos += 1
            nodes.append(self._unary(op))
        return nodes[0] if len(nodes) == 1 else _Any(tuple(nodes))

    def _unary(self, op: str) -> _Node:
        token = self.tokens[self.pos]
        if token.kind == "word" and token.text.startswith("-") and token.text != "-":
            token.text, token.start = token.text[1:], token.start + 1
            return _Not(self._unary(op))
        if token.kind == "word" and token.text == "-" and self.pos + 1 < len(self.tokens):
            self.pos += 1
            return _Not(self._unary(op))
        return self._atom(op)

    def _atom(self, op: str) -> _Node:
        token = self.tokens[self.pos]
        self.pos += 1
        if token.kind == "open":
            return self._group(op, token.text)
        if token.kind == "quote":
            return _Term(op, token.text.strip('"'))
        if token.kind == "close":
            return _All(())
        name, colon, value = token.text.partition(":")
        if not colon or name.lower() not in _OPERATORS:
            return _Term(op, token.text)
        name = name.lower()
        if value:
            return _Term(name, value)
        if self.pos < len(self.tokens) and self.tokens[self.pos].start == token.end:
            following = self.tokens[self.pos]
            if following.kind == "quote":
                self.pos += 1
                return _Term(name, following.text.strip('"'))
            if following.kind == "open":
                self.pos += 1
                return self._group(name, following.text)
        return _Term(op, token.text)

    def _group(self, op: str, opener: str) -> _Node:
        if opener == "{":  # {a b} means a OR b
            nodes = []
            while self.pos < len(self.tokens) and not self._peek("close"):
                nodes.append(self._unary(op))
            self.pos += 1
            return _Any(tuple(nodes))
        node = self._conjunction(op)
        self.pos += 1
        return node


def _mentions(node: _Node, labels: set[str]) -> bool:
    if isinstance(node, _Term):
        return node.op in ("in", "label", "is") and node.value.lower() in labels
    if isinstance(node, _Not):
        return _mentions(node.node, labels)
    return any(_mentions(child, labels) for child in node.nodes)


def _search(
    messages: list[StoredMessage],
    query: str,
    label_ids: Iterable[str],
    include_spam_trash: bool,
    account_email: str,
    now: float,
) -> list[StoredMessage]:
    tree = _QueryParser(query).parse()
    required = set(label_ids)
    # Spam and trash stay out unless asked for, by the flag or by the query itself.
    hide = set() if include_spam_trash or _mentions(tree, {"spam", "trash", "anywhere"}) else {"SPAM", "TRASH"}
    matcher = _Matcher(account_email, now)
    found = [
        m for m in messages if required <= set(m.label_ids) and not hide & set(m.label_ids) and matcher.match(tree, m)
    ]
    return sorted(found, key=lambda m: (m.internal_date, m.id), reverse=True)


_LABEL_ALIASES = {
    "drafts": "DRAFT",
    "draft": "DRAFT",
    "chats": "CHAT",
    "primary": "CATEGORY_PERSONAL",
    "social": "CATEGORY_SOCIAL",
    "promotions": "CATEGORY_PROMOTIONS",
    "updates": "CATEGORY_UPDATES",
    "forums": "CATEGORY_FORUMS",
}
_UNITS = {"d": 86400, "m": 30 * 86400, "y": 365 * 86400, "h": 3600}


class _Matcher:
    def __init__(self, account_email: str, now: float):
        self.account_email = account_email
        self.now = now

    def match(self, node: _Node, message: StoredMessage) -> bool:
        if isinstance(node, _All):
            return all(self.match(child, message) for child in node.nodes)
        if isinstance(node, _Any):
            return any(self.match(child, message) for child in node.nodes)
        if isinstance(node, _Not):
            return not self.match(node.node, message)
        return self._term(node, message)

    def _term(self, term: _Term, message: StoredMessage) -> bool:
        index = message.index
        op, value = term.op, term.value
        labels = set(message.label_ids)
        if op == "":
            words = _words(value)
            return words != "  " and any(words in text for text in index.fields.values())
        if op in _TEXT_OPS:
            if value.lower() == "me" and op in ("from", "to", "cc", "bcc", "deliveredto"):
                value = self.account_email
            words = _words(value)
            return words != "  " and words in index.fields[op]
        if op in ("is", "in", "label", "category"):
            return self._label(op, value.lower(), labels)
        if op == "has":
            return self._has(value.lower(), message, labels)
        if op == "rfc822msgid":
            return bool(index.message_id) and value.strip("<> ") == index.message_id
        if op in ("larger", "smaller", "size"):
            size = _size(value)
            if size is None:
                return False
            return index.size > size if op in ("larger", "size") else index.size < size
        return self._date(op, value, message.internal_date / 1000)

    def _label(self, op: str, value: str, labels: set[str]) -> bool:
        if op == "in" and value == "anywhere":
            return True
        if op == "is" and value == "read":
            return "UNREAD" not in labels
        if op == "category":
            value = f"category_{'personal' if value == 'primary' else value}"
        wanted = _LABEL_ALIASES.get(value, value.upper())
        names = {label.upper(): label for label in labels}
        # label:my-label matches "My Label" and "my/label", as Gmail's label search does.
        normalized = {re.sub(r"[\s/_-]+", "-", name): label for name, label in names.items()}
        return wanted in names or re.sub(r"[\s/_-]+", "-", wanted) in normalized

    def _has(self, value: str, message: StoredMessage, labels: set[str]) -> bool:
        if value == "attachment":
            return bool(message.index.filenames)
        if value in ("userlabels", "nouserlabels"):
            has_user = bool(labels - set(SYSTEM_LABELS))
            return has_user if value == "userlabels" else not has_user
        if value in ("yellow-star", "star"):
            return "STARRED" in labels
        return False

    def _date(self, op: str, value: str, when: float) -> bool:
        if op in ("newer_than", "older_than"):
            match = re.fullmatch(r"(\d+)([dmyh])", value.lower())
            if match is None:
                return False
            cutoff = self.now - int(match.group(1)) * _UNITS[match.group(2)]
            return when > cutoff if op == "newer_than" else when < cutoff
        moment = _moment(value)
        if moment is None:
            return False
        return when >= moment if op in ("after", "newer") else when < moment


def _moment(value: str) -> float | None:
    if value.isdigit() and len(value) > 8:
        return float(value)  # epoch seconds
    for fmt in ("%Y/%m/%d", "%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return None


def _size(value: str) -> int | None:
    match = re.fullmatch(r"(\d+)([kmKM]?)", value)
    if match is None:
        return None
    factor = {"": 1, "k": 1024, "m": 1024 * 1024}[match.group(2).lower()]
    return int(match.group(1)) * factor


def _replace_message_id(raw: bytes) -> bytes:
    message = BytesParser(policy=policy.SMTP).parsebytes(raw)
    original = message["Message-ID"]
    del message["Message-ID"]
    if original:
        message["X-Google-Original-Message-ID"] = str(original)
    message["Message-ID"] = f"<CA+{secrets.token_hex(12)}@mail.gmail.com>"
    return message.as_bytes()
