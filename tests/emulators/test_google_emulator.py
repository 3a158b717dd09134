"""The Google emulator, driven by the real client libraries (google-auth-oauthlib, google-auth,
googleapiclient) exactly as Mailroom drives Google: only base URLs change."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request as AuthRequest
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from oauthlib.oauth2.rfc6749.errors import (
    AccessDeniedError,
    CustomOAuth2Error,
    InsecureTransportError,
    InvalidClientError,
    InvalidGrantError,
)

from infra.local.emulators.base import Request, Response
from infra.local.emulators.google import (
    GMAIL_READONLY,
    GMAIL_SEND,
    MAILROOM_SCOPES,
    REDACTED,
    ConsentError,
    GmailCaller,
    GoogleEmulator,
)

REDIRECT_URI = "http://localhost:3000/auth/callback"


@pytest.fixture(scope="module")
def server() -> Iterator[GoogleEmulator]:
    emulator = GoogleEmulator()
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def google(server: GoogleEmulator, monkeypatch: pytest.MonkeyPatch) -> GoogleEmulator:
    # One server for the file keeps it fast; a fresh Google account per test keeps grants apart
    # (revocation and "first consent" are per client and account).
    server.account_email = f"user-{uuid.uuid4().hex[:8]}@example.com"
    server.deny_next_consent = False
    server.grant_scopes = None
    # oauthlib refuses any http:// auth, token or callback URL without this.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.delenv("OAUTHLIB_RELAX_TOKEN_SCOPE", raising=False)
    return server


def make_flow(
    google: GoogleEmulator, scopes: tuple[str, ...] | None = MAILROOM_SCOPES, client_secret: str | None = None
) -> Flow:
    config = {
        "web": {
            "client_id": google.client_id,
            "client_secret": client_secret or google.client_secret,
            "auth_uri": google.auth_uri,
            "token_uri": google.token_uri,
        }
    }
    return Flow.from_client_config(
        config,
        scopes=list(scopes) if scopes else None,
        redirect_uri=REDIRECT_URI,
        autogenerate_code_verifier=True,
    )


def consent(google: GoogleEmulator, flow: Flow, **kwargs: Any) -> tuple[str, dict[str, str]]:
    kwargs.setdefault("access_type", "offline")
    kwargs.setdefault("prompt", "consent")
    url, _state = flow.authorization_url(**kwargs)
    location = google.consent(url)
    return location, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def connect(google: GoogleEmulator) -> Flow:
    flow = make_flow(google)
    _, params = consent(google, flow)
    flow.fetch_token(code=params["code"])
    return flow


def gmail(google: GoogleEmulator, credentials: Any) -> Any:
    return build(
        "gmail",
        "v1",
        credentials=credentials,
        static_discovery=True,
        client_options={"api_endpoint": google.gmail_api_url},
    )


def profile(google: GoogleEmulator, token: str, user_id: str = "me") -> requests.Response:
    url = f"{google.gmail_api_url}gmail/v1/users/{user_id}/profile"
    return requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)


def refreshable(google: GoogleEmulator, refresh_token: str) -> Credentials:
    return Credentials(
        token=None,
        refresh_token=refresh_token,
        token_uri=google.token_uri,
        client_id=google.client_id,
        client_secret=google.client_secret,
    )


# -- the happy path ----------------------------------------------------------------------------
def test_consent_exchange_and_get_profile_with_the_real_clients(google: GoogleEmulator) -> None:
    flow = make_flow(google)
    url, state = flow.authorization_url(access_type="offline", prompt="consent")
    assert url.startswith(google.auth_uri + "?")
    assert "code_challenge_method=S256" in url

    location = google.consent(url)
    assert location.startswith(REDIRECT_URI + "?")
    params = parse_qs(urlsplit(location).query)
    assert params["state"] == [state]
    assert params["code"][0].startswith("4/0")
    assert params["scope"] == [" ".join(MAILROOM_SCOPES)]

    # The callback's own path: oauthlib checks the state in the redirect, then exchanges the code.
    token = flow.fetch_token(authorization_response=location)
    assert token["token_type"] == "Bearer"
    assert token["refresh_token"] in google.live_refresh_tokens()
    assert sorted(token["scope"]) == sorted(MAILROOM_SCOPES)
    assert flow.credentials.granted_scopes == list(MAILROOM_SCOPES)

    result = gmail(google, flow.credentials).users().getProfile(userId="me").execute()
    assert result == {
        "emailAddress": google.account_email,
        "messagesTotal": 0,
        "threadsTotal": 0,
        "historyId": "1",
    }

    exchange = [c for c in google.calls if c["path"] == "/token"][-1]
    assert exchange["params"]["code"] == REDACTED and exchange["params"]["code_verifier"] == REDACTED


def test_get_profile_accepts_the_accounts_own_address_but_not_anothers(google: GoogleEmulator) -> None:
    token = connect(google).credentials.token
    assert profile(google, token, google.account_email).json()["emailAddress"] == google.account_email
    other = profile(google, token, "someone-else@example.com")
    assert other.status_code == 403
    assert other.json()["error"]["status"] == "PERMISSION_DENIED"


def test_callback_flow_without_scopes_skips_oauthlibs_scope_check(google: GoogleEmulator) -> None:
    # How a separate callback (another Lambda) exchanges: the stored verifier, no scopes.
    start = make_flow(google)
    _, params = consent(google, start)
    callback = make_flow(google, scopes=None)
    callback.fetch_token(code=params["code"], code_verifier=start.code_verifier)
    assert callback.credentials.granted_scopes == list(MAILROOM_SCOPES)


# -- PKCE and the authorization code ------------------------------------------------------------
def test_wrong_or_missing_code_verifier_is_rejected(google: GoogleEmulator) -> None:
    flow = make_flow(google)
    _, params = consent(google, flow)
    with pytest.raises(InvalidGrantError, match="Invalid code verifier"):
        flow.fetch_token(code=params["code"], code_verifier="x" * 64)
    missing = requests.post(
        google.token_uri,
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": REDIRECT_URI,
            "client_id": google.client_id,
            "client_secret": google.client_secret,
        },
        timeout=5,
    )
    assert missing.status_code == 400
    assert missing.json() == {"error": "invalid_grant", "error_description": "Missing code verifier."}
    # A failed attempt does not spend the code: the right verifier still works.
    assert flow.fetch_token(code=params["code"])["access_token"].startswith("ya29.")


def test_code_is_single_use(google: GoogleEmulator) -> None:
    flow = make_flow(google)
    _, params = consent(google, flow)
    flow.fetch_token(code=params["code"])
    with pytest.raises(InvalidGrantError):
        flow.fetch_token(code=params["code"])


def test_code_expires_after_ten_minutes(google: GoogleEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    flow = make_flow(google)
    _, params = consent(google, flow)
    monkeypatch.setattr(google, "clock", lambda: time.time() + 601)
    with pytest.raises(InvalidGrantError):
        flow.fetch_token(code=params["code"])


def test_redirect_uri_must_match_the_consent(google: GoogleEmulator) -> None:
    flow = make_flow(google)
    _, params = consent(google, flow)
    flow.redirect_uri = "http://localhost:3000/elsewhere"
    with pytest.raises(CustomOAuth2Error) as raised:
        flow.fetch_token(code=params["code"])
    assert raised.value.error == "redirect_uri_mismatch"


def test_wrong_client_secret_is_invalid_client(google: GoogleEmulator) -> None:
    flow = make_flow(google, client_secret="not-the-secret")
    _, params = consent(google, flow)
    with pytest.raises(InvalidClientError):  # oauthlib sends it as HTTP Basic
        flow.fetch_token(code=params["code"])
    body = requests.post(
        google.token_uri,
        data={
            "grant_type": "refresh_token",
            "refresh_token": "x",
            "client_id": google.client_id,
            "client_secret": "no",
        },
        timeout=5,
    )
    assert (body.status_code, body.json()["error"]) == (401, "invalid_client")


# -- the consent page -------------------------------------------------------------------------
def test_denied_consent_redirects_with_access_denied_once(google: GoogleEmulator) -> None:
    google.deny_next_consent = True
    flow = make_flow(google)
    url, state = flow.authorization_url(access_type="offline", prompt="consent")
    location = google.consent(url)
    assert parse_qs(urlsplit(location).query) == {"error": ["access_denied"], "state": [state]}
    with pytest.raises(AccessDeniedError):
        flow.fetch_token(authorization_response=location)
    assert "code" in consent(google, make_flow(google))[1]  # the knob is one-shot


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"response_type": "token"}, 400, "unsupported_response_type"),
        ({"redirect_uri": "ftp://example.com/cb"}, 400, "invalid_request"),
        ({"scope": "gmail.readonly"}, 400, "invalid_scope"),
        ({"code_challenge_method": "S512"}, 400, "invalid_request"),
        ({"access_type": "forever"}, 400, "invalid_request"),
        ({"client_id": "someone-else.apps.googleusercontent.com"}, 401, "invalid_client"),
    ],
)
def test_bad_authorization_requests_get_an_error_page(
    google: GoogleEmulator, change: dict[str, str], status: int, error: str
) -> None:
    url, _ = make_flow(google).authorization_url(access_type="offline", prompt="consent")
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | change
    with pytest.raises(ConsentError) as raised:
        google.consent(requests.Request("GET", google.auth_uri, params=query).prepare().url or "")
    assert raised.value.status == status
    assert error in raised.value.body


def test_partial_consent_reports_the_granted_scopes(google: GoogleEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    google.grant_scopes = [GMAIL_READONLY]
    flow = make_flow(google)
    _, params = consent(google, flow)
    assert params["scope"] == GMAIL_READONLY
    # oauthlib treats a narrower grant as an error unless told to relax.
    with pytest.raises(Warning, match="Scope has changed"):
        flow.fetch_token(code=params["code"])

    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")
    flow = make_flow(google)
    _, params = consent(google, flow)
    token = flow.fetch_token(code=params["code"])
    assert token["scope"] == [GMAIL_READONLY]
    assert flow.credentials.granted_scopes == [GMAIL_READONLY]
    assert profile(google, token["access_token"]).status_code == 200


def test_token_without_a_read_scope_gets_403(google: GoogleEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")
    google.grant_scopes = [GMAIL_SEND]  # gmail.send alone may not read the profile
    flow = make_flow(google)
    _, params = consent(google, flow)
    flow.fetch_token(code=params["code"])
    with pytest.raises(HttpError) as raised:
        gmail(google, flow.credentials).users().getProfile(userId="me").execute()
    assert raised.value.status_code == 403
    assert raised.value.error_details[0]["reason"] == "insufficientPermissions"


def test_refresh_token_only_for_offline_access_and_first_consent(google: GoogleEmulator) -> None:
    online = make_flow(google)
    _, params = consent(google, online, access_type="online")
    assert "refresh_token" not in online.fetch_token(code=params["code"])

    first = connect(google)
    assert first.oauth2session.token["refresh_token"]
    again = make_flow(google)
    _, params = consent(google, again, prompt="select_account")  # not forced: Google omits it
    assert "refresh_token" not in again.fetch_token(code=params["code"])


# -- Gmail auth, refresh, revoke ----------------------------------------------------------------
def test_gmail_401_shape(google: GoogleEmulator) -> None:
    missing = requests.get(f"{google.gmail_api_url}gmail/v1/users/me/profile", timeout=5)
    assert missing.status_code == 401
    assert missing.json()["error"]["errors"][0]["reason"] == "required"
    bad = profile(google, "ya29.unknown")
    assert bad.status_code == 401
    error = bad.json()["error"]
    assert error["code"] == 401 and error["status"] == "UNAUTHENTICATED"
    assert error["message"].startswith("Request had invalid authentication credentials.")
    assert "invalid_token" in bad.headers["WWW-Authenticate"]


def test_expired_access_token_is_refreshed(google: GoogleEmulator) -> None:
    token = connect(google).oauth2session.token
    google.expire_access_tokens()
    assert profile(google, token["access_token"]).status_code == 401

    credentials = refreshable(google, token["refresh_token"])
    credentials.refresh(AuthRequest())
    assert credentials.token and credentials.token != token["access_token"]
    raw = requests.post(
        google.token_uri,
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": google.client_id,
            "client_secret": google.client_secret,
        },
        timeout=5,
    ).json()
    assert "refresh_token" not in raw  # Google does not rotate it
    assert raw["scope"] == " ".join(MAILROOM_SCOPES) and raw["token_type"] == "Bearer"
    assert profile(google, credentials.token).json()["emailAddress"] == google.account_email
    # googleapiclient refreshes on a 401 by itself.
    stale = Credentials(
        token["access_token"],
        refresh_token=token["refresh_token"],
        token_uri=google.token_uri,
        client_id=google.client_id,
        client_secret=google.client_secret,
    )
    google.expire_access_tokens()
    assert gmail(google, stale).users().getProfile(userId="me").execute()["emailAddress"] == google.account_email


def test_invalidated_refresh_token_is_invalid_grant(google: GoogleEmulator) -> None:
    token = connect(google).oauth2session.token
    google.invalidate_refresh_tokens()
    assert token["refresh_token"] not in google.live_refresh_tokens()
    with pytest.raises(RefreshError, match="invalid_grant"):
        refreshable(google, token["refresh_token"]).refresh(AuthRequest())
    assert profile(google, token["access_token"]).status_code == 200  # until it expires


def test_revoke_kills_the_whole_grant(google: GoogleEmulator) -> None:
    flow = connect(google)
    token = flow.oauth2session.token
    revoked = requests.post(google.revoke_uri, data={"token": token["access_token"]}, timeout=5)
    assert (revoked.status_code, revoked.json()) == (200, {})
    assert {token["access_token"], token["refresh_token"]} <= google.revoked_tokens()
    assert token["refresh_token"] not in google.live_refresh_tokens()

    assert profile(google, token["access_token"]).status_code == 401
    with pytest.raises(RefreshError, match="invalid_grant"):
        refreshable(google, token["refresh_token"]).refresh(AuthRequest())
    # googleapiclient's automatic refresh on the 401 surfaces as RefreshError, not HttpError.
    with pytest.raises(RefreshError):
        gmail(google, flow.credentials).users().getProfile(userId="me").execute()

    again = requests.post(google.revoke_uri, params={"token": token["refresh_token"]}, timeout=5)
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_token", "error_description": "Token expired or revoked"}


def test_revoke_by_refresh_token_in_the_query(google: GoogleEmulator) -> None:
    token = connect(google).oauth2session.token
    response = requests.post(google.revoke_uri, params={"token": token["refresh_token"]}, timeout=5)
    assert response.status_code == 200
    assert profile(google, token["access_token"]).status_code == 401


def test_issue_tokens_skips_the_browser(google: GoogleEmulator) -> None:
    token = google.issue_tokens(scopes=(GMAIL_READONLY,))
    assert token["refresh_token"] in google.live_refresh_tokens()
    assert profile(google, token["access_token"]).json()["emailAddress"] == google.account_email


def test_registered_redirect_uris_are_enforced_when_set(
    google: GoogleEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(google, "allowed_redirect_uris", {"https://mailroom.example/auth/callback"})
    with pytest.raises(ConsentError, match="redirect_uri_mismatch") as raised:
        consent(google, make_flow(google))
    assert raised.value.status == 400


# -- configuration contract and extension -----------------------------------------------------
def test_oauthlib_refuses_http_endpoints_without_the_insecure_flag(
    google: GoogleEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT")
    with pytest.raises(InsecureTransportError):
        make_flow(google).authorization_url()


def test_contract_urls(google: GoogleEmulator) -> None:
    assert google.auth_uri == f"{google.url}o/oauth2/auth"
    assert google.token_uri == f"{google.url}token"
    assert google.revoke_uri == f"{google.url}revoke"
    assert google.gmail_api_url == google.url and google.gmail_api_url.endswith("/")


def test_a_mailbox_can_add_gmail_methods(google: GoogleEmulator) -> None:
    seen: list[GmailCaller] = []

    def labels(request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        seen.append(caller)
        return Response(200, {"labels": [{"id": "INBOX", "name": "INBOX", "type": "system"}]})

    google.add_gmail_method("gmail.users.labels.list", labels)
    try:
        result = gmail(google, connect(google).credentials).users().labels().list(userId="me").execute()
    finally:
        google.gmail_routes.pop()
    assert result["labels"][0]["id"] == "INBOX"
    assert seen[0].account_email == google.account_email
    assert seen[0].scopes == frozenset(MAILROOM_SCOPES)
