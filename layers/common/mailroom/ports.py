"""The small interfaces the domain talks through; adapters implement them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mailroom.mail.compose import OutgoingMessage
    from mailroom.mail.decode import ReadableMessage
    from mailroom.vault import GmailLink, GoogleTokens


class MessageQueue(Protocol):
    def send(self, body: str, *, group_id: str, deduplication_id: str) -> None: ...


class Chat(Protocol):
    """Posting to Slack as the bot."""

    def post(
        self, channel: str, text: str, *, thread_ts: str | None = None, blocks: list[dict[str, Any]] | None = None
    ) -> str:
        """Post a message; returns its ts."""
        ...

    def post_ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> None: ...

    def update(self, channel: str, ts: str, text: str, *, blocks: list[dict[str, Any]] | None = None) -> None:
        """Edit a message the bot posted; MessageGone if it is not there any more."""
        ...

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> bool:
        """views.open; False when Slack no longer takes the trigger (it lives 3 s)."""
        ...


class OAuthProvider(Protocol):
    """Google's OAuth endpoints and the one Gmail call the link needs."""

    def consent_url(self, redirect_uri: str, state: str) -> tuple[str, str]: ...
    def exchange(self, code: str, redirect_uri: str, code_verifier: str) -> GoogleTokens: ...
    def refresh(self, tokens: GoogleTokens) -> GoogleTokens: ...
    def revoke(self, token: str) -> bool: ...
    def gmail_address(self, tokens: GoogleTokens) -> str: ...


class LinkStore(Protocol):
    """Where each Slack user's Gmail link lives (the token vault)."""

    def save(self, team_id: str, user_id: str, email: str, tokens: GoogleTokens) -> GmailLink: ...
    def load(self, team_id: str, user_id: str) -> GmailLink | None: ...
    def update_tokens(self, link: GmailLink, tokens: GoogleTokens) -> GmailLink: ...
    def mark_broken(self, team_id: str, user_id: str) -> None: ...
    def delete(self, team_id: str, user_id: str) -> bool: ...
    def email_of(self, team_id: str, user_id: str) -> str | None: ...


class Mailbox(Protocol):
    """One user's Gmail, as the agent's tools use it."""

    def address(self) -> str: ...
    def search(self, query: str, max_results: int) -> list[dict[str, Any]]: ...
    def read(self, message_id: str, offset: int = 0) -> ReadableMessage: ...
    def thread(self, thread_id: str, body_budget: int = 8000) -> list[ReadableMessage]: ...
    def attachment(self, message_id: str, attachment_id: str) -> bytes:
        """messages.attachments.get: the attachment's bytes."""
        ...

    def list_drafts(self, query: str, max_results: int) -> list[dict[str, Any]]:
        """Drafts matching a Gmail query: draft_id, id, thread_id, to, subject, date, snippet."""
        ...

    def summaries(self, message_ids: list[str]) -> list[dict[str, Any]]: ...
    def labels(self) -> dict[str, str]:
        """Label name -> label id."""
        ...

    def create_label(self, name: str) -> str: ...
    def label_ids_of(self, message_ids: list[str]) -> dict[str, list[str]]: ...
    def modify(self, message_ids: list[str], add: list[str], remove: list[str]) -> None:
        """Add and remove label ids on messages (archive = remove INBOX; read = remove UNREAD)."""
        ...

    def create_draft(self, message: OutgoingMessage) -> dict[str, Any]: ...
    def find_draft(self, message_id: str) -> str | None:
        """The id of a draft whose Message-ID is `message_id`, if there is one."""
        ...

    def draft(self, draft_id: str) -> tuple[ReadableMessage, str | None]:
        """A draft's message and its thread id."""
        ...

    def draft_raw(self, draft_id: str) -> tuple[bytes, str | None]:
        """A draft's RFC 822 bytes as Gmail holds them, and its thread id."""
        ...

    def update_draft_raw(self, draft_id: str, raw: bytes, thread_id: str | None) -> None: ...
    def send_draft(self, draft_id: str) -> str:
        """drafts.send; the sent message's Gmail id. Never retried automatically."""
        ...

    def find_sent(self, message_id: str, action_id: str, recipient: str | None, subject: str) -> str | None:
        """The Gmail id of an already sent copy (same Message-ID, or same X-Mailroom-Action
        among recent sent mail to `recipient` in To, Cc or Bcc), if there is one."""
        ...

    def send(self, message: OutgoingMessage) -> dict[str, Any]:
        """Send once: no automatic retry, since a retried POST can send twice."""
        ...
