"""`Mailbox` on the Gmail REST API through googleapiclient (static discovery: the
bundled Gmail document, no network at build time; GMAIL_API_URL as the endpoint)."""

from __future__ import annotations

import base64
import logging
import re
from typing import Any

import google.auth.exceptions
import google_auth_httplib2
import httplib2
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from mailroom import replies
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
    ends by the turn's deadline, at most `cap`; OutOfTime when too little is left to
    start one. Without a deadline, `cap` (httplib2's default is none)."""

    def __init__(self, deadline: float | None, cap: float = GMAIL_CALL_SECONDS):
        super().__init__(timeout=cap)
        self._deadline = deadline
        self._cap = cap

    def request(self, *args: Any, **kwargs: Any) -> Any:
        timeout = _timeout(self._deadline, self._cap)
        self.timeout = timeout
        for connection in self.connections.values():  # kept-alive connections too
            connection.timeout = timeout
            if getattr(connection, "sock", None) is not None:
                connection.sock.settimeout(timeout)
        return super().request(*args, **kwargs)


def _timeout(deadline: float | None, cap: float) -> float:
    return cap if deadline is None else call_timeout(deadline, cap)


class GmailApiMailbox:
    def __init__(
        self,
        credentials: Credentials | None,
        api_url: str,
        email: str,
        deadline: float | None = None,
        timeout: float = GMAIL_CALL_SECONDS,
    ):
        self._email = email
        self._credentials = credentials
        self._api_url = api_url
        self._deadline = deadline
        self._timeout = timeout
        self._built: Any = None

    @property
    def _service(self) -> Any:
        if self._built is None:  # built on first use: a graph that only reads its state never calls Gmail
            http = DeadlineHttp(self._deadline, self._timeout)
            self._built = build(
                "gmail",
                "v1",
                http=google_auth_httplib2.AuthorizedHttp(self._credentials, http=http) if self._credentials else http,
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
        refs = listed.get("messages", [])[:max_results]
        requests = [
            users.messages().get(userId="me", id=ref["id"], format="metadata", metadataHeaders=_SUMMARY_HEADERS)
            for ref in refs
        ]
        return [summary_line(found) for found in self._batch(requests) if found is not None]

    def read(self, message_id: str, offset: int = 0) -> ReadableMessage:
        request = self._service.users().messages().get(userId="me", id=message_id, format="full")
        return readable_message(self._call(request), offset=offset)

    def thread(self, thread_id: str, body_budget: int = 8000) -> list[ReadableMessage]:
        request = self._service.users().threads().get(userId="me", id=thread_id, format="full")
        messages = self._call(request).get("messages", [])
        # Gmail lists unsent drafts in the thread too; they are not part of the conversation.
        return [
            readable_message(m, body_budget=body_budget) for m in messages if "DRAFT" not in (m.get("labelIds") or [])
        ]

    def attachment(self, message_id: str, attachment_id: str) -> bytes:
        request = (
            self._service.users().messages().attachments().get(userId="me", messageId=message_id, id=attachment_id)
        )
        return _unb64(str(self._call(request).get("data") or ""))

    def list_drafts(self, query: str, max_results: int) -> list[dict[str, Any]]:
        drafts = self._service.users().drafts()
        listed = self._call(drafts.list(userId="me", q=query or None, maxResults=max_results))
        refs = (listed.get("drafts") or [])[:max_results]
        found = self._batch([drafts.get(userId="me", id=ref["id"], format="metadata") for ref in refs])
        results = []
        for ref, draft in zip(refs, found, strict=True):
            if draft is not None:
                line = summary_line(draft.get("message") or {})
                results.append({"draft_id": ref["id"], **{k: v for k, v in line.items() if k != "unread"}})
        return results

    def summaries(self, message_ids: list[str]) -> list[dict[str, Any]]:
        """Search-result lines of these messages (one batch request)."""
        messages = self._service.users().messages()
        requests = [
            messages.get(userId="me", id=i, format="metadata", metadataHeaders=_SUMMARY_HEADERS) for i in message_ids
        ]
        return [summary_line(found) for found in self._batch(requests) if found is not None]

    def labels(self) -> dict[str, str]:
        """Label name -> id, user and system labels alike."""
        found = self._call(self._service.users().labels().list(userId="me")).get("labels") or []
        return {str(label["name"]): str(label["id"]) for label in found}

    def create_label(self, name: str) -> str:
        body = {"name": name, "labelListVisibility": "labelShow", "messageListVisibility": "show"}
        return str(self._call(self._service.users().labels().create(userId="me", body=body))["id"])

    def label_ids_of(self, message_ids: list[str]) -> dict[str, list[str]]:
        """Each message's current label ids (one batch request), to undo a change exactly."""
        messages = self._service.users().messages()
        found = self._batch([messages.get(userId="me", id=i, format="minimal") for i in message_ids])
        return {i: list(m.get("labelIds") or []) for i, m in zip(message_ids, found, strict=True) if m is not None}

    def modify(self, message_ids: list[str], add: list[str], remove: list[str]) -> None:
        """messages.batchModify: add and remove label ids on up to 1000 messages at once."""
        body = {"ids": message_ids, "addLabelIds": add, "removeLabelIds": remove}
        self._call(self._service.users().messages().batchModify(userId="me", body=body))

    def _batch(self, requests: list[Any]) -> list[Any]:
        """Run GET requests as one Gmail batch (one HTTP round trip); answers in order. A part
        that failed is tried again on its own (with retries); a message gone meanwhile is None."""
        if not requests:
            return []
        answers: list[Any] = [None] * len(requests)
        failed: list[int] = []

        def done(request_id: str, response: Any, exception: Exception | None) -> None:
            if exception is None:
                answers[int(request_id)] = response
            else:
                failed.append(int(request_id))

        if len(requests) == 1:
            failed.append(0)
        else:
            batch = BatchHttpRequest(callback=done, batch_uri=f"{self._api_url.rstrip('/')}/batch/gmail/v1")
            for index, request in enumerate(requests):
                batch.add(request, request_id=str(index))
            self._guarded(lambda: batch.execute(http=requests[0].http))
        for index in sorted(failed):
            try:
                answers[index] = self._call(requests[index])
            except ToolInputError:
                answers[index] = None  # deleted between the list and the get
        return answers

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

    def draft_raw(self, draft_id: str) -> tuple[bytes, str | None]:
        """The draft's RFC 822 bytes exactly as Gmail holds them, and its thread id."""
        found = self._call(self._service.users().drafts().get(userId="me", id=draft_id, format="raw"))
        message = found.get("message") or {}
        return _unb64(str(message.get("raw") or "")), message.get("threadId")

    def update_draft_raw(self, draft_id: str, raw: bytes, thread_id: str | None) -> None:
        message: dict[str, Any] = {"raw": base64.urlsafe_b64encode(raw).decode("ascii")}
        if thread_id:
            message["threadId"] = thread_id
        body = {"id": draft_id, "message": message}
        self._call(self._service.users().drafts().update(userId="me", id=draft_id, body=body))

    def send_draft(self, draft_id: str) -> str:
        """drafts.send: Gmail sends the draft as it stands and removes it. Never retried here."""
        return str(self._post_once("drafts/send", {"id": draft_id})["id"])

    def find_sent(self, message_id: str, action_id: str, recipient: str | None, subject: str) -> str | None:
        messages = self._service.users().messages()
        # Not the draft itself: a stamped draft carries the same Message-ID until it is sent.
        query = f"rfc822msgid:{message_id.strip('<>')} -in:drafts"
        found = self._call(messages.list(userId="me", q=query, includeSpamTrash=True)).get("messages") or []
        if found:
            return str(found[0]["id"])
        if not recipient:
            return None
        # Should a relay have replaced the Message-ID, recognise the copy by our own header
        # among the few recent sent messages to that recipient, whether it was in To, Cc or Bcc.
        quoted = subject.replace('"', " ")
        query = f'in:sent {{to:{recipient} cc:{recipient} bcc:{recipient}}} subject:"{quoted}" newer_than:2d'
        for ref in self._call(messages.list(userId="me", q=query, maxResults=20)).get("messages") or []:
            found_message = self._call(
                messages.get(userId="me", id=ref["id"], format="metadata", metadataHeaders=["X-Mailroom-Action"])
            )
            headers = (found_message.get("payload") or {}).get("headers") or []
            if any(h.get("name", "").lower() == "x-mailroom-action" and h.get("value") == action_id for h in headers):
                return str(ref["id"])
        return None

    def send(self, message: OutgoingMessage) -> dict[str, Any]:
        return self._post_once("messages/send", gmail_message(message, self._email))

    def _post_once(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a send exactly once. Not through googleapiclient: its httplib2 transport
        re-sends any request, POST included, when the connection closes before an answer
        (httplib2 `_conn_request` treats it as a stale connection), which after Gmail took
        the send would send it twice. requests with urllib3 does not retry a POST."""
        from google.auth.transport.requests import AuthorizedSession
        from requests import RequestException

        session = AuthorizedSession(self._credentials) if self._credentials else _plain_session()
        url = f"{self._api_url.rstrip('/')}/gmail/v1/users/me/{method}"
        try:
            response = session.post(url, json=body, timeout=_timeout(self._deadline, self._timeout))
        except google.auth.exceptions.RefreshError as exc:
            if getattr(exc, "retryable", False):
                raise TransientError("Google token endpoint failed") from exc
            raise GrantRevoked("Google refused the refresh token") from exc
        except (RequestException, OSError) as exc:
            raise TransientError(f"Gmail {method} unreachable: {type(exc).__name__}") from exc
        finally:
            session.close()
        status = response.status_code
        if status == 401:
            raise GrantRevoked("Gmail refused the credentials")
        if status in (400, 404):
            raise ToolInputError(f"Gmail answered {status}: {_reason(response)}")
        if status >= 300:
            raise TransientError(f"Gmail answered {status}")
        answer: dict[str, Any] = response.json()
        return answer

    def _call(self, request: Any, retries: int = _RETRIES) -> Any:
        return self._guarded(lambda: request.execute(num_retries=retries))

    def _guarded(self, execute: Any) -> Any:
        """Run a Gmail call, its failures turned into the domain's errors."""
        try:
            return execute()
        except google.auth.exceptions.RefreshError as exc:
            if getattr(exc, "retryable", False):
                raise TransientError("Google token endpoint failed") from exc
            raise GrantRevoked("Google refused the refresh token") from exc
        except (google.auth.exceptions.TransportError, httplib2.HttpLib2Error, OSError) as exc:
            # Timeouts, resets, refused connections, after googleapiclient's retries. For a
            # send the outcome is unknown: the redelivery looks the message up first.
            if self._deadline is not None and seconds_left(self._deadline) < MIN_CALL_SECONDS:
                raise OutOfTime("Gmail did not answer before the turn's deadline") from exc
            raise TransientError(f"Gmail unreachable: {type(exc).__name__}") from exc
        except HttpError as exc:
            status = exc.status_code
            if status == 401:
                raise GrantRevoked("Gmail refused the credentials") from exc
            if status in (400, 404):
                raise ToolInputError(f"Gmail answered {status}: {exc.reason}") from exc
            if status == 403 and "insufficient" in str(exc.reason).lower():
                raise ToolInputError(replies.needs_relink()) from exc  # an older link, without gmail.modify
            # 403 is quota or rate limits here (our scopes cover every call we make).
            raise TransientError(f"Gmail answered {status} after retries") from exc


def _unb64(text: str) -> bytes:
    cleaned = re.sub(r"\s+", "", text).rstrip("=")
    return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))


def _plain_session() -> Any:
    import requests

    return requests.Session()


def _reason(response: Any) -> str:
    try:
        return str(response.json()["error"]["message"])[:200]
    except (ValueError, KeyError, TypeError):
        return response.reason or ""
