"""An HTTP emulator of Google's OAuth 2.0 endpoints and the Gmail API's `users.getProfile`.

Real client libraries (google-auth-oauthlib, google-auth, googleapiclient) reach it by
changing base URLs only: `auth_uri`, `token_uri`, `revoke_uri` and `gmail_api_url` are
the values for GOOGLE_AUTH_URI, GOOGLE_TOKEN_URI, GOOGLE_REVOKE_URI and GMAIL_API_URL.

The consent page is not shown: a GET of the authorization URL answers at once with the
302 a user's consent would produce, shaped by the knobs `account_email`,
`deny_next_consent` and `grant_scopes`.

The Gmail part is a small router (`gmail_routes`). A mailbox module adds methods with
`add_gmail_method("gmail.users.messages.list", handler)` (verb, path and required scopes
come from googleapiclient's own discovery document) or `add_gmail_route(...)`; each
handler gets the request, the authenticated `GmailCaller` and the path parameters.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import importlib.resources
import json
import re
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy as email_policy
from email.parser import BytesParser
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from infra.local.emulators.base import Emulator, Request, Response

GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
GMAIL_COMPOSE = "https://www.googleapis.com/auth/gmail.compose"
GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
GMAIL_MODIFY = "https://www.googleapis.com/auth/gmail.modify"
MAILROOM_SCOPES = (GMAIL_READONLY, GMAIL_COMPOSE, GMAIL_SEND, GMAIL_MODIFY)
# Links made before Mailroom asked for gmail.modify.
MAILROOM_SCOPES_BEFORE_MODIFY = (GMAIL_READONLY, GMAIL_COMPOSE, GMAIL_SEND)
MAX_BATCH_PARTS = 100  # Google's limit per batch request

CODE_TTL = 600  # seconds; Google's authorization codes live 10 minutes
REDACTED = "<redacted>"
_SECRET_PARAMS = frozenset(
    {"code", "code_verifier", "client_secret", "refresh_token", "access_token", "token", "assertion"}
)
# Google expands these short OpenID scopes in what it reports as granted.
_SCOPE_ALIASES = {
    "email": "https://www.googleapis.com/auth/userinfo.email",
    "profile": "https://www.googleapis.com/auth/userinfo.profile",
}
_SCOPE_RE = re.compile(r"^(openid|https://mail\.google\.com/|https://www\.googleapis\.com/auth/[\w.\-/]+)$")
_PKCE_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_UNAUTHENTICATED_HELP = (
    "Expected OAuth 2 access token, login cookie or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)

GmailHandler = Callable[[Request, "GmailCaller", dict[str, str]], Response]


class ConsentError(RuntimeError):
    """The authorization endpoint showed an error page instead of redirecting."""

    def __init__(self, status: int, body: str):
        super().__init__(f"consent page answered {status}: {body}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class GmailCaller:
    """Who a Gmail request acts for, resolved from its Bearer token."""

    account_email: str
    scopes: frozenset[str]
    client_id: str


@dataclass(frozen=True)
class GmailRoute:
    method: str
    pattern: re.Pattern[str]
    scopes: frozenset[str]  # any one of them suffices, as in the discovery document
    handler: GmailHandler
    name: str


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    account_email: str
    challenge: str | None
    challenge_method: str | None
    issue_refresh_token: bool
    expires_at: float
    used: bool = False


@dataclass
class _Grant:
    """One code exchange: its refresh token (if offline) and the access tokens minted from it."""

    client_id: str
    account_email: str
    scopes: tuple[str, ...]
    refresh_token: str | None
    refresh_valid: bool = True
    revoked: bool = False
    access_tokens: list[str] = field(default_factory=list)


@dataclass
class _AccessToken:
    grant: _Grant
    scopes: tuple[str, ...]
    expires_at: float


def _oauth_error(status: int, error: str, description: str) -> Response:
    return Response(
        status,
        {"error": error, "error_description": description},
        {"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _api_error(code: int, status: str, message: str, reason: str, **extra: str) -> Response:
    """Google's JSON error shape, which googleapiclient's HttpError parses."""
    error: dict[str, Any] = {"message": message, "domain": "global", "reason": reason, **extra}
    body = {"error": {"code": code, "message": message, "errors": [error], "status": status}}
    headers = {}
    if code == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
    return Response(code, body, headers)


def _error_page(status: int, error: str, description: str) -> Response:
    # Google shows an HTML page (no redirect) for a malformed request or unknown client.
    html = f"<html><body><h1>Error {status}: {error}</h1><p>{description}</p></body></html>"
    return Response(status, html)


@functools.cache
def _gmail_discovery() -> dict[str, Any]:
    """The Gmail discovery document googleapiclient ships, so routes match its paths and scopes."""
    resource = importlib.resources.files("googleapiclient.discovery_cache") / "documents" / "gmail.v1.json"
    doc: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return doc


def gmail_method_spec(method_id: str) -> tuple[str, str, frozenset[str]]:
    """(HTTP verb, path template, scopes) of a Gmail method id such as 'gmail.users.getProfile'."""

    def find(resources: dict[str, Any]) -> dict[str, Any] | None:
        for resource in resources.values():
            for method in resource.get("methods", {}).values():
                if method["id"] == method_id:
                    return dict(method)
            found = find(resource.get("resources", {}))
            if found is not None:
                return found
        return None

    method = find(_gmail_discovery()["resources"])
    if method is None:
        raise KeyError(method_id)
    return method["httpMethod"], method["flatPath"], frozenset(method.get("scopes", ()))


def _path_pattern(template: str) -> re.Pattern[str]:
    """'gmail/v1/users/{userId}/profile' -> a regex with one named group per {param}."""
    parts = re.split(r"\{\+?(\w+)\}", template.lstrip("/"))
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
    return re.compile(f"^/{regex}$")


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


class GoogleEmulator(Emulator):
    """Google OAuth 2.0 (consent, token, revoke) and Gmail `users.getProfile` over HTTP."""

    def __init__(
        self,
        client_id: str = "local-client-id.apps.googleusercontent.com",
        client_secret: str = "local-client-secret",  # noqa: S107 - a fake client's well-known secret
        account_email: str = "ada@example.com",
        host: str = "127.0.0.1",
        port: int = 0,
        access_token_ttl: int = 3600,
    ):
        super().__init__(host, port)
        self.client_id = client_id
        self.client_secret = client_secret
        self.access_token_ttl = access_token_ttl
        # Knobs for tests.
        self.account_email = account_email
        self.deny_next_consent = False
        self.grant_scopes: list[str] | None = None
        self.allowed_redirect_uris: set[str] | None = None  # None: any http(s) URL, else the registered set
        self.clock: Callable[[], float] = time.time  # replace to move time forward
        self.calls: list[dict[str, Any]] = []

        self._codes: dict[str, _Code] = {}
        self._grants: list[_Grant] = []
        self._refresh_tokens: dict[str, _Grant] = {}
        self._access_tokens: dict[str, _AccessToken] = {}
        self._revoked: set[str] = set()
        self.gmail_routes: list[GmailRoute] = []
        self.add_gmail_method("gmail.users.getProfile", self._get_profile)

    # -- endpoints for the configuration contract --------------------------------------
    @property
    def auth_uri(self) -> str:
        return f"{self.url}o/oauth2/auth"

    @property
    def token_uri(self) -> str:
        return f"{self.url}token"

    @property
    def revoke_uri(self) -> str:
        return f"{self.url}revoke"

    @property
    def gmail_api_url(self) -> str:
        # googleapiclient joins the discovery paths ("gmail/v1/...") onto this; keep the slash.
        return self.url

    # -- test helpers --------------------------------------------------------------------
    def consent(self, auth_url: str) -> str:
        """GET the consent URL as a browser would; return the redirect's Location."""
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(auth_url, timeout=10) as response:
                raise ConsentError(response.status, response.read().decode(errors="replace"))
        except urllib.error.HTTPError as exc:
            location = exc.headers.get("Location")
            if exc.code == 302 and location:
                return str(location)
            raise ConsentError(exc.code, exc.read().decode(errors="replace")) from None

    def issue_tokens(
        self,
        scopes: tuple[str, ...] = MAILROOM_SCOPES,
        account_email: str | None = None,
        offline: bool = True,
    ) -> dict[str, Any]:
        """Mint a grant without the browser dance (for tests that only need a token)."""
        with self.lock:
            grant = self._new_grant(self.client_id, account_email or self.account_email, scopes, offline)
            return self._token_response(grant, grant.scopes)

    def revoked_tokens(self) -> set[str]:
        with self.lock:
            return set(self._revoked)

    def live_refresh_tokens(self) -> set[str]:
        with self.lock:
            return {t for t, g in self._refresh_tokens.items() if g.refresh_valid and not g.revoked}

    def expire_access_tokens(self) -> None:
        with self.lock:
            now = self.clock()
            for token in self._access_tokens.values():
                token.expires_at = min(token.expires_at, now - 1)

    def invalidate_refresh_tokens(self) -> None:
        # Like a refresh token that expired (Testing-mode apps) or a password change: access tokens
        # already issued keep working until they expire.
        with self.lock:
            for grant in self._grants:
                grant.refresh_valid = False

    # -- Gmail extension points ------------------------------------------------------------
    def add_gmail_route(
        self, method: str, path_template: str, handler: GmailHandler, scopes: frozenset[str], name: str = ""
    ) -> None:
        """Serve `method path_template`, e.g. 'gmail/v1/users/{userId}/drafts'.

        A caller's token needs at least one of `scopes`; the handler runs outside the lock.
        """
        route = GmailRoute(method.upper(), _path_pattern(path_template), scopes, handler, name or path_template)
        with self.lock:
            self.gmail_routes.append(route)

    def add_gmail_method(self, method_id: str, handler: GmailHandler) -> None:
        """Serve a Gmail method by its discovery id, with the verb, path and scopes Google documents."""
        verb, path, scopes = gmail_method_spec(method_id)
        self.add_gmail_route(verb, path, handler, scopes, method_id)

    def authenticate(self, request: Request) -> GmailCaller | Response:
        """Resolve `Authorization: Bearer <token>` to its caller, or Google's 401."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _api_error(
                401,
                "UNAUTHENTICATED",
                f"Request is missing required authentication credential. {_UNAUTHENTICATED_HELP}",
                "required",
                location="Authorization",
                locationType="header",
            )
        with self.lock:
            access = self._access_tokens.get(token.strip())
            if access is None or access.grant.revoked or access.expires_at <= self.clock():
                return _api_error(
                    401,
                    "UNAUTHENTICATED",
                    f"Request had invalid authentication credentials. {_UNAUTHENTICATED_HELP}",
                    "authError",
                    location="Authorization",
                    locationType="header",
                )
            return GmailCaller(access.grant.account_email, frozenset(access.scopes), access.grant.client_id)

    def mailbox_stats(self, account_email: str) -> tuple[int, int, str]:
        """(messagesTotal, threadsTotal, historyId) for getProfile; a mailbox subclass overrides this."""
        return 0, 0, "1"

    # -- routing ---------------------------------------------------------------------------
    def route(self, request: Request) -> Response:
        params = self._params(request)
        if request.path in ("/o/oauth2/auth", "/o/oauth2/v2/auth"):
            response = self._authorize(request) if request.method == "GET" else self._method_not_allowed()
        elif request.path in ("/token", "/o/oauth2/token"):
            response = self._token(request) if request.method == "POST" else self._method_not_allowed()
        elif request.path in ("/revoke", "/o/oauth2/revoke"):
            response = self._revoke(params)
        elif request.path.startswith(("/gmail/", "/upload/gmail/")):
            response = self._gmail(request)
        elif request.path == "/batch/gmail/v1":
            response = self._gmail_batch(request) if request.method == "POST" else self._method_not_allowed()
        else:
            response = _api_error(404, "NOT_FOUND", "Not Found", "notFound")
        with self.lock:
            redacted = {k: REDACTED if k in _SECRET_PARAMS else v for k, v in params.items()}
            self.calls.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "params": redacted,
                    "status": response.status,
                }
            )
        return response

    def _params(self, request: Request) -> dict[str, Any]:
        """Query and form fields of an OAuth request, for the revoke endpoint and the call log."""
        params: dict[str, Any] = {k: v[0] if len(v) == 1 else v for k, v in request.query.items()}
        # Gmail bodies are mail content: never parsed into the log.
        if request.body and not request.path.startswith(("/gmail/", "/upload/")):
            with contextlib.suppress(ValueError, UnicodeDecodeError, AttributeError):
                params.update(request.form())
        return params

    @staticmethod
    def _method_not_allowed() -> Response:
        return _oauth_error(405, "invalid_request", "Method not allowed.")

    # -- GET /o/oauth2/auth ----------------------------------------------------------------
    def _authorize(self, request: Request) -> Response:
        for name, values in request.query.items():
            if len(values) > 1:
                return _error_page(400, "invalid_request", f"Parameter not allowed to repeat: {name}")
        q = {k: v[0] for k, v in request.query.items()}

        client_id = q.get("client_id")
        if not client_id:
            return _error_page(400, "invalid_request", "Missing required parameter: client_id")
        if client_id != self.client_id:
            return _error_page(401, "invalid_client", "The OAuth client was not found.")
        redirect_uri = q.get("redirect_uri")
        if not redirect_uri:
            return _error_page(400, "invalid_request", "Missing required parameter: redirect_uri")
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            return _error_page(400, "invalid_request", f"Invalid parameter value for redirect_uri: {redirect_uri}")
        if self.allowed_redirect_uris is not None and redirect_uri not in self.allowed_redirect_uris:
            return _error_page(400, "redirect_uri_mismatch", f"redirect_uri not registered: {redirect_uri}")
        response_type = q.get("response_type")
        if not response_type:
            return _error_page(400, "invalid_request", "Missing required parameter: response_type")
        if response_type != "code":
            return _error_page(400, "unsupported_response_type", f"Unsupported response_type: {response_type}")
        requested = self._normalise_scopes(q.get("scope", ""))
        if not requested:
            return _error_page(400, "invalid_request", "Missing required parameter: scope")
        invalid = [s for s in requested if not _SCOPE_RE.match(s)]
        if invalid:
            return _error_page(400, "invalid_scope", f"Some requested scopes were invalid. {{invalid={invalid}}}")
        access_type = q.get("access_type", "online")
        if access_type not in ("online", "offline"):
            return _error_page(400, "invalid_request", f"Invalid access_type: {access_type}")
        prompts = set(q.get("prompt", "").split())
        if not prompts <= {"none", "consent", "select_account"} or ("none" in prompts and len(prompts) > 1):
            return _error_page(400, "invalid_request", f"Invalid prompt: {q.get('prompt')}")
        challenge = q.get("code_challenge")
        method = q.get("code_challenge_method")
        if challenge is None and method is not None:
            return _error_page(400, "invalid_request", "code_challenge_method without code_challenge")
        if challenge is not None:
            method = method or "plain"  # RFC 7636's default, which Google follows
            if method not in ("S256", "plain"):
                return _error_page(400, "invalid_request", f"Invalid code_challenge_method: {method}")
            if not _PKCE_RE.match(challenge):
                return _error_page(400, "invalid_request", "Invalid code_challenge.")

        state = q.get("state")
        with self.lock:
            if self.deny_next_consent:
                self.deny_next_consent = False
                return self._redirect(redirect_uri, [("error", "access_denied"), ("state", state)])
            granted = requested
            if self.grant_scopes is not None:
                allowed = set(self._normalise_scopes(" ".join(self.grant_scopes)))
                granted = tuple(s for s in requested if s in allowed)
                if not granted:  # unticking every box is a refusal
                    return self._redirect(redirect_uri, [("error", "access_denied"), ("state", state)])
            account = self.account_email
            # Google hands out a refresh token on first consent only, unless prompt=consent forces it.
            has_refresh = any(
                g.client_id == client_id
                and g.account_email == account
                and g.refresh_token
                and g.refresh_valid
                and not g.revoked
                for g in self._grants
            )
            code = "4/0" + secrets.token_urlsafe(32)
            self._codes[code] = _Code(
                client_id=client_id,
                redirect_uri=redirect_uri,
                scopes=granted,
                account_email=account,
                challenge=challenge,
                challenge_method=method if challenge is not None else None,
                issue_refresh_token=access_type == "offline" and ("consent" in prompts or not has_refresh),
                expires_at=self.clock() + CODE_TTL,
            )
        return self._redirect(
            redirect_uri,
            [
                ("state", state),
                ("code", code),
                ("scope", " ".join(granted)),
                ("authuser", "0"),
                ("prompt", "consent" if "consent" in prompts or not has_refresh else "none"),
            ],
        )

    @staticmethod
    def _normalise_scopes(scope: str) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for s in scope.split():
            seen.setdefault(_SCOPE_ALIASES.get(s, s), None)
        return tuple(seen)

    @staticmethod
    def _redirect(redirect_uri: str, params: list[tuple[str, str | None]]) -> Response:
        query = urlencode([(k, v) for k, v in params if v is not None], quote_via=quote, safe=":/")
        sep = "&" if urlsplit(redirect_uri).query else "?"
        return Response(302, b"", {"Location": f"{redirect_uri}{sep}{query}"})

    # -- POST /token -----------------------------------------------------------------------
    def _token(self, request: Request) -> Response:
        try:
            form: dict[str, Any] = request.form()
        except (ValueError, UnicodeDecodeError, AttributeError):
            return _oauth_error(400, "invalid_request", "Malformed request body.")
        client = self._client_auth(request, form)
        if isinstance(client, Response):
            return client
        grant_type = form.get("grant_type", "")
        if grant_type == "authorization_code":
            return self._exchange_code(client, form)
        if grant_type == "refresh_token":
            return self._refresh(client, form)
        return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _client_auth(self, request: Request, form: dict[str, Any]) -> str | Response:
        """The authenticated client id (body fields or HTTP Basic), or Google's error."""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode()
            except ValueError:
                return _oauth_error(400, "invalid_request", "Malformed Authorization header.")
            # RFC 6749 2.3.1 form-encodes both parts before joining them with ':'.
            basic_id, _, basic_secret = (unquote(part) for part in decoded.partition(":"))
            if client_id not in (None, basic_id):
                return _oauth_error(400, "invalid_request", "client_id in body and header differ.")
            client_id, secret = basic_id, basic_secret
        if not client_id:
            return _oauth_error(400, "invalid_request", "Could not determine client ID from request.")
        if client_id != self.client_id:
            return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
        if secret is None:
            return _oauth_error(400, "invalid_request", "client_secret is missing.")
        if secret != self.client_secret:
            return _oauth_error(401, "invalid_client", "Unauthorized")
        return str(client_id)

    def _exchange_code(self, client_id: str, form: dict[str, Any]) -> Response:
        code_value = form.get("code")
        if not code_value:
            return _oauth_error(400, "invalid_request", "Missing required parameter: code")
        verifier = form.get("code_verifier")
        with self.lock:
            code = self._codes.get(code_value)
            if code is None or code.client_id != client_id:
                return _oauth_error(400, "invalid_grant", "Malformed auth code.")
            if code.used or code.expires_at <= self.clock():
                return _oauth_error(400, "invalid_grant", "Bad Request")
            if form.get("redirect_uri") != code.redirect_uri:
                return _oauth_error(400, "redirect_uri_mismatch", "Bad Request")
            if code.challenge is None:
                if verifier:
                    return _oauth_error(400, "invalid_request", "code_verifier or verifier is not needed.")
            elif not verifier:
                return _oauth_error(400, "invalid_grant", "Missing code verifier.")
            else:
                derived = _s256(verifier) if code.challenge_method == "S256" else verifier
                if not _PKCE_RE.match(verifier) or derived != code.challenge:
                    return _oauth_error(400, "invalid_grant", "Invalid code verifier.")
            code.used = True  # only a successful exchange spends the code
            grant = self._new_grant(client_id, code.account_email, code.scopes, code.issue_refresh_token)
            return Response(200, self._token_response(grant, grant.scopes), {"Cache-Control": "no-store"})

    def _refresh(self, client_id: str, form: dict[str, Any]) -> Response:
        token = form.get("refresh_token")
        if not token:
            return _oauth_error(400, "invalid_request", "Missing required parameter: refresh_token")
        with self.lock:
            grant = self._refresh_tokens.get(token)
            if grant is None or grant.revoked or not grant.refresh_valid:
                return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
            if grant.client_id != client_id:
                return _oauth_error(400, "unauthorized_client", "Unauthorized")
            scopes = grant.scopes
            if form.get("scope"):
                # A refresh may narrow the scopes; google-auth sends the ones it asked for at consent.
                requested = self._normalise_scopes(form["scope"])
                invalid = [s for s in requested if not _SCOPE_RE.match(s)]
                scopes = tuple(s for s in requested if s in grant.scopes)
                if invalid or not scopes:
                    return _oauth_error(400, "invalid_scope", f"Some requested scopes were invalid. {requested}")
            body = self._token_response(grant, scopes)
            body.pop("refresh_token", None)  # Google does not rotate refresh tokens
            return Response(200, body, {"Cache-Control": "no-store"})

    def _new_grant(self, client_id: str, account: str, scopes: tuple[str, ...], offline: bool) -> _Grant:
        refresh = "1//0" + secrets.token_urlsafe(48) if offline else None
        grant = _Grant(client_id, account, tuple(scopes), refresh)
        self._grants.append(grant)
        if refresh:
            self._refresh_tokens[refresh] = grant
        return grant

    def _token_response(self, grant: _Grant, scopes: tuple[str, ...]) -> dict[str, Any]:
        access = "ya29." + secrets.token_urlsafe(48)
        self._access_tokens[access] = _AccessToken(grant, scopes, self.clock() + self.access_token_ttl)
        grant.access_tokens.append(access)
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": self.access_token_ttl,
            "scope": " ".join(scopes),
            "token_type": "Bearer",
        }
        if grant.refresh_token:
            body["refresh_token"] = grant.refresh_token
        return body

    # -- /revoke ---------------------------------------------------------------------------
    def _revoke(self, params: dict[str, Any]) -> Response:
        token = params.get("token")
        if not token or not isinstance(token, str):
            return _oauth_error(400, "invalid_request", "Missing required parameter: token")
        with self.lock:
            grant: _Grant | None = None
            access = self._access_tokens.get(token)
            if access is not None and access.expires_at > self.clock():
                grant = access.grant
            elif token in self._refresh_tokens and self._refresh_tokens[token].refresh_valid:
                grant = self._refresh_tokens[token]
            if grant is None or grant.revoked:
                return _oauth_error(400, "invalid_token", "Token expired or revoked")
            # Revoking removes the app's access to the account: every grant of that client and user.
            for g in self._grants:
                if g.client_id == grant.client_id and g.account_email == grant.account_email and not g.revoked:
                    g.revoked = True
                    self._revoked.update(g.access_tokens)
                    if g.refresh_token:
                        self._revoked.add(g.refresh_token)
        return Response(200, {})

    # -- Gmail -----------------------------------------------------------------------------
    def _gmail(self, request: Request) -> Response:
        with self.lock:
            routes = list(self.gmail_routes)
        path_matched = False
        for route in routes:
            match = route.pattern.match(request.path)
            if match is None:
                continue
            path_matched = True
            if route.method != request.method:
                continue
            caller = self.authenticate(request)
            if isinstance(caller, Response):
                return caller
            path_params = {k: unquote(v) for k, v in match.groupdict().items()}
            user_id = path_params.get("userId")
            if user_id is not None and user_id != "me" and user_id.lower() != caller.account_email.lower():
                return _api_error(
                    403, "PERMISSION_DENIED", f"Delegation denied for {caller.account_email}", "forbidden"
                )
            if not caller.scopes & route.scopes:
                return _api_error(
                    403,
                    "PERMISSION_DENIED",
                    "Request had insufficient authentication scopes.",
                    "insufficientPermissions",
                )
            return route.handler(request, caller, path_params)
        if path_matched:
            return _api_error(405, "METHOD_NOT_ALLOWED", "Method not allowed.", "httpMethodNotAllowed")
        return _api_error(404, "NOT_FOUND", "Requested entity was not found.", "notFound")

    def _gmail_batch(self, request: Request) -> Response:
        """POST /batch/gmail/v1: a multipart/mixed of application/http parts, each an API call
        (its own Authorization, else the batch's), answered by a multipart/mixed of responses
        in order, each Content-ID "response-<its id>", as Google's batch endpoint does."""
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/mixed") or "boundary=" not in content_type:
            return _api_error(400, "INVALID_ARGUMENT", "Invalid batch request: multipart/mixed expected", "badRequest")
        parsed = BytesParser(policy=email_policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.body
        )
        parts = list(parsed.iter_parts()) if parsed.is_multipart() else []
        if not parts:
            return _api_error(400, "INVALID_ARGUMENT", "Invalid batch request: no parts", "badRequest")
        if len(parts) > MAX_BATCH_PARTS:
            return _api_error(
                400, "INVALID_ARGUMENT", f"Too many requests in batch (max {MAX_BATCH_PARTS})", "badRequest"
            )
        boundary = "batch_" + secrets.token_hex(12)
        out: list[bytes] = []
        for part in parts:
            payload = part.get_payload(decode=True)
            raw = payload if isinstance(payload, bytes) else b""
            inner = _inner_request(raw, request.headers.get("authorization", ""))
            answer = (
                self._gmail(inner)
                if inner is not None
                else _api_error(400, "INVALID_ARGUMENT", "Bad part", "badRequest")
            )
            with self.lock:
                self.calls.append(
                    {
                        "method": inner.method if inner else "?",
                        "path": inner.path if inner else "?",
                        "params": {},
                        "status": answer.status,
                        "batched": True,
                    }
                )
            content_id = str(part.get("Content-ID") or "").strip().strip("<>")
            reason = HTTPStatus(answer.status).phrase if answer.status in HTTPStatus._value2member_map_ else ""
            head = [f"HTTP/1.1 {answer.status} {reason}"]
            head += [f"{k}: {v}" for k, v in answer.headers.items()]
            out.append(
                (
                    f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <response-{content_id}>\r\n\r\n"
                    + "\r\n".join(head)
                    + "\r\n\r\n"
                ).encode()
                + answer.body
                + b"\r\n"
            )
        body = b"".join(out) + f"--{boundary}--\r\n".encode()
        return Response(200, body, {"Content-Type": f"multipart/mixed; boundary={boundary}"})

    def _get_profile(self, request: Request, caller: GmailCaller, params: dict[str, str]) -> Response:
        messages, threads, history_id = self.mailbox_stats(caller.account_email)
        return Response(
            200,
            {
                "emailAddress": caller.account_email,
                "messagesTotal": messages,
                "threadsTotal": threads,
                "historyId": history_id,
            },
        )


def _inner_request(raw: bytes, outer_authorization: str) -> Request | None:
    """One part of a batch: 'GET /gmail/v1/...?q HTTP/1.1', headers, blank line, body."""
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = head.decode("utf-8", "replace").split("\n")
    try:
        method, target, _ = lines[0].split(" ", 2)
    except ValueError:
        return None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip():
            headers[name.strip().lower()] = value.strip()
    headers.setdefault("authorization", outer_authorization)
    split = urlsplit(target)
    return Request(method.upper(), split.path, parse_qs(split.query, keep_blank_values=True), headers, body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Stop at the consent redirect: its target is the app's callback, not ours to call."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
