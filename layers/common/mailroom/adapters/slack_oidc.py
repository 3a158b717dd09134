"""Sign in with Slack (OpenID Connect) through slack-sdk: who is at this browser?

The authorize page is `SLACK_OIDC_AUTHORIZE_URL`; the code exchange
(`openid.connect.token`) and the identity (`openid.connect.userInfo`) are Web API
methods under `SLACK_API_URL`. userInfo's answer, fetched over TLS from Slack with the
token Slack just issued to our client credentials, is the identity: no id_token
signature to check, no JWKS fetch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from mailroom.errors import MailroomError, TransientError
from mailroom.observability import logger

SCOPES = "openid profile"
_TRANSIENT = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})


def _forget_token(client: WebClient) -> None:
    """The user token Slack issued is needed for one userInfo call: revoke it at once,
    so no live token of the user is left behind (best effort: it is never stored)."""
    try:
        client.auth_revoke()
    except (SlackApiError, SlackClientError, OSError):
        logger.warning("could not revoke the sign-in token")


class SlackSignInError(MailroomError):
    """Slack did not confirm who signed in (a bad or reused code, a wrong client)."""


@dataclass(frozen=True)
class SlackIdentity:
    team_id: str
    user_id: str
    name: str | None


class SlackOpenIdConnect:
    def __init__(
        self,
        client_id: Callable[[], str],
        client_secret: Callable[[], str],
        authorize_url: str,
        api_url: str,
    ):
        # Callables: the secret is read when a browser first arrives, not at cold start.
        self._client_id = client_id
        self._client_secret = client_secret
        self._authorize_url = authorize_url
        self._api_url = api_url

    def authorize_url(self, redirect_uri: str, state: str, team_id: str) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "scope": SCOPES,
                "client_id": self._client_id(),
                "state": state,
                "team": team_id,  # straight to the workspace the link was made in
                "redirect_uri": redirect_uri,
            }
        )
        separator = "&" if "?" in self._authorize_url else "?"
        return f"{self._authorize_url}{separator}{query}"

    def identify(self, code: str, redirect_uri: str) -> SlackIdentity:
        client = WebClient(base_url=self._api_url, timeout=10)
        try:
            token = client.openid_connect_token(
                client_id=self._client_id(), client_secret=self._client_secret(), code=code, redirect_uri=redirect_uri
            )
            info = WebClient(token=str(token["access_token"]), base_url=self._api_url, timeout=10)
            claims = info.openid_connect_userInfo()
            _forget_token(info)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or exc.response.status_code)
            if exc.response.status_code >= 500 or exc.response.status_code == 429 or error in _TRANSIENT:
                raise TransientError(f"Slack sign-in failed: {error}") from exc
            raise SlackSignInError(error) from exc
        except (SlackClientError, OSError) as exc:
            raise TransientError(f"Slack unreachable: {type(exc).__name__}") from exc
        team_id = claims.get("https://slack.com/team_id")
        user_id = claims.get("https://slack.com/user_id") or claims.get("sub")
        if not isinstance(team_id, str) or not isinstance(user_id, str) or not team_id or not user_id:
            raise SlackSignInError("userInfo named no team or user")
        name = claims.get("name")
        return SlackIdentity(team_id, user_id, name if isinstance(name, str) and name else None)
