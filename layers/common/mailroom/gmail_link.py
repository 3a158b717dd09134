"""Linking a Slack user's Gmail: the auth, status and revoke commands, the gate in
front of the agent, and fresh credentials for it.

Replies that are about the user's account go to that user only when asked in a
channel (ephemeral); in the DM they are ordinary messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from mailroom import replies
from mailroom.commands import Command
from mailroom.errors import MailroomError
from mailroom.google import GMAIL_SCOPES
from mailroom.oauth_state import OAuthStateStore, new_state
from mailroom.observability import logger, metrics
from mailroom.ports import Chat, LinkStore, OAuthProvider
from mailroom.vault import GmailLink, GoogleTokens, VaultError

if TYPE_CHECKING:
    from mailroom.forget import Forgetter

CALLBACK_PATH = "/auth/callback"
START_PATH = "/auth/start"
# Refresh a little before Google's expiry, so a token never dies mid-request.
_EXPIRY_MARGIN_SECONDS = 120


class LinkBroken(MailroomError):
    """The stored grant no longer works; the user must run `auth` again."""


@dataclass
class GmailLinkCommands:
    chat: Chat
    links: LinkStore
    states: OAuthStateStore
    oauth: OAuthProvider
    # Revoke also forgets the user's conversations and pending approvals.
    forgetter: Forgetter | None = None

    def auth(self, command: Command) -> None:
        if not command.public_base_url:
            raise MailroomError("no public URL to send Google's redirect to")
        base = command.public_base_url.rstrip("/")
        state = new_state()
        # The button opens Mailroom's own page, which has the browser sign in with Slack
        # before it goes on to Google's consent (mailroom.slack_sign_in).
        self.states.save(
            state,
            team_id=command.team_id,
            user_id=command.user_id,
            channel_id=command.channel_id,
            thread_ts=command.thread_ts,
            redirect_uri=base + CALLBACK_PATH,
        )
        url = f"{base}{START_PATH}?{urlencode({'state': state})}"
        existing = self._load(command)  # an unreadable link is simply replaced by the new one
        text, blocks = replies.connect_gmail(url, existing.email if existing and existing.status == "linked" else None)
        # The consent link is for this user alone, wherever they asked.
        self.chat.post_ephemeral(command.channel_id, command.user_id, text, thread_ts=command.thread_ts, blocks=blocks)
        metrics.add_metric(name="LinkStarted", unit="Count", value=1)

    def status(self, command: Command) -> None:
        try:
            link = self.links.load(command.team_id, command.user_id)
            if link is None:
                self._answer(command, replies.status_not_linked())
                return
            link = self.fresh(link)
        except (LinkBroken, VaultError):
            self._answer(command, replies.link_broken())
            return
        since = link.linked_at.strftime("%Y-%m-%d %H:%M UTC")
        self._answer(command, replies.status_linked(link.email, since, link.scopes))

    def revoke(self, command: Command) -> None:
        try:
            link = self.links.load(command.team_id, command.user_id)
        except VaultError:
            # The tokens cannot be read (KMS refused, or damaged), so Google cannot be
            # asked to revoke them: forget them anyway and say how to finish at Google.
            self.links.delete(command.team_id, command.user_id)
            self._forget(command)
            logger.info("unreadable gmail link deleted on revoke")
            metrics.add_metric(name="LinksRevoked", unit="Count", value=1)
            self._answer(command, replies.revoked_unreadable())
            return
        if link is None:
            # Also a revoke delivered again after its link was deleted (its forgetting
            # failed): it must still forget, or a pending send would outlive the revoke.
            self._forget(command)
            self._answer(command, replies.nothing_to_revoke())
            return
        # Revoking the refresh token ends the whole grant at Google. An already
        # invalid token is fine: the user wants it gone either way.
        google_revoked = self.oauth.revoke(link.tokens.refresh_token or link.tokens.access_token)
        self.links.delete(command.team_id, command.user_id)
        self._forget(command)
        logger.info("gmail link revoked", extra={"google_revoked": google_revoked})
        metrics.add_metric(name="LinksRevoked", unit="Count", value=1)
        self._answer(command, replies.revoked(link.email, google_revoked))

    def require_link(self, command: Command) -> GmailLink | None:
        """The user's working link for the agent, or None after telling them why not."""
        try:
            link = self.links.load(command.team_id, command.user_id)
            if link is None:
                self._answer(command, replies.needs_gmail())
                return None
            return self.fresh(link)
        except (LinkBroken, VaultError):
            self._answer(command, replies.link_broken())
            return None

    def fresh(self, link: GmailLink) -> GmailLink:
        """The link with an access token good for a while; refreshed and saved if needed.
        Google's invalid_grant marks it broken (LinkBroken)."""
        from mailroom.adapters.google_oauth import GrantRevoked

        if link.status == "broken":
            raise LinkBroken("link marked broken")
        if not _expires_soon(link.tokens):
            return link
        try:
            tokens = self.oauth.refresh(link.tokens)
        except GrantRevoked as exc:
            self.links.mark_broken(link.team_id, link.user_id)
            metrics.add_metric(name="LinksBroken", unit="Count", value=1)
            raise LinkBroken("Google refused the refresh token") from exc
        return self.links.update_tokens(link, tokens)

    def _forget(self, command: Command) -> None:
        """Forget the user's conversations and pending approvals (idempotent: a retried
        revoke runs it again, whatever the first delivery got done)."""
        if self.forgetter is not None:
            self.forgetter.forget(command.team_id, command.user_id, reason="revoked")

    def _load(self, command: Command) -> GmailLink | None:
        try:
            return self.links.load(command.team_id, command.user_id)
        except VaultError:
            return None

    def _answer(self, command: Command, text: str) -> None:
        if command.is_direct_message:
            self.chat.post(command.channel_id, text, thread_ts=command.thread_ts)
        else:
            self.chat.post_ephemeral(command.channel_id, command.user_id, text, thread_ts=command.thread_ts)


def _expires_soon(tokens: GoogleTokens) -> bool:
    from datetime import UTC, datetime, timedelta

    if tokens.expiry is None:
        return False
    return tokens.expiry - timedelta(seconds=_EXPIRY_MARGIN_SECONDS) <= datetime.now(UTC)


def missing_scopes(granted: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(scope for scope in GMAIL_SCOPES if scope not in granted)
