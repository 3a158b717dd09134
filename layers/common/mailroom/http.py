"""HTTP requests and responses as API Gateway (HTTP API, payload 2.0) carries them."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class UnreadableBody(ValueError):
    """The body claims base64 but is not."""


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    # The origin the request reached, e.g. https://abc.execute-api.eu-west-1.amazonaws.com
    origin: str | None = None
    cookies: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_api_gateway(cls, event: Mapping[str, Any]) -> HttpRequest:
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        raw = event.get("body") or ""
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise UnreadableBody("body is not valid base64") from exc
        else:
            body = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
        context = event.get("requestContext") or {}
        http = context.get("http") or {}
        domain = context.get("domainName") or headers.get("host")
        scheme = headers.get("x-forwarded-proto", "https")
        return cls(
            method=str(http.get("method") or "GET").upper(),
            path=str(http.get("path") or event.get("rawPath") or "/"),
            headers=headers,
            body=body,
            query={str(k): str(v) for k, v in (event.get("queryStringParameters") or {}).items()},
            origin=f"{scheme}://{domain}" if domain else None,
            cookies=_cookies(event.get("cookies"), headers.get("cookie")),
        )


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: str = ""
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)
    # Set-Cookie values (payload 2.0 carries them apart from the headers).
    cookies: tuple[str, ...] = ()

    @classmethod
    def json(cls, status: int, payload: Any) -> HttpResponse:
        return cls(status, json.dumps(payload), "application/json")

    def to_api_gateway(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "statusCode": self.status,
            "headers": {"Content-Type": self.content_type, **self.headers},
            "body": self.body,
            "isBase64Encoded": False,
        }
        if self.cookies:
            answer["cookies"] = list(self.cookies)
        return answer


def _cookies(listed: Any, header: str | None) -> dict[str, str]:
    """Payload 2.0 lists cookies in `cookies`; a Cookie header is read too. The first
    value of a name wins, as browsers send the most specific path first."""
    pairs = [str(c) for c in listed] if isinstance(listed, list) else []
    if header:
        pairs += header.split(";")
    found: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.strip().partition("=")
        if sep and name and name not in found:
            found[name] = value.strip()
    return found
