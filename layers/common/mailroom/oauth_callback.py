"""The browser's side of linking Gmail: GET /auth/start and /auth/slack/callback (Sign
in with Slack, mailroom.slack_sign_in), then GET /auth/callback after Google's consent.

Order matters at /auth/callback: the state is consumed first (single use, whatever
happens next), so a replayed or forged callback stores nothing; it must have passed the
Slack check, from this same browser; only a complete grant is stored, and the user
hears the outcome both in the browser and in Slack.
"""

from __future__ import annotations

from collections.abc import Callable

from mailroom import replies
from mailroom.adapters.google_oauth import OAuthExchangeError
from mailroom.errors import describe
from mailroom.gmail_link import missing_scopes
from mailroom.http import HttpRequest, HttpResponse
from mailroom.oauth_state import OAuthStateStore, PendingLink
from mailroom.observability import logger, metrics
from mailroom.pages import page
from mailroom.ports import Chat, LinkStore, OAuthProvider
from mailroom.slack_sign_in import SLACK_CALLBACK_PATH, START_PATH, SlackSignIn, SlackSignInStep, browser_of


class OAuthCallback:
    def __init__(
        self,
        states: OAuthStateStore,
        oauth: OAuthProvider,
        links: LinkStore,
        chat: Chat,
        slack: SlackSignIn,
        forget: Callable[[str, str], object] | None = None,
    ):
        self._states = states
        self._oauth = oauth
        self._links = links
        self._chat = chat
        self._sign_in = SlackSignInStep(states, slack, oauth, self._tell)
        # Linking a different address forgets what the agent remembers of the old one.
        self._forget = forget

    def handle(self, request: HttpRequest, reference: str) -> HttpResponse:
        try:
            if request.path == START_PATH:
                return self._sign_in.start(request)
            if request.path == SLACK_CALLBACK_PATH:
                return self._sign_in.slack_callback(request, reference)
            return self._handle(request, reference)
        except Exception as exc:
            # An error's words can quote the account (Google's do): log what, not what it said.
            logger.error("callback failed", extra=describe(exc))
            metrics.add_metric(name="LinkErrors", unit="Count", value=1)
            return page(
                500,
                "Gmail was not connected",
                "Something went wrong on Mailroom's side. Send auth in Slack to try again.",
                reference=reference,
            )

    def _handle(self, request: HttpRequest, reference: str) -> HttpResponse:
        state = request.query.get("state", "")
        pending = self._states.consume(state) if state else None
        if pending is None:
            metrics.add_metric(name="LinkRefused", unit="Count", value=1)
            logger.warning("callback with an unknown, used or expired state")
            return page(
                400,
                "This link has expired or was already used",
                "Links to connect Gmail work once, for 10 minutes. Send auth to Mailroom in Slack for a new one.",
            )
        if not pending.slack_verified or browser_of(request) != pending.browser:
            # Google's page was reached without the Slack check, or the link to it was
            # forwarded to another browser: whoever consented, it links nothing.
            metrics.add_metric(name="LinkRefused", unit="Count", value=1)
            logger.warning("google callback without a passed slack check from this browser")
            self._tell(pending, replies.link_finished_elsewhere())
            return page(
                403,
                "Gmail was not connected",
                "This link must be opened from the Connect Gmail button in Slack, in one browser, by the Slack user "
                "it was made for. Send auth in Slack for a new one.",
            )
        if request.query.get("error"):
            logger.info("consent declined", extra={"error": request.query["error"][:40]})
            self._tell(pending, replies.link_declined())
            return page(200, "Gmail was not connected", "Access was declined. Send auth in Slack to try again.")
        code = request.query.get("code")
        if not code:
            return page(400, "Gmail was not connected", "Google's answer had no authorization code.")

        try:
            tokens = self._oauth.exchange(code, pending.redirect_uri, pending.code_verifier)
        except OAuthExchangeError as exc:
            logger.warning("code exchange refused", extra={"error": str(exc)[:60]})
            self._tell(pending, replies.link_failed(reference))
            return page(
                400,
                "Gmail was not connected",
                "Google did not accept this sign-in. Send auth in Slack to try again.",
                reference=reference,
            )
        missing = missing_scopes(tokens.scopes)
        if missing or not tokens.refresh_token:
            # Do not keep a partial grant around at Google either.
            self._oauth.revoke(tokens.refresh_token or tokens.access_token)
            self._tell(pending, replies.link_missing_scopes(missing))
            return page(
                200,
                "Gmail was not connected",
                "Mailroom needs permission to read, compose and send. Send auth in Slack and leave every box ticked.",
            )
        email = self._oauth.gmail_address(tokens)
        previous = self._links.email_of(pending.team_id, pending.user_id)
        if previous is not None and previous.lower() != email.lower() and self._forget is not None:
            # Before the new link exists: nothing of the old address may act From the new one.
            self._forget(pending.team_id, pending.user_id)
        self._links.save(pending.team_id, pending.user_id, email, tokens)
        logger.info("gmail linked", extra={"team_id": pending.team_id, "user_id": pending.user_id})
        metrics.add_metric(name="LinksCreated", unit="Count", value=1)
        self._tell(pending, replies.linked(email))
        return page(
            200,
            "Gmail connected",
            f"Mailroom can now work with {email} for {pending.slack_name or pending.user_id} in Slack. "
            "You can close this tab and go back to Slack.",
            ok=True,
        )

    def _tell(self, pending: PendingLink, text: str) -> None:
        try:
            if pending.channel_id.startswith("D"):  # the user's DM with the bot
                self._chat.post(pending.channel_id, text, thread_ts=pending.thread_ts)
            else:  # asked in a channel: the account is theirs alone to see
                self._chat.post_ephemeral(pending.channel_id, pending.user_id, text, thread_ts=pending.thread_ts)
        except Exception as exc:
            # The page already tells them; Slack being down must not fail the link.
            logger.error("could not tell the user in Slack", extra=describe(exc))
