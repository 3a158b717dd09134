"""The step between the Connect Gmail button and Google's consent: the browser signs
in with Slack, and goes on to Google only if it is the Slack user the link was made for.

    GET /auth/start?state=S          bind this browser (a cookie) to S, 302 to Slack
    GET /auth/slack/callback?code&state=S
                                     same browser? Slack says team and user of S?
                                     then 302 to Google's consent; else S is spent

A forwarded link therefore links nothing: whoever opens it signs in with Slack as
themselves, which is not the user who asked, and the state is thrown away. The Google
URL that follows cannot be forwarded either: Google's callback checks the cookie.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Protocol

from mailroom import replies
from mailroom.adapters.slack_oidc import SlackIdentity, SlackSignInError
from mailroom.http import HttpRequest, HttpResponse
from mailroom.oauth_state import OAuthStateStore, PendingLink, browser_digest
from mailroom.observability import logger, metrics
from mailroom.pages import page
from mailroom.ports import OAuthProvider

START_PATH = "/auth/start"
SLACK_CALLBACK_PATH = "/auth/slack/callback"
GOOGLE_CALLBACK_PATH = "/auth/callback"
COOKIE = "mailroom_link"
_COOKIE_VALUE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


class SlackSignIn(Protocol):
    def authorize_url(self, redirect_uri: str, state: str, team_id: str) -> str: ...
    def identify(self, code: str, redirect_uri: str) -> SlackIdentity: ...


def browser_of(request: HttpRequest) -> str | None:
    """The hash of this browser's link cookie, if it carries a well-formed one."""
    value = request.cookies.get(COOKIE, "")
    return browser_digest(value) if _COOKIE_VALUE.match(value) else None


def expired_page() -> HttpResponse:
    return page(
        400,
        "This link has expired or was already used",
        "Links to connect Gmail work once, for 10 minutes. Send auth to Mailroom in Slack for a new one.",
    )


class SlackSignInStep:
    def __init__(
        self,
        states: OAuthStateStore,
        slack: SlackSignIn,
        oauth: OAuthProvider,
        tell: Callable[[PendingLink, str], None],
    ):
        self._states = states
        self._slack = slack
        self._oauth = oauth
        self._tell = tell

    def start(self, request: HttpRequest) -> HttpResponse:
        state = request.query.get("state", "")
        pending = self._states.peek(state)
        if pending is None or pending.slack_verified:
            return expired_page()
        # One cookie per browser, reused across links, so two tabs do not undo each other.
        cookie = request.cookies.get(COOKIE, "")
        if not _COOKIE_VALUE.match(cookie):
            cookie = secrets.token_urlsafe(32)
        if not self._states.bind_browser(state, browser_digest(cookie)):
            return expired_page()
        location = self._slack.authorize_url(_slack_redirect_uri(pending), state, pending.team_id)
        secure = "; Secure" if pending.redirect_uri.startswith("https://") else ""
        return HttpResponse(
            302,
            "",
            headers={"Location": location, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
            cookies=(f"{COOKIE}={cookie}; Path=/auth; Max-Age=900; HttpOnly; SameSite=Lax{secure}",),
        )

    def slack_callback(self, request: HttpRequest, reference: str) -> HttpResponse:
        state = request.query.get("state", "")
        pending = self._states.peek(state)
        if pending is None or pending.slack_verified:
            return expired_page()
        browser = browser_of(request)
        if browser is None or browser != pending.browser:
            metrics.add_metric(name="LinkRefused", unit="Count", value=1)
            logger.warning("slack sign-in came back to another browser")
            return page(
                403,
                "Gmail was not connected",
                "Open the Connect Gmail button from Slack in this browser and finish in the same one.",
            )
        if request.query.get("error") or not request.query.get("code"):
            self._states.consume(state)
            return page(
                200, "Gmail was not connected", "Sign in with Slack was cancelled. Send auth in Slack to retry."
            )
        try:
            identity = self._slack.identify(request.query["code"], _slack_redirect_uri(pending))
        except SlackSignInError as exc:
            logger.warning("slack sign-in refused", extra={"error": str(exc)[:60]})
            self._states.consume(state)
            return page(
                400,
                "Gmail was not connected",
                "Slack did not confirm who you are. Send auth in Slack to try again.",
                reference=reference,
            )
        if (identity.team_id, identity.user_id) != (pending.team_id, pending.user_id):
            # Someone else holds this link: spend it, and tell the user it was made for.
            self._states.consume(state)
            metrics.add_metric(name="LinkRefused", unit="Count", value=1)
            logger.warning(
                "connect link opened by another slack user",
                extra={"team_id": pending.team_id, "user_id": pending.user_id},
            )
            self._tell(pending, replies.link_opened_by_someone_else())
            return page(
                403,
                "This link belongs to someone else",
                "It was made for another Slack user, so it connects nothing. To connect your own Gmail, "
                "send auth to Mailroom in Slack.",
            )
        url, code_verifier = self._oauth.consent_url(pending.redirect_uri, state)
        if not self._states.mark_slack_verified(state, browser, identity.name or identity.user_id, code_verifier):
            return expired_page()
        return HttpResponse(
            302, "", headers={"Location": url, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        )


def _slack_redirect_uri(pending: PendingLink) -> str:
    # The state records Google's redirect URI, <api>/auth/callback; Slack's is its sibling.
    base = pending.redirect_uri.removesuffix(GOOGLE_CALLBACK_PATH)
    return base + SLACK_CALLBACK_PATH
