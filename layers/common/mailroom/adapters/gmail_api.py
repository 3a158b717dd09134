"""`Mailbox` on the Gmail REST API through googleapiclient (static discovery: the
bundled Gmail document, no network at build time; GMAIL_API_URL as the endpoint)."""

from __future__ import annotations

import logging
from typing import Any

import google.auth.exceptions
import google_auth_httplib2
import httplib2
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from mailroom.adapters.google_oauth import GrantRevoked
from mailroom.errors import OutOfTime, ToolInputError, TransientError
from mailroom.mail.compose import OutgoingMessage, gmail_message
from mailroom.mail.decode import ReadableMessage, readable_message, summary_line
from mailroom.timeouts import GMAIL_CALL_SECONDS, MIN_CALL_SECONDS, call_timeout, seconds_left

# googleapiclient logs each retry with the request's URL, which carries the search
# query (mail text, in effect): keep its retry chatter out of the logs.
logging.getLogger("googleapiclient.http").setLevel(logging.ERROR)

# googleapiclient retries 429 and 5xx with exponential backoff this many times.
_RETRIES = 3
_SUMMARY_HEADERS = ["From", "To", "Cc", "Subject", "Date", "Message-ID"]


class DeadlineHttp(httplib2.Http):
    """An httplib2.Http whose every request (each retry too) gets a socket timeout that
    ends by the turn's deadline, at most GMAIL_CALL_SECONDS; OutOfTime when too little is
    left to start one. Without a deadline, GMAIL_CALL_SECONDS (httplib2's default is none)."""

    def __init__(self, deadline: float | None):
        super().__init__(timeout=GMAIL_CALL_SECONDS)
        self._deadline = deadline

    def request(self, *args: Any, **kwargs: Any) -> Any:
        timeout = GMAIL_CALL_SECONDS if self._deadline is None else call_timeout(self._deadline, GMAIL_CALL_SECONDS)
        self.timeout = timeout
        for connection in self.connections.values():  # kept-alive connections too
            connection.timeout = timeout
            if getattr(connection, "sock", None) is not None:
                connection.sock.settimeout(timeout)
        return super().request(*args, **kwargs)


class GmailApiMailbox:
    def __init__(self, credentials: Credentials | None, api_url: str, email: str, deadline: float | None = None):
        self._email = email
        self._credentials = credentials
        self._api_url = api_url
        self._deadline = deadline
        self._built: Any = None

    @property
    def _service(self) -> Any:
        if self._built is None:  # built on first use: a graph that only reads its state never calls Gmail
            self._built = build(
                "gmail",
                "v1",
                http=google_auth_httplib2.AuthorizedHttp(self._credentials, http=DeadlineHttp(self._deadline)),
                static_discovery=True,
                cache_discovery=False,
                client_options={"api_endpoint": self._api_url},
            )
        return self._built

    def address(self) -> str:
        return self._email

    def search(self, query: str, max_results: int) -> list[dict[str, Any]]:
        users = self._service.users()
        listed = self._call(users.messages().list(userId="me", q=query, maxResults=max_results))
        results = []
        for ref in listed.get("messages", [])[:max_results]:
            request = users.messages().get(
                userId="me", id=ref["id"], format="metadata", metadataHeaders=_SUMMARY_HEADERS
            )
            results.append(summary_line(self._call(request)))
        return results

    def read(self, message_id: str) -> ReadableMessage:
        request = self._service.users().messages().get(userId="me", id=message_id, format="full")
        return readable_message(self._call(request))

    def thread(self, thread_id: str) -> list[ReadableMessage]:
        request = self._service.users().threads().get(userId="me", id=thread_id, format="full")
        messages = self._call(request).get("messages", [])
        # Gmail lists unsent drafts in the thread too; they are not part of the conversation.
        return [readable_message(m) for m in messages if "DRAFT" not in (m.get("labelIds") or [])]

    def create_draft(self, message: OutgoingMessage) -> dict[str, Any]:
        body = {"message": gmail_message(message, self._email)}
        draft: dict[str, Any] = self._call(self._service.users().drafts().create(userId="me", body=body))
        return draft

    def find_draft(self, message_id: str) -> str | None:
        query = f"rfc822msgid:{message_id.strip('<>')}"
        found = self._call(self._service.users().drafts().list(userId="me", q=query, maxResults=1))
        drafts = found.get("drafts") or []
        return str(drafts[0]["id"]) if drafts else None

    def draft(self, draft_id: str) -> tuple[ReadableMessage, str | None]:
        found = self._call(self._service.users().drafts().get(userId="me", id=draft_id, format="full"))
        message = found.get("message") or {}
        return readable_message(message), message.get("threadId")

    def delete_draft(self, draft_id: str) -> None:
        self._call(self._service.users().drafts().delete(userId="me", id=draft_id))

    def find_sent(self, message: OutgoingMessage) -> str | None:
        messages = self._service.users().messages()
        if message.message_id:
            query = f"rfc822msgid:{message.message_id.strip('<>')}"
            found = self._call(messages.list(userId="me", q=query, includeSpamTrash=True)).get("messages") or []
            if found:
                return str(found[0]["id"])
        if not message.action_id or not message.to:
            return None
        # Should a relay have replaced the Message-ID, recognise the copy by our own header
        # among the few recent sent messages to the same recipient.
        subject = message.subject.replace('"', " ")
        query = f'in:sent to:{message.to[0]} subject:"{subject}" newer_than:2d'
        for ref in self._call(messages.list(userId="me", q=query, maxResults=20)).get("messages") or []:
            found_message = self._call(
                messages.get(userId="me", id=ref["id"], format="metadata", metadataHeaders=["X-Mailroom-Action"])
            )
            headers = (found_message.get("payload") or {}).get("headers") or []
            if any(
                h.get("name", "").lower() == "x-mailroom-action" and h.get("value") == message.action_id
                for h in headers
            ):
                return str(ref["id"])
        return None

    def send(self, message: OutgoingMessage) -> dict[str, Any]:
        body = gmail_message(message, self._email)
        sent: dict[str, Any] = self._call(self._service.users().messages().send(userId="me", body=body), retries=0)
        return sent

    def _call(self, request: Any, retries: int = _RETRIES) -> Any:
        try:
            return request.execute(num_retries=retries)
        except google.auth.exceptions.RefreshError as exc:
            if getattr(exc, "retryable", False):
                raise TransientError("Google token endpoint failed") from exc
            raise GrantRevoked("Google refused the refresh token") from exc
        except (google.auth.exceptions.TransportError, httplib2.HttpLib2Error, OSError) as exc:
            # Timeouts, resets, refused connections, after googleapiclient's retries.
            if self._deadline is not None and seconds_left(self._deadline) < MIN_CALL_SECONDS:
                raise OutOfTime("Gmail did not answer before the turn's deadline") from exc
            raise TransientError(f"Gmail unreachable: {type(exc).__name__}") from exc
        except HttpError as exc:
            status = exc.status_code
            if status == 401:
                raise GrantRevoked("Gmail refused the credentials") from exc
            if status in (400, 404):
                raise ToolInputError(f"Gmail answered {status}: {exc.reason}") from exc
            # 403 is quota or rate limits here (our scopes cover every call we make).
            raise TransientError(f"Gmail answered {status} after retries") from exc
